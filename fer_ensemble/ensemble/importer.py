"""`fer-ensemble import`: give a model trained elsewhere the sidecar an ensemble member needs.

Only what can be a member is imported: one output per label, labels that are distinct FER2013
or FER+ class names, and outputs that are probabilities. A model that outputs logits gets a softmax only
when asked (`logits=True`, `--logits`); the member's file is then the model with that layer.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from .._io import atomic_path
from ..data.types import CLASS_ALIASES, FER7_CLASSES, FERPLUS_CLASSES
from ..errors import EnsembleError
from ..rundir import MODEL_SUFFIXES, check_name, lock_run, write_predictions, write_sidecar

_PROBE_SEED = 0   # the probe images that test whether outputs are probabilities


def import_model(model_path: str | os.PathLike, labels: list[str], scale: float = 1 / 255, offset: float = 0.0,
                 input_size: int = 48, into: str | os.PathLike | None = None, name: str | None = None,
                 data: str | None = None, logits: bool = False) -> Path:
    """Check the model loads (safe mode) and can be a member, then write NAME.json (and, with
    `data`, NAME.preds.npz so that the search can use it). `logits`: the model outputs logits;
    a softmax layer is added. Returns the sidecar path."""
    src = Path(model_path)
    if src.suffix not in MODEL_SUFFIXES:
        raise EnsembleError(f"{src}: expected a .h5 or .keras model file")
    name = check_name(name or src.stem, f"{src}" if name else f"{src} (pass --name)", EnsembleError)
    check_labels(labels, src)
    model = _load(src)
    _check_shapes(model, src, labels, input_size)
    if _outputs_probabilities(model, src, input_size, scale, offset) == logits:
        raise EnsembleError(f"{src}: --logits was given, but the outputs already are probabilities (each row "
                            "sums to 1); drop --logits" if logits else
                            f"{src}: outputs are not probabilities (rows of its outputs do not sum to 1); if the "
                            "model outputs logits, pass --logits to add a softmax")
    dest_dir = Path(into) if into else src.parent
    dest = dest_dir / f"{name}{src.suffix}"
    if logits and dest.resolve() == src.resolve():
        raise EnsembleError(f"{src}: with --logits the member is a new file (the model and a softmax); pass "
                            "--into or --name so that it does not overwrite the original")
    with lock_run(dest_dir, f"import {name}", create=True):
        if logits:
            model = _with_softmax(model)
            with atomic_path(dest) as tmp:
                model.save(tmp)
        elif dest.resolve() != src.resolve():
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
        sidecar = {"format": 1, "name": name, "model_file": dest.name, "builder": "imported",
                   "class_names": list(labels), "input_shape": [input_size, input_size, 1],
                   "scaling": {"scale": scale, "offset": offset}, "imported_from": str(src),
                   "parameters": int(model.count_params()), **({"softmax_added": True} if logits else {})}
        if data:
            _cache_predictions(model, src, labels, data, dest_dir, name, input_size, scale, offset, sidecar)
        return write_sidecar(dest_dir, name, sidecar)


def check_labels(labels: list[str], where: str | os.PathLike) -> None:
    """Labels must be distinct FER2013 or FER+ class names (an ensemble maps members' classes by name)."""
    known = dict.fromkeys((*FER7_CLASSES, *FERPLUS_CLASSES))
    seen = set()
    for label in labels:
        if label not in known:
            alias = CLASS_ALIASES.get(str(label).lower())
            hint = f"; did you mean {FER7_CLASSES[alias]!r}?" if alias is not None else ""
            raise EnsembleError(f"{where}: label {label!r} is not a class name of FER2013 ({', '.join(FER7_CLASSES)}) "
                                f"or FER+ ({', '.join(FERPLUS_CLASSES)}){hint}")
        if label in seen:
            raise EnsembleError(f"{where}: label {label!r} appears twice in --labels {','.join(labels)}")
        seen.add(label)


def _load(src: Path):
    import keras

    try:
        return keras.models.load_model(src, compile=False, safe_mode=True)
    except Exception as e:
        raise EnsembleError(f"{src}: cannot load in safe mode ({e.__class__.__name__}: {str(e)[:200]})") from None


def _check_shapes(model, src: Path, labels: list[str], input_size: int) -> None:
    out, shape = model.output_shape, model.input_shape
    if isinstance(out, list) or isinstance(shape, list):
        raise EnsembleError(f"{src}: the model has several inputs or outputs; a member takes one image batch "
                            "and gives one row of class probabilities per image")
    if out[-1] != len(labels):
        raise EnsembleError(f"{src}: model has {out[-1]} outputs but {len(labels)} labels were given")
    if len(shape) != 4 or shape[1] not in (None, input_size) or shape[-1] not in (1, 3):
        raise EnsembleError(f"{src}: model input {shape} does not match --input-size {input_size} (grayscale)")
    if shape[-1] == 3:
        raise EnsembleError(f"{src}: 3-channel models need a grayscale adapter; retrain or wrap with 1 channel")


def _outputs_probabilities(model, src: Path, input_size: int, scale: float, offset: float) -> bool:
    """Whether the outputs on a few probe images (black, white, grey, noise) are probability rows."""
    rng = np.random.default_rng(_PROBE_SEED)
    pixels = np.stack([np.zeros((input_size, input_size)), np.full((input_size, input_size), 255.0),
                       np.full((input_size, input_size), 128.0), rng.integers(0, 256, (input_size, input_size))])
    out = np.asarray(model.predict(pixels[..., None].astype(np.float32) * scale + offset, verbose=0), np.float64)
    if not np.isfinite(out).all():
        raise EnsembleError(f"{src}: outputs NaN or infinite values on plain test images; it cannot be a member")
    return bool((out >= -1e-6).all() and (out <= 1 + 1e-6).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))


def _with_softmax(model):
    import keras

    inputs = keras.Input(model.input_shape[1:], name="image")
    return keras.Model(inputs, keras.layers.Softmax(name="softmax_on_import")(model(inputs)), name=model.name)


def _cache_predictions(model, src: Path, labels: list[str], data: str, dest_dir: Path, name: str, input_size: int,
                       scale: float, offset: float, sidecar: dict) -> None:
    """Predict `data`'s validation and test splits, in the data's class order -> NAME.preds.npz and metrics."""
    import keras

    from ..data import load_data
    from ..metrics import classification_metrics

    d = load_data(data)
    order = [labels.index(c) if c in labels else None for c in d.class_names]
    if None in order:
        raise EnsembleError(f"{src}: labels {labels} do not cover the data's classes {list(d.class_names)}")
    probs = {}
    for s in ("val", "test"):
        x = d.split(s).x.astype(np.float32)[..., None]
        if input_size != x.shape[1]:
            x = np.asarray(keras.ops.image.resize(x, (input_size, input_size)))
        probs[s] = model.predict(x * scale + offset, batch_size=512, verbose=0)[:, order].astype(np.float32)
    sidecar["metrics"] = {s: classification_metrics(d.split(s).y, probs[s], d.class_names) for s in probs}
    write_predictions(dest_dir, name, probs["val"], d.val.y, probs["test"], d.test.y, d.class_names)
