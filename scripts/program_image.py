#!/usr/bin/env python3
"""Store a picture in the array as conductances and read it back.

As in Li et al. (Nat. Commun. 2018), where a 128×64 array held a grey-scale
image: each pixel becomes a target conductance in a range, write-and-verify
programs the whole array, and a conductance read shows the stored picture.

    python scripts/program_image.py [IMAGE] [--board mock://] [--out image-out]

Without IMAGE it uses matplotlib's sample portrait of Grace Hopper.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import memhw
from memhw.targets import load_targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", nargs="?", help="picture file (default: matplotlib's grace_hopper.jpg)")
    ap.add_argument("--board", default="mock://", help="board address (default %(default)s)")
    ap.add_argument("--range", default="20:200", help="conductance range in µS for black:white (default %(default)s)")
    ap.add_argument("--tolerance", type=float, default=2.0, help="tolerance in µS (default %(default)s)")
    ap.add_argument("--out", type=Path, default=Path("image-out"), help="folder for the figure and session file")
    args = ap.parse_args()
    if args.image is None:
        from matplotlib import cbook

        args.image = str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    lo, hi = (float(x) * 1e-6 for x in args.range.split(":"))
    args.out.mkdir(parents=True, exist_ok=True)
    with memhw.connect(args.board) as board, memhw.Session(args.out / "image.h5") as session:
        session.attach(board)
        targets = load_targets(args.image, board.shape, (lo, hi))
        result = memhw.program(board, targets, tolerance=args.tolerance * 1e-6, progress=True, session=session)
        print(result)
        readback = board.read_conductance(average=16)
    _figure(targets, readback, args.out / "image.png")
    print(f"wrote {args.out / 'image.png'} and {args.out / 'image.h5'}")


def _figure(targets: np.ndarray, readback: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(10, 7), constrained_layout=True)
    vmin, vmax = targets.min() * 1e6, targets.max() * 1e6
    for a, data, title in ((ax[0], targets, "target (µS)"), (ax[1], readback, "read back (µS)")):
        im = a.imshow(data * 1e6, cmap="gray", vmin=vmin, vmax=vmax)
        a.set_title(title)
        fig.colorbar(im, ax=a, shrink=0.6)
    im = ax[2].imshow((readback - targets) * 1e6, cmap="coolwarm", vmin=-5, vmax=5)
    ax[2].set_title("difference (µS)")
    fig.colorbar(im, ax=ax[2], shrink=0.6)
    for a in ax:
        a.set_xlabel("column")
        a.set_ylabel("row")
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
