"""Issue #13, done when: a new user's tour of the README's commands, through the installed
``memhw`` console script, gives no traceback, no library noise, no silent no-op and no file
in the wrong place. (``memhw demo`` is toured in tests/test_cli.py, ``memhw lstm`` in
tests/nn.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memhw.calibration.files import shipped_dir

MEMHW = str(Path(sys.executable).with_name("memhw"))
SMALL = "mock://?rows=16"  # the heavy commands on a 16-row board: same code, less time


def _run(cwd: Path, env: dict, *argv: str) -> str:
    r = subprocess.run([MEMHW, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (argv, r.stderr)
    assert "Traceback" not in r.stderr and "WARNING" not in r.stderr, (argv, r.stderr)
    assert r.stdout.strip(), f"{argv}: printed nothing"  # no silent no-op
    return r.stdout


@pytest.mark.slow
def test_a_new_users_tour_of_the_readme(tmp_path: Path) -> None:
    home, data = tmp_path / "user", tmp_path / "xdg-data"
    home.mkdir()
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    env.pop("MEMHW_CALIBRATION_DIR", None)
    shipped = sorted(p.name for p in shipped_dir().iterdir())

    assert re.search(rf"^calibration +{re.escape(str(shipped_dir()))}", _run(home, env, "info"), re.M)
    assert "wrote map.h5" in _run(home, env, "read", "--out", "map.h5")
    out = _run(home, env, "program", "random", "--board", SMALL, "--out", "run.h5")
    assert "the chip reaches" in out and "wrote run.h5" in out
    out = _run(home, env, "calibrate", "board", "--save")
    saved = data / "memhw" / "calibration" / "MEMHW-EMU-0001.h5"
    assert f"saved {saved}" in out and saved.is_file()
    out = _run(home, env, "sweep", "iv", "--board", SMALL, "--out", "s.h5", "--plot", "s.png")
    assert "device (0, 0)" in out and "recorded in s.h5" in out
    assert "s-report/0000_sweep.png" in _run(home, env, "report", "s.h5")
    assert re.search(rf"^calibration +{re.escape(str(saved))}", _run(home, env, "info"), re.M)  # the user's own

    server = subprocess.Popen([MEMHW, "mock", "serve", "--tcp", "127.0.0.1:0"], cwd=home, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = server.stdout.readline().split(" on ")[1].split()[0]
        assert "MEMHW-EMU-0001" in _run(home, env, "info", "--board", address)
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert sorted(p.name for p in home.iterdir()) == ["map.h5", "run.h5", "s-report", "s.h5", "s.png"]
    # per-user state only: the calibration it was told to save, and the device-health map
    # that every programming run keeps for its board (README: files)
    written = sorted(p.relative_to(data).as_posix() for p in data.rglob("*"))
    health = [w for w in written if w.endswith(".health.npz")]
    assert len(health) == 1 and health[0].startswith("memhw/calibration/MEMHW-EMU-S0-")
    assert [w for w in written if w not in health] == ["memhw", "memhw/calibration",
                                                       "memhw/calibration/MEMHW-EMU-0001.h5"]
    assert sorted(p.name for p in shipped_dir().iterdir()) == shipped  # nothing written into the package
