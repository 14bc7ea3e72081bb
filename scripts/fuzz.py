#!/usr/bin/env python
"""Long fuzzing campaign of every decoder and file loader.

    python scripts/fuzz.py [--examples 5000] [--random]

Runs the hypothesis tests of the frame decoder and message codec
(tests/protocol) and of the calibration and session file loaders
(tests/reliability/test_fuzz_files.py) with a larger example budget than CI
(``MEMHW_FUZZ_EXAMPLES``); ``--random`` draws fresh examples instead of the
fixed derandomised sequence.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/reliability/test_fuzz_files.py", "tests/protocol/test_framing.py", "tests/protocol/test_codec.py"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=2000, help="examples per file-loader test (default %(default)s)")
    p.add_argument("--random", action="store_true", help="fresh random examples (not the fixed sequence)")
    args = p.parse_args(argv)
    env = dict(os.environ, MEMHW_FUZZ_EXAMPLES=str(args.examples))
    if args.random:
        env["MEMHW_FUZZ_RANDOM"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, "--hypothesis-show-statistics"]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
