"""fer_ensemble: train a zoo of CNNs for facial expression recognition and ensemble them.

Data flows one way: data -> models -> training -> ensemble -> evaluation / app -> workflows -> cli
(tests/test_layering.py checks it); the stages meet in the run directory, whose layout `rundir`
owns. Names are imported lazily so that `import fer_ensemble` (and the CLI's --help) does not load
TensorFlow.
"""
from __future__ import annotations

import importlib

from . import _tf  # noqa: F401  (sets quiet TF defaults before any TF import)

__version__ = "0.1.0"

_EXPORTS = {
    "FerData": "data", "Split": "data", "load_fer2013": "data", "load_ferplus": "data",
    "make_synthetic": "data", "save_cache": "data", "load_data": "data",
    "create_model": "models", "list_models": "models", "register_model": "models", "load_zoo": "models",
    "train_model": "training", "train_all": "training",
    "Ensemble": "ensemble", "search_subsets": "ensemble",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'fer_ensemble' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = list(_EXPORTS)
