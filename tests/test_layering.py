"""The package's layering is true: no module imports from a higher layer (``hifialbedo.LAYERS``).

Every ``.py`` under ``src/hifialbedo`` is parsed with ``ast``; every import counts, at module
level or inside a function, absolute or relative (``from . import x``, ``from ..io import y``),
and ``importlib.import_module("hifialbedo....")`` with a literal (or f-string) prefix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hifialbedo
from hifialbedo import LAYERS

PACKAGE = Path(hifialbedo.__file__).resolve().parent
ROOT = "hifialbedo"
RANK = {name: rank for rank, tier in enumerate(LAYERS) for name in tier}


def module_name(path: Path) -> tuple[str, str]:
    """``(module, package it resolves relative imports against)`` of a source file."""
    parts = (ROOT, *path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def component(module: str) -> str | None:
    """The top-level package (or module) of ``hifialbedo.x.y``: ``x``; None for the root package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import of the package in ``source``, anywhere in it."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == ROOT]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != ROOT:
                continue
            if module == ROOT:  # from hifialbedo import pipeline / __version__
                found += [(node.lineno, f"{ROOT}.{a.name}" if a.name in RANK else ROOT) for a in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                arg = arg.values[0]
            if name == "import_module" and isinstance(arg, ast.Constant) and str(arg.value).startswith(f"{ROOT}."):
                found.append((node.lineno, str(arg.value).rstrip(".")))
    return found


def upward_imports(source: str, module: str, package: str) -> list[str]:
    """The imports of ``source`` (the text of ``module``) that break the layering."""
    here = component(module)
    if here is None:
        return []  # the root package holds the version and LAYERS, and imports nothing
    bad = []
    for line, target in imported_modules(source, package):
        there = component(target)
        if there is None or there == here:
            continue
        if there not in RANK:
            bad.append(f"{module}:{line} imports {target}: {there!r} is in no layer of hifialbedo.LAYERS")
        elif RANK[there] >= RANK[here]:
            side = "a higher" if RANK[there] > RANK[here] else "a sibling"
            bad.append(f"{module}:{line} imports {target}, {side} layer ({here} -> {there})")
    return bad


def test_every_top_level_package_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    tops -= {"__init__"}
    assert tops == set(RANK), "LAYERS must name every top-level package and module, and only those"
    assert sum(len(tier) for tier in LAYERS) == len(RANK), "a package appears in two layers"


def test_the_docstring_shows_the_layers():
    diagram = " -> ".join(" | ".join(tier) for tier in LAYERS)
    assert diagram in " ".join(hifialbedo.__doc__.split())


def test_no_module_imports_from_a_higher_layer():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    bad = []
    for path in files:
        module, package = module_name(path)
        bad += upward_imports(path.read_text(), module, package)
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("source", "module", "package"),
    [
        ("def f():\n    from hifialbedo.training.checkpoint import load_checkpoint\n", "hifialbedo.models.x", "hifialbedo.models"),
        ("from ..pipeline import reconstruct\n", "hifialbedo.eval.x", "hifialbedo.eval"),
        ("from .. import pipeline\n", "hifialbedo.io.x", "hifialbedo.io"),
        ("import hifialbedo.cli\n", "hifialbedo.ops.x", "hifialbedo.ops"),
        ("from hifialbedo import eval\n", "hifialbedo.training", "hifialbedo.training"),  # a sibling
        ("importlib.import_module(f'hifialbedo.pipeline.{name}')\n", "hifialbedo.models.x", "hifialbedo.models"),
    ],
)
def test_the_check_finds_upward_imports(source, module, package):
    assert upward_imports(source, module, package)


def test_the_check_allows_downward_and_own_imports():
    source = "from . import saved\nfrom ..ops.colour import srgb_to_linear\nfrom hifialbedo import __version__\n"
    assert upward_imports(source, "hifialbedo.models.x", "hifialbedo.models") == []
