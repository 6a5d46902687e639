"""``train(...)``: what ``hifialbedo train stage1|stage2|stage3`` runs.

Resolution order, later wins: the preset (``--preset tiny|paper``: the train settings below
and the stage's preset), the config file's ``[train]`` and ``[stageN]`` tables, the
``--set`` overrides (``train.max_steps=10``, ``stage1.adv_weight=0.5``,
``stage1.vq.codebook_size=64``), then ``-o OUT`` for ``train.out_dir``. Example file::

    [train]
    max_steps = 2000
    batch_size = 4

    [stage1]
    adv_weight = 0.8
    [stage1.vq]
    codebook_size = 512

A run's own ``config.json`` (``{"train": ..., "stage": {"stage": "stage1", "stage1": ...}}``,
written by ``training.engine.fit``) is accepted as a config file too, so a run can be repeated.

Data: ``--data kind:folder`` (repeatable). Stage 1 takes kinds ``images``, ``uv`` and
``synth`` (see ``training.stage1.stage1_dataset``); stages 2 and 3 name their own.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hifialbedo.io.output import check_not_an_input
from hifialbedo.training.config import TrainConfig, load_config, parse_overrides, read_config_file
from hifialbedo.training.stage1 import CodebookStage, stage1_config, stage1_dataset
from hifialbedo.typed_config import merge_settings

STAGES = ("stage1", "stage2", "stage3")

# Engine settings per preset. "paper": section 4.1 (Adam 0.9/0.999, lr 1e-5, batch 4 per GPU;
# stage 1 ran 10 epochs of 0.5 M images on 32 GPUs = 39,063 steps at global batch 128; set
# devices/num_nodes/precision for the machine). "tiny": a few minutes on a 2-core CPU
# (lr 1e-3: at 2e-4 a 64 px tiny codebook is still a blur after 300 steps).
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(
        max_steps=39_063, batch_size=4, lr=1e-5, betas=(0.9, 0.999), ckpt_every=2000, sample_every=1000, log_every=50
    ),
    "tiny": TrainConfig(max_steps=600, batch_size=8, lr=1e-3, betas=(0.9, 0.999), ckpt_every=200, sample_every=100, log_every=10),
}

_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def parse_data_specs(specs: Sequence[str]) -> list[tuple[str, Path]]:
    """``["synth:/data/s", "images:faces"]`` -> ``[("synth", Path("/data/s")), ...]``.

    ValueError naming the spec when it is not ``kind:folder``, or the folder when it does not exist.
    """
    sources = []
    for spec in specs:
        kind, sep, path = spec.partition(":")
        if not sep or not _KIND.match(kind) or not path:
            raise ValueError(f"--data {spec!r}: expected kind:folder (e.g. synth:/data/synthetic)")
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ValueError(f"--data {spec!r}: {folder}: folder does not exist")
        sources.append((kind, folder))
    return sources


def _file_tables(path: Path) -> dict[str, dict[str, Any]]:
    """The ``train`` and ``stageN`` tables of a config file (a run's ``config.json`` layout accepted too)."""
    table = read_config_file(path)
    stage = table.get("stage")
    if isinstance(stage, dict) and isinstance(stage.get("stage"), str):  # a run's config.json
        name = stage["stage"]
        table = {k: v for k, v in table.items() if k != "stage"}
        table[name] = stage.get(name) or {}
    elif stage is None and "stage" in table:
        table.pop("stage")  # config.json of a stage without config_dict
    unknown = sorted(set(table) - {"train", *STAGES})
    if unknown:
        raise ValueError(f"{path}: unknown tables {unknown}; expected [train] and [{'] / ['.join(STAGES)}]")
    for name, value in table.items():
        if not isinstance(value, dict):
            raise TypeError(f"{path}: {name} must be a table, got {value!r}")
    return table


def resolve_config(
    stage_name: str,
    *,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
    preset: str = "tiny",
) -> tuple[TrainConfig, dict[str, Any]]:
    """The ``TrainConfig`` and the stage's (nested, plain) override table, from preset, file, ``--set`` and ``-o``."""
    if stage_name not in STAGES:
        raise ValueError(f"unknown stage {stage_name!r}; choose from {list(STAGES)}")
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(TRAIN_PRESETS)}")
    tables = _file_tables(Path(config_path)) if config_path is not None else {}

    train_overrides: list[str] = []
    stage_dotted: dict[str, Any] = {}
    for item in overrides:
        ((key, value),) = parse_overrides([item]).items()
        head, sep, rest = key.partition(".")
        if head == "train" and sep:
            train_overrides.append(f"{rest}={item.partition('=')[2]}")  # load_config parses and type-checks it
        elif head == stage_name and sep:
            stage_dotted[rest] = value
        elif head in STAGES and sep:
            raise ValueError(f"--set {item}: this run trains {stage_name}, not {head}")
        else:
            raise ValueError(f"--set {item}: keys must start with 'train.' or '{stage_name}.' (e.g. train.max_steps=10)")

    base = TRAIN_PRESETS[preset].replace(out_dir=f"runs/{stage_name}")
    if "train" in tables:
        train_cfg = load_config(config_path, train_overrides, base=base, section="train")
    else:
        train_cfg = load_config(None, train_overrides, base=base)
    if out_dir is not None:
        train_cfg = train_cfg.replace(out_dir=str(out_dir))
    return train_cfg, merge_settings(tables.get(stage_name, {}), stage_dotted)


def build_stage(
    stage_name: str, stage_overrides: Mapping[str, Any], sources: list[tuple[str, Path]], preset: str, init: Path | None
) -> tuple[Any, Any]:
    """``(stage, dataset)`` for ``stage_name``; stages 2 and 3 come from ``training.stageN.build_stageN``."""
    if stage_name == "stage1":
        if init is not None:
            raise ValueError("--init is for stage2/stage3 (the previous stage's checkpoint); stage1 starts from scratch")
        config = stage1_config(preset).updated(stage_overrides)
        return CodebookStage(config), stage1_dataset(sources, config.vq.image_size)
    module_name = f"hifialbedo.training.{stage_name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise NotImplementedError(f"{stage_name} training is not available: module {module_name} is missing") from None
    builder = getattr(module, f"build_{stage_name}", None)
    if builder is None:
        raise NotImplementedError(f"{stage_name} training is not available: {module_name} has no build_{stage_name}()")
    return builder(dict(stage_overrides), sources, preset, init)


def train(
    stage_name: str,
    *,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    data: Sequence[str] = (),
    out_dir: str | Path | None = None,
    preset: str = "tiny",
    init: str | Path | None = None,
):
    """Train ``stage_name`` ("stage1", "stage2", "stage3") and return the engine's ``FitResult``.

    ``config_path``: TOML/JSON with ``[train]`` (``TrainConfig`` fields) and ``[stageN]``
    tables; ``overrides``: ``--set`` items ``train.key=value`` / ``stageN.a.b=value`` (values
    read as JSON when they parse); ``data``: ``--data`` items ``kind:folder``; ``out_dir``:
    ``-o`` (wins over the config); ``preset``: "tiny" or "paper"; ``init``: the previous
    stage's checkpoint (stages 2 and 3). The run folder gets ``config.json`` (the resolved train
    and stage configs), ``metrics.csv``, ``samples/`` and ``checkpoints/``; an existing run
    there resumes. ValueError for bad settings, data specs or folders (naming them).
    """
    train_cfg, stage_overrides = resolve_config(
        stage_name, config_path=config_path, overrides=overrides, out_dir=out_dir, preset=preset
    )
    sources = parse_data_specs(data)
    if not sources:
        raise ValueError("no training data: give at least one --data kind:folder")
    check_not_an_input(train_cfg.out_dir, [folder for _, folder in sources])  # samples would become data
    init_path = Path(init) if init is not None else None
    if init_path is not None and not init_path.is_file():
        raise ValueError(f"--init {init_path}: checkpoint not found")
    stage, dataset = build_stage(stage_name, stage_overrides, sources, preset, init_path)

    from hifialbedo.training.engine import fit  # imports Lightning Fabric

    return fit(stage, dataset, train_cfg)  # writes out_dir/config.json: train + stage.config_dict()


__all__ = ["STAGES", "TRAIN_PRESETS", "build_stage", "parse_data_specs", "resolve_config", "train"]
