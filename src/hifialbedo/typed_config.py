"""Typed configuration dataclasses from and to plain values (JSON, TOML, checkpoints).

Every settings object of the package (model architectures, training stages, the engine) is
a frozen dataclass; these functions read one from a dict with its names and types checked,
and write it back, so a config survives a checkpoint or a ``config.json`` unchanged::

    cfg = coerce_config(VQConfig, {"codebook_size": 512, "channel_mult": [1, 2, 2]})
    coerce_config(VQConfig, config_dict(cfg)) == cfg
    cfg.updated({"vq.beta": 0.5})  # overrides: :func:`merge_settings`, the one rule for every config

No dependency on the rest of the package, so every layer can use it.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Example(ConfigDictMixin):
...     size: int = 8
...     scale: float = 1.0
...     sizes: tuple[int, ...] = (1, 2)
>>> Example().to_dict()
{'size': 8, 'scale': 1.0, 'sizes': [1, 2]}
>>> Example.from_dict({"scale": 2}) == Example(scale=2.0)
True
>>> Example().updated({"size": 4, "sizes": [3]})
Example(size=4, scale=1.0, sizes=(3,))
>>> Example.from_dict({"size": "4"})
Traceback (most recent call last):
...
ValueError: size: expected int, got '4'
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self


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


def merge_settings(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update`` (new dicts, inputs untouched): tables present in both merge,
    recursively, and a dotted key reaches into nested tables (``{"vq.beta": 0.5}`` is
    ``{"vq": {"beta": 0.5}}``). ValueError for a key with an empty part.

    >>> merge_settings({"vq": {"beta": 0.25, "size": 64}, "lr": 1.0}, {"vq.size": 32, "lr": 2.0})
    {'vq': {'beta': 0.25, 'size': 32}, 'lr': 2.0}
    >>> merge_settings({}, {"a": {"b.c": 1}})
    {'a': {'b': {'c': 1}}}
    """
    out = dict(base)
    for key, value in update.items():
        parts = key.split(".")
        if any(not p for p in parts):
            raise ValueError(f"override key {key!r} has an empty part")
        head = parts[0]
        if len(parts) > 1:
            value = {".".join(parts[1:]): value}
        if isinstance(value, Mapping):
            value = merge_settings(out[head] if isinstance(out.get(head), Mapping) else {}, value)
        out[head] = value
    return out


class ConfigDictMixin:
    """``to_dict()`` / ``from_dict()`` / ``updated()`` for frozen config dataclasses, by
    :func:`config_dict`, :func:`coerce_config` and :func:`merge_settings`: JSON-serialisable, so a
    checkpoint can store the dict next to the weights and rebuild the architecture
    (``Model(Config.from_dict(d))``)."""

    settings_prefix: ClassVar[str] = ""
    """The dotted prefix errors name this config's keys with (``"stage1."``: ``stage1.vq.beta``)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML values (tuples as lists, nested configs as tables); ``from_dict(to_dict())`` is equal."""
        return config_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """From plain values, type-checked; missing keys (also inside nested tables) keep the defaults."""
        return coerce_config(cls, data, where=cls.settings_prefix)

    def updated(self, overrides: Mapping[str, Any]) -> Self:
        """A copy with ``overrides`` applied by :func:`merge_settings` (nested tables merge, dotted
        keys reach into them: ``{"vq": {"codebook_size": 64}}`` or ``{"vq.codebook_size": 64}``)."""
        return type(self).from_dict(merge_settings(self.to_dict(), overrides))


__all__ = ["ConfigDictMixin", "coerce_config", "config_dict", "merge_settings"]
