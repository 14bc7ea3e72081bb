"""Physics of the mock 128 x 64 1T1R memristor array (DOMAIN.md §2).

The chip holds the *programmed* conductance of every device plus fixed per-device
properties drawn once from the generator it is given (device-to-device compliance factor,
stuck/unformed/RTN devices, relaxation direction).  Everything is vectorised numpy: a
programming pulse acts on one row (all columns at once), a read on all rows and columns.

Conventions (DOMAIN §1):

* ``set_row(row, v, gate, width)`` -- SET: ``v[j]`` volts on column ``j`` with the row
  grounded, column ``j``'s gate at ``gate[j]``; ``v[j] == 0`` means "not pulsed".
* ``reset_row(row, v, gate, width)`` -- RESET: ``v[j]`` volts on the row (positive) with
  column ``j`` grounded, gate ``gate[j]`` (5 V = fully on).
* ``currents(v_rows, v_cols, gates)`` -- DC read: current flowing from the array into each
  column (positive for a row above its column), every column held at ``v_cols[j]`` by its
  TIA.  ``I = G_eff^T V`` plus read noise, random telegraph noise and the optional cubic
  term.

See docs/mock.md for the equations.
"""

from __future__ import annotations

import numpy as np

from .params import ChipParams

__all__ = ["Chip", "effective_conductance", "gate_factor", "compliance_conductance"]


# --------------------------------------------------------------------------- helpers


def gate_factor(gate: np.ndarray | float, p: ChipParams) -> np.ndarray:
    """Transistor conduction factor in [0, 1]: 0 at/below ``transistor_vth``, 1 at/above
    ``gate_full_on``, smoothstep in between (choice)."""
    x = (np.asarray(gate, dtype=float) - p.transistor_vth) / (p.gate_full_on - p.transistor_vth)
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def compliance_conductance(gate: np.ndarray | float, p: ChipParams, k: np.ndarray | float = 1.0) -> np.ndarray:
    """Conductance reached by a complete SET at gate voltage ``gate``: ``min(k * f(Vg), g_max)``
    with the device factor ``k`` (1 = nominal device) and

    ``f(Vg) = (set_slope*Vg + set_intercept) * (1 - exp(-((Vg - vth)/knee)^2))`` for
    ``Vg > vth``, else 0.  In the 0.7-1.6 V window ``f`` is within 2 % of the published
    linear law (DOMAIN §1)."""
    vg = np.asarray(gate, dtype=float)
    lin = p.set_slope * vg + p.set_intercept
    d = np.maximum(vg - p.transistor_vth, 0.0) / p.set_gate_knee
    f = lin * (1.0 - np.exp(-d * d))
    return np.clip(k * f, 0.0, p.g_max)


def effective_conductance(G: np.ndarray, wire_resistance: float) -> np.ndarray:
    """Exact effective conductance matrix of the crossbar with wire resistance.

    Network: row wire ``i`` is driven at its column-0 end, with one wire segment between
    the driver and cell (i, 0) and one between neighbouring cells (i, j)-(i, j+1); column
    wire ``j`` goes to its TIA (virtual ground) at its row-0 end, one segment between the
    TIA and cell (0, j) and one between (i, j)-(i+1, j).  Device ``G[i, j]`` connects row
    node (i, j) to column node (i, j).

    Returns ``Ge`` with ``I_col = Ge.T @ V_rows`` exactly for this linear network when the
    rows are driven with ``V_rows`` and every column sits at virtual ground.  ``Ge[i, j]``
    is the current into TIA ``j`` per volt on row ``i`` with the other rows at 0 V.

    Method: the row-wire nodes of each array row are eliminated (batched dense inverse of
    ``cols x cols`` tridiagonal-plus-diagonal blocks); what remains on the column nodes is
    block tridiagonal (one ``cols x cols`` block per array row, coupled by the column-wire
    segments) and is solved by block Gaussian elimination from the far end towards the
    TIAs, with the right-hand sides being unit currents at the TIA nodes (reciprocity:
    the network matrix is symmetric).  ``wire_resistance == 0`` returns ``G`` itself.
    """
    G = np.asarray(G, dtype=float)
    if wire_resistance == 0:
        return G.copy()
    R, C = G.shape
    gw = 1.0 / wire_resistance
    g2 = gw * gw
    idx = np.arange(C)
    # Row-wire Laplacian (C x C): node 0 has the driver segment + a neighbour, the last
    # node only its neighbour (a single node only the driver segment).
    T = np.zeros((C, C))
    T[idx, idx] = 2.0 * gw
    T[C - 1, C - 1] = gw
    T[idx[:-1], idx[1:]] = -gw
    T[idx[1:], idx[:-1]] = -gw
    # Per array row: W_i = (T + diag(G_i))^-1 (batched).
    W = np.empty((R, C, C))
    W[:] = T
    W[:, idx, idx] += G
    W = np.linalg.inv(W)
    # p_i = row 0 of W_i D_i: row-node (i, 0) voltage per unit column-node voltages.
    p = W[:, 0, :] * G  # (R, C)
    # Schur complement on the column nodes of array row i: M_i = D_i - D_i W_i D_i
    # (computed in place in W).
    W *= G[:, None, :]
    W *= -G[:, :, None]
    W[:, idx, idx] += G
    M = W
    # Column nodes: block tridiagonal, diagonal blocks M_i + deg_i * gw * I (deg = 2, the
    # far block i = R-1 has 1; a single block only the TIA segment), off-diagonal -gw * I.
    # Block elimination from the far end (i = R-1) towards the TIAs (i = 0).
    S_inv = np.empty((R, C, C))
    S = M[R - 1]
    S[idx, idx] += gw
    S_inv[R - 1] = np.linalg.inv(S)
    for i in range(R - 2, -1, -1):
        S = M[i]
        S -= g2 * S_inv[i + 1]
        S[idx, idx] += 2.0 * gw
        S_inv[i] = np.linalg.inv(S)
    # Right-hand sides: unit current injected at each TIA node (C of them) = identity in
    # block 0, zero elsewhere.  Back substitution: y_0 = S_0^-1, y_i = gw S_i^-1 y_{i-1}.
    Y = S_inv  # overwritten in place, block by block
    for i in range(1, R):
        Y[i] = gw * (S_inv[i] @ Y[i - 1])
    # Voltage of row node (i, 0) for each RHS; Ge[i, j] = gw^2 * that (reciprocity).
    Ge = g2 * np.einsum("ic,icj->ij", p, Y)
    return Ge


def _as_row_array(x, n: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {a.shape}")
    return a


# --------------------------------------------------------------------------- chip


class Chip:
    """A seeded mock 1T1R crossbar.  See the module docstring and docs/mock.md."""

    def __init__(self, params: ChipParams, rng: np.random.Generator):
        if not isinstance(params, ChipParams):
            raise TypeError("params must be a ChipParams (e.g. make_params(...).chip, see memhw.mock.params)")
        self.params = p = params
        self.rng = rng
        R, C = self.shape = (p.rows, p.cols)
        self.time = 0.0

        # -- fixed per-device properties (drawn once, always in the same order) --------
        self.k = np.maximum(1.0 + p.device_spread * rng.standard_normal((R, C)), 0.1)
        g0 = p.g_min * np.exp(p.initial_spread * rng.standard_normal((R, C)))
        u_stuck = rng.random((R, C))
        stuck_kind = rng.integers(0, 3, size=(R, C))
        stuck_rand = rng.uniform(p.g_min, p.g_max, size=(R, C))
        u_unformed = rng.random((R, C))
        u_rtn = rng.random((R, C))

        self.stuck = u_stuck < p.stuck_fraction
        stuck_val = np.choose(stuck_kind, [np.full((R, C), p.g_min), np.full((R, C), p.g_max), stuck_rand])
        # Open (bad) lines: every device on them reads 0 and ignores writes.
        self.bad_line = np.zeros((R, C), dtype=bool)
        if p.bad_rows:
            self.bad_line[list(p.bad_rows), :] = True
        if p.bad_cols:
            self.bad_line[:, list(p.bad_cols)] = True
        stuck_val[self.bad_line] = 0.0
        self.stuck |= self.bad_line
        self.unformed = (u_unformed < p.unformed_fraction) & ~self.stuck
        self.broken = np.zeros((R, C), dtype=bool)
        self._frozen = self.stuck | self.unformed  # | broken: devices that do not relax

        # -- programmed state --------------------------------------------------------------
        self._g_prog = g0
        self._g_prog[self.unformed] = p.unformed_conductance
        self._g_prog[self.stuck] = stuck_val[self.stuck]
        self._t_write = np.zeros((R, C))
        self._z = rng.standard_normal((R, C))  # relaxation direction of each device
        self._relaxes = (p.relax_mean_coeff != 0 or p.relax_std_coeff != 0 or p.relax_std_offset != 0)

        # -- random telegraph noise devices -------------------------------------------------
        rtn = (u_rtn < p.telegraph_fraction) & ~self.stuck & (p.telegraph_amplitude > 0)
        self._rtn_r, self._rtn_c = np.nonzero(rtn)
        self._rtn_onehot = np.zeros((self._rtn_r.size, C))
        self._rtn_onehot[np.arange(self._rtn_r.size), self._rtn_c] = 1.0

        # -- caches ----------------------------------------------------------------------
        self._version = 0  # bumped by every write that changed the programmed state
        self._G_cache: tuple[tuple[int, float], np.ndarray] | None = None
        self._Geff_cache: tuple[int, np.ndarray, np.ndarray] | None = None  # (version, G at solve, Geff)
        self._Geff_now: tuple[tuple[int, float], np.ndarray] | None = None
        self.n_solves = 0  # number of exact network solves done (for tests/benchmarks)

    # ------------------------------------------------------------------ state

    def _relaxation(self, dt: np.ndarray, z: np.ndarray) -> np.ndarray:
        p = self.params
        lt = np.log1p(dt)  # dt in s; ln(1 + t / 1 s)
        onset = -np.expm1(-dt / p.relax_onset) if p.relax_onset > 0 else 1.0
        return p.relax_mean_coeff * lt + z * (p.relax_std_coeff * lt + p.relax_std_offset * onset)

    def _current_g(self, rows=slice(None)) -> np.ndarray:
        g = self._g_prog[rows]
        if not self._relaxes:
            return g.copy()
        d = self._relaxation(self.time - self._t_write[rows], self._z[rows])
        d[self._frozen[rows]] = 0.0
        return np.maximum(g + d, 0.0)

    @property
    def G(self) -> np.ndarray:
        """True conductance now (S, shape (rows, cols)), relaxation included. Read-only."""
        key = (self._version, self.time)
        if self._G_cache is None or self._G_cache[0] != key:
            g = self._current_g()
            g.setflags(write=False)
            self._G_cache = (key, g)
        return self._G_cache[1]

    @property
    def G_programmed(self) -> np.ndarray:
        """Conductance right after the last write of each device (no relaxation). Read-only."""
        v = self._g_prog.view()
        v.setflags(write=False)
        return v

    @property
    def last_write_time(self) -> np.ndarray:
        v = self._t_write.view()
        v.setflags(write=False)
        return v

    def advance(self, dt: float) -> None:
        """Advance the virtual clock by ``dt`` seconds (>= 0)."""
        dt = float(dt)
        if not dt >= 0:
            raise ValueError(f"dt must be >= 0, got {dt}")
        self.time += dt

    # ------------------------------------------------------------------ programming

    def _prepare(self, row: int, v, gate, width):
        R, C = self.shape
        row = int(row)
        if not 0 <= row < R:
            raise IndexError(f"row {row} outside 0..{R - 1}")
        v = _as_row_array(v, C, "v")
        gate = _as_row_array(gate, C, "gate")
        width = _as_row_array(width, C, "width")
        if not (width >= 0).all() or not np.isfinite(v + gate + width).all():
            raise ValueError("v, gate and width must be finite, width >= 0")
        return row, v, gate, width

    def _commit(self, row: int, cols: np.ndarray, g_new: np.ndarray, g_old: np.ndarray | None = None) -> None:
        """Store new programmed values for devices ``cols`` of ``row`` and restart their
        relaxation clock.  With ``g_old`` given, devices whose value did not change are
        left alone (no clock restart, no new G_eff solve)."""
        if g_old is not None:
            changed = g_new != g_old
            if not changed.all():
                cols, g_new = cols[changed], g_new[changed]
        if cols.size == 0:
            return
        self._g_prog[row, cols] = g_new
        self._t_write[row, cols] = self.time
        self._z[row, cols] = self.rng.standard_normal(cols.size)
        self._version += 1

    def _breakdown(self, row: int, v: np.ndarray) -> np.ndarray:
        """Destroy devices whose pulse exceeds v_abs_max; returns the mask of still-usable devices."""
        p = self.params
        over = (np.abs(v) > p.v_abs_max) & ~self.bad_line[row]
        if over.any():
            cols = np.nonzero(over)[0]
            self.broken[row, cols] = True
            self.stuck[row, cols] = False
            self.unformed[row, cols] = False
            self._frozen[row, cols] = True
            self._commit(row, cols, np.full(cols.size, p.broken_conductance))
        return ~(self.stuck[row] | self.broken[row])

    def set_row(self, row: int, v, gate, width) -> None:
        """SET pulse on one row (see module docstring). Never lowers any conductance."""
        p = self.params
        row, v, gate, width = self._prepare(row, v, gate, width)
        pulsed = v != 0
        if not pulsed.any():
            return
        usable = self._breakdown(row, v) & pulsed
        # Electroforming: the first pulse at >= forming_voltage forms the device (and SETs it).
        unformed = self.unformed[row]
        if unformed.any():
            forming = usable & unformed & (v >= p.forming_voltage)
            self.unformed[row, forming] = False
            self._frozen[row, forming] = self.stuck[row, forming]
            usable &= ~self.unformed[row]
        active = usable & (v >= p.set_threshold)
        cols = np.nonzero(active)[0]
        if cols.size == 0:
            return
        va, wa = v[cols], width[cols]
        g_old = self._current_g((row, cols))
        g_cc = compliance_conductance(gate[cols], p, self.k[row, cols])
        # Switching kinetics: fraction of the way to the compliance level.
        x = (wa / p.set_tau) * np.exp((va - p.set_v_ref) / p.set_v_scale)
        if p.set_kinetics_spread > 0:
            x = x * np.exp(p.set_kinetics_spread * self.rng.standard_normal(cols.size))
        e = -np.expm1(-x)
        target = np.maximum(g_old, g_cc)
        g_new = g_old + e * (target - g_old)
        if p.write_noise > 0:
            g_new = g_new + (p.write_noise * e) * self.rng.standard_normal(cols.size)
        # SET never lowers G; it never exceeds g_max (unless the device was already above).
        g_new = np.maximum(np.minimum(g_new, np.maximum(p.g_max, g_old)), g_old)
        self._commit(row, cols, g_new, g_old)

    def reset_row(self, row: int, v, gate, width) -> None:
        """RESET pulse on one row (see module docstring). Never raises any conductance."""
        p = self.params
        row, v, gate, width = self._prepare(row, v, gate, width)
        pulsed = v != 0
        if not pulsed.any():
            return
        usable = self._breakdown(row, v) & pulsed & ~self.unformed[row]
        v_eff = v * gate_factor(gate, p)
        active = usable & (v_eff >= p.reset_threshold)
        cols = np.nonzero(active)[0]
        if cols.size == 0:
            return
        ve, wa = v_eff[cols], width[cols]
        g_old = self._current_g((row, cols))
        x = (wa / p.reset_tau) * np.exp((ve - p.reset_v_ref) / p.reset_v_scale)
        phi = -np.expm1(-x)
        floor = np.minimum(p.g_min, g_old)
        g_new = g_old - phi * (g_old - floor)
        if p.write_noise > 0:
            sigma = p.write_noise * (p.reset_noise_fraction + (1.0 - p.reset_noise_fraction) * phi)
            g_new = g_new + sigma * self.rng.standard_normal(cols.size)
        g_new = np.minimum(np.maximum(g_new, floor), g_old)
        self._commit(row, cols, g_new, g_old)

    # ------------------------------------------------------------------ reading

    def g_eff(self) -> np.ndarray:
        """Effective conductance matrix (rows, cols) including wire resistance. Read-only.

        The exact network solve (:func:`effective_conductance`) is redone after a write
        changed the programmed state, or when relaxation since the last solve exceeds
        ``ir_resolve_tolerance`` on some device; smaller relaxation is added to the cached
        solution scaled by ``Ge/G`` elementwise (first order).  With zero wire resistance
        ``G_eff`` is ``G`` itself, exactly."""
        p = self.params
        G = self.G
        if p.wire_resistance == 0:
            return G
        key = (self._version, self.time)
        if self._Geff_now is not None and self._Geff_now[0] == key:
            return self._Geff_now[1]
        out = None
        if self._Geff_cache is not None and self._Geff_cache[0] == self._version:
            _, G0, Ge0 = self._Geff_cache
            if G0 is G:
                out = Ge0
            else:
                dG = G - G0
                if np.abs(dG).max() <= p.ir_resolve_tolerance:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio = np.where(G0 > 0, Ge0 / G0, 1.0)
                    out = Ge0 + ratio * dG
        if out is None:
            out = effective_conductance(G, p.wire_resistance)
            self.n_solves += 1
            self._Geff_cache = (self._version, G, out)
        out = out.view()
        out.setflags(write=False)
        self._Geff_now = (key, out)
        return out

    def currents(self, v_rows, v_cols=None, gates=None) -> np.ndarray:
        """Analog column currents (A) for row voltages ``v_rows`` (n, rows) or (rows,).

        ``v_cols`` (cols,) is each column's DC level held by its TIA (default 0 V);
        ``gates`` (cols,) the gate voltages (default: fully on).  Returns (n, cols) (or
        (cols,) for 1-D input): current flowing from the array into each column.

        ``I_j = gate_j * [sum_i Ge_ij (u_ij + c u_ij^3) + read noise + RTN]`` with
        ``u_ij = v_i - v_col_j``.  Read noise (relative sigma ``read_noise`` of every
        device, fresh on every call and sample) is summed exactly in distribution:
        ``sigma_j^2 = read_noise^2 * sum_i Ge_ij^2 u_ij^2``.  With wire resistance and
        non-uniform ``v_cols`` the column-level term uses ``Ge`` too (approximation).
        """
        p = self.params
        R, C = self.shape
        V = np.asarray(v_rows, dtype=float)
        one_d = V.ndim == 1
        V = np.atleast_2d(V)
        if V.ndim != 2 or V.shape[1] != R:
            raise ValueError(f"v_rows must have shape (n, {R}) or ({R},), got {np.shape(v_rows)}")
        Ge = self.g_eff()
        u = None
        if v_cols is not None:
            u = _as_row_array(v_cols, C, "v_cols")
            if not np.any(u):
                u = None
        c = p.cubic_coeff
        if u is None:
            # sum_i Ge_ij (v_i + c v_i^3) = (V + c V^3) @ Ge
            I = (V + c * (V * V * V)) @ Ge if c != 0 else V @ Ge
        else:
            S1 = Ge.sum(axis=0)
            VG = V @ Ge
            I = VG - u * S1
            if c != 0:
                # sum_i Ge_ij (v_i - u_j)^3, expanded so that it stays a matrix product
                V2 = V * V
                cub = (V2 * V) @ Ge - 3.0 * u * (V2 @ Ge) + 3.0 * u * u * VG - u * u * u * S1
                I += c * cub
        rng = self.rng
        if p.read_noise > 0:
            G2 = Ge * Ge
            var = (V * V) @ G2
            if u is not None:
                var -= 2.0 * u * (V @ G2)
                var += u * u * G2.sum(axis=0)
            I += p.read_noise * np.sqrt(np.maximum(var, 0.0)) * rng.standard_normal(I.shape)
        K = self._rtn_r.size
        if K:
            # Two-level RTN: device k adds (state - 1/2) * amp_k * u_k with a fresh random
            # bit per device and sample.  Written as (X * bits) @ A - 1/2 * X @ A so that
            # only one (n, K) float temporary is needed.
            amp = p.telegraph_amplitude * Ge[self._rtn_r, self._rtn_c]  # (K,)
            A = self._rtn_onehot * amp[:, None]  # (K, cols)
            X = V.take(self._rtn_r, axis=1)  # (n, K) device voltages
            if u is not None:
                X -= u[self._rtn_c]
            n = X.size
            bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)
            half = 0.5 * (X @ A)
            X *= bits.reshape(X.shape)
            I += X @ A
            I -= half
        if gates is not None:
            gf = gate_factor(_as_row_array(gates, C, "gates"), p)
            I *= gf
        return I[0] if one_d else I
