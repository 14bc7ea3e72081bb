#!/usr/bin/env python3
"""Acceptance table of the two LSTM experiments: software vs crossbar, ex situ and in situ.

    python scripts/lstm_acceptance.py [--board "mock://?preset=paper&seed=1"] [--seed 0]
                                      [--jobs 2] [--only airline|gait] [--variants published,improved]
                                      [--out results/lstm-acceptance]

Each row is one call of :func:`memhw.apps.lstm.run` (each trains its own float software
reference with the same seed, so "software" and "crossbar" are the same network). Targets (issue text): airline test RMSE within 15 % of software ex situ and
30 % in situ; gait (synthetic) accuracy within 3 points ex situ and 6 points in situ.
The published in-situ variant is reported for comparison and is not expected to pass.
Runs are independent (each connects its own emulated board), so ``--jobs`` runs them on a
local Dask cluster of that many single-threaded processes. Writes ``<out>/acceptance.json`` and ``<out>/acceptance.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: (experiment, mode) -> (metric, limit): ratio <= limit (airline), difference <= limit (gait)
TARGETS = {
    ("airline", "exsitu"): ("ratio", 1.15), ("airline", "insitu"): ("ratio", 1.30),
    ("gait", "exsitu"): ("difference", 3.0), ("gait", "insitu"): ("difference", 6.0),
}


def run_one(job: tuple[str, str, str, str, int, str | None]) -> dict:
    experiment, mode, variant, board, seed, out = job
    from memhw.apps.lstm import run

    kwargs = {"variant": variant} if mode == "insitu" else {}
    folder = None if out is None else Path(out) / f"{experiment}_{mode}_{variant}"
    t0 = time.perf_counter()
    m = run(experiment, board, mode=mode, seed=seed, out=folder, progress=False, **kwargs).metrics
    m["wall_time"] = time.perf_counter() - t0
    m["variant_name"] = variant
    return m


def row(m: dict) -> dict:
    metric, limit = TARGETS[(m["experiment"], m["mode"])]
    if m["experiment"] == "airline":
        sw, hw = f"{m['software_rmse']:.4f}", f"{m['crossbar_rmse']:.4f}"
        value = f"{m['ratio']:.2f}x (<= {limit:.2f}x)"
    else:
        sw, hw = f"{100 * m['software_accuracy']:.1f} %", f"{100 * m['crossbar_accuracy']:.1f} %"
        value = f"{m['difference']:+.1f} pt (<= {limit:.0f} pt)"
    ok = m[metric] <= limit
    return {"experiment": m["experiment"], "mode": m["mode"], "variant": m["variant_name"], "software": sw,
            "crossbar": hw, "vs software": value, "pass": "yes" if ok else "no",
            "pulses": str(m.get("pulses", "-")), "time (s)": f"{m['wall_time']:.0f}"}


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = [" | ".join(c.ljust(width[c]) for c in cols), "-|-".join("-" * width[c] for c in cols)]
    lines += [" | ".join(r[c].ljust(width[c]) for c in cols) for r in rows]
    return "\n".join("| " + line + " |" for line in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="mock://?preset=paper&seed=1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", choices=("airline", "gait"))
    ap.add_argument("--variants", default="published,improved",
                    help="in-situ variants, comma-separated (published, thresholded, improved)")
    ap.add_argument("--out", default="results/lstm-acceptance")
    args = ap.parse_args()
    experiments_ = ("airline", "gait") if args.only is None else (args.only,)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    jobs = [(e, "exsitu", "-", args.board, args.seed, args.out) for e in experiments_]
    jobs += [(e, "insitu", v, args.board, args.seed, args.out) for e in experiments_ for v in variants]
    # longest first (in-situ airline), so parallel workers finish together
    jobs.sort(key=lambda j: (j[1] != "insitu", j[0] != "airline"))
    from memhw.apps.population import dask_client

    with dask_client(workers=max(1, args.jobs)) as client:
        results = client.gather(client.map(run_one, jobs, pure=False))
    order = {(e, m, v): i for i, (e, m, v, *_rest) in enumerate(
        sorted(jobs, key=lambda j: (j[0], j[1] != "exsitu", j[2])))}
    results.sort(key=lambda m: order[(m["experiment"], m["mode"], m["variant_name"])])
    text = table([row(m) for m in results])
    head = f"board {args.board}, model seed {args.seed}"
    print(head)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "acceptance.md").write_text(head + "\n\n" + text + "\n")
    (out / "acceptance.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out}/acceptance.md and acceptance.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
