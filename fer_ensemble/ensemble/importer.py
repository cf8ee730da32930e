"""`fer-ensemble import`: make a model trained elsewhere an ensemble member of a run.

It reads `.keras`, `.h5` and `.hdf5` full models and Keras-2 architecture `.json` files with their
weights (`keras2`: the config is converted to Keras 3, no code from the file is run), and saves the
member as a Keras 3 `NAME.keras` with its NAME.json sidecar, so that loading it never needs the
converter again. Only what can be a member is imported: one image input (grey, or 3 channels fed
the grey image three times), one output per label, labels that are distinct FER2013 or FER+ class
names, and outputs that are probabilities. Inside the saved member, as layers:

- `logits=True` (`--logits`): a softmax after a model that outputs logits;
- `classes="fer6"` (`--classes fer6`): a 7-class model's disgust probability added to angry, so
  that it can join the study's 6-class runs (a model with the 6 classes already is taken as it is).

With `data`, the member's validation and test predictions are cached (NAME.preds.npz) so that
`search` can use it; without, `search` names it among the members it left out.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from .._io import atomic_path
from ..data.types import CLASS_ALIASES, FER6_CLASSES, FER7_CLASSES, FERPLUS_CLASSES
from ..errors import EnsembleError
from ..rundir import check_name, lock_run, member_sidecars, write_predictions, write_sidecar
from .keras2 import build, check_no_code, convert_config, h5_model_config, load_keras2_json, load_legacy_weights, \
    single_io

_PROBE_SEED = 0   # the probe images that test whether outputs are probabilities
MODEL_FILES = (".keras", ".h5", ".hdf5", ".json")
DEFAULT_SIZE = 48


def import_model(model_path: str | os.PathLike, labels: list[str], scale: float = 1 / 255, offset: float = 0.0,
                 input_size: int | None = None, into: str | os.PathLike | None = None, name: str | None = None,
                 data: str | None = None, logits: bool = False, weights: str | os.PathLike | None = None,
                 classes: str | None = None) -> Path:
    """Check the model loads (safe mode; a Keras-2 `.json` with `weights` is converted) and can be
    a member, save it as INTO/NAME.keras and write NAME.json (and, with `data`, NAME.preds.npz so
    that the search can use it). `input_size`: the side the model takes (default: the model's own,
    48 for a model of any size). `logits`: add a softmax. `classes="fer6"`: merge disgust into
    angry. Returns the sidecar path."""
    src = Path(model_path)
    if src.suffix not in MODEL_FILES:
        raise EnsembleError(f"{src}: expected a .keras, .h5 or .hdf5 model, or a Keras-2 architecture .json with "
                            "--weights")
    if classes not in (None, "fer7", "fer6"):
        raise EnsembleError(f"{src}: --classes must be fer7 or fer6, got {classes!r}")
    name = check_name(name or src.stem, f"{src}" if name else f"{src} (pass --name)", EnsembleError)
    check_labels(labels, src)
    model = load_foreign(src, Path(weights) if weights else None, input_size)
    size, channels = _check_shapes(model, src, labels, input_size)
    if _outputs_probabilities(model, src, size, channels, scale, offset) == logits:
        raise EnsembleError(f"{src}: --logits was given, but the outputs already are probabilities (each row "
                            "sums to 1); drop --logits" if logits else
                            f"{src}: outputs are not probabilities (rows of its outputs do not sum to 1); if the "
                            "model outputs logits, pass --logits to add a softmax")
    merge = classes == "fer6" and set(labels) != set(FER6_CLASSES)     # a 6-class model needs no merge
    class_names = _fer6_names(labels, src) if merge else list(labels)
    dest_dir = Path(into) if into else src.parent
    dest = dest_dir / f"{name}.keras"
    added = [what for what, on in (("a grey-to-RGB input", channels == 3), ("a softmax", logits),
                                   ("disgust merged into angry", merge)) if on]
    if added and dest.resolve() == src.resolve():
        raise EnsembleError(f"{src}: the member is a new file (the model with {', '.join(added)}); pass --into or "
                            "--name so that it does not overwrite the original")
    _check_run_classes(dest_dir, name, class_names, src)
    member = _member_model(model, size, channels, logits, labels if merge else None, name)
    with lock_run(dest_dir, f"import {name}", create=True):
        _save_member(member, dest, src, size)
        sidecar = {"format": 1, "name": name, "model_file": dest.name, "builder": "imported",
                   "class_names": class_names, "input_shape": [size, size, 1],
                   "scaling": {"scale": scale, "offset": offset}, "imported_from": str(src),
                   **({"weights_from": str(weights)} if weights else {}),
                   "parameters": int(member.count_params()), **({"softmax_added": True} if logits else {}),
                   **({"grey_to_rgb": True} if channels == 3 else {}),
                   **({"classes": "fer6"} if classes == "fer6" else {}),
                   **({"merged_classes": {"disgust": "angry"}} if merge else {})}
        if dest.resolve() == src.resolve():    # the member itself imported again (to cache it): keep its origin
            sidecar.update(_origin(dest_dir, name))
        if data:
            _cache_predictions(member, src, class_names, data, dest_dir, name, size, scale, offset, sidecar,
                               classes or "fer7")
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


# ---------------------------------------------------------------------- loading
def load_foreign(src: Path, weights: Path | None = None, input_size: int | None = None):
    """The model in `src` as a Keras 3 model with one input and one output tensor (safe mode;
    a Keras-2 `.json` needs `weights`, a legacy `.h5` Keras 3 cannot read is converted)."""
    if not src.is_file():
        raise EnsembleError(f"{src}: no such file")
    if src.suffix == ".json":
        if weights is None:
            raise EnsembleError(f"{src}: an architecture .json needs its weights: pass --weights WEIGHTS.h5")
        return single_io(load_keras2_json(src, weights, input_size))
    if weights is not None:
        raise EnsembleError(f"{src}: --weights is for an architecture .json; this file is a full model with its "
                            "own weights")
    if src.suffix == ".keras":
        check_no_code(_keras_archive_config(src), src)
        return single_io(_keras_load(src))
    config = h5_model_config(src)
    if config is None:
        raise EnsembleError(f"{src}: holds weights only (no model_config); pass the model's architecture .json "
                            "as MODEL and this file as --weights")
    check_no_code(config, src)
    try:
        return single_io(_keras_load(src))
    except EnsembleError as keras_error:
        if any(isinstance(layer, dict) and "module" in layer for layer in _layers(config)):
            raise keras_error    # a Keras 3 file: the converter has nothing to add
    model = build(convert_config(config, src, input_size), src)     # a Keras-2 file
    load_legacy_weights(model, src, src)
    return single_io(model)


def _layers(config: dict) -> list:
    inner = config.get("config")
    return inner if isinstance(inner, list) else (inner or {}).get("layers", []) if isinstance(inner, dict) else []


def _keras_archive_config(src: Path) -> dict:
    try:
        with zipfile.ZipFile(src) as z:
            return json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError) as e:
        raise EnsembleError(f"{src}: not a Keras 3 .keras archive ({e.__class__.__name__}: {e})") from None


def _keras_load(src: Path):
    import keras

    from ..models import preprocess as _preprocess  # noqa: F401  (this package's layers, for its own members)
    try:
        return keras.models.load_model(src, compile=False, safe_mode=True)
    except Exception as e:
        raise EnsembleError(f"{src}: cannot load in safe mode ({e.__class__.__name__}: {str(e)[:200]})") from None


# ---------------------------------------------------------------------- checks
def _check_shapes(model, src: Path, labels: list[str], input_size: int | None) -> tuple[int, int]:
    """(side, channels) of the model's input; errors name the file."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise EnsembleError(f"{src}: the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a "
                            "member takes one image batch and gives one row of class probabilities per image")
    out, shape = tuple(model.outputs[0].shape), tuple(model.inputs[0].shape)
    if len(out) != 2:
        raise EnsembleError(f"{src}: outputs shaped {out}; a member gives one row of class probabilities per image")
    if out[-1] != len(labels):
        raise EnsembleError(f"{src}: model has {out[-1]} outputs but {len(labels)} labels were given")
    if len(shape) != 4 or shape[-1] not in (1, 3) or shape[1] != shape[2]:
        raise EnsembleError(f"{src}: model input {shape}; a member takes square grey (1-channel) or RGB "
                            "(3-channel) images, (None, N, N, 1) or (None, N, N, 3)")
    if shape[1] is None:
        return input_size or DEFAULT_SIZE, shape[-1]
    if input_size not in (None, shape[1]):
        raise EnsembleError(f"{src}: model input {shape} does not match --input-size {input_size}; pass "
                            f"--input-size {shape[1]} or leave it out (the model's own size is used)")
    return int(shape[1]), shape[-1]


def _probes(size: int) -> np.ndarray:
    """Black, white, grey and noise: (4, size, size, 1) pixels in 0-255."""
    rng = np.random.default_rng(_PROBE_SEED)
    return np.stack([np.zeros((size, size)), np.full((size, size), 255.0), np.full((size, size), 128.0),
                     rng.integers(0, 256, (size, size))])[..., None].astype(np.float32)


def _outputs_probabilities(model, src: Path, size: int, channels: int, scale: float, offset: float) -> bool:
    """Whether the outputs on a few probe images (black, white, grey, noise) are probability rows."""
    x = np.repeat(_probes(size) * scale + offset, channels, axis=-1)
    out = np.asarray(model.predict(x, verbose=0), np.float64)
    if not np.isfinite(out).all():
        raise EnsembleError(f"{src}: outputs NaN or infinite values on plain test images; it cannot be a member")
    return bool((out >= -1e-6).all() and (out <= 1 + 1e-6).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))


def _fer6_names(labels: list[str], src: Path) -> list[str]:
    missing = [c for c in ("angry", "disgust") if c not in labels]
    if missing or set(labels) != set(FER7_CLASSES):
        raise EnsembleError(f"{src}: --classes fer6 takes a 6-class model, or merges a 7-class FER2013 model's "
                            f"disgust into angry; --labels {','.join(labels)} are neither the 6 nor the 7 FER2013 "
                            f"classes ({', '.join(FER7_CLASSES)})")
    return [c for c in labels if c != "disgust"]


def _check_run_classes(run: Path, name: str, class_names: list[str], src: Path) -> None:
    """A 7-class member in a run of 6-class members (or the reverse) is refused with the fix."""
    if not run.is_dir():
        return
    others = {n: set(d["class_names"]) for n, d in member_sidecars(run).items() if n != name}
    mine = set(class_names)
    if others and all(c == set(FER6_CLASSES) for c in others.values()) and mine == set(FER7_CLASSES):
        raise EnsembleError(f"{src}: the members of {run} have 6 classes (fer6) and this model 7; pass --classes fer6 "
                            "to add its disgust probability to angry")
    if others and all(c == set(FER7_CLASSES) for c in others.values()) and mine == set(FER6_CLASSES):
        raise EnsembleError(f"{src}: the members of {run} have 7 classes (fer7); drop --classes fer6")


def _origin(run: Path, name: str) -> dict:
    """What the member's earlier sidecar says of where it came from and what import added."""
    earlier = member_sidecars(run).get(name, {})
    return {k: earlier[k] for k in ("imported_from", "weights_from", "softmax_added", "grey_to_rgb", "merged_classes")
            if k in earlier}


# ---------------------------------------------------------------------- the member
def _member_model(model, size: int, channels: int, logits: bool, fer7_labels: list[str] | None, name: str):
    """The model with the layers the import adds (grey-to-RGB input, softmax, fer6 merge); the
    model itself when none is needed."""
    import keras

    if channels == 1 and not logits and fer7_labels is None:
        return model
    inputs = keras.Input((size, size, 1), name="image")
    x = keras.layers.Concatenate(name="grey_to_rgb")([inputs] * 3) if channels == 3 else inputs
    p = model(x)
    if logits:
        p = keras.layers.Softmax(name="softmax_on_import")(p)
    if fer7_labels is not None:
        merged = [c for c in fer7_labels if c != "disgust"]
        matrix = np.zeros((len(fer7_labels), len(merged)), np.float32)
        for i, c in enumerate(fer7_labels):
            matrix[i, merged.index("angry" if c == "disgust" else c)] = 1.0
        merge = keras.layers.Dense(len(merged), use_bias=False, trainable=False, name="fer6_disgust_into_angry")
        p = merge(p)
        merge.set_weights([matrix])
    return keras.Model(inputs, p, name=name)


def _save_member(member, dest: Path, src: Path, size: int) -> None:
    """Save as Keras 3 `.keras` (atomically), and check the file reloads in safe mode to the same outputs."""
    import keras

    probes = _probes(size) / 255.0
    expected = np.asarray(member.predict(probes, verbose=0))
    with atomic_path(dest) as tmp:
        member.save(tmp)
        again = keras.models.load_model(tmp, compile=False, safe_mode=True)
        got = np.asarray(again.predict(probes, verbose=0))
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-5):
            raise EnsembleError(f"{src}: the saved member {dest.name} does not reproduce the model's outputs "
                                f"(max difference {np.abs(got - expected).max():.3g})")


def _cache_predictions(model, src: Path, labels: list[str], data: str, dest_dir: Path, name: str, input_size: int,
                       scale: float, offset: float, sidecar: dict, classes: str) -> None:
    """Predict `data`'s validation and test splits, in the data's class order -> NAME.preds.npz and metrics."""
    import keras

    from ..data import load_data
    from ..metrics import classification_metrics

    d = load_data(data, classes=classes)
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
    sidecar["data_input_size"] = int(d.image_shape[0])
    write_predictions(dest_dir, name, probs["val"], d.val.y, probs["test"], d.test.y, d.class_names)
