"""Renders spread over processes, one render thread each: on these 2 cores two such processes
render more views per second than one process on two threads (Mitsuba's ``aov`` passes run
slower on two threads; see render.py's ``_one_thread``)."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import TypeVar

from fedsim.errors import UserInputError

T = TypeVar("T")
R = TypeVar("R")


def map_renders(fn: Callable[[T], R], items: Sequence[T], workers: int = 1) -> Iterator[R]:
    """``fn`` of each item, in order, as each is ready; ``workers`` > 1 runs them in that many
    spawned processes with one render thread each (``fn`` must pickle: a module-level function
    or a functools.partial of one)."""
    if workers < 1:
        raise UserInputError(f"workers must be positive, got {workers}")
    if workers == 1 or len(items) <= 1:
        return map(fn, items)
    return _in_processes(fn, items, workers)


def _in_processes(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_one_render_thread
    ) as pool:
        for payload in pool.map(partial(_pickled, fn), items):
            yield pickle.loads(payload)


def _pickled(fn: Callable[[T], R], item: T) -> bytes:
    """``fn(item)`` by plain pickle: multiprocessing's own pickler hands torch tensors over
    through shared memory, which containers cap (Docker: 64 MB, under a thousand views' paint)."""
    return pickle.dumps(fn(item), protocol=pickle.HIGHEST_PROTOCOL)


def _one_render_thread() -> None:
    """Worker start: one Mitsuba (Dr.Jit) thread per process, so that workers share the cores."""
    import drjit

    drjit.set_thread_count(1)
