"""Test-time augmentation for saved members: each member's probabilities become the mean over
views of the image (`views`: "flip", the image and its mirror image; "flip-shift", those two also
shifted by 2 pixels four ways). Recomputes the member's prediction cache and metrics and records
`"tta": MODE` in its sidecar, which `Ensemble` (loop and fused model) then follows."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import FerData
from ..errors import EnsembleError
from ..metrics import classification_metrics
from ..rundir import lock_run, sidecar_path, write_predictions, write_sidecar
from .ensemble import _sidecars, load_member
from .views import average, check_mode, view_probabilities


def flip_tta(run_dir: str | os.PathLike, data: FerData, names: list[str] | None = None) -> dict[str, dict]:
    """`apply_tta` in "flip" mode."""
    return apply_tta(run_dir, data, names, mode="flip")


def apply_tta(run_dir: str | os.PathLike, data: FerData, names: list[str] | None = None,
              mode: str = "flip") -> dict[str, dict]:
    """Apply test-time augmentation `mode` to `names` (default: every member with weights) of
    `run_dir`, on the data they were trained on (checked by fingerprint). Members already in
    `mode` are skipped; a member in another mode is recomputed from its model. Returns
    name -> {split: (without TTA, with `mode`) accuracy}."""
    check_mode(mode, allow_none=False)
    run = Path(run_dir)
    if not run.is_dir():
        raise EnsembleError(f"{run}: not a run directory")
    sidecars = _sidecars(run)             # members with weights beside their sidecar
    if not sidecars:
        raise EnsembleError(f"{run}: no members with weights (NAME.json beside NAME.h5 or NAME.keras)")
    out = {}
    with lock_run(run, f"tta --mode {mode}"):   # caches and sidecars are rewritten
        for n in names or list(sidecars):
            if n not in sidecars:
                raise EnsembleError(f"{run}: no member {n!r} with weights; members: {', '.join(sidecars)}")
            if sidecars[n].get("tta") != mode:
                out[n] = _apply_to_member(run, n, sidecars[n], data, mode)
    return out


def _apply_to_member(run: Path, n: str, side: dict, data: FerData, mode: str) -> dict:
    """Recompute member `n`'s cache and metrics with TTA `mode`; returns {split: (before, after) accuracy}."""
    side_file = sidecar_path(run, n)
    if side.get("data_fingerprint") != data.fingerprint():
        raise EnsembleError(f"{side_file}: was trained on other data than {data.source} (fingerprint differs)")
    if list(side["class_names"]) != list(data.class_names):
        raise EnsembleError(f"{side_file}: classes {side['class_names']} are not the data's "
                            f"{list(data.class_names)}")
    member = load_member(run, n, side)
    probs, change = {}, {}
    for split in ("val", "test"):
        x = member.prepare(data.split(split).x.astype(np.float32)[..., None])
        per_view = view_probabilities(member.model, x, mode, batch_size=512)
        p = per_view[0]                                  # the identity view: no TTA
        probs[split] = average(per_view).astype(np.float32)
        y = data.split(split).y
        change[split] = (float((p.argmax(1) == y).mean()), float((probs[split].argmax(1) == y).mean()))
    write_predictions(run, n, probs["val"], data.val.y, probs["test"], data.test.y, side["class_names"])
    # The metrics without TTA are kept from the first application, whatever came after.
    side.setdefault("metrics_without_tta", side["metrics"])
    side["metrics"] = {s: classification_metrics(data.split(s).y, probs[s], side["class_names"])
                       for s in ("val", "test")}
    side["tta"] = mode
    write_sidecar(run, n, side)
    return change
