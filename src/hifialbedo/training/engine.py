"""The generic training loop: any ``Stage`` on any dataset, one device or distributed (Lightning Fabric).

Models compute, this orchestrates: the stage builds modules and computes losses; ``fit`` does
devices, precision, DDP, optimisers, gradient accumulation, logging, samples and checkpoints,
and resumes a killed run exactly where its last checkpoint left it.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm.auto import tqdm

from hifialbedo.models.saved import CHECKPOINT_FORMAT, atomic_write_bytes, load_checkpoint
from hifialbedo.training.checkpoint import LAST, capture_rng_state, restore_rng_state, save_checkpoint, step_checkpoints
from hifialbedo.training.config import TrainConfig
from hifialbedo.training.data import StepBatchSampler, derive_seed
from hifialbedo.training.metrics import MetricsLog, save_sample_grids

# Settings that change the loss curve; a resumed run that changes them is not a continuation.
_TRAJECTORY_KEYS = ("batch_size", "grad_accum", "lr", "betas", "weight_decay", "precision", "seed")


@runtime_checkable
class Stage(Protocol):
    """What a training stage gives the engine. It computes; ``fit`` orchestrates.

    ``fit`` calls ``build`` once (after seeding), then per step, for each optimiser in order and
    each of ``grad_accum`` micro-batches, ``loss``. While optimiser ``o`` runs, only the modules
    it updates require gradients, so e.g. a generator loss that goes through the discriminator
    leaves the discriminator's gradients untouched. A stage may also define
    ``config_dict() -> dict`` (plain values), saved in every checkpoint.
    """

    def build(self) -> dict[str, nn.Module]:
        """All named modules, trainable and frozen, freshly initialised on the CPU."""
        ...

    def frozen(self) -> set[str]:
        """Names of modules never trained: moved to the device, eval mode, no gradients, not DDP-wrapped."""
        ...

    def optimizers(self) -> list[tuple[str, list[str], float]]:
        """Ordered ``(optimiser name, module names it updates, lr multiplier)``; each trainable module in exactly one."""
        ...

    def loss(self, modules: dict[str, nn.Module], batch: Any, step: int, optimizer: str) -> tuple[Tensor, dict[str, float]]:
        """The scalar loss for ``optimizer`` on one micro-batch (a mean over its samples) and metrics to log.

        ``modules``: trainable ones wrapped by Fabric (call them, don't reach into them), frozen
        ones plain. ``batch``: the collated micro-batch on the device. ``step``: optimiser steps
        completed before this one (0 first). Metric names should differ between optimisers.
        """
        ...

    def samples(self, modules: dict[str, nn.Module], batch: Any) -> dict[str, Tensor]:
        """Named ``(B, 3, H, W)`` sRGB images in [0, 1] to write as PNG grids (called under ``no_grad``, eval mode)."""
        ...


@dataclass(frozen=True)
class FitResult:
    """What ``fit`` returns (on every rank)."""

    step: int
    """Optimiser steps completed."""
    metrics: dict[str, float]
    """The last logged metrics (averaged over ranks)."""
    checkpoint: Path | None
    """The last checkpoint written or resumed from."""


@dataclass
class _Run:
    """The set-up modules and optimisers of one ``fit`` call."""

    originals: dict[str, nn.Module]  # as built (parameters shared with the wrapped ones)
    modules: dict[str, nn.Module]  # what the stage's loss sees: Fabric-wrapped trainable, plain frozen
    trainable: dict[str, nn.Module]  # name -> Fabric-wrapped module
    optimizers: list[tuple[str, list[str], Any]] = field(default_factory=list)  # (name, module names, optimizer)
    grad_flags: dict[str, list[bool]] = field(default_factory=dict)  # requires_grad as built


def make_fabric(config: TrainConfig) -> Fabric:
    """A ``Fabric`` for the config's accelerator, devices, nodes, strategy and precision (not launched)."""
    return Fabric(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
    )


def fit(
    stage: Stage,
    dataset: Dataset,
    config: TrainConfig,
    *,
    fabric: Fabric | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> FitResult:
    """Train ``stage`` on ``dataset`` for ``config.max_steps`` optimiser steps; resume from ``last.ckpt``.

    ``fabric``: an already launched ``Fabric`` (default: ``make_fabric(config)``, launched here;
    with ``strategy="ddp"`` outside ``torchrun`` Fabric re-runs the command once per device).
    Every rank must see ``config.out_dir`` (a shared file system across nodes). The run is a
    function of (config, stage, dataset): resumed or not, and over any split of the global batch
    into devices x accumulation, it follows the same loss curve (up to float summation order).
    """
    if fabric is None:
        fabric = make_fabric(config)
        fabric.launch()
    out_dir = Path(config.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    resume = _load_resume(config, ckpt_dir, fabric)
    stage_config = stage.config_dict() if hasattr(stage, "config_dict") else None

    _seed_all(config.seed)
    run = _setup(stage, fabric, config, resume)
    start = int(resume["step"]) if resume else 0
    sampler = StepBatchSampler(
        len(dataset),
        batch_size=config.batch_size,
        grad_accum=config.grad_accum,
        world_size=fabric.world_size,
        rank=fabric.global_rank,
        seed=config.seed,
        start_step=start,
        max_steps=config.max_steps,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate_fn,
        pin_memory=fabric.device.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed),  # keeps the global RNG untouched
    )
    _restore_or_seed_rank_rng(fabric, config, resume)

    log: MetricsLog | None = None

    def open_run_folder() -> MetricsLog | None:
        """The run folder, its config.json and metrics.csv: made once the first step has run, so
        a run that fails to start (bad data, a bad setting, out of memory) leaves no folder."""
        if not fabric.is_global_zero:
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"train": config.to_dict(), "stage": stage_config}, indent=2, default=str)
        atomic_write_bytes((text + "\n").encode(), out_dir / "config.json")
        return MetricsLog(out_dir, start_step=start)

    sample_batch = _sample_batch(fabric, dataset, config, collate_fn) if fabric.is_global_zero and config.sample_every else None
    metrics: dict[str, float] = dict(resume.get("metrics") or {}) if resume else {}
    last_ckpt = ckpt_dir / LAST if resume else None
    elapsed0 = float(resume.get("elapsed", 0.0)) if resume else 0.0
    t0 = t_log = time.perf_counter()
    step_log = start
    bar = tqdm(total=config.max_steps, initial=start, disable=not fabric.is_global_zero, desc=out_dir.name, dynamic_ncols=True)
    batches = iter(loader)
    try:
        for step in range(start, config.max_steps):
            micro_batches = [fabric.to_device(next(batches)) for _ in range(config.grad_accum)]
            local = _train_step(fabric, stage, run, micro_batches, step)
            if step == start:
                log = open_run_folder()
            done = step + 1
            if done % config.log_every == 0 or done == config.max_steps:
                now = time.perf_counter()
                metrics = _mean_over_ranks(fabric, local)
                metrics.update({f"lr/{name}": opt.param_groups[0]["lr"] for name, _, opt in run.optimizers})
                metrics["images_per_s"] = sampler.global_batch * (done - step_log) / max(now - t_log, 1e-9)
                metrics["elapsed_s"] = elapsed0 + now - t0
                t_log, step_log = now, done
                if log is not None:
                    log.log(done, metrics)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k.startswith("loss")}, refresh=False)
            if done % config.ckpt_every == 0 or done == config.max_steps:
                state = _checkpoint_state(
                    fabric, run, config, stage_config, sampler, done, metrics, elapsed0 + time.perf_counter() - t0
                )
                if fabric.is_global_zero:
                    save_checkpoint(state, ckpt_dir, keep_last=config.keep_last_checkpoints)
                last_ckpt = ckpt_dir / LAST
            if sample_batch is not None and done % config.sample_every == 0:
                save_sample_grids(_samples(fabric, stage, run, sample_batch), out_dir / "samples", done)
            bar.update(1)
    finally:
        bar.close()
        if log is not None:
            log.close()
    fabric.barrier()
    return FitResult(step=max(start, config.max_steps), metrics=metrics, checkpoint=last_ckpt)


def _setup(stage: Stage, fabric: Fabric, config: TrainConfig, resume: dict[str, Any] | None) -> _Run:
    originals = stage.build()
    frozen = set(stage.frozen())
    groups = stage.optimizers()
    _check_stage(originals, frozen, groups)
    if resume is not None:
        for name, module in originals.items():
            if name not in resume["modules"]:
                raise ValueError(f"{resume['path']}: no weights for module {name!r}")
            module.load_state_dict(resume["modules"][name])
    run = _Run(originals=originals, modules={}, trainable={})
    for name, module in originals.items():
        if name in frozen:
            module = fabric.to_device(module).eval().requires_grad_(False)
            run.modules[name] = module
        else:
            run.grad_flags[name] = [p.requires_grad for p in module.parameters()]
            wrapped = fabric.setup_module(torch.compile(module) if config.compile else module)
            run.modules[name] = run.trainable[name] = wrapped
    for opt_name, names, lr_mult in groups:
        params = [p for n in names for p in originals[n].parameters() if p.requires_grad]
        adam = torch.optim.Adam(params, lr=config.lr * lr_mult, betas=config.betas, weight_decay=config.weight_decay)
        optimizer = fabric.setup_optimizers(adam)
        if resume is not None:
            optimizer.load_state_dict(resume["optimizers"][opt_name])
        run.optimizers.append((opt_name, list(names), optimizer))
    if resume is not None and resume.get("scaler"):
        fabric.strategy.precision.load_state_dict(resume["scaler"])
    return run


def _check_stage(modules: Mapping[str, nn.Module], frozen: set[str], groups: list[tuple[str, list[str], float]]) -> None:
    if unknown := frozen - set(modules):
        raise ValueError(f"stage.frozen() names unknown modules {sorted(unknown)}; built: {sorted(modules)}")
    seen: list[str] = []
    for opt_name, names, _ in groups:
        for n in names:
            if n not in modules or n in frozen:
                raise ValueError(f"optimizer {opt_name!r} updates {n!r}, which is not a trainable module")
        seen += names
    trainable = set(modules) - frozen
    if sorted(seen) != sorted(trainable):
        raise ValueError(f"each trainable module must be in exactly one optimizer: trainable {sorted(trainable)}, got {seen}")
    if len({g[0] for g in groups}) != len(groups):
        raise ValueError(f"optimizer names must be unique, got {[g[0] for g in groups]}")


def _train_step(fabric: Fabric, stage: Stage, run: _Run, micro_batches: list[Any], step: int) -> dict[str, float]:
    """One optimiser step per optimiser, each accumulating over all micro-batches; returns local metric means."""
    n = len(micro_batches)
    metrics: dict[str, float] = {}
    try:
        for opt_name, names, optimizer in run.optimizers:
            _enable_grads(run, active=set(names))
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            for i, batch in enumerate(micro_batches):
                last = i == n - 1
                with contextlib.ExitStack() as stack:
                    # Sync gradients only on the last micro-batch, and only for this optimiser's modules.
                    for name, module in run.trainable.items():
                        stack.enter_context(fabric.no_backward_sync(module, enabled=name not in names or not last))
                    with fabric.autocast():
                        loss, extra = stage.loss(run.modules, batch, step, opt_name)
                    fabric.backward(loss / n)
                for key, value in {f"loss/{opt_name}": loss.detach(), **extra}.items():
                    sums[key] = sums.get(key, 0.0) + float(value) / n
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            metrics.update(sums)
    finally:
        _enable_grads(run, active=set(run.trainable))
    return metrics


def _enable_grads(run: _Run, active: set[str]) -> None:
    """Parameters require gradients as built, but only in the ``active`` modules."""
    for name, flags in run.grad_flags.items():
        for p, flag in zip(run.originals[name].parameters(), flags, strict=True):
            p.requires_grad_(flag and name in active)


def _mean_over_ranks(fabric: Fabric, local: dict[str, float]) -> dict[str, float]:
    keys = sorted(local)
    if fabric.world_size == 1:
        return {k: local[k] for k in keys}
    values = torch.tensor([local[k] for k in keys], dtype=torch.float64, device=fabric.device)
    return dict(zip(keys, fabric.all_reduce(values, reduce_op="mean").tolist(), strict=True))


def _samples(fabric: Fabric, stage: Stage, run: _Run, batch: Any) -> dict[str, Tensor]:
    """``stage.samples`` on the plain modules in eval mode, without touching the training RNG streams."""
    modes = {name: run.originals[name].training for name in run.trainable}
    devices = [fabric.device.index or 0] if fabric.device.type == "cuda" else []
    try:
        for name in run.trainable:
            run.originals[name].eval()
        with torch.random.fork_rng(devices=devices), torch.no_grad(), fabric.autocast():
            return stage.samples(dict(run.originals), batch)
    finally:
        for name, mode in modes.items():
            run.originals[name].train(mode)


def _sample_batch(fabric: Fabric, dataset: Dataset, config: TrainConfig, collate_fn: Callable | None) -> Any:
    """A fixed batch (the first items of the dataset) for sample grids, so they show progress on the same inputs."""
    items = [dataset[i] for i in range(min(config.batch_size, len(dataset)))]
    return fabric.to_device((collate_fn or default_collate)(items))


def _checkpoint_state(
    fabric: Fabric,
    run: _Run,
    config: TrainConfig,
    stage_config: dict | None,
    sampler: StepBatchSampler,
    step: int,
    metrics: dict[str, float],
    elapsed: float,
) -> dict[str, Any]:
    """The checkpoint dict (every rank takes part: RNG states are gathered)."""
    rng = _gather_rng(fabric)
    return {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "modules": {name: module.state_dict() for name, module in run.originals.items()},
        "optimizers": {name: optimizer.state_dict() for name, _, optimizer in run.optimizers},
        "scaler": fabric.strategy.precision.state_dict() or None,
        "rng": rng,
        "sampler": sampler.position(step),
        "elapsed": elapsed,
        "metrics": dict(metrics),
        "train_config": config.to_dict(),
        "stage_config": stage_config,
        "world_size": fabric.world_size,
    }


def _gather_rng(fabric: Fabric) -> list[dict[str, Any]]:
    """Every rank's RNG states, in rank order (``torch.distributed.all_gather_object``: Fabric gathers tensors only)."""
    state = capture_rng_state()
    if fabric.world_size == 1:
        return [state]
    gathered: list[Any] = [None] * fabric.world_size
    torch.distributed.all_gather_object(gathered, state)
    return gathered


def _load_resume(config: TrainConfig, ckpt_dir: Path, fabric: Fabric) -> dict[str, Any] | None:
    path = ckpt_dir / LAST
    if not config.resume:
        if path.exists() or step_checkpoints(ckpt_dir):
            raise FileExistsError(f"{ckpt_dir}: holds checkpoints of an earlier run; set resume=true or use another out_dir")
        return None
    if not path.exists():
        return None
    state = load_checkpoint(path)
    state["path"] = str(path)
    old = state.get("train_config", {})
    changed = [k for k in _TRAJECTORY_KEYS if k in old and old[k] != config.to_dict()[k]]
    if state.get("world_size", fabric.world_size) != fabric.world_size:
        changed.append("world size")
    if changed and fabric.is_global_zero:
        warnings.warn(f"{path}: resuming with changed {changed}; the run will not continue the same loss curve", stacklevel=3)
    return state


def _seed_all(seed: int) -> None:
    """The same seed for Python, NumPy and torch (CPU and CUDA) on every rank: identical module init."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _restore_or_seed_rank_rng(fabric: Fabric, config: TrainConfig, resume: dict[str, Any] | None) -> None:
    """Resumed: each rank's saved RNG state. Fresh (or a changed world size): a distinct seed per rank."""
    rng = resume.get("rng") if resume else None
    if rng is not None and len(rng) == fabric.world_size:
        restore_rng_state(rng[fabric.global_rank])
    else:
        _seed_all(derive_seed(config.seed, fabric.global_rank, 1))
