"""Sub-commands of the later stages (zoo, training, ensemble, report, app), registered on the CLI."""
from __future__ import annotations

from .cli import _REGISTRARS


def _register(fn):
    _REGISTRARS.append(fn)
    return fn
