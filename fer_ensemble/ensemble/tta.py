"""Flip test-time augmentation for saved members: each member's probabilities become the mean
over the image and its mirror image. Recomputes the member's prediction cache and metrics and
records `"tta": "flip"` in its sidecar, which `Ensemble` (loop and fused model) then follows."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._io import write_json, write_npz
from ..data import FerData
from ..errors import EnsembleError
from ..training.metrics import classification_metrics
from .ensemble import model_path


def flip_tta(run_dir: str | os.PathLike, data: FerData, names: list[str] | None = None) -> dict[str, dict]:
    """Apply flip TTA to `names` (default: every member with weights) of `run_dir`, on the data
    they were trained on (checked by fingerprint). Returns name -> {split: (before, after) accuracy}."""
    import keras

    run = Path(run_dir)
    sidecars = {p.name[:-len(".json")]: p for p in sorted(run.glob("*.json"))
                if p.name != "ensemble.json" and not p.name.startswith(".")}
    names = names or list(sidecars)
    out = {}
    for n in names:
        if n not in sidecars:
            raise EnsembleError(f"{run}: no member {n!r}; members: {', '.join(sidecars)}")
        side = json.loads(sidecars[n].read_text())
        if side.get("tta") == "flip":
            continue
        if side.get("data_fingerprint") != data.fingerprint():
            raise EnsembleError(f"{sidecars[n]}: was trained on other data than {data.source} (fingerprint differs)")
        model = keras.models.load_model(model_path(run, n, side), compile=False, safe_mode=True)
        sc, size = side.get("scaling", {"scale": 1 / 255, "offset": 0.0}), int(side["input_shape"][0])
        if list(side["class_names"]) != list(data.class_names):
            raise EnsembleError(f"{sidecars[n]}: classes {side['class_names']} are not the data's "
                                f"{list(data.class_names)}")
        probs, change = {}, {}
        for split in ("val", "test"):
            x = data.split(split).x.astype(np.float32)[..., None]
            if size != x.shape[1]:
                x = np.asarray(keras.ops.image.resize(x, (size, size)))
            x = x * sc["scale"] + sc["offset"]
            p = model.predict(x, batch_size=512, verbose=0)
            pf = model.predict(x[:, :, ::-1], batch_size=512, verbose=0)
            probs[split] = ((p + pf) / 2).astype(np.float32)
            y = data.split(split).y
            change[split] = (float((p.argmax(1) == y).mean()), float((probs[split].argmax(1) == y).mean()))
        write_npz(run / f"{n}.preds.npz", val_proba=probs["val"], val_y=data.val.y, test_proba=probs["test"],
                  test_y=data.test.y, class_names=np.array(side["class_names"]))
        side["metrics_without_tta"] = side["metrics"]
        side["metrics"] = {s: classification_metrics(data.split(s).y, probs[s], side["class_names"])
                           for s in ("val", "test")}
        side["tta"] = "flip"
        write_json(sidecars[n], side)
        out[n] = change
    return out
