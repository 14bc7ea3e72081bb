"""Run a network's matrix products in memristor crossbar arrays.

:class:`CrossbarBackend` is a :class:`~memhw.nn.backend.Backend`: it programs the
mapped conductances (write-and-verify), then computes every ``z @ W.T`` as one
``board.vmm`` call per tile for all rows of ``z`` at once (all sequences of a time
step), converting column currents back to weight units.

Programming is defect-aware (:meth:`CrossbarBackend.program`):

1. **Health.** Each board's stored :class:`~memhw.health.HealthMap` is loaded; devices
   it does not know are probed (:func:`memhw.programming.probe`) and the map is saved.
2. **Placement** around stuck devices and bad lines, with inputs and outputs assigned
   to rows and columns that suit the defects (:func:`~memhw.nn.placement.place`).
3. **Pair targets** that respect every device's reachable range: a stuck or capped
   device is compensated by its partner through the pair's common mode
   (:func:`~memhw.nn.pairs.pair_targets`), up to the device range ``g_ceiling``, not
   the ordinary ``g_max``.
4. **Write-and-verify** (:func:`memhw.programming.program`), read back.
5. **Repair**, a few rounds: every weight whose measured value is off by more than
   ``repair_threshold`` gets its pair retargeted by the error (with what the run just
   learned about its devices); what its pair cannot hold goes to a *repair row pair*
   on spare rows of the tile's columns, driven with the same input. What still cannot
   be repaired is reported (:attr:`CrossbarBackend.report`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..board import Board
from .mapping import Placement, Tile, WeightMap, WeightMaps, auto_scale, map_of, pair_conductances, to_weights
from .pairs import pair_targets
from .placement import place

__all__ = ["CrossbarBackend", "RepairReport"]

log = logging.getLogger("memhw.nn")

#: gate limit of programming: DOMAIN §2.1's compliance law reaches ≈ 340 µS (the top of
#: the compensation range) near 2.25 V on a nominal device, more on a device of low gain
#: k_ij (the tuning default stops at 1.8 V ≈ 296 µS nominal)
HIGH_GATE = 2.6
#: samples averaged per device in the read-backs that decide repairs and give the measured
#: weights (read noise ~1 % per read and telegraph noise, DOMAIN §2.4, would otherwise pass
#: for programming errors)
VERIFY_AVERAGE = 16
#: zero-input products averaged for the column baseline (:meth:`CrossbarBackend.measure_baseline`)
BASELINE_SAMPLES = 32


@dataclass
class RepairReport:
    """What defect-aware programming did (:attr:`CrossbarBackend.report`).

    Attributes
    ----------
    weights : int
        Weights programmed.
    failed_first : int
        Weights off by more than the repair threshold after the first write.
    retargeted : int
        Pairs retargeted (compensation through the common mode, or a retry).
    repair_rows : int
        Repair row pairs added on spare rows.
    unrepaired : list of (key, output, input, error)
        Weights still off by more than the threshold at the end (error in weight units).
    stuck_used : int
        Stuck devices inside the tiles (held at their stuck value, partner compensating).
    probed : int
        Devices probed because their health was unknown.
    rounds : int
        Programming runs per board (first write + repair rounds).
    """

    weights: int = 0
    failed_first: int = 0
    retargeted: int = 0
    repair_rows: int = 0
    unrepaired: list[tuple[str, int, int, float]] = field(default_factory=list)
    stuck_used: int = 0
    probed: int = 0
    rounds: int = 0

    def __str__(self) -> str:
        worst = max((abs(e) for *_, e in self.unrepaired), default=0.0)
        return (f"{self.weights} weights, {self.failed_first} off after the first write, {self.retargeted} pairs "
                f"retargeted, {self.repair_rows} repair row pairs, {len(self.unrepaired)} unrepaired (worst "
                f"{worst:.3g}); {self.stuck_used} stuck devices in use, {self.probed} devices probed, "
                f"{self.rounds} programming rounds")

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "failed_first": self.failed_first, "retargeted": self.retargeted,
                "repair_rows": self.repair_rows, "unrepaired": len(self.unrepaired),
                "unrepaired_worst": max((abs(e) for *_, e in self.unrepaired), default=0.0),
                "stuck_used": self.stuck_used, "probed": self.probed, "rounds": self.rounds}


def _per_board(fn: Callable[[list], list], work: Mapping[int, list]) -> list:
    """``fn(items)`` for every board's items, each board in its own thread (``memhw-board-<a>``)
    so that the boards' requests overlap on their links; the results in board order. An
    exception of any board is raised once all have finished."""
    import threading

    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def run(a: int, items: list) -> None:
        try:
            results[a] = fn(items)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a, items), name=f"memhw-board-{a}") for a, items in work.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [p for a in sorted(results) for p in results[a]]


class CrossbarBackend:
    """Matrix products in the arrays of one or more boards.

    Parameters
    ----------
    boards : Board or sequence of Board
        One per array of the placement (same order).
    placement : Placement, optional
        From :func:`~memhw.nn.placement.place`. Default: placed by :meth:`program`
        around the boards' defects (needed before :meth:`matmul`).
    weight_map : WeightMap, mapping key -> WeightMap, or "auto"
        Conductance scheme (default: one-sided, 100 µS per unit weight). "auto": a
        scale per layer chosen by :meth:`program` (:func:`~memhw.nn.mapping.auto_scale`).
    programmer : callable, optional
        ``programmer(board, targets, tolerance=..., mask=...)`` returning an object with
        ``.achieved``, ``.converged`` (and ``.reasons`` to learn device health);
        default :func:`memhw.programming.program`.
    tolerance : float
        Write-and-verify tolerance, S.
    input_range : float
        |z| that maps to the read voltage: ``v = v_read · z / s`` with
        ``s = max(input_range, max|z_n|)`` per sample ``n`` (so a bias input of 1 drives
        its row at exactly ``v_read`` and nothing exceeds it).
    v_read : float
        Read voltage for VMM inputs and conductance reads (0.2 V, DOMAIN §1; capped by
        the board's limit).
    read_average : int
        Samples averaged per device when reading back conductances.
    health : "auto", list of HealthMap, or None
        Device health per board: "auto" loads each board's stored map
        (:func:`memhw.health.load_health`); None ignores health (no probe, plain
        placement, repair from programming results only).
    probe : bool
        Probe devices of unknown health before placing (only with ``health``).
    repair_rounds : int
        Repair rounds after the first write (0: none).
    repair_threshold : float
        Pair-difference error (S) beyond which a weight is repaired: 5 µS, above what
        write-and-verify leaves (tolerance, relaxation, DOMAIN §2.5) and the read noise
        of an 8-sample read-back, far below a failed device.
    layout : {"rows", "columns"}
        Layout of an automatic placement.
    vmm_average : int
        Samples of every product averaged (read noise falls as 1/√n; each sample is one
        more input vector sent to the board).
    relax_delay : float
        Seconds to let devices relax after each write-and-verify before verifying again
        and re-tuning those that drifted (:func:`memhw.programming.program`).
    linearize : bool
        After programming, measure the arrays' I–V nonlinearity (reads at two voltages)
        and pre-distort the row voltages so that products stay linear in the inputs
        (:attr:`cubic`: the ``c`` of ``I = G (V + c V³)`` per array, 0 if unresolved).
    """

    def __init__(self, boards: Board | Sequence[Board], placement: Placement | None = None,
                 weight_map: WeightMaps | str = WeightMap(), programmer: Callable[..., Any] | None = None,
                 tolerance: float = 2e-6, input_range: float = 1.0, v_read: float = 0.2, read_average: int = 1, *,
                 health: str | Sequence[Any] | None = "auto", probe: bool = True, repair_rounds: int = 2,
                 repair_threshold: float = 5e-6, layout: str = "rows", vmm_average: int = 1,
                 linearize: bool = True, relax_delay: float = 0.0):
        self.boards = [boards] if isinstance(boards, Board) else list(boards)
        if placement is not None:
            if len(self.boards) != len(placement.shapes):
                raise ValueError(f"placement has {len(placement.shapes)} arrays, got {len(self.boards)} boards")
            for b, s in zip(self.boards, placement.shapes):
                if tuple(b.shape) != tuple(s):
                    raise ValueError(f"board {b.address} is {b.shape}, placement expects {s}")
        if isinstance(weight_map, str) and weight_map != "auto":
            raise ValueError(f"weight_map must be a WeightMap, a mapping of them or 'auto', got {weight_map!r}")
        self.placement = placement
        self._auto_place = placement is None
        self._auto_map = isinstance(weight_map, str)
        self.weight_map: WeightMaps = WeightMap() if self._auto_map else weight_map
        self.programmer = programmer
        self.tolerance = float(tolerance)
        self.input_range = float(input_range)
        self.v_read = min(float(v_read), min(b.info.limits.v_read for b in self.boards))
        self.read_average = int(read_average)
        self.vmm_average = int(vmm_average)
        self.linearize = bool(linearize)
        self.relax_delay = float(relax_delay)
        self.cubic: list[float] = []
        self.baseline: list[np.ndarray] = []
        #: per tile of the placement: its id on its board (DEFINE_TILE) and its zero-input
        #: currents, when every board offers VMM_TILE (else products are full-array VMMs)
        self.tile_ids: list[int] = []
        self.tile_baseline: list[np.ndarray] = []
        self._network: Any = None  # the network loaded on the board (memhw.nn.onboard)
        #: why the last :meth:`run_model` ran on the host ("" when it ran on the board)
        self.on_board_reason: str | None = None
        if self.vmm_average < 1:
            raise ValueError(f"vmm_average must be >= 1, got {vmm_average}")
        self.health: list[Any] | None = self._load_health(health)
        self.probe = bool(probe)
        self.repair_rounds = int(repair_rounds)
        self.repair_threshold = float(repair_threshold)
        self.layout = layout
        self.conductances: list[np.ndarray] = []
        self.results: list[Any] = []
        self.report = RepairReport()
        self._weights: dict[str, np.ndarray] = {}

    def _load_health(self, health: str | Sequence[Any] | None) -> list[Any] | None:
        if health is None:
            return None
        from ..health import HealthMap, load_health

        if isinstance(health, str):
            if health != "auto":
                raise ValueError(f"health must be 'auto', a list of HealthMap or None, got {health!r}")
            return [load_health(b.info.serial, b.shape) or HealthMap.empty(b.info.serial, b.shape)
                    for b in self.boards]
        health = list(health)
        if len(health) != len(self.boards):
            raise ValueError(f"need one health map per board ({len(self.boards)}), got {len(health)}")
        return health

    def map_of(self, key: str) -> WeightMap:
        """The weight map of layer ``key``."""
        return map_of(self.weight_map, key)

    # ------------------------------------------------------------ programming
    def program(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Place (if needed), write-and-verify, repair; then read the weights back.

        Returns
        -------
        dict key -> (M, K)
            The weights the arrays now hold (from the read-back conductances).

        Raises
        ------
        WeightRangeError
            A weight beyond its layer's map (use ``weight_map="auto"``).
        PlacementError
            The network does not fit the boards.
        """
        weights = {k: np.asarray(w, float) for k, w in weights.items()}
        report = RepairReport(weights=sum(w.size for w in weights.values()), probed=self.prepare(weights))
        placement = self.placement
        # wanted difference of every pair (S), per tile: (pairs, M_t); repair pairs 0
        wanted = [self._wanted(t, weights) for t in placement.tiles]
        targets = self._targets(wanted)
        self.results = []
        todo = [placement.used(a) & ~self._stuck(a) for a in range(len(self.boards))]
        threshold = self.repair_threshold
        for rnd in range(self.repair_rounds + 1):
            self._write(targets, todo)
            report.rounds += 1
            measured = self.refresh(average=max(self.read_average, VERIFY_AVERAGE))
            self._track_stuck()
            errors = {k: (measured[k] - w) for k, w in weights.items()}
            off = {k: np.abs(e) * self.map_of(k).scale > threshold for k, e in errors.items()}
            n_off = int(sum(o.sum() for o in off.values()))
            if rnd == 0:
                report.failed_first = n_off
            if n_off == 0 or rnd == self.repair_rounds:
                break
            wanted, retargeted = self._repair(wanted, errors, off, report)
            report.retargeted += retargeted
            targets = self._targets(wanted)
            # every device again, not only the retargeted ones: programming some devices
            # moves the others' effective conductance (IR drop through shared lines), and
            # write-and-verify only pulses those that left their tolerance
            todo = [placement.used(a) & ~self._stuck(a) for a in range(len(self.boards))]
        if self.linearize:
            self.cubic = [self._estimate_cubic(a) for a in range(len(self.boards))]
        self.measure_baseline()
        report.unrepaired = [(k, int(m), int(i), float(errors[k][m, i])) for k, o in off.items()
                             for m, i in zip(*np.nonzero(o))]
        report.stuck_used = sum(int((placement.used(a) & self._stuck(a)).sum()) for a in range(len(self.boards)))
        self.report = report
        if report.unrepaired:
            log.info("crossbar: %d weights could not be repaired (worst error %.3g)", len(report.unrepaired),
                     max(abs(e) for *_, e in report.unrepaired))
        return measured

    def prepare(self, weights: Mapping[str, np.ndarray]) -> int:
        """Choose the weight maps (if "auto"), check the ranges, probe devices of unknown
        health and place the layers (if no placement was given); returns the number of
        devices probed. :meth:`program` calls it; in-situ updaters that program devices
        themselves call it first."""
        weights = {k: np.asarray(w, float) for k, w in weights.items()}
        if self._auto_map:
            self.weight_map = auto_scale(weights)
        for k, w in weights.items():
            self.map_of(k).check(w, k)
        probed = self._probe_unknown() if self.health is not None and self.probe else 0
        if self._auto_place:
            self.placement = place({k: w.shape for k, w in weights.items()}, [b.shape for b in self.boards],
                                   layout=self.layout, health=self.health, weights=weights,
                                   weight_map=self.weight_map)
        return probed

    def _probe_unknown(self) -> int:
        from ..health import save_health
        from ..programming import probe

        n = 0
        for a, (board, health) in enumerate(zip(self.boards, self.health)):
            unknown = ~health.known
            if unknown.any():
                probe(board, unknown, health)
                save_health(health)
                n += int(unknown.sum())
        return n

    def _track_stuck(self) -> None:
        """Stuck devices in use hold what they read now: their effective conductance moves
        with the rest of the array (IR drop through shared lines), and their partners are
        retargeted against it."""
        if self.health is None:
            return
        for a, (h, g) in enumerate(zip(self.health, self.conductances)):
            now = h.stuck & self.placement.used(a) & np.isfinite(g)
            h.g_stuck[now] = g[now]

    def _stuck(self, array: int) -> np.ndarray:
        if self.health is None:
            return np.zeros(self.boards[array].shape, bool)
        return self.health[array].stuck

    def _limits(self, array: int, wmap: WeightMap) -> tuple[np.ndarray, np.ndarray]:
        shape = self.boards[array].shape
        if self.health is None:
            return np.full(shape, wmap.g_floor), np.full(shape, wmap.g_ceiling)
        return self.health[array].limits(wmap.g_floor, wmap.g_ceiling)

    def _wanted(self, t: Tile, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        k, _, _ = t.row_pairs()
        w = weights[t.key][t.outputs[0]:t.outputs[1]].T[k] * self.map_of(t.key).scale
        w[t.inputs[1] - t.inputs[0]:] = 0.0
        return w

    def _targets(self, wanted: list[np.ndarray]) -> list[np.ndarray]:
        """Per-array target maps (NaN where unused) for the wanted pair differences."""
        maps = [np.full(b.shape, np.nan) for b in self.boards]
        for t, d in zip(self.placement.tiles, wanted):
            wmap = self.map_of(t.key)
            lo, hi = self._limits(t.array, wmap)
            _, rp, rm = t.row_pairs()
            ip, im = np.ix_(rp, t.cols_plus), np.ix_(rm, t.cols_minus)
            maps[t.array][ip], maps[t.array][im], _ = pair_targets(d, lo[ip], hi[ip], lo[im], hi[im], wmap.common(d))
        return maps

    def _repair(self, wanted: list[np.ndarray], errors: Mapping[str, np.ndarray], off: Mapping[str, np.ndarray],
                report: RepairReport) -> tuple[list[np.ndarray], int]:
        """New wanted differences for the pairs of weights that are off: the main pair
        aims at what it holds now minus the weight's error; what it cannot hold goes to
        a repair row pair of the same input (added to the placement on spare rows)."""
        placement = self.placement
        new = [d.copy() for d in wanted]
        retargeted = 0
        for i, t in enumerate(placement.tiles):
            wmap = self.map_of(t.key)
            k, rp, rm = t.row_pairs()
            n_main = t.inputs[1] - t.inputs[0]
            bad = off[t.key][t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]].T  # (K_t, M_t)
            if not bad.any():
                continue
            err = errors[t.key][t.outputs[0]:t.outputs[1], t.inputs[0]:t.inputs[1]].T * wmap.scale
            gp, gm = pair_conductances(t, self.conductances[t.array])
            held = gp - gm  # what every pair holds now (S)
            d = new[i]
            d[:n_main] = np.where(bad, held[:n_main] - err, d[:n_main])
            retargeted += int(bad.sum())
            lo, hi = self._limits(t.array, wmap)
            ip, im = np.ix_(rp[:n_main], t.cols_plus), np.ix_(rm[:n_main], t.cols_minus)
            _, _, res = pair_targets(d[:n_main], lo[ip], hi[ip], lo[im], hi[im], wmap.common(d[:n_main]))
            moved = bad & (np.abs(res) > 0.5 * self.repair_threshold)
            d[:n_main] -= np.where(moved, res, 0.0)
            for kk in np.flatnonzero(moved.any(axis=1)):
                rows = np.flatnonzero(k == t.inputs[0] + kk)[1:]  # its existing repair pairs
                if rows.size:
                    j = int(rows[0])
                    d[j] = np.where(moved[kk], held[j] + res[kk], d[j])
                    continue
                spare = self._spare_rows(t, 2 if t.differential_rows else 1)
                if spare is None:
                    continue  # no room: stays unrepaired
                t = t.with_repair(t.inputs[0] + kk, spare[0], spare[-1])
                placement.tiles[i] = t
                d = np.vstack([d, np.where(moved[kk], res[kk], 0.0)[None]])
                report.repair_rows += 1
            new[i] = d
        return new, retargeted

    def _spare_rows(self, t: Tile, n: int) -> np.ndarray | None:
        """The ``n`` rows outside the tile whose devices in its columns are healthiest."""
        a = t.array
        shape = self.boards[a].shape
        free = np.ones(shape[0], bool)
        free[t.rows()] = False
        cols = np.union1d(t.cols_plus, t.cols_minus)
        bad = self._stuck(a)[:, cols].sum(axis=1).astype(float)
        if self.health is not None:
            bad += 0.25 * (self.health[a].state[:, cols] >= 4).sum(axis=1)
        bad[self._stuck(a).all(axis=1)] = np.inf
        cand = np.flatnonzero(free & np.isfinite(bad))
        if cand.size < n:
            return None
        return cand[np.lexsort((cand, bad[cand]))[:n]]

    def _write(self, targets: list[np.ndarray], masks: list[np.ndarray]) -> None:
        """Program every array's masked targets; learn device health from the results."""
        from ..health import observe_result

        for a, (board, target, mask) in enumerate(zip(self.boards, targets, masks)):
            if not mask.any():
                continue
            result = self._program_one(board, np.where(mask, target, 0.0), mask)
            self.results.append(result)
            if self.health is not None and hasattr(result, "reasons"):
                observe_result(self.health[a], result)

    def _program_one(self, board: Board, target: np.ndarray, mask: np.ndarray) -> Any:
        if self.programmer is not None:
            return self.programmer(board, target, tolerance=self.tolerance, mask=mask)
        from dataclasses import replace

        from memhw.programming import DEFAULTS, program

        # a gate window wide enough for devices of low gain and for compensation targets
        config = replace(DEFAULTS["adaptive"], gate_max=min(HIGH_GATE, board.info.limits.v_gate))
        return program(board, target, tolerance=self.tolerance, mask=mask, config=config,
                       relax_delay=self.relax_delay)

    def refresh(self, average: int | None = None) -> dict[str, np.ndarray]:
        """Re-read every array's conductances; update the weights backpropagation uses.

        Only the block of rows the placement uses is read (``conductances`` holds NaN
        elsewhere), averaging ``average`` (default ``read_average``) samples per device.
        """
        average = self.read_average if average is None else int(average)
        self.conductances = []
        for a, b in enumerate(self.boards):
            # only the rows any tile uses (a read costs time per row); the rest stay NaN
            rows = np.flatnonzero(self.placement.used(a).any(axis=1))
            g = np.full(b.shape, np.nan)
            if rows.size:
                block = slice(int(rows[0]), int(rows[-1]) + 1)
                g[block] = b.read_conductance(v_read=self.v_read, average=average, rows=block)
            self.conductances.append(g)
        self._weights = to_weights(self.placement, self.conductances, self.weight_map)
        return {k: w.copy() for k, w in self._weights.items()}

    def repair_offset(self, t: Tile) -> np.ndarray:
        """(K_t, M_t) conductance difference the repair pairs of tile ``t`` add to its
        weights at the last read (S)."""
        k, _, _ = t.row_pairs()
        gp, gm = pair_conductances(t, self.conductances[t.array])
        n_main = t.inputs[1] - t.inputs[0]
        out = np.zeros((n_main, gp.shape[1]))
        np.add.at(out, k[n_main:] - t.inputs[0], (gp - gm)[n_main:])
        return out

    def _estimate_cubic(self, array: int) -> float:
        """The array's I–V nonlinearity ``I = G (V + c V³)`` from reads at ``v_read`` and
        ``v_read / 2`` of the devices in use (median over devices above 30 µS); 0 when it
        is below what the reads resolve (a 0.2 % effect at ``v_read``)."""
        board, v = self.boards[array], self.v_read
        used = self.placement.used(array) & ~self._stuck(array)
        rows = np.flatnonzero(used.any(axis=1))
        if rows.size == 0:  # a board the placement does not use
            return 0.0
        block = slice(int(rows[0]), int(rows[-1]) + 1)
        # one TIA gain for both reads (auto-ranging could switch gains between them, whose
        # calibrations differ slightly): the largest that keeps the largest current in range
        info = board.info
        full_scale = 0.8 * info.adc_lsb * 2 ** (info.adc_bits - 1)
        fits = [i for i, r in enumerate(info.tia_gains) if v * self._ceiling() * r < full_scale]
        gain = max(fits, key=lambda i: info.tia_gains[i]) if fits else "auto"
        g_full = board.read_conductance(v_read=v, average=VERIFY_AVERAGE, rows=block, gain=gain)
        g_half = board.read_conductance(v_read=v / 2, average=VERIFY_AVERAGE, rows=block, gain=gain)
        sel = used[block] & (g_full > 30e-6) & (g_half > 0)
        if sel.sum() < 20:
            return 0.0
        r = float(np.median(g_full[sel] / g_half[sel]))
        c = (r - 1.0) / (v * v * (1.0 - r / 4.0))
        return c if abs(c) * v * v > 2e-3 else 0.0

    def _ceiling(self) -> float:
        maps = [self.weight_map] if isinstance(self.weight_map, WeightMap) else list(self.weight_map.values())
        return max(m.g_ceiling for m in maps)

    def _drive(self, array: int, u: np.ndarray) -> np.ndarray:
        """Row voltages whose current is linear in ``u``: solve ``v + c v³ = u (1 + c v_read²)``
        (the read-back conductances are ``G (1 + c v_read²)``); ``u`` itself when c = 0."""
        c = self.cubic[array] if self.cubic else 0.0
        if c == 0.0:
            return u
        want = u * (1.0 + c * self.v_read**2)
        v = u.copy()
        for _ in range(4):  # Newton on a monotone cubic
            v -= (v + c * v**3 - want) / (1.0 + 3.0 * c * v**2)
        return np.clip(v, -self.boards[array].info.limits.v_read, self.boards[array].info.limits.v_read)

    def measure_baseline(self, samples: int = BASELINE_SAMPLES) -> list[np.ndarray]:
        """Column currents at zero input (averaged), subtracted from every product: what the
        rows' DAC offsets drive through the devices of a column (in a full-array VMM every
        row line is driven; a tile VMM grounds the rows outside the tile) and the TIA
        offsets. On boards that offer tiles (VMM_TILE) the tiles are defined here and each
        tile's own baseline measured. Called by :meth:`program`; call again after moving
        the boards."""
        self._network = None
        self.baseline = []
        for board in self.boards:
            zero = np.zeros((samples, board.shape[0]))
            self.baseline.append(board.vmm(zero).mean(axis=0))
        self.tile_ids, self.tile_baseline = self._define_tiles(), []
        for t, ident in zip(self.placement.tiles if self.tile_ids else (), self.tile_ids):
            pairs = len(t.row_pairs()[0])
            self.tile_baseline.append(self.boards[t.array].vmm_tile(ident, np.zeros((samples, pairs))).mean(axis=0))
        return self.baseline

    def _define_tiles(self) -> list[int]:
        """Define every tile of the placement on its board (ids 0.. per board); [] when a
        board does not offer tiles or holds more tiles than it keeps."""
        from firmware_protocol import SCHEMA

        from ..netspec import TileSpec

        tiles = self.placement.tiles
        per_board = [sum(t.array == a for t in tiles) for a in range(len(self.boards))]
        if not all(b.supports("DEFINE_TILE") and b.supports("VMM_TILE") for b in self.boards) \
                or max(per_board, default=0) > SCHEMA.max_tiles:
            return []
        ids, next_id = [], [0] * len(self.boards)
        for t in tiles:
            _, rows_plus, rows_minus = t.row_pairs()
            spec = TileSpec(rows=rows_plus, cols=t.cols_plus, neg_rows=rows_minus if t.differential_rows else (),
                            neg_cols=() if t.differential_rows else t.cols_minus)
            ident = next_id[t.array]
            next_id[t.array] += 1
            self.boards[t.array].define_tile(ident, spec)
            ids.append(ident)
        return ids

    def _vmm(self, array: int, v: np.ndarray) -> np.ndarray:
        """``board.vmm(v)`` minus the zero-input baseline, averaged over ``vmm_average``
        samples of every input."""
        board, n = self.boards[array], self.vmm_average
        i = board.vmm(v) if n == 1 else board.vmm(np.repeat(v, n, axis=0)).reshape(len(v), n, -1).mean(axis=1)
        return i - self.baseline[array] if self.baseline else i

    # ------------------------------------------------------------ Backend
    def weights(self, key: str) -> np.ndarray:
        """The weights measured at the last :meth:`program` / :meth:`refresh`."""
        return self._weights[key]

    def matmul(self, key: str, z: np.ndarray) -> np.ndarray:
        """``z @ W.T`` in the arrays: one product request per tile for all rows of ``z``
        (a tile VMM when the boards offer it, else a full-array VMM); the tiles of different
        boards run concurrently, each board's in turn."""
        if self.placement is None:
            raise RuntimeError("nothing placed yet: call program() first")
        z = np.atleast_2d(np.asarray(z, float))
        M, K = self.placement.layers[key]
        if z.shape[1] != K:
            raise ValueError(f"{key}: input has {z.shape[1]} features, the layer {K}")
        s = np.maximum(self.input_range, np.abs(z).max(axis=1, keepdims=True))
        u = self.v_read * z / s
        unit = self.v_read * self.map_of(key).scale
        tiles = [(i, t) for i, t in enumerate(self.placement.tiles) if t.key == key]
        by_board: dict[int, list] = {}
        for i, t in tiles:
            by_board.setdefault(t.array, []).append((i, t))

        def products(work: list) -> list[tuple[Any, np.ndarray]]:
            return [(t, self._tile_current(i, t, u)) for i, t in work]

        done = _per_board(products, by_board) if len(by_board) > 1 else products(next(iter(by_board.values()), []))
        y = np.zeros((len(z), M))
        for t, current in done:
            y[:, t.outputs[0]:t.outputs[1]] += current / unit
        return y * s

    def _tile_current(self, index: int, t: Tile, u: np.ndarray) -> np.ndarray:
        """The (n, M_t) output currents of tile ``t`` (placement index ``index``) for the
        scaled inputs ``u`` (n, K) of its layer, baseline removed."""
        k, rp, rm = t.row_pairs()
        drive = self._drive(t.array, u[:, k])
        if self.tile_ids:
            n = self.vmm_average
            v = drive if n == 1 else np.repeat(drive, n, axis=0)
            i = self.boards[t.array].vmm_tile(self.tile_ids[index], v)
            i = i if n == 1 else i.reshape(len(drive), n, -1).mean(axis=1)
            return self.tile_output(t, i - self.tile_baseline[index])
        v = np.zeros((len(u), self.boards[t.array].shape[0]))
        v[:, rp] = drive
        if t.differential_rows:
            v[:, rm] = -drive
        i = self._vmm(t.array, v)
        return i[:, t.cols_plus] if t.differential_rows else i[:, t.cols_plus] - i[:, t.cols_minus]

    @staticmethod
    def tile_output(t: Tile, i: np.ndarray) -> np.ndarray:
        """A tile VMM's currents (cols, then neg_cols) -> its (…, M_t) output currents."""
        m = t.cols_plus.size
        return i[..., :m] if t.differential_rows else i[..., :m] - i[..., m:]

    # ------------------------------------------------------------ on the board
    def run_model(self, model: Any, sequences: Sequence[np.ndarray],
                  progress: Callable[[int, int], None] | None = None) -> Any:
        """Run ``model`` over ``sequences`` on the board itself (LOAD_NETWORK, RUN_NETWORK):
        every time step there, only inputs and outputs on the wire. Returns the outputs
        (as :func:`memhw.nn.predict`), or None when the board path cannot reproduce this
        backend's products (the reason is logged at INFO; :attr:`on_board_reason`)."""
        from .onboard import OnBoardNetwork

        if self._network is None or self._network.model is not model:
            self._network = OnBoardNetwork.build(self, model)
        self.on_board_reason = self._network.reason or self._network.unsuited(sequences)
        if self.on_board_reason:
            log.info("crossbar: running %s on the host: %s", type(model).__name__, self.on_board_reason)
            return None
        return self._network.run(sequences, progress)
