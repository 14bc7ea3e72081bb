"""The application layer: one experiment through ``memhw lstm``, its session report, and a
population run on Dask."""

from __future__ import annotations

import json

import numpy as np

from memhw.apps.lstm import compare, run
from memhw.apps.population import mock_chips, summarise
from memhw.cli import main
from memhw.report import report


def test_lstm_command_writes_metrics_figures_and_a_reportable_session(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["lstm", "mackey", "--board", "mock://?preset=ideal&seed=1", "--epochs", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "crossbar_rmse" in text and "ratio" in text
    metrics = json.loads((out / "mackey_exsitu_metrics.json").read_text())
    assert metrics["repair_weights"] == 12 * 4 * 14 + 13 and 0.5 < metrics["ratio"] < 2
    for name in ("mackey_exsitu.png", "mackey_exsitu_layout.png"):
        assert (out / name).stat().st_size > 0
    summary, figures = report(out / "session.h5", tmp_path / "report")
    assert "_lstm (complete)" in summary
    assert any(f.name.endswith("_predictions.png") for f in figures)


def test_insitu_run_records_its_loss_curve(tmp_path) -> None:
    r = run("gait", "mock://?preset=ideal&seed=2", "insitu", epochs=2, out=tmp_path, progress=False,
            task_options={"n_classes": 3})
    assert r.arrays["loss"].shape == (2,) and r.metrics["pulses"] > 0
    assert (tmp_path / "gait_insitu_loss.png").stat().st_size > 0
    assert (tmp_path / "gait_insitu_crossbar.png").stat().st_size > 0
    assert set(np.unique(r.arrays["target"])) <= {0, 1, 2}


def test_population_on_a_local_dask_cluster(tmp_path, capsys) -> None:
    assert main(["lstm", "mackey", "--chips", "2", "--preset", "ideal", "--seeds", "0,1", "--epochs", "2",
                 "--workers", "1", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "ratio median" in text and text.count("model seed") == 4
    data = json.loads((tmp_path / "mackey_exsitu_population.json").read_text())
    rows = data["results"][0]["rows"]
    assert sorted((r["chip"], r["seed"]) for r in rows) == sorted((c, s) for c in mock_chips(2, "ideal")
                                                                   for s in (0, 1))
    # the same software network (per model seed) on every chip
    for s in (0, 1):
        assert len({r["software_rmse"] for r in rows if r["seed"] == s}) == 1
    assert (tmp_path / "mackey_exsitu_population.png").stat().st_size > 0


def test_summary_and_comparison() -> None:
    s = summarise(list(range(1, 11)))
    assert s["median"] == 5.5 and s["worst"] == 10 and abs(s["p90"] - 9.1) < 1e-12 and s["n"] == 10
    assert compare("rmse", 0.1, 0.12) == {"ratio": 1.2}
    assert abs(compare("accuracy", 0.9, 0.875)["difference"] - 2.5) < 1e-12
