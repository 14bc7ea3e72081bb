"""Benchmark: pulses per device when programming with vs without the gate -> conductance prior.

    python scripts/bench_calibration.py [--seeds 0 1 2]

``bench_prior(seed)`` is called by scripts/bench.py. Both runs program the same targets
on two fresh emulated boards of the same seed (identical chips), one with
``prior=gate_sweep(...)`` measured on that board first, one without.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import memhw
from memhw.calibration.sweeps import gate_sweep

TOLERANCE = 2e-6
ROWS = slice(0, 32)  # programmed block; the gate sweep uses the lower half of the array


def _targets(board: memhw.Board, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    targets = np.zeros(board.shape)
    mask = np.zeros(board.shape, bool)
    mask[ROWS] = True
    targets[mask] = rng.uniform(20e-6, 250e-6, int(mask.sum()))
    return targets, mask


def bench_prior(seed: int, algorithms: tuple[str, ...] = ("adaptive", "baseline")) -> dict:
    """Program the same targets (rows 0-31, 20-250 uS, tolerance 2 uS) on ``mock://?seed=seed``
    with and without the gate prior, for each algorithm; returns pulses per device,
    convergence and times."""
    out: dict = {"seed": seed, "tolerance": TOLERANCE, "devices": None}
    for algorithm in algorithms:
        res_alg: dict = {}
        for label in ("without_prior", "with_prior"):
            with memhw.connect(f"mock://?seed={seed}") as board:
                t0 = time.perf_counter()
                prior = None
                if label == "with_prior":
                    prior = gate_sweep(board, gates=np.arange(0.5, 1.81, 0.1))
                    out["prior_slope_uS_per_V"] = round(prior.fit()[0] * 1e6, 2)
                t1 = time.perf_counter()
                targets, mask = _targets(board, seed)
                res = memhw.program(board, targets, tolerance=TOLERANCE, mask=mask, prior=prior,
                                    algorithm=algorithm)
                t2 = time.perf_counter()
                pulses = res.pulses[mask]
                out["devices"] = int(mask.sum())
                res_alg[label] = {
                    "pulses_per_device": float(pulses.mean()),
                    "median_pulses": float(np.median(pulses)),
                    "converged": float(np.mean(res.converged[mask])),
                    "sweep_s": round(t1 - t0, 2),
                    "program_s": round(t2 - t1, 2),
                }
        w, wo = res_alg["with_prior"]["pulses_per_device"], res_alg["without_prior"]["pulses_per_device"]
        res_alg["pulse_ratio_with_over_without"] = round(w / wo, 3) if wo else float("nan")
        out[algorithm] = res_alg
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    for s in args.seeds:
        print(json.dumps(bench_prior(s), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
