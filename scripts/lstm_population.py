#!/usr/bin/env python3
"""Population benchmark of the LSTM experiments: crossbar vs software over many chips.

    python scripts/lstm_population.py [--chips 20] [--seeds 0,1,2] [--workers 2]
                                      [--scheduler ADDRESS] [--only airline,gait,mackey]
                                      [--labels paper,harsh,...] [--no-ablation] [--update]
                                      [--out results]

Every row runs one task ex situ on ``--chips`` emulated chip instances of a preset
(``mock://?preset=P&seed=1..N``) with every model seed; each software network is trained
once per model seed and reused on every chip. Rows:

* ``paper``: airline, gait (synthetic), mackey (ours) -- the issue's goals;
* ``harsh``: airline (goal); gait and mackey on the first model seed (reported);
* ablations on the first model seed: the defaults without device health (no probe,
  plain placement, repair only from programming results) and without board calibration.

The runs go to Dask (a local cluster of ``--workers`` single-threaded processes, or
``--scheduler``). Writes ``<out>/lstm_population.json`` and ``.md`` and one figure per row
in ``<out>/lstm_population/``, and prints the table. ``--update`` re-runs only the rows
selected (``--only``, ``--labels``) and keeps the other rows of an earlier run's files. Device-health maps go to a fresh
folder under ``<out>`` (``$MEMHW_HEALTH_DIR``), so every run of the benchmark starts
with chips nobody has seen.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

#: (preset, task) -> (quantity, median goal, p90 goal) from issue #12 (None: reported only)
GOALS = {
    ("paper", "airline"): ("ratio", 1.05, 1.15),
    ("paper", "gait"): ("difference", 1.0, 3.0),
    ("paper", "mackey"): ("ratio", 1.05, 1.15),
    ("harsh", "airline"): ("ratio", 1.3, None),
}
#: the rows: (label, preset, task, options, only the first model seed)
ROWS = [
    ("paper", "paper", "airline", {}, False),
    ("paper", "paper", "gait", {}, False),
    ("paper", "paper", "mackey", {}, False),
    ("harsh", "harsh", "airline", {}, False),
    ("harsh", "harsh", "gait", {}, True),
    ("harsh", "harsh", "mackey", {}, True),
]
ABLATIONS = [
    ("paper, no health", "paper", "airline", {"health": None}, True),
    ("paper, no calibration", "paper", "airline", {"calibrate": False}, True),
    ("harsh, no health", "harsh", "airline", {"health": None}, True),
    ("harsh, no calibration", "harsh", "airline", {"calibrate": False}, True),
]


def verdict(preset: str, task: str, label: str, summary: dict) -> str:
    goal = GOALS.get((preset, task))
    if goal is None or label != preset:
        return "-"
    _, median, p90 = goal
    ok = summary["median"] <= median and (p90 is None or summary["p90"] <= p90)
    text = f"median <= {median:g}" + ("" if p90 is None else f", p90 <= {p90:g}")
    return f"{'met' if ok else 'NOT met'} ({text})"


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = [" | ".join(c.ljust(width[c]) for c in cols), "-|-".join("-" * width[c] for c in cols)]
    lines += [" | ".join(r[c].ljust(width[c]) for c in cols) for r in rows]
    return "\n".join("| " + line + " |" for line in lines)


def earlier(out: Path) -> tuple[list[str], list[dict]]:
    """Table lines and records of an earlier run in ``out`` (for ``--update``)."""
    md, js = out / "lstm_population.md", out / "lstm_population.json"
    if not (md.is_file() and js.is_file()):
        return [], []
    rows = [line for line in md.read_text().splitlines()[4:] if line.startswith("| ")]
    return rows, json.loads(js.read_text())["rows"]


def write(out: Path, args: argparse.Namespace, seeds: list[int], lines: list[dict], records: list[dict],
          elapsed: float, kept: tuple[list[str], list[dict]] = ([], [])) -> None:
    head = (f"`python scripts/lstm_population.py --chips {args.chips} --seeds {args.seeds}`: {args.chips} chip "
            f"instances (mock seeds 1..{args.chips}) x model seeds {seeds} (rows of {args.chips} runs: the first "
            f"model seed only), ex situ; {elapsed:.0f} s")
    new = {(r["label"], r["task"]) for r in records}
    old_lines = [ln for ln in kept[0] if tuple(c.strip() for c in ln.strip("|").split("|")[:2]) not in new]
    old_records = [r for r in kept[1] if (r["label"], r["task"]) not in new]
    text = table(lines) if lines else ""
    if old_lines:  # earlier rows first, in their order, then the rows re-run now
        head += f"; rows re-run with --update: {', '.join(f'{a} {b}' for a, b in sorted(new))}"
        text = "\n".join(table(lines).splitlines()[:2] + old_lines + table(lines).splitlines()[2:])
    (out / "lstm_population.md").write_text(head + "\n\n" + text + "\n")
    (out / "lstm_population.json").write_text(json.dumps({"command": head, "rows": old_records + records}, indent=1,
                                                         default=str))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chips", type=int, default=20)
    ap.add_argument("--seeds", default="0,1,2", help="model seeds, comma-separated")
    ap.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core)")
    ap.add_argument("--scheduler", help="address of a running Dask scheduler")
    ap.add_argument("--only", help="tasks to run, comma-separated (default: all)")
    ap.add_argument("--labels", help="row labels to run, comma-separated (e.g. 'harsh,paper, no health')")
    ap.add_argument("--no-ablation", action="store_true", help="skip the ablation rows")
    ap.add_argument("--update", action="store_true", help="keep the other rows of an earlier run in --out")
    ap.add_argument("--out", default="results")
    args = ap.parse_args()
    out = Path(args.out)
    figures = out / "lstm_population"
    figures.mkdir(parents=True, exist_ok=True)
    health = out / "lstm_population_health"
    shutil.rmtree(health, ignore_errors=True)
    os.environ["MEMHW_HEALTH_DIR"] = str(health.resolve())  # set before the workers start

    from memhw.apps.population import dask_client, mock_chips, run_population

    seeds = [int(s) for s in args.seeds.split(",")]
    only = None if args.only is None else {t.strip() for t in args.only.split(",")}
    plan = ROWS + ([] if args.no_ablation else ABLATIONS)
    labels = None if args.labels is None else {x.strip() for x in args.labels.split(";" if ";" in args.labels else ",")}
    plan = [p for p in plan if (only is None or p[2] in only) and (labels is None or p[0] in labels)]
    kept = earlier(out) if args.update else ([], [])
    records, lines = [], []
    t_all = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        for label, preset, task, options, first_only in plan:
            t0 = time.perf_counter()
            result = run_population(task, mock_chips(args.chips, preset), seeds[:1] if first_only else seeds,
                                    client=client, **options)
            s = result.summary
            goal = GOALS.get((preset, task))
            fig = result.figure(figures / f"{label.replace(', ', '_').replace(' ', '-')}_{task}.png",
                                goal=goal[1] if goal and label == preset else None)
            unit = "x" if result.key == "ratio" else " pt"
            sw_key = "software_rmse" if result.key == "ratio" else "software_accuracy"
            lines.append({
                "chips": label, "task": task, "runs": str(s["n"]),
                "quantity": "crossbar / software RMSE" if result.key == "ratio" else "software - crossbar accuracy",
                "median": f"{s['median']:.3f}{unit}", "p90": f"{s['p90']:.3f}{unit}",
                "worst": f"{s['worst']:.3f}{unit}",
                "software (median)": f"{sorted(r[sw_key] for r in result.rows)[len(result.rows) // 2]:.4g}",
                "goal": verdict(preset, task, label, s), "time (s)": f"{time.perf_counter() - t0:.0f}"})
            records.append({"label": label, "preset": preset, "task": task,
                            "options": {k: str(v) for k, v in options.items()},
                            "figure": str(fig), **result.to_json()})
            print(f"{label:>22} {result.line()} ({time.perf_counter() - t0:.0f} s)", flush=True)
            write(out, args, seeds, lines, records, time.perf_counter() - t_all, kept)  # after every row
    print((out / "lstm_population.md").read_text())
    print(f"wrote {out}/lstm_population.md, lstm_population.json and figures in {figures}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
