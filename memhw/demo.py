"""``memhw demo``: the whole session on a board (by default the built-in emulator).

1. connect (the board's calibration file is applied automatically) and calibrate
   the board again against its on-board references;
2. characterise the chip: gate voltage -> conductance;
3. store a picture in the array by write-and-verify and read it back;
4. train an LSTM on the airline series in software, program its weights into the
   array and predict with every matrix product done by the crossbar;
5. write everything to one session file, draw a figure of every step (``report/``) and
   write ``report.md``: what was done, the results, the session file's report and the figures.
"""

from __future__ import annotations

import time
from pathlib import Path


from .calibration.text import summary_lines
from .connection import connect
from .info import calibration_text
from .progress import progress as progress_bar
from .report import record_metrics, report
from .session import Session
from .targets import load_targets
from .units import US

#: picture conductance range (black:white), S; inside the whole-array range of tests/programming
IMAGE_RANGE = (20e-6, 200e-6)


def _step(title: str) -> float:
    print(f"\n== {title}")
    return time.perf_counter()


def run_demo(address: str = "mock://", out: str | Path = "demo-out", lstm_epochs: int | None = None,
             command: str | None = None) -> int:
    """Run the demonstration session; returns a process exit code.

    Parameters
    ----------
    address : str
        Board address.
    out : str or Path
        Folder for the session file and figures.
    lstm_epochs : int, optional
        Training epochs of the airline LSTM (default: the experiment's own).
    command : str, optional
        The command line recorded in the session file (default: this process's).
    """
    from matplotlib import cbook

    from .calibration import calibrate_board
    from .calibration.board import record_calibration
    from .calibration.sweeps import gate_sweep
    from .apps.lstm import airline
    from .programming import program

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    summary: list[tuple[str, str]] = []
    with connect(address) as board, Session(out / "session.h5", command=command) as session:
        session.attach(board)
        info = board.info
        print(f"connected: {info.serial}, firmware {info.firmware!r}, protocol {info.protocol[0]}.{info.protocol[1]}, "
              f"{info.rows}x{info.cols} array at {address}")
        cal = board.calibration
        print(f"calibration applied on connect: {calibration_text(cal)}")

        t = _step("1. board self-calibration against the on-board reference resistors")
        fresh = calibrate_board(board)
        record_calibration(session, fresh)
        problems = fresh.problems()
        for line in summary_lines(fresh.summary()):
            print(f"   {line}")
        print(f"   {'within bounds' if not problems else '; '.join(problems)} ({time.perf_counter() - t:.1f} s)")
        fit = fresh.summary()
        summary.append(("calibration", f"TIA gain error ≤ {fit['tia_gain_dev_max']:.2%}, fit residual median "
                        f"{fit['tia_residual_median']:.3%}; {'within bounds' if not problems else 'OUT OF BOUNDS'}"))

        t = _step("2. chip characterisation: gate voltage -> conductance")
        with progress_bar(None, "gate sweep", unit="gates") as bar:
            curve = gate_sweep(board, session=session, progress=bar.callback)
        slope, icpt = curve.fit()
        line = f"{slope * 1e6:.1f} {US}/V × Vg + {icpt * 1e6:.0f} {US} over 0.7–1.6 V"
        print(f"   {line} ({time.perf_counter() - t:.1f} s)")
        summary.append(("gate curve", line))

        t = _step("3. a picture stored in the array by write-and-verify")
        picture = str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        targets = load_targets(picture, board.shape, IMAGE_RANGE)
        result = program(board, targets, tolerance=2e-6, progress=True, session=session, prior=curve)
        print(f"   {result} ")
        fig = result.plot(out / "picture.png", context=f"board {info.serial}: a picture (grey levels mapped to "
                                                        f"{IMAGE_RANGE[0] * 1e6:.0f}–{IMAGE_RANGE[1] * 1e6:.0f} {US})")
        print(f"   saved {fig}")
        ps = result.summary()
        summary.append(("picture", f"{ps['converged_of_responsive']:.2%} of responsive devices within ±2 {US}, "
                        f"{ps['pulses_median']:.0f} pulses/device median, {ps['wall_time']:.1f} s"))

        t = _step("4. LSTM airline passengers: trained in software, run on the crossbar")
        kwargs = {} if lstm_epochs is None else {"epochs": lstm_epochs}
        metrics = airline(board, mode="exsitu", seed=0, out=out, **kwargs)
        record_metrics(session, "lstm", metrics)
        line = (f"test RMSE software {metrics['software_rmse_passengers']:.1f}k, crossbar "
                f"{metrics['crossbar_rmse_passengers']:.1f}k passengers (ratio {metrics['ratio']:.2f})")
        print(f"   {line} ({time.perf_counter() - t:.1f} s); figure {out / 'airline_exsitu.png'}")
        summary.append(("airline LSTM", line))

        s = board.link.stats
        summary.append(("link", f"{s.requests} requests, {s.retries} retries, {s.bytes_total / 1e6:.1f} MB "
                        f"({s.bytes_total / max(s.payload_total, 1):.3f}x payload)"))
    text, figures = report(out / "session.h5", out / "report")
    print("\n== 5. session file")
    print(text)
    print("\n== summary")
    for k, v in summary:
        print(f"   {k:>14}: {v}")
    written = _write_report(out, info.serial, address, command, summary, text, sorted(out.glob("*.png")) + figures)
    print(f"\ndone in {time.perf_counter() - t_start:.0f} s; files in {out}/ (start with {written})")
    return 0


def _write_report(out: Path, serial: str, address: str, command: str | None, summary: list[tuple[str, str]],
                  text: str, figures: list[Path]) -> Path:
    """``report.md``: the demo's results, the session file's report and its figures."""
    import datetime as dt

    rows = "\n".join(f"| {k} | {v} |" for k, v in summary)
    pictures = "\n\n".join(f"![{f.stem}]({f.relative_to(out).as_posix()})" for f in figures if f.is_file())
    path = out / "report.md"
    path.write_text(f"# memhw demo: board {serial} at {address}\n\n"
                    f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; `{command or 'memhw demo'}`\n\n"
                    f"| step | result |\n|---|---|\n{rows}\n\n## Session file (`memhw report session.h5`)\n\n"
                    f"```text\n{text}\n```\n\n## Figures\n\n{pictures}\n", encoding="utf-8")
    return path
