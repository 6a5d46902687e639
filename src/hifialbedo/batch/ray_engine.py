"""The ``ray`` engine: Ray Data over a local Ray or an existing cluster.

``ray.data.from_items`` over the tasks (one JSON string per row, one row per block up to
:data:`MAX_BLOCKS`, so results stream back as they finish and work spreads evenly), then
``map_batches`` with a callable class, :class:`RayReconstructor`, on an actor pool of
``workers`` actors with one CPU each: each actor loads the models once. The driver iterates
the results as they arrive (``iter_rows``). The items run the same :class:`ItemProcessor` as
the local engine, so the results are the same.

Without an address a local Ray is started with ``workers`` CPUs and shut down at the end;
with one (``auto``, ``HOST:PORT``, ``ray://...``) the driver joins that cluster
(``ray start --head`` / ``ray start --address ...``) and leaves it running. INPUT_DIR,
OUT_DIR and the training-data folder must then be on storage every node sees, at the same
path, and hifialbedo installed on every node. Ray's own logs and progress bars stay off the
terminal (the driver shows one progress bar for both engines).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from hifialbedo.pipeline import ReconstructConfig

MAX_BLOCKS = 20_000
"""At most this many blocks (Ray Data's unit of work); more tasks share blocks."""


def ray_available() -> bool:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


class RayReconstructor:
    """Ray Data's callable class: one per actor, models loaded once in ``__init__``."""

    def __init__(self, config: ReconstructConfig) -> None:
        from hifialbedo.batch.worker import ItemProcessor, limit_threads
        from hifialbedo.pipeline.allocator import keep_freed_memory

        os.environ.setdefault("GLOG_minloglevel", "2")
        limit_threads()
        keep_freed_memory()  # the actor's process is ours for its lifetime, as a local worker's is
        self.processor = ItemProcessor(config)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return {"result": [json.dumps(self.processor(json.loads(str(t)))) for t in batch["task"]]}


class RayEngine:
    """``results(tasks)`` yields one result per task, in completion order."""

    name = "ray"

    def __init__(self, config: ReconstructConfig, *, workers: int | None, address: str | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"--workers must be >= 1 with --engine ray, got {workers}")
        if not ray_available():
            raise ValueError('--engine ray needs Ray Data: pip install -e ".[ray]" (or pip install "ray[data]")')
        self.config, self.workers, self.address = config, workers, address

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
        return f"{self.workers} Ray actor(s) on {where}" if self.workers else f"one Ray actor per CPU of {where}"

    def results(self, tasks: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if not tasks:
            return
        import ray
        import ray.data

        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)
        started = False
        if not ray.is_initialized():
            # The driver's C++ core worker prints notices to the terminal (an error-looking line
            # about actor constructor arguments for every Ray Data actor pool): keep fatal ones only.
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.workers or os.cpu_count() or 1, **kwargs)
            started = True
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            ctx.enable_auto_log_stats = False
            workers = self.workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
            workers = min(workers, len(tasks))
            ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=min(len(tasks), MAX_BLOCKS))
            out = ds.map_batches(
                RayReconstructor,
                fn_constructor_kwargs={"config": self.config},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=1,
            )
            try:
                for row in out.iter_rows():
                    yield json.loads(row["result"])
            except (ray.exceptions.RayError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RuntimeError(f"Ray run failed: {first}") from None
        finally:
            if started:
                ray.shutdown()
