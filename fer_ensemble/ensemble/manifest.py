"""Reading ensemble.json's fields with checks: its weights and greedy selection's pick counts.

ensemble.json is written by the search but may be edited by hand; a field of the wrong shape must
get an error that names the file, not a numpy traceback from inside `combine`.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import EnsembleError
from ..rundir import read_manifest  # noqa: F401  (re-exported: read here, with the checks)
from .methods import lookup


def manifest_weights(manifest: dict, where: str | os.PathLike = "ensemble.json") -> np.ndarray | None:
    """The stored weights in member order, (M,) for mean/accuracy and (M, C) for recall; None when
    the manifest has none. Other methods take no weights, so theirs are not read."""
    w, method, members = manifest.get("weights"), manifest.get("method"), manifest.get("members", [])
    spec = lookup(method)
    if w is None or spec is None or spec.weights is None:
        return None
    per_member = spec.weights == "member"   # one weight per member; else one per member and class
    missing = [n for n in members if not isinstance(w, dict) or n not in w]
    if missing:
        raise EnsembleError(f"{where}: 'weights' must map every member to its weight; missing {', '.join(missing)}")
    n_classes = len(manifest.get("class_names") or []) or None
    rows = []
    for n in members:
        v = w[n]
        if per_member:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            want = "one number"
        else:
            ok = (isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                  and len(v) == (n_classes or len(v)) and len(v) > 0)
            want = f"a list of {n_classes} numbers (one per class)" if n_classes else "a list of per-class numbers"
        if not ok or any(not math.isfinite(x) or x < 0 for x in (v if isinstance(v, list) else [v])):
            raise EnsembleError(f"{where}: weight of member {n!r} for method {method!r} must be {want}, "
                                f"finite and >= 0; got {v!r}")
        rows.append(v)
    out = np.array(rows, dtype=np.float64)
    if not per_member and len({len(r) for r in rows}) != 1:
        raise EnsembleError(f"{where}: {method} weights of the members differ in length")
    if not np.any(out > 0):
        raise EnsembleError(f"{where}: every weight is 0")
    return out


def manifest_picks(manifest: dict, where: str | os.PathLike = "ensemble.json") -> dict[str, int] | None:
    """How often greedy selection picked each member ("picks", written by the search); None when the
    manifest does not say (not a greedy pick, or a file written before the field existed)."""
    picks = manifest.get("picks")
    if picks is None:
        return None
    members = manifest.get("members", [])
    if (not isinstance(picks, dict) or set(picks) != set(members)
            or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in picks.values())):
        raise EnsembleError(f"{where}: 'picks' must map each member to how often it was picked "
                            f"(a whole number >= 1); got {picks!r}")
    return {n: picks[n] for n in members}


def picks_record(members: list[str], counts) -> dict:
    """ensemble.json's "picks" field for a greedy pick's `counts` (in member order); {} otherwise."""
    if counts is None:
        return {}
    return {"picks": {n: int(k) for n, k in zip(members, counts)}}
