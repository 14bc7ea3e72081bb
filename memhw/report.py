"""``memhw report FILE.h5``: summarise a session file and draw its plots.

Each kind of run registers a function that draws its figures from the run's
datasets (:data:`RUN_PLOTS`); ``report`` calls the ones it finds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .plots import program_figure
from .session import Session, load

#: run kind -> function(run, out_dir) -> list of PNG paths
RUN_PLOTS: dict[str, Callable] = {}


def register(kind: str) -> Callable[[Callable], Callable]:
    """Decorator: ``@register("sweep_gate")`` adds a plot function for that run kind."""

    def deco(fn: Callable) -> Callable:
        RUN_PLOTS[kind] = fn
        return fn

    return deco


@register("program")
def _program_plots(run, out: Path) -> list[Path]:
    names = set(run.names())
    if not {"targets", "mask"} <= names:
        return []
    targets, mask = run.read("targets"), run.read("mask").astype(bool)
    if "achieved" in names:
        achieved = run.read("achieved")
        pulses = run.read("set_pulses") + run.read("reset_pulses")
    elif "round_g" in names and len(run.read("round_g")):  # interrupted: the last flushed round
        achieved = run.read("round_g")[-1].astype(float)
        pulses = np.zeros(targets.shape, int)
    else:
        return []
    path = out / f"{run.name}.png"
    program_figure(targets, achieved, mask, pulses, float(run.attrs.get("tolerance", 0.0)), path,
                   title=f"{run.name} ({run.status})")
    return [path]


def record_metrics(session: Session | None, kind: str, metrics: dict) -> None:
    """Store a procedure's scalar results as a run of ``kind`` (strings and numbers as attributes)."""
    if session is None:
        return
    attrs = {k: v for k, v in metrics.items() if isinstance(v, (str, int, float, bool, np.integer, np.floating))}
    with session.run(kind, **attrs):
        pass


def _datasets(run, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    have = set(run.names())
    return {n: run.read(n) for n in names} if set(names) <= have else None


@register("sweep")
def _sweep_plots(run, out: Path) -> list[Path]:
    """Rebuild a characterisation sweep from its datasets and draw it."""
    from .calibration import plots, sweeps

    kind = str(run.attrs.get("sweep", ""))
    rows = np.arange(int(run.attrs.get("row_start", 0)), int(run.attrs.get("row_stop", 0)))
    path = out / f"{run.name}.png"
    if kind == "gate" and (d := _datasets(run, ("gates", "conductance", "devices"))):
        return [plots.plot_gate_curve(sweeps.GateCurve(d["gates"], d["conductance"], d["devices"], rows), path)]
    if kind == "reset" and (d := _datasets(run, ("amplitudes", "conductance", "devices", "before"))):
        curve = sweeps.ResetCurve(d["amplitudes"], d["conductance"], d["devices"], d["before"], rows)
        return [plots.plot_reset_curve(curve, path)]
    if kind == "iv" and (d := _datasets(run, ("v", "current", "devices"))):
        return [plots.plot_iv(sweeps.IVResult(d["v"], d["current"], d["devices"]), path)]
    if kind == "noise" and (d := _datasets(run, ("reads",))):
        return [plots.plot_noise(sweeps.NoiseResult(d["reads"], rows), path)]
    if kind == "retention" and (d := _datasets(run, ("times", "conductance"))):
        return [plots.plot_retention(sweeps.RetentionResult(d["times"], d["conductance"], rows), path)]
    return []


def _load_plugins() -> None:
    """Import the modules that register plots for their own run kinds."""
    import importlib

    for module in ("memhw.nn.report",):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def report(path: str | Path, out: str | Path | None = None) -> tuple[str, list[Path]]:
    """Text summary of a session file and the PNGs drawn for its runs.

    Parameters
    ----------
    path : str or Path
        Session file.
    out : str or Path, optional
        Folder for the figures (default: next to the file, ``<name>-report/``).

    Returns
    -------
    (str, list of Path)
    """
    _load_plugins()
    path = Path(path)
    out = Path(out) if out is not None else path.with_name(path.stem + "-report")
    s: Session = load(path)  # a missing or unusable file is refused before anything is created
    try:
        out.mkdir(parents=True, exist_ok=True)
        a = s.attrs
        lines = [f"{path}: {'complete' if s.complete else 'NOT complete (interrupted or still running)'}",
                 f"  memhw {a.get('software_version', '?')}, protocol {a.get('protocol_version', '?')}, "
                 f"board {a.get('board_serial', '?')} ({a.get('board_firmware', '?')}) at {a.get('board_address', '?')}",
                 f"  started {a.get('start_time', '?')}"]
        log = s.log
        if len(log):
            counts = ", ".join(f"{op} ×{len(log[op])}" for op in log.ops())
            lines.append(f"  board operations: {counts}")
        figures: list[Path] = []
        for run in s.runs():
            lines.append(f"  run {run.name}: {run.status}; " + ", ".join(
                f"{k}={v}" for k, v in run.attrs.items() if k not in ("kind", "index", "status")))
            fn = RUN_PLOTS.get(run.kind)
            if fn is not None:
                figures += fn(run, out)
        for f in figures:
            lines.append(f"  figure: {f}")
        return "\n".join(lines), figures
    finally:
        s.close()
