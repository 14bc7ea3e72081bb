"""Shared command line of the generators (``cgen``, ``goldens``): write the
generated files, or with ``--check`` report whether the checked-in ones are stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Mapping


def write_or_check(render: Callable[[], Mapping[Path, str]], command: str, description: str,
                   argv: list[str] | None = None) -> int:
    """Run a generator's command line.

    Parameters
    ----------
    render : callable() -> {path: text}
        The files as they should be.
    command : str
        How users run the generator (for the "regenerate" hint).
    description : str
        One line for ``--help``.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0, or 1 when ``--check`` finds a file missing or stale.
    """
    parser = argparse.ArgumentParser(prog=command, description=description)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a checked-in file differs from the generated one")
    args = parser.parse_args(argv)
    stale = 0
    for path, text in render().items():
        if not args.check:
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {path}")
        elif not path.exists() or path.read_bytes().decode("utf-8") != text:
            print(f"{path} is out of date with protocol.toml; run `{command}` (without --check) to regenerate it.",
                  file=sys.stderr)
            stale = 1
        else:
            print(f"{path} is up to date.")
    return stale
