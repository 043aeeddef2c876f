"""Run a suite's cells as attacks: in this process, in a pool of local worker processes, or as
Ray tasks; record each finished cell in the results store, skipping cells already done.

Only this (the parent) process writes the store, one transaction per cell, after the cell's
files are on disk; a killed campaign loses at most the cells in flight.

A suite with ``[settings.federated]`` runs its Flower runs in this process, one at a time
(each starts Ray and takes every core): first each utility run its cells share, then the
``secagg`` cells (whose attack needs a Flower run); its other cells' attacks then run in the
worker processes like any suite's. Cells of a suite with ``[settings.capture]`` attack updates
captured in Flower runs (:mod:`apps.bench.captures`): those runs too go first, one at a time
here, and the attacks on the workers. Such suites do not run as Ray tasks.

With ``score=False`` a cell keeps its truth and reconstruction unscored (``unscored.json`` in its
folder, ``"scored": false`` in its row); :func:`score_campaign`, or a rerun that scores, scores
them later with the same scorer.

Cells of another kind (:mod:`apps.bench.kinds`) run their own ``run`` in the same workers, are
always scored, and share the campaign's ``cache`` folder (not on Ray).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from apps.bench.captures import attack_capture, capture_id, prepare_capture
from apps.bench.federated import (
    FEDERATED_DIR,
    attack_secure_aggregate,
    measure_utility,
    prepare_utility,
    utility_id,
)
from apps.bench.kinds import KindCell
from apps.bench.selection import select_cells
from apps.bench.store import ResultStore, store_path
from apps.bench.suite import Cell, Suite
from apps.bench.victims import prepare_victim, victim_accuracy, victim_id, victim_weights
from fedsim.errors import UserInputError

CELLS_DIR = "cells"
CACHE_DIR = "cache"
"""What the cells of a kind share in a campaign folder (e.g. crafted perturbations)."""
ERROR_FILE = "error.txt"
LOCK_FILE = ".bench.lock"
SCORE_COLUMNS = ("psnr", "ssim", "lpips", "st_lpips", "label_accuracy")
"""The store's columns that scoring fills."""

if TYPE_CHECKING:
    from apps.attack_run import AttackRequest


@dataclass(frozen=True)
class Job:
    """One cell to run: where its attack folder goes (None: send the files back), how many
    torch threads it may use (None: torch's default), for a cell with federated settings the
    campaign's utility cache folder, whether to score the reconstruction now, and for a kind's
    cell the folder the campaign's cells share."""

    cell: Cell | KindCell
    out: str | None
    threads: int | None = None
    federated_dir: str | None = None
    score: bool = True
    cache_dir: str | None = None


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


def cell_dir(cell: Cell | KindCell) -> str:
    """A cell's attack folder, relative to the campaign folder."""
    return f"{CELLS_DIR}/{cell.cell_id}"


def attack_request(
    cell: Cell, out: Path, score: bool = True, weights: Path | None = None
) -> AttackRequest:
    """The attack request one cell runs, writing its attack folder to ``out`` (scored, or
    left for :func:`score_campaign`); ``weights``: its trained victim's."""
    from apps.attack_run import AttackRequest

    return AttackRequest(
        dataset=cell.dataset,
        weights=weights,
        split=cell.split,
        indices=cell.indices,
        model=cell.model,
        dropout=cell.dropout,
        train_mode=cell.train_mode,
        defenses=cell.defenses(),
        out=out,
        score=score,
        **cell.attack_settings(),
    )


def run_cell(job: Job) -> CellOutcome:
    """Run one cell's attack into its folder, then read its utility (measured beforehand) if it
    has federated settings; a failure becomes a 'failed' outcome."""
    import torch

    if job.threads is not None:
        torch.set_num_threads(job.threads)
    started_at, start = _now(), time.perf_counter()
    out = Path(job.out) if job.out is not None else Path(tempfile.mkdtemp(prefix="fedleak-cell-"))
    shutil.rmtree(out, ignore_errors=True)  # no files left from an earlier, failed try
    notices: list[str] = []
    try:
        if isinstance(job.cell, KindCell):
            cache = None if job.cache_dir is None else Path(job.cache_dir)
            metrics = job.cell.run(out, cache) | {"worker_pid": os.getpid()}
        else:
            metrics = _run_attack_cell(job, out, notices.append)
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


def _run_attack_cell(job: Job, out: Path, notice: Callable[[str], None]) -> dict:
    """An attack cell's metrics: the attack (on a secure aggregate or a FedSGD gradient), its
    random-guess PSNR, device and ε, and its utility where it has federated settings."""
    from apps.attack_run import run_attack

    assert isinstance(job.cell, Cell)
    if job.cell.attacks_aggregate:
        metrics = attack_secure_aggregate(job.cell, out, score=job.score)
    elif job.cell.attacks_capture:
        metrics = attack_capture(job.cell, out, _federated_dir(job), score=job.score)
    else:
        weights = None
        if job.cell.victim is not None:
            weights = victim_weights(job.cell, _federated_dir(job))
        request = attack_request(job.cell, out, job.score, weights)
        metrics = run_attack(request, progress=None, notice=notice)
    if job.cell.victim is not None:
        metrics["victim_accuracy"] = victim_accuracy(job.cell, _federated_dir(job))
    if job.score:
        metrics["random_psnr"] = _random_guess_psnr(out, job.cell.seed)
    metrics |= {"device": _device(out), "worker_pid": os.getpid(), "epsilon": _epsilon(out)}
    if job.cell.federated is not None:
        metrics |= _utility_metrics(job, out, metrics["epsilon"])
    return metrics


def run_in_process(jobs: Iterable[Job]) -> Iterator[CellOutcome]:
    """Run the jobs one after another in this process."""
    for job in jobs:
        yield run_cell(job)


def run_in_pool(jobs: Iterable[Job], workers: int) -> Iterator[CellOutcome]:
    """Run the jobs in ``workers`` spawned processes, a fresh one per job, as they finish.

    A fresh process per cell: memory a cell leaves behind cannot reach the next one (a worker
    that had run eight GIFD cells grew to 24 GB and was killed).

    A worker that dies (killed, out of memory) fails the cells in flight with that reason; a
    fresh pool runs the rest.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = deque(jobs)
    context = multiprocessing.get_context("spawn")
    # Python 3.10 has no max_tasks_per_child: there a worker runs several cells.
    fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    while queue:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
            **fresh,
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


def jobs_for(
    cells: Iterable[Cell | KindCell], out_dir: Path, workers: int, ray: bool, score: bool = True
) -> list[Job]:
    """Jobs for cells: attack folders under ``out_dir/cells`` (Ray tasks send files back), the
    utility cache in ``out_dir/federated``, what kinds' cells share in ``out_dir/cache``."""
    if ray:
        return [Job(cell, None, threads=1, score=score) for cell in cells]
    threads = None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    folder = out_dir.resolve()
    utility, shared = str(folder / FEDERATED_DIR), str(folder / CACHE_DIR)
    return [
        Job(
            cell,
            str(folder / cell_dir(cell)),
            threads,
            utility if _reads_flower_runs(cell) else None,
            score,
            shared if isinstance(cell, KindCell) else None,
        )
        for cell in cells
    ]


def run_campaign(
    suite: Suite,
    out_dir: Path,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    score: bool = True,
    only: Sequence[str] = (),
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[Cell | KindCell, CellOutcome], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> CampaignSummary:
    """Run the suite's cells not yet done into ``out_dir`` and its results store; with
    ``score`` also score the done cells left unscored, without it leave the new ones unscored.

    ``only`` (``KEY=VALUE`` filters, :mod:`apps.bench.selection`) runs part of the suite.
    ``on_start(cells, to_run)`` is called once the plan is known, ``on_result(cell, outcome)``
    after each cell is recorded, ``on_notice(line)`` before each Flower utility run.
    """
    if workers < 1:
        raise UserInputError(f"invalid --workers {workers}; valid: 1 or more")
    flower_tables = {
        "[settings.federated]": suite.has_federated(),
        "[settings.capture]": suite.has_captures(),
        "[settings.victim]": suite.has_victims(),
    }
    if any(flower_tables.values()) and ray_address is not None:
        table = next(name for name, present in flower_tables.items() if present)
        raise UserInputError(
            f"suite {suite.name!r} has {table}, whose Flower runs start Ray and "
            "use every core; run it without --ray-address (--workers N runs its attacks in "
            "parallel, its Flower runs one at a time)"
        )
    start = time.perf_counter()
    cells = select_cells(suite.cells(), only)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _campaign_lock(out_dir), ResultStore.open(store_path(out_dir), create=True) as store:
        store.record_suite(suite.name, suite.model_dump_json())
        statuses = store.statuses()
        by_id = {cell.cell_id: cell for cell in cells}
        waiting = _unscored_rows(store, out_dir) if score else {}
        unscored = {cell_id: row for cell_id, row in waiting.items() if cell_id in by_id}
        todo = [
            cell
            for cell in cells
            if cell.cell_id not in unscored and not _is_done(cell, statuses, out_dir, score)
        ]
        if on_start is not None:
            on_start(len(cells), len(todo) + len(unscored))

        def record(outcome: CellOutcome, row: dict[str, object]) -> None:
            store.record(row)
            if on_result is not None:
                on_result(by_id[outcome.cell_id], outcome)

        for waiting_row in unscored.values():
            row = rescored_row(out_dir, waiting_row)
            record(_outcome_of(row), row)
        jobs = jobs_for(todo, out_dir, workers, ray_address is not None, score)
        failed = _prepare_shared_runs(jobs, out_dir / FEDERATED_DIR, on_notice)
        for job in (j for j in jobs if j.cell.cell_id in failed):
            outcome = failed_outcome(job, failed[job.cell.cell_id])
            record(outcome, cell_row(suite.name, job.cell, outcome))
        jobs = [job for job in jobs if job.cell.cell_id not in failed]
        # secagg cells start a Flower run of their own: one at a time, in this process.
        serial = [job for job in jobs if job.cell.attacks_aggregate]
        parallel = [job for job in jobs if not job.cell.attacks_aggregate]
        if ray_address is not None:
            outcomes = run_on_ray(parallel, ray_address)
        elif workers == 1:
            outcomes = run_in_process(parallel)
        else:
            outcomes = run_in_pool(parallel, workers)
        for outcome in chain(run_in_process(serial), outcomes):
            cell = by_id[outcome.cell_id]
            if outcome.files is not None:
                _write_files(out_dir / cell_dir(cell), outcome.files)
            record(outcome, cell_row(suite.name, cell, outcome))
        final = store.statuses()
    return CampaignSummary(
        cells=len(cells),
        skipped=len(cells) - len(todo) - len(unscored),
        ran=len(todo) + len(unscored),
        done=sum(final.get(cell.cell_id) == "done" for cell in cells),
        failed=sum(final.get(cell.cell_id) == "failed" for cell in cells),
        store=store_path(out_dir),
        wall_s=time.perf_counter() - start,
    )


def score_campaign(
    out_dir: Path, on_result: Callable[[dict[str, object]], None] | None = None
) -> int:
    """Score every done cell of the store in ``out_dir`` left unscored (``score=False``) and
    update its row; ``on_result(row)`` after each. Returns how many were scored."""
    out_dir = Path(out_dir)
    with ResultStore.open(store_path(out_dir)) as store, _campaign_lock(out_dir):
        rows = _unscored_rows(store, out_dir)
        for row in rows.values():
            scored = rescored_row(out_dir, row)
            store.record(scored)
            if on_result is not None:
                on_result(scored)
    return len(rows)


def rescored_row(out_dir: Path, row: dict[str, object]) -> dict[str, object]:
    """A done, unscored cell's row once its folder is scored: metrics as if scored at once."""
    from apps.attack_run import score_attack_folder

    folder = Path(out_dir) / str(row["cell_dir"])
    metrics = score_attack_folder(folder)
    seed = int(json.loads(str(row["config_json"]))["seed"])
    metrics["random_psnr"] = _random_guess_psnr(folder, seed)
    earlier = json.loads(str(row["metrics_json"]))
    del earlier["scored"]
    kept = earlier | {k: v for k, v in metrics.items() if k not in ("history", "epsilon")}
    return row | {k: kept.get(k) for k in SCORE_COLUMNS} | {"metrics_json": _dumps(kept)}


def cell_row(suite: str, cell: Cell | KindCell, outcome: CellOutcome) -> dict[str, object]:
    """The store's row for one finished cell."""
    metrics = outcome.metrics or {}
    kept = {k: v for k, v in metrics.items() if k != "history"}  # per-step; in metrics.json
    kept |= {"scored": False} if metrics and "psnr" not in metrics else {}
    return {
        "cell_id": cell.cell_id,
        "suite": suite,
        "status": outcome.status,
        **cell.store_fields(),
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
        "metrics_json": _dumps(kept) if outcome.metrics else None,
        "versions_json": json.dumps(outcome.versions),
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "cell_dir": cell_dir(cell),
    }


def failed_outcome(job: Job, error: str) -> CellOutcome:
    """The outcome of a cell whose worker never answered."""
    now = _now()
    return CellOutcome(job.cell.cell_id, "failed", None, error, 0.0, now, now, _versions())


def _is_done(cell: Cell | KindCell, statuses: dict[str, str], out_dir: Path, score: bool) -> bool:
    # A done row whose folder was deleted runs again; an unscored one counts without score.
    from apps.attack_run import UNSCORED_FILE
    from apps.report import METRICS_FILE

    folder = out_dir / cell_dir(cell)
    kept = (folder / METRICS_FILE).is_file() or (not score and (folder / UNSCORED_FILE).is_file())
    return statuses.get(cell.cell_id) == "done" and kept


def _unscored_rows(store: ResultStore, out_dir: Path) -> dict[str, dict[str, object]]:
    """Done rows left unscored whose folder still holds the reconstruction, by cell id."""
    from apps.attack_run import UNSCORED_FILE

    return {
        str(row["cell_id"]): row
        for row in store.rows()
        if row["status"] == "done"
        and json.loads(str(row["metrics_json"] or "{}")).get("scored") is False
        and (out_dir / str(row["cell_dir"]) / UNSCORED_FILE).is_file()
    }


def _prepare_shared_runs(
    jobs: list[Job], cache_dir: Path, on_notice: Callable[[str], None] | None
) -> dict[str, str]:
    """Run the Flower runs the jobs' cells share — utility runs and trained victims — one at a
    time, here; returns the cells whose run failed, with the error."""
    failed: dict[str, str] = {}
    errors: dict[tuple[str, str], str] = {}
    wanted = [(job, run) for job in jobs for run in _shared_runs(job.cell)]
    totals = Counter(kind for kind, _ in {(run[0], run[1]) for _, run in wanted})
    for job, (kind, name, prepare, what) in wanted:
        if (kind, name) not in errors:
            if on_notice is not None:
                done = sum(1 for k, _ in errors if k == kind)
                on_notice(f"{kind} {done + 1}/{totals[kind]}: {what} (a Flower run, unless cached)")
            try:
                prepare(job.cell, cache_dir)
                errors[kind, name] = ""
            except Exception as exc:  # its cells fail with the reason; the others go on
                errors[kind, name] = f"{kind} run {name} failed: {_error_line(exc)}"
        if errors[kind, name]:
            failed.setdefault(job.cell.cell_id, errors[kind, name])
    return failed


def _shared_runs(
    cell: Cell | KindCell,
) -> list[tuple[str, str, Callable[[Cell, Path], bool], str]]:
    """The Flower runs a cell reads that the campaign runs first: (kind, id, how, what)."""
    if not isinstance(cell, Cell):
        return []
    runs = []
    if cell.federated is not None:
        what = f"{cell.dataset}/{cell.model} {cell.defense}"
        runs.append(("utility", utility_id(cell), prepare_utility, what))
    if cell.victim is not None:
        what = f"{cell.dataset}/{cell.model} trained for {cell.victim.rounds} rounds"
        runs.append(("victim", victim_id(cell), prepare_victim, what))
    if cell.capture is not None:
        mode = "train" if cell.train_mode else "eval"
        start = "" if cell.victim is None else " from the trained victim"
        what = f"{cell.dataset}/{cell.model} b{cell.batch_size} {mode} mode, one round{start}"
        runs.append(("capture", capture_id(cell), prepare_capture, what))
    return runs


def _reads_flower_runs(cell: Cell | KindCell) -> bool:
    """Whether the cell reads the campaign's Flower runs folder (utility, victim, capture)."""
    return bool(_shared_runs(cell)) or _starts_flower(cell)


def _outcome_of(row: dict[str, object]) -> CellOutcome:
    """The outcome a rescored row reports to ``on_result``."""
    return CellOutcome(
        cell_id=str(row["cell_id"]),
        status=str(row["status"]),
        metrics=json.loads(str(row["metrics_json"])),
        error=None,
        wall_s=float(row["wall_s"] or 0.0),
        started_at=str(row["started_at"]),
        finished_at=str(row["finished_at"]),
        versions=json.loads(str(row["versions_json"])),
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


def _random_guess_psnr(folder: Path, seed: int) -> float:
    """The random guess's PSNR against the cell's ground truth (see apps.scoring)."""
    from apps.report import GROUND_TRUTH_FILE
    from apps.scoring import random_guess_psnr
    from fedsim.ground_truth import GroundTruth

    return random_guess_psnr(GroundTruth.load(folder / GROUND_TRUTH_FILE), seed)


def _device(folder: Path) -> str:
    """The device the cell's attack ran on, as its config.json records it."""
    from apps.report import CONFIG_FILE

    return str(json.loads((folder / CONFIG_FILE).read_text())["device"])


def _epsilon(folder: Path) -> float | None:
    """The (ε, δ)-DP guarantee's ε the observation records (dp-sgd), else None."""
    from apps.report import OBSERVATION_FILE
    from defenses.dp_sgd import EPSILON_METRIC
    from fedsim.observation import Observation

    epsilon = Observation.load(folder / OBSERVATION_FILE).context.get(EPSILON_METRIC)
    return None if epsilon is None else float(epsilon)


def _starts_flower(cell: Cell | KindCell) -> bool:
    """Whether the cell's attack needs a Flower run of its own (a secure aggregate, or a
    captured client update, kept in the campaign's ``federated`` folder)."""
    return cell.attacks_aggregate or getattr(cell, "attacks_capture", False)


def _federated_dir(job: Job) -> Path:
    if job.federated_dir is None:
        raise ValueError(f"cell {job.cell.cell_id} needs a Flower run but no cache folder")
    return Path(job.federated_dir)


def _utility_metrics(job: Job, out: Path, epsilon_one_step: float | None) -> dict[str, object]:
    """The cell's utility: final accuracy, the run's ε (else the one-step ε), the run's facts."""
    utility = measure_utility(job.cell, _federated_dir(job), out / FEDERATED_DIR)
    return {
        "accuracy": utility.accuracy[-1],
        "epsilon": epsilon_one_step if utility.epsilon is None else utility.epsilon,
        "epsilon_one_step": epsilon_one_step,
        "federated": {
            "utility_id": utility.utility_id,
            "accuracy_per_round": list(utility.accuracy),
            "wall_s": utility.wall_s,
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


def _dumps(metrics: dict) -> str:
    return json.dumps(metrics, allow_nan=False)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
