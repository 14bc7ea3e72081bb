"""HDF5 session files: a log of every board operation plus the runs of procedures.

>>> import memhw
>>> with memhw.Session("session.h5") as session, memhw.connect("mock://") as board:
...     session.attach(board)                      # log every board operation
...     with session.run("program", tolerance=2e-6) as run:
...         run.append("g", board.read_conductance(), unit="S")
...         run.flush()                            # one committed batch
>>> s = memhw.session.load("session.h5")
>>> s.last_run("program").read("g").shape
(1, 128, 64)

The file layout and the crash guarantees are in ``docs/sessions.md``.
"""

from .core import FORMAT, OpLog, OpRecord, OpTable, Run, Session, load
from .ledger import PulseLedger, pulse_ledger
from .store import SessionFileError

__all__ = ["Session", "Run", "OpLog", "OpTable", "OpRecord", "SessionFileError", "load", "FORMAT", "PulseLedger",
           "pulse_ledger"]
