"""Progress of long operations: a tqdm bar on a terminal, a few plain lines in a log.

On a terminal :func:`progress` draws a tqdm bar. When stderr is not a terminal (piped to
a file, run by a scheduler) a bar's carriage-return redraws would pile up as one huge
line, so it writes instead one plain line at most every ``interval`` seconds, and a last
line when the operation took long enough to have written any; short operations stay
silent.

>>> with progress(100, "sweep reset", unit="step") as bar:   # doctest: +SKIP
...     for i in range(100):
...         bar.update_to(i + 1, amplitude="1.2 V")
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "progress", "LOG_INTERVAL"]

#: seconds between two lines of progress when the output is not a terminal
LOG_INTERVAL = 10.0


class Progress:
    """Progress of one operation (see :func:`progress`). Use as a context manager or call
    :meth:`close`.

    Attributes
    ----------
    total : int or None
        Steps of the whole operation (set by :meth:`callback` if unknown at the start).
    n : int
        Steps done.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "", *, stream: TextIO | None = None,
                 interval: float = LOG_INTERVAL, terminal: bool | None = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self._stream = stream if stream is not None else sys.stderr
        self._interval = interval
        self._info: dict[str, Any] = {}
        self._t0 = self._last = time.monotonic()
        self._lines = 0
        tty = terminal if terminal is not None else bool(getattr(self._stream, "isatty", lambda: False)())
        self._bar = None
        if tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit or "it", leave=False, file=self._stream,
                             mininterval=0.2, dynamic_ncols=True)

    # ............................................................ updates
    def update_to(self, n: int, **info: Any) -> None:
        """``n`` steps done so far; ``info`` (e.g. ``round=3``) is shown beside the count."""
        self.n = int(n)
        self._info = info
        if self._bar is not None:
            self._bar.n = self.n
            if self.total is not None and self._bar.total != self.total:
                self._bar.total = self.total
            if info:
                self._bar.set_postfix(info, refresh=False)
            self._bar.refresh()
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._write(now)

    def callback(self, done: int, total: int, *_: Any) -> None:
        """For procedures that report ``progress(done, total)`` (the sweeps)."""
        self.total = total
        self.update_to(done)

    def stage_callback(self, stage: str, done: int, total: int) -> None:
        """For procedures that report ``progress(stage, done, total)`` (board calibration)."""
        self.total = total
        self.update_to(done, stage=stage)

    # ............................................................ lines
    def line(self, now: float | None = None) -> str:
        """One plain line of the state, e.g. ``sweep reset: 7/16 step (44 %), 3.1 s``."""
        elapsed = (now if now is not None else time.monotonic()) - self._t0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        extra = "".join(f", {k} {v}" for k, v in self._info.items())
        return f"{self.desc}: {count}{' ' + self.unit if self.unit else ''}{pct}{extra}, {elapsed:.1f} s"

    def _write(self, now: float) -> None:
        print(self.line(now), file=self._stream, flush=True)
        self._lines += 1

    def close(self) -> None:
        """End the bar; in a log, a last line if any was written before."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            self._write(time.monotonic())
            self._lines = 0

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(total: int | None, desc: str, unit: str = "", **kwargs: Any) -> Progress:
    """A :class:`Progress` on stderr: a bar on a terminal, plain lines every
    :data:`LOG_INTERVAL` s otherwise (``stream``, ``interval``, ``terminal`` override)."""
    return Progress(total, desc, unit, **kwargs)
