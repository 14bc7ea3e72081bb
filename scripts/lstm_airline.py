#!/usr/bin/env python3
"""The paper's airline LSTM experiment on a board (default: the emulator), beside software.

    python scripts/lstm_airline.py [--board mock://] [--mode exsitu|insitu] [--out lstm-airline]

Same as `memhw lstm airline ...`: trains the network, runs it on the crossbar, writes the
paper-style figure, a metrics table and a session file.
"""

import sys

from memhw.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", "lstm-airline"]
    sys.exit(main(["lstm", "airline", *args]))
