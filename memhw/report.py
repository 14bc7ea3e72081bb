"""``memhw report FILE``: summarise any file memhw writes and draw its figures.

What it reads:

* **session files** (``--out FILE.h5`` of ``read``, ``program``, ``sweep``, ``calibrate``,
  ``lstm``, ``demo``): who wrote them (command line, memhw version), the board (serial,
  chip, address, calibration), the operation log, and each run with its parameters in
  units, drawn by the function registered for its kind (:data:`RUN_PLOTS`, :func:`register`);
* **calibration files** (``memhw calibrate board --save``, the ones shipped with memhw);
* **maps**: ``.npy`` arrays in siemens (``memhw read --out FILE.npy``) and HDF5 files with a
  2-D ``conductance`` or ``targets`` dataset at the top;
* **JSON results** (``memhw lstm`` metrics): their entries.

Anything else gets one line saying what it is and why it cannot be reported. Figures go
to ``<FILE>-report/`` beside the file (``out`` elsewhere); the folder is made only when a
figure is drawn.

Plugins: a module of :data:`PLUGINS` (``memhw.nn.report`` draws the LSTM runs) registers
functions for its own run kinds with :func:`register` when imported; a kind
``"name_suffix"`` without its own function falls back to the one of ``"name"``. A missing
plugin is not an error: its runs are listed without figures, with a note.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import MemhwError
from .session import Session, load
from .units import US, number, si

__all__ = ["report", "register", "RUN_PLOTS", "PLUGINS", "record_metrics", "attribute_text"]

log = logging.getLogger("memhw.report")

#: run kind -> function(run, out_dir) -> list of figure paths
RUN_PLOTS: dict[str, Callable] = {}
#: modules imported before a report, which register plot functions for their own run kinds
PLUGINS = ("memhw.nn.report",)
#: run kinds drawn by a plugin, and which
_PLUGIN_KINDS = {"lstm": "memhw.nn.report"}
_plugin_errors: dict[str, str] = {}


def register(kind: str) -> Callable[[Callable], Callable]:
    """Decorator: ``@register("sweep")`` adds the figure function of a run kind:
    ``fn(run, out: Path) -> list[Path]`` (an empty list when the run holds nothing to draw)."""

    def deco(fn: Callable) -> Callable:
        RUN_PLOTS[kind] = fn
        return fn

    return deco


def _load_plugins() -> None:
    """Import the modules that register figures of their own run kinds; a missing one is
    noted, not an error."""
    import sys

    for module in PLUGINS:
        if module in _plugin_errors or module in sys.modules:
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            _plugin_errors[module] = "not installed" if exc.name and module.startswith(exc.name) else repr(exc)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break reports of everything else
            _plugin_errors[module] = f"failed to load: {type(exc).__name__}: {exc}"
            log.warning("report plugin %s failed to load", module, exc_info=True)


def _plotter(kind: str) -> Callable | None:
    return RUN_PLOTS.get(kind) or RUN_PLOTS.get(kind.split("_", 1)[0])


def record_metrics(session: Session | None, kind: str, metrics: dict) -> None:
    """Store a procedure's scalar results as a run of ``kind`` (strings and numbers as attributes)."""
    if session is None:
        return
    attrs = {k: v for k, v in metrics.items() if isinstance(v, (str, int, float, bool, np.integer, np.floating))}
    with session.run(kind, **attrs):
        pass


# ------------------------------------------------------------------ attributes in words
#: attributes whose unit is not in their name
_UNITS = {"tolerance": "S", "v_read": "V", "v_set": "V", "v_max": "V", "reset_v": "V", "reset_gate": "V",
          "set_v": "V", "set_gate": "V", "gate": "V", "width": "s", "g_low": "S", "g_high": "S", "tia_gains": "Ω"}
_SUFFIX_UNITS = (("_S_per_V", "S/V"), ("_S", "S"), ("_V", "V"), ("_s", "s"))
#: attributes every run has, shown elsewhere or not at all
_HIDDEN = {"kind", "index", "status", "start_time", "end_time", "command_line", "software_version", "json_attrs"}


def attribute_text(key: str, value: Any) -> str:
    """``key=value`` for people: 4 significant digits, conductances in µS, other SI units
    with a prefix (``tolerance=2 µS``, ``width=1 µs``, ``slope_S_per_V=93.4 µS/V``)."""
    unit = _UNITS.get(key) or next((u for suffix, u in _SUFFIX_UNITS if key.endswith(suffix)), None)
    if isinstance(value, (list, tuple, np.ndarray)):
        text = ", ".join(attribute_text(key, v).split("=", 1)[1] for v in np.asarray(value).ravel().tolist())
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        text = str(value)
    elif unit == "S":
        text = f"{number(float(value) * 1e6)} {US}"
    elif unit == "S/V":
        text = f"{number(float(value) * 1e6)} {US}/V"
    elif unit is not None:
        text = si(float(value), unit)
    elif "relative" in key and isinstance(value, float):
        text = f"{value:.3%}"
    else:
        text = number(value)
    return f"{key}={text}"


def _provenance(a: dict[str, Any]) -> list[str]:
    """Who wrote a session file, on which board."""
    return [f"  written by: {a.get('command_line', '(not recorded)')} (memhw {a.get('software_version', '?')}, "
            f"protocol {a.get('protocol_version', '?')})",
            f"  board {a.get('board_serial', '?')} ({a.get('board_chip') or 'chip not identified'}) at "
            f"{a.get('board_address', '?')}, firmware {a.get('board_firmware', '?')}",
            f"  calibration: {a.get('board_calibration', '(not recorded)')}"]


# ------------------------------------------------------------------ figures of runs
@register("program")
def _program_plots(run: Any, out: Path) -> list[Path]:
    from .plots import program_figure

    names = set(run.names())
    if not {"targets", "mask"} <= names:
        return []
    targets, mask = run.read("targets"), run.read("mask").astype(bool)
    tol = float(run.attrs.get("tolerance", 0.0))
    if "achieved" in names:
        achieved = run.read("achieved")
        pulses = run.read("set_pulses") + run.read("reset_pulses")
        state = "final"
    elif "round_g" in names and len(run.read("round_g")):  # interrupted: the last flushed round
        achieved = run.read("round_g")[-1].astype(float)
        pulses = np.zeros(targets.shape, int)
        state = f"last recorded round, {run.status}; pulses not recorded"
    else:
        return []
    converged = int((np.abs(achieved - targets)[mask] <= tol).sum())
    title = (f"{run.name}: {run.attrs.get('algorithm', '?')} write-and-verify to ±{tol * 1e6:g} {US}, "
             f"{converged}/{int(mask.sum())} devices within tolerance ({state})\n"
             f"board {run.attrs.get('board_serial', '?')}, targets {run.attrs.get('targets_source', '?')}")
    return [program_figure(targets, achieved, mask, pulses, tol, out / f"{run.name}.png", title=title)]


@register("read")
def _read_plots(run: Any, out: Path) -> list[Path]:
    from .plots import map_figure

    if "conductance" not in run.names():
        return []
    title = (f"{run.name}: conductance map of board {run.attrs.get('board_serial', '?')}, read at "
             f"{run.attrs.get('v_read', '?')} V, averaged ×{run.attrs.get('average', '?')}")
    return [map_figure(run.read("conductance"), out / f"{run.name}.png", title)]


@register("sweep")
def _sweep_plots(run: Any, out: Path) -> list[Path]:
    from .calibration.plots import sweep_axes
    from .calibration.recorded import result_from_run
    from .plots import pyplot, save

    res = result_from_run(run)
    if res is None:
        return []
    ncols = 2 if type(res).__name__ in ("ResetCurve", "NoiseResult") else 1
    fig = pyplot().figure(figsize=(7.5 * ncols, 5.4), layout="constrained")
    sweep_axes(fig, res, serial=str(run.attrs.get("board_serial", "")))
    return [save(fig, out / f"{run.name}.png")]


def _calibration_figure(path: Path, serial: str, dac_gain: dict, tia_gains: Any, tia_gain: np.ndarray,
                        tia_residual: np.ndarray, date: str) -> Path:
    from .calibration.plots import calibration_axes
    from .plots import pyplot, save

    fig = pyplot().figure(figsize=(16, 4.8), layout="constrained")
    calibration_axes(fig, serial, dac_gain, tia_gains, tia_gain, tia_residual, date)
    return save(fig, path)


@register("calibration")
def _calibration_plots(run: Any, out: Path) -> list[Path]:
    names = set(run.names())
    dac = {g: f"dac_{g.lower()}_gain" for g in ("ROWS", "COLS", "GATES")}
    if not set(dac.values()) | {"tia_gain", "tia_residual"} <= names:
        return []
    return [_calibration_figure(out / f"{run.name}.png", str(run.attrs.get("serial", "?")),
                                {g: run.read(n) for g, n in dac.items()}, run.attrs.get("tia_gains"),
                                run.read("tia_gain"), run.read("tia_residual"), str(run.attrs.get("date", "")))]


# ------------------------------------------------------------------ kinds of file
def _session_report(s: Session, path: Path, out: Path) -> tuple[list[str], list[Path]]:
    a = s.attrs
    lines = [f"{path}: memhw session file, {'complete' if s.complete else 'NOT complete (interrupted or running)'}",
             *_provenance(a), f"  started {a.get('start_time', '?')}, ended {a.get('end_time', '?')}"]
    oplog = s.log
    ops = [op for op in oplog.ops() if op != "sent"]  # "sent": write-ahead records of pulse batches, not operations
    lines.append("  board operations: " + (", ".join(f"{op} ×{len(oplog[op])}" for op in ops) or "none recorded"))
    figures: list[Path] = []
    for run in s.runs():
        ra = dict(run.attrs)
        summary = _calibration_lines(ra) if run.kind == "calibration" else []
        params = ", ".join(attribute_text(k, v) for k, v in ra.items()
                           if k not in _HIDDEN and not k.startswith(("board_", "dac_", "tia_r", "tia_g", "tia_o")))
        lines.append(f"  run {run.name} ({run.status}): {params or 'no parameters'}")
        lines += [f"    {line}" for line in summary]
        if ra.get("board_serial", a.get("board_serial")) != a.get("board_serial") \
                or ra.get("board_chip", a.get("board_chip")) != a.get("board_chip"):
            lines.append(f"    on board {ra.get('board_serial', '?')} ({ra.get('board_chip', '?')}) at "
                         f"{ra.get('board_address', '?')}")
        if ra.get("command_line", a.get("command_line")) != a.get("command_line"):
            lines.append(f"    by: {ra['command_line']} (memhw {ra.get('software_version', '?')})")
        fn = _plotter(run.kind)
        if fn is None:
            plugin = _PLUGIN_KINDS.get(run.kind.split("_", 1)[0])
            if plugin is not None:
                lines.append(f"    no figures: the plugin {plugin} that draws them is "
                             f"{_plugin_errors.get(plugin, 'not registered')}")
            continue
        try:
            figures += fn(run, out)
        except Exception as exc:  # noqa: BLE001 - one run's odd data must not stop the report of the others
            log.debug("figure of %s failed", run.name, exc_info=True)
            lines.append(f"    figure not drawn: {type(exc).__name__}: {exc}")
    return lines, figures


def _calibration_lines(attrs: dict[str, Any]) -> list[str]:
    from .calibration.text import summary_lines

    return summary_lines(attrs)


def _calibration_report(path: Path, out: Path) -> tuple[list[str], list[Path]]:
    from .calibration.files import load_calibration
    from .calibration.text import summary_lines

    cal = load_calibration(path)
    problems = cal.problems()
    lines = [f"{path}: board calibration of {cal.serial}, made {cal.date} (firmware {cal.firmware}, protocol "
             f"{cal.protocol[0]}.{cal.protocol[1]}), {cal.rows} × {cal.cols}",
             *(f"  {line}" for line in summary_lines(cal.summary())),
             "  within bounds" if not problems else "  OUT OF BOUNDS: " + "; ".join(problems)]
    figure = _calibration_figure(out / f"{path.stem}.png", cal.serial, {g: d.gain for g, d in cal.dac.items()},
                                 cal.tia_gains, cal.tia_gain, cal.tia_residual, cal.date)
    return lines, [figure]


def _map_report(path: Path, g: np.ndarray, what: str, out: Path) -> tuple[list[str], list[Path]]:
    from .plots import map_figure

    us = g[np.isfinite(g)] * 1e6
    lines = [f"{path}: {what}, {g.shape[0]} × {g.shape[1]}",
             f"  min {us.min():.3f}, median {np.median(us):.3f}, mean {us.mean():.3f}, max {us.max():.3f} {US}"]
    return lines, [map_figure(g, out / f"{path.stem}.png", f"{path.name}: {what}")]


def _json_report(path: Path) -> list[str]:
    """The entries of a JSON file of results (``memhw lstm`` metrics, benchmark results)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MemhwError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        return [f"{path}: JSON {type(data).__name__} of {len(data) if hasattr(data, '__len__') else 1} entries"]
    lines = [f"{path}: JSON results, {len(data)} entries"]
    for k, v in data.items():
        nested = isinstance(v, dict) or isinstance(v, list) and not all(isinstance(x, (int, float)) for x in v)
        lines.append(f"  {k}: {type(v).__name__} of {len(v)} entries" if nested else f"  {attribute_text(k, v)}")
    return lines


def _plain_h5_map(path: Path) -> tuple[np.ndarray, str] | None:
    """A 2-D ``conductance`` or ``targets`` dataset at the top of a plain HDF5 file."""
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        for name in ("conductance", "targets"):
            if name in f and getattr(f[name], "ndim", 0) == 2 and f[name].dtype.kind in "iuf":
                return np.asarray(f[name][()], float), f"conductance map (dataset {name!r}, siemens)"
    return None


def _report_file(path: Path, out: Path) -> tuple[list[str], list[Path]]:
    import h5py

    from .calibration.files import FORMAT as CALIBRATION
    from .session import FORMAT as SESSION

    if path.suffix.lower() == ".json":
        return _json_report(path), []
    if path.suffix.lower() == ".npy":
        from .targets import read_target_file

        try:
            g = read_target_file(str(path))
        except MemhwError as exc:
            raise MemhwError(f"{exc}; memhw report draws .npy conductance maps (siemens)") from None
        if g.ndim != 2:
            raise MemhwError(f"{path}: a {g.ndim}-D array; memhw report draws 2-D conductance maps (siemens)")
        return _map_report(path, g, "conductance map (.npy, siemens)", out)
    if not h5py.is_hdf5(path):
        kind = "a figure" if path.suffix.lower() in (".png", ".pdf", ".svg", ".jpg", ".jpeg") else "not HDF5"
        raise MemhwError(f"{path}: {kind}; memhw report takes a session .h5 (--out of any command), a calibration "
                         ".h5, a .npy map or a .json of results")
    with h5py.File(path, "r", locking=False) as f:
        fmt = f.attrs.get("format")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt == CALIBRATION:
        return _calibration_report(path, out)
    if fmt == SESSION:
        s = load(path)
        try:
            return _session_report(s, path, out)
        finally:
            s.close()
    found = _plain_h5_map(path)
    if found is not None:
        return _map_report(path, *found, out)
    raise MemhwError(f"{path}: an HDF5 file memhw did not write (no memhw format attribute, no 2-D conductance "
                     "or targets dataset)")


def report(path: str | Path, out: str | Path | None = None) -> tuple[str, list[Path]]:
    """Text summary of a file memhw wrote, and the figures drawn for it.

    Parameters
    ----------
    path : str or Path
        A session file, a calibration file or a map (.npy, or an HDF5 file with a 2-D
        ``conductance`` dataset).
    out : str or Path, optional
        Folder for the figures (default: beside the file, ``<name>-report/``); made only
        when a figure is drawn.

    Returns
    -------
    (str, list of Path)

    Raises
    ------
    MemhwError
        One line: the file is missing, or not something memhw wrote, and why.
    """
    _load_plugins()
    path = Path(path)
    if not path.exists():
        raise MemhwError(f"{path}: no such file")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise MemhwError(f"{path}: {kind} (memhw report takes a session .h5, a calibration .h5 or a .npy map)")
    out = Path(out) if out is not None else path.with_name(path.stem + "-report")
    lines, figures = _report_file(path, out)
    lines += [f"  figure: {f}" for f in figures]
    return "\n".join(lines), figures
