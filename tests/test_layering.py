"""The package's data flow runs one way: data -> models -> training -> ensemble -> evaluation / app
-> workflows -> cli. A module may import its own layer and the layers `MAY_IMPORT` lists, never
one later in the flow; the ensemble does not import training (it reads the run directory); the
shared base modules (errors, _io, _tf, metrics, rundir) import no layer at all.

Imports are read from the source (ast), lazy imports inside functions included, so a violation
fails here even on a code path no other test runs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import fer_ensemble

PACKAGE = Path(fer_ensemble.__file__).parent
# Which layers each layer may import (besides itself and the base modules). The ensemble reads
# what training leaves in a run directory (through `rundir`), never training's code; evaluation and
# app are two leaves that stay apart; workflows train and evaluate; the CLI reaches everything.
MAY_IMPORT = {
    "data": set(),
    "models": {"data"},
    "training": {"data", "models"},
    "ensemble": {"data", "models"},
    "evaluation": {"data", "models", "ensemble"},
    "app": {"data", "models", "ensemble"},
    "workflows": {"data", "models", "training", "ensemble", "evaluation", "app"},
    "cli": {"data", "models", "training", "ensemble", "evaluation", "app", "workflows"},
}
MAY_IMPORT["__main__"] = {"cli"}
BASE = "base"   # every top-level module that is not a layer: errors, _io, _tf, metrics, rundir


def layer_of(module: str) -> str | None:
    """The layer of a dotted module inside fer_ensemble; None for the package root and outside it."""
    parts = module.split(".")
    if parts[0] != "fer_ensemble" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in MAY_IMPORT else BASE


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in `source`, relative imports resolved."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` / `from .. import models` name modules in the names themselves
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names] if not node.module else []
            out.append((node.lineno, target))
    return out


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Imports against the flow; `sources`: module -> (source, is_package)."""
    bad = []
    for module, (source, is_package) in sorted(sources.items()):
        own = layer_of(module)
        if own is None:   # the package root imports lazily by name and may reach every layer
            continue
        allowed = {own, BASE} | MAY_IMPORT.get(own, set())
        for line, target in imported_modules(source, module, is_package):
            theirs = layer_of(target)
            if theirs is not None and theirs not in allowed:
                bad.append(f"{module}:{line} imports {target} ({own} may not import {theirs})")
    return bad


def package_sources() -> dict[str, tuple[str, bool]]:
    return {module_name(p): (p.read_text(), p.name == "__init__.py") for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_follow_the_data_flow():
    sources = package_sources()
    assert len(sources) > 40   # the walk found the package
    assert violations(sources) == []


def test_the_check_catches_an_import_against_the_flow():
    """The check must be able to fail: an ensemble module importing training, lazily, inside a
    function; a base module importing a layer; evaluation and app importing each other."""
    fake = {
        "fer_ensemble.ensemble.fake": ("def f():\n    from ..training import metrics\n", False),
        "fer_ensemble.rundir": ("from .ensemble import combine\n", False),
        "fer_ensemble.evaluation.fake": ("from fer_ensemble.app import draw\n", False),
        "fer_ensemble.training.ok": ("from ..models import create_model\nfrom .. import errors\n", False),
        "fer_ensemble.ensemble": ("from .combine import combine\nfrom .. import metrics\n", True),
    }
    found = violations(fake)
    assert len(found) == 3, found
    assert any("ensemble.fake:2 imports fer_ensemble.training" in v for v in found)
    assert any(v.startswith("fer_ensemble.rundir:1") for v in found)
    assert any(v.startswith("fer_ensemble.evaluation.fake:1") for v in found)
