"""An LSTM experiment over a population of chips: median, p90 and worst, not one seed.

Each software network (one per model seed) is trained once and reused on every chip;
the chip runs go to a Dask cluster (``dask.distributed``): a :class:`LocalCluster` of
single-threaded worker processes by default, or an existing scheduler by address. A
chip is a board address: ``mock://?preset=paper&seed=s`` instances
(:func:`mock_chips`) or real boards reachable from the workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BLAS_THREADS",
    "PopulationResult",
    "dask_client",
    "mock_chips",
    "run_population",
    "summarise",
    "write_results",
]

#: environment of the worker processes: one BLAS thread each (the runs are parallel already)
BLAS_THREADS = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def mock_chips(n: int, preset: str = "paper", first_seed: int = 1) -> list[str]:
    """Addresses of ``n`` emulated chip instances (seeds ``first_seed``, ``first_seed + 1``...)."""
    if n < 1:
        raise ValueError(f"need at least one chip, got {n}")
    return [f"mock://?preset={preset}&seed={s}" for s in range(first_seed, first_seed + n)]


def _train(task: str, seed: int, task_options: dict, epochs: int | None) -> dict[str, np.ndarray]:
    """Worker: the trained software weights of ``task`` for model seed ``seed``."""
    from .tasks import make_task

    return make_task(task, seed, **task_options).train_software(seed, epochs=epochs).copy_params()


def _chip(task: str, chip: str, seed: int, weights: dict[str, np.ndarray], mode: str, task_options: dict,
          options: dict) -> dict[str, Any]:
    """Worker: one chip run with the software network of ``seed``."""
    from .lstm import run
    from .tasks import make_task

    t = make_task(task, seed, **task_options)
    software = t.network(seed)
    software.load(weights)
    metrics = run(t, chip, mode, seed, software=software, progress=False, **options).metrics
    metrics["chip"] = chip
    return metrics


def summarise(values: Sequence[float]) -> dict[str, float]:
    """median, p90, worst (largest: both metrics grow when the crossbar does worse), mean, n."""
    v = np.asarray(values, float)
    return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "worst": float(v.max()),
            "best": float(v.min()), "mean": float(v.mean()), "n": int(v.size)}


@dataclass
class PopulationResult:
    """Per-run metrics of a population and their summary.

    Attributes
    ----------
    task, mode, key : str
        ``key`` is the compared quantity: "ratio" (crossbar ÷ software RMSE) or
        "difference" (software − crossbar accuracy, points).
    rows : list of dict
        One metrics dict per (chip, model seed).
    summary : dict
        :func:`summarise` of ``key`` over the rows.
    """

    task: str
    mode: str
    key: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, float]:
        return summarise([r[self.key] for r in self.rows])

    def line(self) -> str:
        s = self.summary
        unit = "x" if self.key == "ratio" else " pt"
        return (f"{self.task} {self.mode}: {self.key} median {s['median']:.3f}{unit}, p90 {s['p90']:.3f}{unit}, "
                f"worst {s['worst']:.3f}{unit} over {s['n']} runs")

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "mode": self.mode, "key": self.key, "summary": self.summary, "rows": self.rows}

    def figure(self, path: str | Path, goal: float | None = None) -> Path:
        """Each run's value per chip (model seeds as markers) with median and p90 lines."""
        from ..nn.plots import population_figure

        return population_figure(self.rows, self.key, path, title=self.line(),
                                 goal=goal)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``dask.distributed`` client, closed on exit: connected to ``scheduler`` if given,
    else to a new :class:`LocalCluster` of ``workers`` single-threaded processes (one
    per core by default) whose BLAS uses one thread (:data:`BLAS_THREADS`)."""
    import logging

    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # no scheduler chatter on the console
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    os.environ.update(BLAS_THREADS)  # inherited by the worker processes started here
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def run_population(task: str, chips: Sequence[str], seeds: Sequence[int] = (0,), mode: str = "exsitu", *,
                   scheduler: str | None = None, workers: int | None = None, progress: bool = True,
                   task_options: dict[str, Any] | None = None, epochs: int | None = None,
                   client: Any = None, **options: Any) -> PopulationResult:
    """Run ``task`` on every chip with every model seed, in parallel on Dask.

    Parameters
    ----------
    task : "airline", "gait" or "mackey"
    chips : list of board addresses
        E.g. :func:`mock_chips`; each run connects its chip by itself.
    seeds : list of int
        Model seeds; each software network is trained once and reused on every chip.
    mode : {"exsitu", "insitu"}
    scheduler : str, optional
        Address of a running Dask scheduler; default a new local cluster.
    workers : int, optional
        Processes of the local cluster (default: one per core).
    progress : bool
        A progress bar over the runs.
    task_options : dict, optional
        Task factory options.
    epochs : int, optional
        Training epochs (default: the task's).
    client : dask.distributed.Client, optional
        Use this client (and leave it open) instead of making one.
    **options
        Further :func:`memhw.apps.lstm.run` arguments (``calibrate``, ``health``,
        ``variant``, ``tolerance``...).

    Returns
    -------
    PopulationResult
    """
    from dask.distributed import as_completed

    from ..nn.train import progress_bar
    from .tasks import make_task

    if not chips or not seeds:
        raise ValueError("need at least one chip and one model seed")
    task_options = dict(task_options or {})
    key = "ratio" if make_task(task, seeds[0], **task_options).metric == "rmse" else "difference"
    if mode == "insitu":
        options.setdefault("epochs", epochs)
    with nullcontext(client) if client is not None else dask_client(scheduler, workers) as own:
        trained = {s: own.submit(_train, task, s, task_options, epochs, pure=False) for s in seeds}
        runs = [own.submit(_chip, task, chip, s, trained[s], mode, task_options, options, pure=False)
                for s in seeds for chip in chips]
        result = PopulationResult(task, mode, key)
        for fut in progress_bar(as_completed(runs), f"{task} {mode}", progress, total=len(runs)):
            result.rows.append(fut.result())
    result.rows.sort(key=lambda r: (r["seed"], r["chip"]))
    return result


def write_results(results: Sequence[PopulationResult], path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """All results as one JSON file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**(extra or {}), "results": [r.to_json() for r in results]}, indent=1, default=str))
    return path
