"""Typed configuration dataclasses from and to plain values (JSON, TOML, checkpoints).

Every settings object of the package (model architectures, training stages, the engine) is
a frozen dataclass; these functions read one from a dict with its names and types checked,
and write it back, so a config survives a checkpoint or a ``config.json`` unchanged::

    cfg = coerce_config(VQConfig, {"codebook_size": 512, "channel_mult": [1, 2, 2]})
    coerce_config(VQConfig, config_dict(cfg)) == cfg

No dependency on the rest of the package, so every layer can use it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Literal, Self


def coerce_config(cls: type, data: Mapping[str, Any], *, where: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from plain values (JSON/TOML), checking names and types.

    Missing fields keep their defaults; nested dataclass fields take (partial) dicts; ints are
    accepted for floats, lists for tuples; ``Literal`` fields must hold one of their values.
    Errors are ``ValueError`` naming the dotted key (``where`` is its prefix, e.g. ``"stage1."``).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{where.rstrip('.') or cls.__name__}: expected a table of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown {where}{cls.__name__} settings {unknown}; known: {names}")
    return cls(**{k: _coerce(f"{where}{k}", v, hints[k]) for k, v in data.items()})


def _coerce(name: str, value: Any, hint: Any) -> Any:
    def bad() -> ValueError:
        return ValueError(f"{name}: expected {getattr(hint, '__name__', hint)}, got {value!r}")

    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return coerce_config(hint, value, where=f"{name}.")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"{name}: must be one of {list(typing.get_args(hint))}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise bad()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(name, v, args[0]) for v in value)
        if len(value) != len(args):
            raise bad()
        return tuple(_coerce(name, v, a) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise bad()
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad()
        return value
    raise TypeError(f"{name}: unsupported config type {hint}")  # pragma: no cover - a new field type


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON/TOML values (tuples as lists, nested configs by their own
    ``to_dict``); ``coerce_config(type(config), config_dict(config))`` is equal."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = value.to_dict() if hasattr(value, "to_dict") else list(value) if isinstance(value, tuple) else value
    return out


class ConfigDictMixin:
    """``to_dict()`` / ``from_dict()`` for frozen config dataclasses, by :func:`config_dict` and
    :func:`coerce_config`: JSON-serialisable, so a checkpoint can store the dict next to the
    weights and rebuild the architecture (``Model(Config.from_dict(d))``)."""

    def to_dict(self) -> dict[str, Any]:
        return config_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return coerce_config(cls, data)


__all__ = ["ConfigDictMixin", "coerce_config", "config_dict"]
