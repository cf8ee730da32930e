"""`fer-ensemble import`: give a model trained elsewhere the sidecar an ensemble member needs."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from .._io import atomic_path
from ..errors import EnsembleError
from ..rundir import MODEL_SUFFIXES, write_predictions, write_sidecar


def import_model(model_path: str | os.PathLike, labels: list[str], scale: float = 1 / 255, offset: float = 0.0,
                 input_size: int = 48, into: str | os.PathLike | None = None, name: str | None = None,
                 data: str | None = None) -> Path:
    """Check the model loads (safe mode) and matches `labels`, then write NAME.json (and, with
    `data`, NAME.preds.npz so that the search can use it). Returns the sidecar path."""
    import keras

    src = Path(model_path)
    if src.suffix not in MODEL_SUFFIXES:
        raise EnsembleError(f"{src}: expected a .h5 or .keras model file")
    try:
        model = keras.models.load_model(src, compile=False, safe_mode=True)
    except Exception as e:
        raise EnsembleError(f"{src}: cannot load in safe mode ({e.__class__.__name__}: {str(e)[:200]})") from None
    if model.output_shape[-1] != len(labels):
        raise EnsembleError(f"{src}: model has {model.output_shape[-1]} outputs but {len(labels)} labels were given")
    shape = model.input_shape
    if shape[1] not in (None, input_size) or shape[-1] not in (1, 3):
        raise EnsembleError(f"{src}: model input {shape} does not match --input-size {input_size} (grayscale)")
    if shape[-1] == 3:
        raise EnsembleError(f"{src}: 3-channel models need a grayscale adapter; retrain or wrap with 1 channel")
    dest_dir = Path(into) if into else src.parent
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = name or src.stem
    dest = dest_dir / f"{name}{src.suffix}"
    if dest.resolve() != src.resolve():
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    sidecar = {"format": 1, "name": name, "model_file": dest.name, "builder": "imported",
               "class_names": list(labels), "input_shape": [input_size, input_size, 1],
               "scaling": {"scale": scale, "offset": offset}, "imported_from": str(src),
               "parameters": int(model.count_params())}
    if data:
        from ..data import load_data
        from ..metrics import classification_metrics

        d = load_data(data)
        probs = {}
        for s in ("val", "test"):
            x = d.split(s).x.astype(np.float32)[..., None]
            if input_size != x.shape[1]:
                x = np.asarray(keras.ops.image.resize(x, (input_size, input_size)))
            p = model.predict(x * scale + offset, batch_size=512, verbose=0)
            order = [labels.index(c) if c in labels else None for c in d.class_names]
            if None in order:
                raise EnsembleError(f"{src}: labels {labels} do not cover the data's classes {list(d.class_names)}")
            probs[s] = p[:, order].astype(np.float32)
        sidecar["metrics"] = {s: classification_metrics(d.split(s).y, probs[s], d.class_names) for s in probs}
        write_predictions(dest_dir, name, probs["val"], d.val.y, probs["test"], d.test.y, d.class_names)
    return write_sidecar(dest_dir, name, sidecar)
