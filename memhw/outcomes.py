"""What Board operations return or attach to their errors, beyond plain arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import rows_text
from .errors import BoardError, MemhwError

__all__ = ["PulseOutcome", "with_outcome", "BoardStatus", "ReferenceReading", "OnBoardProgram", "NetworkRun"]


@dataclass
class PulseOutcome:
    """What a pulse batch that failed part-way did, device by device.

    Attached as ``exc.outcome`` to the error a failed :meth:`Board.pulse_set` /
    :meth:`Board.pulse_reset` raises (``SessionLost``, ``OperationAborted``,
    ``LinkTimeout``, ``Disconnected``...), and to an exception raised by a ``progress``
    callback (the batch then completed).

    Attributes
    ----------
    op : str
        ``"pulse_set"`` or ``"pulse_reset"``.
    applied : bool (rows, cols)
        Pulsed exactly once, confirmed by the board (progress frames or reply).
    uncertain : bool (rows, cols)
        Sent but not confirmed: pulsed once or not at all (never twice: a board that
        lost the session refuses the retry). Re-read them.
    not_applied : bool (rows, cols)
        Certainly not pulsed (never sent, or after the row an abort stopped at).
    """

    op: str
    applied: np.ndarray
    uncertain: np.ndarray
    not_applied: np.ndarray

    @property
    def pulses(self) -> int:
        """Pulses confirmed (``applied.sum()``)."""
        return int(self.applied.sum())

    def summary(self) -> str:
        rows = lambda m: rows_text(np.flatnonzero(m.any(axis=1)))  # noqa: E731
        return (f"{self.op}: applied (confirmed) {int(self.applied.sum())} devices in rows {rows(self.applied)}; "
                f"unconfirmed {int(self.uncertain.sum())} devices in rows {rows(self.uncertain)} "
                f"(each pulsed at most once); not applied {int(self.not_applied.sum())} devices in rows "
                f"{rows(self.not_applied)}")


def with_outcome(exc: BaseException, outcome: PulseOutcome) -> BaseException:
    """The same kind of error, its message extended by what was and was not applied."""
    text = outcome.summary()
    if isinstance(exc, BoardError):
        new: BaseException = type(exc)(exc.status, exc.status_name, f"{exc.message}; {text}", exc.reply)
    elif isinstance(exc, MemhwError):
        try:
            new = type(exc)(f"{exc}; {text}")
        except TypeError:
            new = exc
    else:  # not ours (a callback's): keep it, add a note
        exc.add_note(text)
        new = exc
    try:
        new.outcome = outcome  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return new


@dataclass(frozen=True)
class BoardStatus:
    """The board's state and counters (STATUS).

    Attributes
    ----------
    busy : bool
    last_status : str
        Name of the status of the last refused request (``"OK"``: none since boot).
    last_error : str
        Its reason, or the last watchdog or takeover event.
    requests : int
        Request messages received since boot (every kind, every host), modulo 2**32.
    pulses : int
        Pulses applied to devices since boot, modulo 2**32.
    uptime : float
        Seconds since power-up, on the board's clock.
    """

    busy: bool
    last_status: str
    last_error: str
    requests: int
    pulses: int
    uptime: float


@dataclass(frozen=True)
class ReferenceReading:
    """One READ_REFERENCE: every column reading reference resistor ``index``.

    Attributes
    ----------
    count : int
        Reference resistors on the board.
    resistance, tolerance : float
        Nominal value of the resistor (ohm) and the parts' relative tolerance.
    v_bus : float
        Reference bus voltage measured by the monitor ADC, V.
    gains : (cols,) int
        Gain index each column used.
    codes : (cols,) float
        Mean ADC code per column.
    currents : (cols,) float
        Amperes per column: calibrated, or through the nominal transfer function when
        read with ``nominal=True``.
    """

    count: int
    resistance: float
    tolerance: float
    v_bus: float
    gains: np.ndarray
    codes: np.ndarray
    currents: np.ndarray


@dataclass(frozen=True)
class OnBoardProgram:
    """The reply of an on-board PROGRAM, in SI (calibration applied where there is one).

    ``achieved`` is NaN, pulse counts 0 and ``reasons`` NOT_SELECTED outside the mask.
    """

    rounds: int
    achieved: np.ndarray
    set_pulses: np.ndarray
    reset_pulses: np.ndarray
    reasons: np.ndarray


@dataclass(frozen=True)
class NetworkRun:
    """What RUN_NETWORK gave back.

    Attributes
    ----------
    outputs : list of (T_i, n_outputs) arrays, or (N, n_outputs) array
        Per time step (a network without LAST_STEP), or one row per sequence.
    clipped : int
        Product inputs the board clipped to its read limit (0 when the input scale fits).
    """

    outputs: list | np.ndarray
    clipped: int
