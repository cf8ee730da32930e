"""Flip test-time augmentation for saved members: each member's probabilities become the mean
over the image and its mirror image. Recomputes the member's prediction cache and metrics and
records `"tta": "flip"` in its sidecar, which `Ensemble` (loop and fused model) then follows."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import write_json, write_npz
from ..data import FerData
from ..errors import EnsembleError
from ..training.metrics import classification_metrics
from .ensemble import _sidecars, load_member


def flip_tta(run_dir: str | os.PathLike, data: FerData, names: list[str] | None = None) -> dict[str, dict]:
    """Apply flip TTA to `names` (default: every member with weights) of `run_dir`, on the data
    they were trained on (checked by fingerprint). Returns name -> {split: (before, after) accuracy}."""
    run = Path(run_dir)
    if not run.is_dir():
        raise EnsembleError(f"{run}: not a run directory")
    sidecars = _sidecars(run)             # members with weights beside their sidecar
    if not sidecars:
        raise EnsembleError(f"{run}: no members with weights (NAME.json beside NAME.h5 or NAME.keras)")
    out = {}
    for n in names or list(sidecars):
        if n not in sidecars:
            raise EnsembleError(f"{run}: no member {n!r} with weights; members: {', '.join(sidecars)}")
        side, side_file = sidecars[n], run / f"{n}.json"
        if side.get("tta") == "flip":
            continue
        if side.get("data_fingerprint") != data.fingerprint():
            raise EnsembleError(f"{side_file}: was trained on other data than {data.source} (fingerprint differs)")
        if list(side["class_names"]) != list(data.class_names):
            raise EnsembleError(f"{side_file}: classes {side['class_names']} are not the data's "
                                f"{list(data.class_names)}")
        member = load_member(run, n, side)
        probs, change = {}, {}
        for split in ("val", "test"):
            x = member.prepare(data.split(split).x.astype(np.float32)[..., None])
            p = member.model.predict(x, batch_size=512, verbose=0)
            pf = member.model.predict(x[:, :, ::-1], batch_size=512, verbose=0)
            probs[split] = ((p + pf) / 2).astype(np.float32)
            y = data.split(split).y
            change[split] = (float((p.argmax(1) == y).mean()), float((probs[split].argmax(1) == y).mean()))
        write_npz(run / f"{n}.preds.npz", val_proba=probs["val"], val_y=data.val.y, test_proba=probs["test"],
                  test_y=data.test.y, class_names=np.array(side["class_names"]))
        side["metrics_without_tta"] = side["metrics"]
        side["metrics"] = {s: classification_metrics(data.split(s).y, probs[s], side["class_names"])
                           for s in ("val", "test")}
        side["tta"] = "flip"
        write_json(side_file, side)
        out[n] = change
    return out
