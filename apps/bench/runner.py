"""Run a suite's cells as attacks: in this process, in a pool of local worker processes, or as
Ray tasks; record each finished cell in the results store, skipping cells already done.

Only this (the parent) process writes the store, one transaction per cell, after the cell's
files are on disk; a killed campaign loses at most the cells in flight.

A suite with ``[settings.federated]`` runs in this process only: each cell's Flower runs start
Ray and take every core, so worker processes or Ray tasks beside them would only contend.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from apps.bench.federated import FEDERATED_DIR, attack_secure_aggregate, measure_utility
from apps.bench.store import ResultStore, store_path
from apps.bench.suite import Cell, Suite
from fedsim.errors import UserInputError

CELLS_DIR = "cells"
ERROR_FILE = "error.txt"
LOCK_FILE = ".bench.lock"

if TYPE_CHECKING:
    from apps.attack_run import AttackRequest


@dataclass(frozen=True)
class Job:
    """One cell to run: where its attack folder goes (None: send the files back), how many
    torch threads it may use (None: torch's default) and, for a cell with federated settings,
    the campaign's utility cache folder."""

    cell: Cell
    out: str | None
    threads: int | None = None
    federated_dir: str | None = None


@dataclass(frozen=True)
class CellOutcome:
    """What a worker sends back: the cell's status, metrics or error, timing, versions."""

    cell_id: str
    status: str
    metrics: dict | None
    error: str | None
    wall_s: float
    started_at: str
    finished_at: str
    versions: dict
    notices: tuple[str, ...] = ()
    files: dict[str, bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CampaignSummary:
    """How a campaign went: the suite's cells, how many ran now, and the store's final count."""

    cells: int
    skipped: int
    ran: int
    done: int
    failed: int
    store: Path
    wall_s: float

    def to_json(self) -> dict[str, object]:
        """The ``--json`` line: cells, done, failed, store."""
        return {
            "cells": self.cells,
            "done": self.done,
            "failed": self.failed,
            "store": str(self.store),
        }


def cell_dir(cell: Cell) -> str:
    """A cell's attack folder, relative to the campaign folder."""
    return f"{CELLS_DIR}/{cell.cell_id}"


def attack_request(cell: Cell, out: Path) -> AttackRequest:
    """The attack request one cell runs, writing its attack folder to ``out``."""
    from apps.attack_run import AttackRequest

    return AttackRequest(
        dataset=cell.dataset,
        split=cell.split,
        indices=cell.indices,
        model=cell.model,
        dropout=cell.dropout,
        train_mode=cell.train_mode,
        defenses=cell.defenses(),
        out=out,
        **cell.attack_settings(),
    )


def run_cell(job: Job) -> CellOutcome:
    """Run one cell's attack into its folder, then its utility run if it has federated
    settings; a failure becomes a 'failed' outcome."""
    import torch

    from apps.attack_run import run_attack

    if job.threads is not None:
        torch.set_num_threads(job.threads)
    started_at, start = _now(), time.perf_counter()
    out = Path(job.out) if job.out is not None else Path(tempfile.mkdtemp(prefix="fedleak-cell-"))
    shutil.rmtree(out, ignore_errors=True)  # no files left from an earlier, failed try
    notices: list[str] = []
    try:
        if job.cell.attacks_aggregate:
            metrics = attack_secure_aggregate(job.cell, out)
        else:
            request = attack_request(job.cell, out)
            metrics = run_attack(request, progress=None, notice=notices.append)
        metrics["epsilon"] = _epsilon(out)
        if job.cell.federated is not None:
            metrics |= _utility_metrics(job, out, metrics["epsilon"])
        status, error, wall_s = "done", None, float(metrics["wall_s"])
    except Exception as exc:  # a failing cell is recorded and the campaign goes on
        metrics, status, wall_s = None, "failed", time.perf_counter() - start
        error = _error_line(exc)
        out.mkdir(parents=True, exist_ok=True)
        (out / ERROR_FILE).write_text(traceback.format_exc())
    files = None
    if job.out is None:
        files = {path.relative_to(out).as_posix(): path.read_bytes() for path in _files(out)}
        shutil.rmtree(out, ignore_errors=True)
    return CellOutcome(
        cell_id=job.cell.cell_id,
        status=status,
        metrics=metrics,
        error=error,
        wall_s=wall_s,
        started_at=started_at,
        finished_at=_now(),
        versions=_versions(),
        notices=tuple(notices),
        files=files,
    )


def run_in_process(jobs: Iterable[Job]) -> Iterator[CellOutcome]:
    """Run the jobs one after another in this process."""
    for job in jobs:
        yield run_cell(job)


def run_in_pool(jobs: Iterable[Job], workers: int) -> Iterator[CellOutcome]:
    """Run the jobs in ``workers`` spawned processes, one job each at a time, as they finish.

    A worker that dies (killed, out of memory) fails the cells in flight with that reason; a
    fresh pool runs the rest.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = deque(jobs)
    context = multiprocessing.get_context("spawn")
    while queue:
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_die_with_parent, initargs=(os.getpid(),)
        )
        running: dict = {}
        broken = False
        try:
            while running or (queue and not broken):
                while queue and not broken and len(running) < workers:
                    job = queue.popleft()
                    running[pool.submit(run_cell, job)] = job
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        outcome = failed_outcome(job, "WorkerDied: its worker process died")
                    except Exception as error:  # e.g. a result that does not pickle
                        outcome = failed_outcome(job, _error_line(error))
                    yield outcome
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_on_ray(jobs: Iterable[Job], address: str) -> Iterator[CellOutcome]:
    """Run the jobs as Ray tasks (one CPU each) on the cluster at ``address`` ("local" starts
    one here); the tasks send their files back, so nodes need not share a disk."""
    import logging

    import ray
    from ray.exceptions import RayError

    env = {k: os.environ[k] for k in ("FEDLEAK_DATA_DIR",) if k in os.environ}
    options: dict = {"address": address, "logging_level": logging.WARNING, "log_to_driver": False}
    if address == "local":
        options["include_dashboard"] = False
    with warnings.catch_warnings():
        # Ray announces a future default for GPU env vars on every start; tasks ask for none.
        warnings.filterwarnings("ignore", message="Tip: In future versions of Ray")
        ray.init(runtime_env={"env_vars": env}, **options)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        window = max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue = deque(jobs)
        running: dict = {}
        while running or queue:
            while queue and len(running) < window:
                job = queue.popleft()
                running[task.remote(job)] = job
            [ready], _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ready)
            try:
                outcome = ray.get(ready)
            except RayError as error:
                outcome = failed_outcome(job, _error_line(error))
            yield outcome
    finally:
        ray.shutdown()


def jobs_for(cells: Iterable[Cell], out_dir: Path, workers: int, ray: bool) -> list[Job]:
    """Jobs for cells: attack folders under ``out_dir/cells`` (Ray tasks send files back), the
    utility cache in ``out_dir/federated``."""
    if ray:
        return [Job(cell, None, threads=1) for cell in cells]
    threads = None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    folder = out_dir.resolve()
    cache = str(folder / FEDERATED_DIR)
    return [
        Job(cell, str(folder / cell_dir(cell)), threads, cache if cell.federated else None)
        for cell in cells
    ]


def run_campaign(
    suite: Suite,
    out_dir: Path,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[Cell, CellOutcome], None] | None = None,
) -> CampaignSummary:
    """Run the suite's cells not yet done into ``out_dir`` and its results store.

    ``on_start(cells, to_run)`` is called once the plan is known, ``on_result(cell, outcome)``
    after each cell is recorded.
    """
    if workers < 1:
        raise UserInputError(f"invalid --workers {workers}; valid: 1 or more")
    if suite.has_federated() and (workers > 1 or ray_address is not None):
        given = f"--workers {workers}" if ray_address is None else "--ray-address"
        raise UserInputError(
            f"suite {suite.name!r} has [settings.federated], whose Flower runs start Ray and "
            f"use every core; run it without {given} (one cell at a time, in this process)"
        )
    start = time.perf_counter()
    cells = suite.cells()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _campaign_lock(out_dir), ResultStore.open(store_path(out_dir), create=True) as store:
        statuses = store.statuses()
        todo = [cell for cell in cells if not _is_done(cell, statuses, out_dir)]
        if on_start is not None:
            on_start(len(cells), len(todo))
        by_id = {cell.cell_id: cell for cell in todo}
        jobs = jobs_for(todo, out_dir, workers, ray_address is not None)
        if ray_address is not None:
            outcomes = run_on_ray(jobs, ray_address)
        elif workers == 1:
            outcomes = run_in_process(jobs)
        else:
            outcomes = run_in_pool(jobs, workers)
        for outcome in outcomes:
            cell = by_id[outcome.cell_id]
            if outcome.files is not None:
                _write_files(out_dir / cell_dir(cell), outcome.files)
            store.record(cell_row(suite.name, cell, outcome))
            if on_result is not None:
                on_result(cell, outcome)
        final = store.statuses()
    return CampaignSummary(
        cells=len(cells),
        skipped=len(cells) - len(todo),
        ran=len(todo),
        done=sum(final.get(cell.cell_id) == "done" for cell in cells),
        failed=sum(final.get(cell.cell_id) == "failed" for cell in cells),
        store=store_path(out_dir),
        wall_s=time.perf_counter() - start,
    )


def cell_row(suite: str, cell: Cell, outcome: CellOutcome) -> dict[str, object]:
    """The store's row for one finished cell."""
    metrics = outcome.metrics or {}
    kept = {k: v for k, v in metrics.items() if k != "history"}  # per-step; in metrics.json
    return {
        "cell_id": cell.cell_id,
        "suite": suite,
        "status": outcome.status,
        "dataset": cell.dataset,
        "model": cell.model,
        "attack": cell.attack,
        "defense": cell.defense,
        "batch_size": cell.batch_size,
        "images": cell.images,
        "seed": cell.seed,
        "psnr": metrics.get("psnr"),
        "ssim": metrics.get("ssim"),
        "lpips": metrics.get("lpips"),
        "st_lpips": metrics.get("st_lpips"),
        "label_accuracy": metrics.get("label_accuracy"),
        "accuracy": metrics.get("accuracy"),
        "epsilon": metrics.get("epsilon"),
        "wall_s": outcome.wall_s,
        "error": outcome.error,
        "config_json": cell.config_json(),
        "metrics_json": json.dumps(kept, allow_nan=False) if outcome.metrics else None,
        "versions_json": json.dumps(outcome.versions),
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "cell_dir": cell_dir(cell),
    }


def failed_outcome(job: Job, error: str) -> CellOutcome:
    """The outcome of a cell whose worker never answered."""
    now = _now()
    return CellOutcome(job.cell.cell_id, "failed", None, error, 0.0, now, now, _versions())


def _is_done(cell: Cell, statuses: dict[str, str], out_dir: Path) -> bool:
    # A done row whose folder was deleted runs again.
    from apps.report import METRICS_FILE

    return (
        statuses.get(cell.cell_id) == "done" and (out_dir / cell_dir(cell) / METRICS_FILE).is_file()
    )


@contextmanager
def _campaign_lock(out_dir: Path) -> Iterator[None]:
    """One campaign per folder at a time; the lock dies with its process, even on SIGKILL."""
    import fcntl

    with (out_dir / LOCK_FILE).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserInputError(
                f"another `fedleak bench` is running on {str(out_dir)!r}; wait for it to end"
            ) from None
        yield


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _epsilon(folder: Path) -> float | None:
    """The (ε, δ)-DP guarantee's ε the observation records (dp-sgd), else None."""
    from apps.report import OBSERVATION_FILE
    from defenses.dp_sgd import EPSILON_METRIC
    from fedsim.observation import Observation

    epsilon = Observation.load(folder / OBSERVATION_FILE).context.get(EPSILON_METRIC)
    return None if epsilon is None else float(epsilon)


def _utility_metrics(job: Job, out: Path, epsilon_one_step: float | None) -> dict[str, object]:
    """The cell's utility: final accuracy, the run's ε (else the one-step ε), the run's facts."""
    if job.federated_dir is None:
        raise ValueError(f"cell {job.cell.cell_id} has federated settings but no cache folder")
    utility = measure_utility(job.cell, Path(job.federated_dir), out / FEDERATED_DIR)
    return {
        "accuracy": utility.accuracy[-1],
        "epsilon": epsilon_one_step if utility.epsilon is None else utility.epsilon,
        "epsilon_one_step": epsilon_one_step,
        "federated": {
            "utility_id": utility.utility_id,
            "accuracy_per_round": list(utility.accuracy),
            "wall_s": utility.wall_s,
            "cached": utility.cached,
        },
    }


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: a worker ends when the campaign process does (Linux), even on
    SIGKILL, instead of finishing its cell unseen."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: a worker ends when its queue closes
        return
    if os.getppid() != parent_pid:
        os._exit(1)


@lru_cache(maxsize=1)
def _versions() -> dict:
    from fedsim.provenance import git_commit, package_versions

    return {"versions": package_versions(), "git_commit": git_commit()}


def _error_line(error: BaseException) -> str:
    """The error's type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
