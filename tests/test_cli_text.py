"""What the command line prints reads as text for people: units, precision, progress."""

from __future__ import annotations

import io
import json
import re

import pytest

from memhw.calibration.files import shipped_dir
from memhw.cli import main
from memhw.progress import Progress

RAW_FLOAT = re.compile(r"\d\.\d{6,}|\de-\d")  # 1.5999999902760464e-07, 0.000152587890625


def test_info_states_units_transfer_functions_and_the_calibration_file(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert not RAW_FLOAT.search(out), out
    shipped = shipped_dir() / "MEMHW-EMU-0001.h5"
    assert re.search(rf"^calibration\s+{re.escape(str(shipped))} \(made ", out, re.M), out
    for text in ("160 ns + code × 4.14 ns", "152.6 µV per code", "1 kΩ, 10 kΩ, 100 kΩ, 1 MΩ", "≤ 3.5 V",
                 "128 rows × 64 columns", "transfer functions"):
        assert text in out, text


def test_info_says_when_no_calibration_is_applied(capsys) -> None:
    assert main(["info", "--board", "mock://?seed=3"]) == 0
    assert re.search(r"^calibration\s+none: nominal transfer functions$", capsys.readouterr().out, re.M)
    assert main(["info", "--json", "--board", "mock://?seed=3"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["calibration"] is None and d["calibration_text"] == "none: nominal transfer functions"


def test_progress_in_a_log_is_a_few_plain_lines() -> None:
    log = io.StringIO()
    with Progress(1000, "sweep reset", unit="step", stream=log, interval=0.0) as bar:
        for i in range(0, 1001, 250):
            bar.update_to(i, amplitude="1.2 V")
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 6  # one per update at interval 0, and the last
    assert lines[-1].startswith("sweep reset: 1000/1000 step (100 %), amplitude 1.2 V, ")
    quiet = io.StringIO()
    with Progress(1000, "fast", stream=quiet) as bar:  # the default interval: nothing for a short operation
        for i in range(1000):
            bar.update_to(i + 1)
    assert quiet.getvalue() == ""


def test_progress_on_a_terminal_is_a_bar() -> None:
    tty = io.StringIO()
    with Progress(10, "programming", unit="devices", stream=tty, terminal=True) as bar:
        bar.update_to(5, round=2)
    assert "programming" in tty.getvalue() and "\r" in tty.getvalue()


@pytest.mark.parametrize("value, unit, text", [(1.5999999902760464e-07, "s", "160 ns"), (1e6, "Ω", "1 MΩ"),
                                               (0.000152587890625, "V", "152.6 µV"), (0.0, "V", "0 V")])
def test_si_prefixes(value: float, unit: str, text: str) -> None:
    from memhw.units import si

    assert si(value, unit) == text
