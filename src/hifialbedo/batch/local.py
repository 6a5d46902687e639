"""The ``local`` engine: a process pool on this machine, each worker loading the models once.

Workers come from a *forkserver* (``multiprocessing``): a clean process that imports the
pipeline once, single-threaded (``batch._worker_env``), and forks each worker from there, so
a worker starts in well under a second and inherits no threads or MediaPipe state from the
driver. ``workers=0`` runs the items in the calling process instead (debugging; what the
tests use to inject faults).

At most ``workers`` tasks are handed out at a time, so a stopped run has little in flight.
When a worker process dies (killed, or a crash in native code), the tasks that were in
flight are not lost: each is run again alone in a fresh pool; one that kills its worker
again when alone is recorded as failed.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from hifialbedo.pipeline import ReconstructConfig

_PROCESSOR = None  # this worker process's ItemProcessor (set by _init_worker)
_INIT_ERROR = ""  # why it could not be made
WORKER_DIED = "worker process died while reconstructing it (killed, out of memory, or a crash in native code)"


def _init_worker(config: ReconstructConfig) -> None:
    from hifialbedo.batch.worker import ItemProcessor, limit_threads
    from hifialbedo.pipeline.allocator import keep_freed_memory

    global _PROCESSOR, _INIT_ERROR
    try:
        limit_threads()
        keep_freed_memory()
        _PROCESSOR = ItemProcessor(config)
    except Exception as exc:  # noqa: BLE001  reported with the first task: the driver stops the run
        _INIT_ERROR = f"{type(exc).__name__}: {exc}"


def _run_task(task: dict[str, Any]) -> dict[str, Any]:
    if _PROCESSOR is None:
        return {"key": task["key"], "status": "fatal", "error": f"a worker could not load the models ({_INIT_ERROR})", "seconds": 0.0}
    return _PROCESSOR(task)


class LocalEngine:
    """``results(tasks)`` yields one result per task, in completion order."""

    name = "local"

    def __init__(self, config: ReconstructConfig, *, workers: int) -> None:
        if workers < 0:
            raise ValueError(f"--workers must be >= 0, got {workers}")
        self.config, self.workers = config, workers

    def describe(self) -> str:
        return "in this process" if self.workers == 0 else f"{self.workers} local worker process(es)"

    def results(self, tasks: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if not tasks:
            return
        if self.workers == 0:
            from hifialbedo.batch.worker import ItemProcessor

            processor = ItemProcessor(self.config)
            for task in tasks:
                yield processor(task)
            return
        yield from self._pool_results(tasks)

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["hifialbedo.batch._worker_env", "hifialbedo.batch.worker"])
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(self.config,))

    def _pool_results(self, tasks: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        workers = min(self.workers, len(tasks))
        queue = deque(tasks)
        suspects: deque[dict[str, Any]] = deque()  # in flight when a worker died: rerun one at a time
        in_flight: dict[Future, dict[str, Any]] = {}
        pool = self._new_pool(workers)
        alone = False
        try:
            while queue or suspects or in_flight:
                if suspects:
                    if not in_flight:
                        task = suspects.popleft()
                        in_flight[pool.submit(_run_task, task)] = task
                        alone = True  # a suspect runs alone: if its worker dies now, it is the cause
                else:
                    while queue and len(in_flight) < workers:
                        task = queue.popleft()
                        in_flight[pool.submit(_run_task, task)] = task
                        alone = False
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                lost = []
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        lost.append(task)
                        continue
                    except Exception as exc:  # noqa: BLE001  e.g. a result that cannot be pickled: record it, go on
                        result = {"key": task["key"], "status": "failed", "error": f"{task['source']}: {type(exc).__name__}: {exc}", "seconds": 0.0}
                    yield result
                if lost:
                    lost += list(in_flight.values())  # the pool is broken: every task in it is lost
                    in_flight.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    if alone and len(lost) == 1:
                        task = lost[0]
                        yield {"key": task["key"], "status": "failed", "error": f"{task['source']}: {WORKER_DIED}", "seconds": 0.0}
                    else:
                        suspects.extend(lost)
                    pool = self._new_pool(workers)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

