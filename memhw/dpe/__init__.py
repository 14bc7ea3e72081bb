"""The original 128 x 64 measurement board: a bridge to its ASCII command set, and its emulator.

``memhw.connect("dpe:///dev/ttyUSB0")`` (``dpe+socket://HOST:PORT`` for a served one)
returns the same :class:`memhw.Board` as any other board; what the old firmware cannot do
is announced as missing (``board.supports``). See docs/dpe.md for the guarantees that
hold on this back end and the table of assumptions.

=====================  =============================================================
:mod:`.dialect`        every detail of the command set, fixed or open (``Dialect``)
:mod:`.codec`          the host's commands and strict reply parsing (no I/O)
:mod:`.link`           line I/O with deadlines and resync over pyserial
:mod:`.bridge`         the peer back end (``DpeBridge``), ``open_bridge``
:mod:`.handlers`       protocol requests as old commands
:mod:`.offsets`        the calibration this board allows (TIA offsets)
:mod:`.firmware`       the old firmware's command interpreter over the mock hardware
:mod:`.linefaults`     faults of the old link, injected on the board's side
:mod:`.emulator`       ``DpeEmulator``: firmware + chip + faults, servable on a pty/TCP
=====================  =============================================================

Nothing is imported here: the host imports the bridge only when a ``dpe`` address is
used, and never the emulator.
"""
