"""Helpers shared by the test folders."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]

# Narrow versions of the heaviest builders keep CI fast; test_paper_zoo_matches_table1 still builds
# every full-size paper model.
SMALL_ARGS = {"resnet_paper": {"filters": 16}, "resnet18": {"filters": 16}, "resnet34": {"filters": 16},
              "inception": {"stem_filters": 16, "n_start": 32, "n_step": 16, "dense_units": (128,)}}


def load_script(name: str, folder: str = "scripts") -> ModuleType:
    """FOLDER/NAME.py as a module (the scripts are files, not a package); FOLDER is relative to the
    repository root, e.g. "research/scripts" for the lab's scripts."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
