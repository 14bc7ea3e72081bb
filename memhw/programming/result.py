"""What a programming run achieved: :class:`ProgramResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..algorithms.tuning import REASONS, Reason
from ..units import US


@dataclass
class ProgramResult:
    """Outcome of :func:`memhw.program`.

    Attributes
    ----------
    targets, achieved : (rows, cols) arrays
        Target and finally verified conductances, S (``achieved`` is the
        final confirmation read; NaN outside the mask).
    mask : bool (rows, cols)
        Devices that were to be programmed.
    converged : bool (rows, cols)
        Within tolerance at the final confirmation read.
    set_pulses, reset_pulses : int (rows, cols)
        Pulses each device received in this run.
    reasons : int8 (rows, cols)
        :class:`memhw.algorithms.tuning.Reason` code per device; names in
        :data:`REASONS`.
    history : dict of arrays
        Per round: ``pending``, ``converged``, ``set``, ``reset`` (pulses),
        ``rms_error`` (S, over selected devices).
    """

    targets: np.ndarray
    mask: np.ndarray
    achieved: np.ndarray
    converged: np.ndarray
    set_pulses: np.ndarray
    reset_pulses: np.ndarray
    reasons: np.ndarray
    tolerance: float
    algorithm: str
    on_board: bool
    rounds: int
    verify_average: int
    read_sigma: float
    wall_time: float
    round_trips: int
    wire_bytes: int
    history: dict = field(default_factory=dict)

    @property
    def pulses(self) -> np.ndarray:
        """Total pulses per device."""
        return self.set_pulses + self.reset_pulses

    @property
    def responsive(self) -> np.ndarray:
        """Selected devices that responded to programming (not stuck)."""
        return self.mask & (self.reasons != Reason.STUCK)

    def reason_names(self) -> np.ndarray:
        """Reason of each device as text."""
        return np.vectorize(REASONS.get)(self.reasons)

    def summary(self) -> dict:
        """Error and pulse statistics of the run (conductances in S)."""
        sel, conv, resp = self.mask, self.converged, self.responsive
        err = (self.achieved - self.targets)[sel]
        pulses = self.pulses[sel]
        counts = {REASONS[int(c)]: int((self.reasons[sel] == c).sum()) for c in np.unique(self.reasons[sel])}
        n_resp = int(resp.sum())
        return {
            "algorithm": self.algorithm + (" (on board)" if self.on_board else ""),
            "selected": int(sel.sum()),
            "converged": int(conv.sum()),
            "converged_fraction": float(conv.sum() / max(sel.sum(), 1)),
            "converged_of_responsive": float((conv & resp).sum() / max(n_resp, 1)),
            "tolerance": self.tolerance,
            "error_rms": float(np.sqrt(np.mean(err**2))) if err.size else 0.0,
            "error_rms_converged": float(np.sqrt(np.mean((self.achieved - self.targets)[conv] ** 2)))
            if conv.any() else 0.0,
            "error_std": float(np.std(err)) if err.size else 0.0,
            "error_max_converged": float(np.abs((self.achieved - self.targets)[conv]).max(initial=0.0)),
            "pulses_median": float(np.median(pulses)) if pulses.size else 0.0,
            "pulses_p99": float(np.percentile(pulses, 99)) if pulses.size else 0.0,
            "pulses_total": int(pulses.sum()),
            "rounds": self.rounds,
            "round_trips": self.round_trips,
            "wire_bytes": self.wire_bytes,
            "wall_time": self.wall_time,
            "verify_average": self.verify_average,
            "reasons": counts,
        }

    def headline(self) -> str:
        """One line: algorithm, tolerance, devices converged, rounds (the figure's title)."""
        s = self.summary()
        return (f"{s['algorithm']} write-and-verify to ±{s['tolerance'] * 1e6:.1f} {US}: {s['converged']}/"
                f"{s['selected']} devices converged ({s['converged_fraction']:.1%}) in {s['rounds']} rounds")

    def __str__(self) -> str:
        s = self.summary()
        reasons = ", ".join(f"{k}: {v}" for k, v in s["reasons"].items())
        n_other = s["selected"] - s["converged"]
        return (f"{s['algorithm']}: {s['converged']}/{s['selected']} devices within ±{s['tolerance'] * 1e6:.1f} {US} "
                f"({s['converged_of_responsive']:.2%} of responsive) in {s['rounds']} rounds, "
                f"{s['round_trips']} round trips, {s['wall_time']:.2f} s; error rms "
                f"{s['error_rms_converged'] * 1e6:.2f} {US} over the {s['converged']} converged devices, "
                f"{s['error_rms'] * 1e6:.2f} {US} over all {s['selected']} (with the {n_other} not converged); "
                f"pulses/device median {s['pulses_median']:.0f}, p99 {s['pulses_p99']:.0f}; [{reasons}]")

    def plot(self, path: str | Path, context: str = "") -> Path:
        """Draw target vs achieved heat maps, the error and pulse histograms.

        Parameters
        ----------
        path : str or Path
            Figure file (PNG, PDF, SVG...).
        context : str
            A second title line, e.g. the board and the targets' source.
        """
        from ..plots import program_figure

        title = self.headline() + (f"\n{context}" if context else "")
        return program_figure(self.targets, self.achieved, self.mask, self.pulses, self.tolerance, path,
                              title=title)
