"""A plain (non-editable) install: the wheel carries the emulator's default calibration,
memhw finds it there, and ``calibrate --save`` writes to the per-user data directory,
never into the installed package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """memhw built into a wheel and pip-installed (no deps: they are this venv's) into a folder."""
    tmp = tmp_path_factory.mktemp("install")
    src, wheels, site = tmp / "src", tmp / "wheels", tmp / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in ("memhw", "firmware_protocol"):  # a copy: building leaves build/ beside the sources
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(src)], check=True, capture_output=True,
                   cwd=tmp)
    (wheel,) = wheels.glob("memhw-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, cwd=tmp)
    return site


def _run(site: Path, tmp: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_DATA_HOME": str(tmp / "data")}
    env.pop("MEMHW_CALIBRATION_DIR", None)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_a_plain_install_finds_the_shipped_calibration_and_saves_per_user(installed: Path, tmp_path: Path) -> None:
    code = """
import json, sys, memhw
from memhw.cli import main
from memhw.calibration.files import search_path
with memhw.connect("mock://") as board:
    source = board.calibration.source if board.calibration is not None else None
print(json.dumps({"memhw": memhw.__file__, "source": source, "path": [str(p) for p in search_path()]}))
sys.stdout.flush()
sys.exit(main(["calibrate", "board", "--save", "--average", "4"]))
"""
    proc = _run(installed, tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[0])
    assert Path(found["memhw"]).is_relative_to(installed)          # the installed copy, not the checkout
    assert found["source"] and Path(found["source"]).is_relative_to(installed)
    assert found["path"] == [str(tmp_path / "data" / "memhw" / "calibration"),
                             str(installed / "memhw" / "calibration" / "data")]
    saved = tmp_path / "data" / "memhw" / "calibration" / "MEMHW-EMU-0001.h5"
    assert f"saved {saved}" in proc.stdout and saved.is_file()
    assert sorted(p.name for p in (installed / "memhw" / "calibration" / "data").iterdir()) == ["MEMHW-EMU-0001.h5"]
