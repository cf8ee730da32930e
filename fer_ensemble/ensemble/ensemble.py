"""`Ensemble`: load saved models from a run directory and predict with their combination.

A directory holds NAME.h5 / NAME.keras models, each with the NAME.json sidecar written by the
trainer (or by `fer-ensemble import`). If it also holds ensemble.json (written by the search),
only its members are loaded, with its method and weights.

The fused model (`to_keras`) takes one image batch at the ensemble's native size (`input_size`:
the size of the data its members were evaluated on, 48 by default, never a member's own size) and
does each member's resize, scaling, class order and test-time augmentation in the graph; its output
is always (N, C). `predict_proba` on images of another size uses a fused model built for that size,
so every member resizes the images once, to its own size, as the loop over members does.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from ..models import preprocess as _preprocess  # noqa: F401  (its layers must be registered to load)
from ..errors import EnsembleError
from ..rundir import MANIFEST, MODEL_SUFFIXES, has_model, member_sidecars, model_path, write_manifest
from .methods import METHODS, fit_weights, get_method
from .manifest import manifest_weights, read_manifest
from .keras2 import single_io
from .views import check_mode, predict_views, tta_views

DEFAULT_SIZE = 48   # FER2013's faces: the native size when the members do not say otherwise

__all__ = ["Ensemble", "Member", "load_member", "model_path", "write_manifest", "MANIFEST", "MODEL_SUFFIXES"]


@dataclass
class Member:
    name: str
    path: Path
    sidecar: dict
    model: object = None

    @property
    def class_names(self) -> list[str]:
        return list(self.sidecar["class_names"])

    @property
    def input_size(self) -> int:
        return int(self.sidecar.get("input_shape", [48, 48, 1])[0])

    @property
    def scaling(self) -> dict:
        return self.sidecar.get("scaling", {"scale": 1 / 255, "offset": 0.0})

    @property
    def tta(self) -> str | None:
        """Test-time augmentation: None, "flip" or "flip-shift" (see `views`): the member's
        prediction is the mean over those views of the image."""
        return self.sidecar.get("tta")

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 1) pixels in 0-255 -> this member's input: resized to its size, then scaled."""
        if batch.shape[1] != self.input_size:
            import keras

            batch = np.asarray(keras.ops.image.resize(batch, (self.input_size, self.input_size)))
        return batch * self.scaling["scale"] + self.scaling["offset"]


def _sidecars(directory: Path) -> dict[str, dict]:
    """The members of `directory`: sidecars with a model file beside them (or named in them)."""
    return {n: d for n, d in member_sidecars(directory).items() if has_model(directory, n, d)}


def load_member(directory: Path, name: str, sidecar: dict) -> Member:
    """A member with its model loaded (Keras safe mode, compile=False); errors name the file."""
    import keras

    path = model_path(directory, name, sidecar)
    check_mode(sidecar.get("tta"), where=f"{directory / name}.json")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:
        raise EnsembleError(f"{path}: cannot load model ({e.__class__.__name__}: {str(e)[:200]})") from None
    return Member(name, path, sidecar, single_io(model))   # a Keras-2 model's one-element output list unwrapped


class Ensemble:
    """Members, a combination method and its weights, in the ensemble's class order."""

    def __init__(self, members: list[Member], method: str = "mean", weights: np.ndarray | None = None,
                 class_names: list[str] | None = None, stacking: dict | None = None, manifest: dict | None = None,
                 input_size: int | None = None):
        if not members:
            raise EnsembleError("an ensemble needs at least one member")
        if method not in METHODS:
            raise EnsembleError(f"unknown method {method!r}; expected one of {METHODS}")
        self.members = members
        self.method = method
        self._spec = get_method(method)
        self.class_names = list(class_names or _default_classes(members))
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.stacking = stacking
        self.manifest = manifest or {}
        self._orders = [self._class_order(m) for m in members]
        self._size = int(input_size or self.manifest.get("input_size") or _data_size(members))
        self._fused: dict[int, object] = {}    # the fused model per input size
        self._fns: dict[int, tuple] = {}       # its traced call per input size

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, directory: str | os.PathLike, method: str | None = None,
             input_size: int | None = None) -> "Ensemble":
        directory = Path(directory)
        if not directory.is_dir():
            raise EnsembleError(f"{directory}: not a directory")
        sidecars = _sidecars(directory)
        manifest_path = directory / MANIFEST
        manifest = read_manifest(manifest_path) if manifest_path.exists() else None
        if manifest is not None:
            names = manifest["members"]
            for n in names:
                if not isinstance(n, str) or "/" in n or "\\" in n or n.startswith(".."):
                    raise EnsembleError(f"{manifest_path}: member {n!r} is a path outside the directory")
                if n not in sidecars:
                    raise EnsembleError(f"{manifest_path}: member {n!r} is missing ({n}.json and its model "
                                        f"are not in {directory})")
        else:
            names = list(sidecars)
            if not names:
                raise EnsembleError(f"{directory}: no models found (expected NAME.h5 or NAME.keras with NAME.json)")
        members = [load_member(directory, n, sidecars[n]) for n in names]
        if manifest is not None and method in (None, manifest.get("method")):
            weights = manifest_weights(manifest, manifest_path)
            return cls(members, manifest["method"], weights, manifest.get("class_names"),
                       manifest.get("stacking"), manifest, input_size)
        return cls(members, method or "mean", input_size=input_size)

    @classmethod
    def pretrained(cls, name: str = "fer2013") -> "Ensemble":
        """The ensemble that ships inside the package, trained on FER2013 (7 classes, 48x48
        grayscale faces); its model card is `pretrained_dir(name) / "MODEL_CARD.md"`."""
        from .ship import pretrained_dir

        return cls.load(pretrained_dir(name))

    @property
    def input_size(self) -> int:
        """The native size: side of the square images the fused model takes by default (the
        `input_size` given, else ensemble.json's, else the size of the data the members were
        trained or evaluated on when they agree, else 48); never one member's own size."""
        return self._size

    def _class_order(self, member: Member) -> np.ndarray:
        """Indices into the member's outputs that give the ensemble's class order."""
        theirs = member.class_names
        missing = [c for c in self.class_names if c not in theirs]
        if missing:
            raise EnsembleError(f"{member.path}: classes {theirs} cannot be mapped onto the ensemble's "
                                f"{self.class_names} (missing {missing})")
        return np.array([theirs.index(c) for c in self.class_names])

    def without_tta(self) -> "Ensemble":
        """The same members and weights, each predicting on the image alone (no test-time
        augmentation views): half the compute of flip TTA, slightly lower accuracy."""
        members = [Member(m.name, m.path, {**m.sidecar, "tta": None}, m.model) for m in self.members]
        return Ensemble(members, self.method, self.weights, self.class_names, self.stacking, self.manifest,
                        self._size)

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def as_batch(x, value_range: float | None = None) -> np.ndarray:
        """Images shaped (H, W), (N, H, W) or (N, H, W, 1), H == W -> float32 (N, H, W, 1) pixels in
        0-255, the fused model's input.

        The value range follows the dtype or `value_range`, never the values: integer images are
        0-255 pixels; float images are 0-255 pixels too, unless `value_range=1` says they are
        scaled to 0-1 (they are then multiplied by 255); a float batch that lies within 0-1 without
        it gets a warning. Images with NaN or infinite pixels raise EnsembleError naming their
        indices; an empty batch gives an empty batch.
        """
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[None]
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[1] != x.shape[2]:
            raise EnsembleError(f"expected images shaped (H, W), (N, H, W) or (N, H, W, 1) with H == W, "
                                f"got {x.shape}")
        if value_range not in (None, 1, 255):
            raise EnsembleError(f"value_range must be 255 (pixels) or 1 (floats scaled to 0-1), got {value_range!r}")
        if np.issubdtype(x.dtype, np.integer):
            if value_range == 1:
                raise EnsembleError(f"{x.dtype} images are 0-255 pixels; value_range=1 is for float images")
        elif np.issubdtype(x.dtype, np.floating):
            bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
            if bad.size:
                shown = ", ".join(map(str, bad[:10])) + (f" and {bad.size - 10} more" if bad.size > 10 else "")
                raise EnsembleError(f"image(s) {shown} of the batch contain NaN or infinite pixels")
            if value_range is None and x.size and 0 < x.max() <= 1.0:   # a hint only: the rule stays the dtype's
                warnings.warn("float images are taken as 0-255 pixels, and these all lie within 0-1 (nearly "
                              "black); pass value_range=1 if they are scaled to 0-1", stacklevel=3)
        else:
            raise EnsembleError(f"images of dtype {x.dtype}: expected integer or float pixels")
        x = x.astype(np.float32)
        return (x * 255.0 if value_range == 1 else x)[..., None]

    def _input(self, x, value_range: float | None) -> np.ndarray:
        """`as_batch`: images of any size; each member resizes them to its own size, once, in the
        member loop (`Member.prepare`) and in the fused model (a `Resizing` layer) alike."""
        return self.as_batch(x, value_range)

    # ------------------------------------------------------------------ prediction
    def member_probabilities(self, x, value_range: float | None = None) -> np.ndarray:
        """(M, N, C) member probabilities in the ensemble's class order (the loop over members)."""
        batch = self._input(x, value_range)
        if not len(batch):
            return np.zeros((len(self.members), 0, len(self.class_names)), np.float32)
        out = []
        for m, order in zip(self.members, self._orders):
            xb = m.prepare(batch)
            out.append(predict_views(m.model, xb, m.tta)[:, order])
        return np.stack(out)

    def combine(self, member_proba: np.ndarray) -> np.ndarray:
        if self._spec.stacked and not self.stacking:
            raise EnsembleError(f"{self.method} ensemble has no fitted parameters; run the search first")
        if self._spec.needs_weights and self.weights is None:
            raise EnsembleError(f"method {self.method!r} needs weights from a validation split: "
                                "run `fer-ensemble search` or call fit_weights(x_val, y_val)")
        return self._spec.predict(member_proba, self.weights, self.stacking)

    def predict_proba(self, x, fused: bool = True, value_range: float | None = None) -> np.ndarray:
        """(N, C) ensemble probabilities of images `x` (see `as_batch` for shapes and value range;
        images of another size are resized to `input_size`); `fused=False` loops over members."""
        if fused and not self._spec.stacked:
            batch = self._input(x, value_range)
            if not len(batch):
                return np.zeros((0, len(self.class_names)), np.float32)
            fn = self._serving_fn(batch.shape[1])
            return np.concatenate([np.asarray(fn(batch[i:i + 256])) for i in range(0, len(batch), 256)])
        return self.combine(self.member_probabilities(x, value_range))

    def _serving_fn(self, size: int):
        """The fused model for `size`, traced once for any batch size and frozen: Keras's predict()
        rebuilds a dataset per call (~0.7 s for one image here); a traced call costs a few
        milliseconds, and freezing the weights into the graph lets TensorFlow's optimizer fold
        each batch norm into its convolution (1.4x faster again for a few faces on CPU,
        docs/benchmarks.md)."""
        model = self.to_keras(size)
        if size not in self._fns or self._fns[size][0] is not model:
            import tensorflow as tf

            fn = tf.function(lambda b: model(b, training=False),
                             input_signature=[tf.TensorSpec((None, size, size, 1), tf.float32)])
            self._fns[size] = (model, frozen(fn))
        return self._fns[size][1]

    def predict(self, x, value_range: float | None = None) -> np.ndarray:
        return self.predict_proba(x, value_range=value_range).argmax(axis=1)

    def predict_labels(self, x, value_range: float | None = None) -> list[str]:
        return [self.class_names[i] for i in self.predict(x, value_range)]

    def fit_weights(self, x_val, y_val, value_range: float | None = None) -> "Ensemble":
        """Compute accuracy/recall weights from a validation split."""
        self.weights = fit_weights(self.method, self.member_probabilities(x_val, value_range), np.asarray(y_val))
        self._fused, self._fns = {}, {}
        return self

    def evaluate(self, x, y, value_range: float | None = None) -> dict:
        from sklearn.metrics import confusion_matrix

        y = np.asarray(y)
        pred = self.predict(x, value_range)
        if len(pred) != len(y) or not len(y):
            raise EnsembleError(f"evaluate needs as many labels as images, and some: got {len(pred)} images "
                                f"and {len(y)} labels")
        labels = np.arange(len(self.class_names))
        cm = confusion_matrix(y, pred, labels=labels)
        per_class = {c: float(cm[i, i] / cm[i].sum()) if cm[i].sum() else 0.0 for i, c in enumerate(self.class_names)}
        return {"accuracy": float((pred == y).mean()), "per_class_accuracy": per_class, "confusion_matrix": cm.tolist()}

    # ------------------------------------------------------------------ fused model
    def _fused_weights(self) -> np.ndarray:
        return self._spec.fused_weights(self.weights, len(self.members), len(self.class_names))

    def to_keras(self, input_size: int | None = None):
        """One Keras model: input (N, S, S, 1) pixels in 0-255 (S: `input_size`, default the native
        `self.input_size`), each member's resize, scaling, TTA and class reordering, then the
        combination, all in the graph; output (N, C). Saved as .keras or .h5, it loads with
        keras.models.load_model in safe mode (after `import fer_ensemble.ensemble`)."""
        size = int(input_size or self.input_size)
        if size not in self._fused:
            self._fused[size] = self._build_fused(size)
        return self._fused[size]

    def _build_fused(self, size: int):
        if self._spec.layer is None:
            fused = "/".join(m for m in METHODS if get_method(m).layer is not None)
            raise EnsembleError(f"to_keras() does not support {self.method}; use {fused}")
        if self._spec.needs_weights and self.weights is None:
            raise EnsembleError(f"method {self.method!r} needs weights: run the search or fit_weights first")
        import keras
        from keras import layers

        from .layers import CombineMembers, HorizontalFlip, Shift

        inp = layers.Input((size, size, 1), name="pixels")
        outs = []
        for i, (m, order) in enumerate(zip(self.members, self._orders)):
            x = inp
            if m.input_size != size:
                x = layers.Resizing(m.input_size, m.input_size, name=f"m{i}_resize")(x)
            x = layers.Rescaling(m.scaling["scale"], m.scaling["offset"], name=f"m{i}_scale")(x)
            sub = m.model
            sub.name = f"member_{i}_{m.name}"
            views = tta_views(m.tta, m.input_size)
            if len(views) == 1:
                p = _one_output(sub(x, training=False), m)   # inference in every caller's context
            else:
                flipped = HorizontalFlip(name=f"m{i}_flip")(x)
                inputs = [flipped if v.flip else x for v in views]
                inputs = [Shift(v.dy, v.dx, name=f"m{i}_view{j}")(t) if (v.dy or v.dx) else t
                          for j, (v, t) in enumerate(zip(views, inputs))]
                p = layers.Average(name=f"m{i}_tta")([_one_output(sub(t, training=False), m) for t in inputs])
            if not np.array_equal(order, np.arange(len(order))) or len(m.class_names) != len(self.class_names):
                perm = np.zeros((len(m.class_names), len(self.class_names)), np.float32)
                perm[order, np.arange(len(order))] = 1.0
                reorder = layers.Dense(len(self.class_names), use_bias=False, trainable=False, name=f"m{i}_classes")
                p = reorder(p)
                reorder.set_weights([perm])
            outs.append(p)
        combined = CombineMembers(self._spec.layer, self._fused_weights().tolist(), name="combine")(outs)
        return keras.Model(inp, combined, name="fer_ensemble")

    # ------------------------------------------------------------------ manifest
    def save_manifest(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        return write_manifest(directory, [m.name for m in self.members], self.method, self.class_names,
                              self.weights, extra, self.stacking)



def _one_output(p, member: Member):
    """A member's symbolic output as one (N, C) tensor; EnsembleError naming the member otherwise."""
    if isinstance(p, (list, tuple)) and len(p) == 1:
        p = p[0]
    if isinstance(p, (list, tuple)) or len(p.shape) != 2 or p.shape[-1] != len(member.class_names):
        shape = [tuple(t.shape) for t in p] if isinstance(p, (list, tuple)) else tuple(p.shape)
        raise EnsembleError(f"{member.path}: outputs {shape}; a member gives one (N, {len(member.class_names)}) "
                            "row of class probabilities per image")
    return p


def _default_classes(members: list[Member]) -> list[str]:
    """The class order of an ensemble without ensemble.json: FER2013's (fer7 or fer6) or FER+'s
    when the first member has those classes in any order, else the first member's order."""
    from ..data.types import FER6_CLASSES, FER7_CLASSES, FERPLUS_CLASSES

    first = members[0].class_names
    return next((list(c) for c in (FER7_CLASSES, FER6_CLASSES, FERPLUS_CLASSES) if set(c) == set(first)), first)


def _data_size(members: list[Member]) -> int:
    """The side of the images the members were trained or evaluated on, when their sidecars agree
    (a trained member's input size; an imported member's `data_input_size`); else 48."""
    sizes = set()
    for m in members:
        side = m.sidecar.get("data_input_size") if m.sidecar.get("builder") == "imported" else \
            m.sidecar.get("input_shape", [None])[0]
        if side:
            sizes.add(int(side))
    return sizes.pop() if len(sizes) == 1 else DEFAULT_SIZE


def frozen(fn):
    """`fn` (a tf.function of one float32 batch) with its variables turned into constants, or `fn`
    itself where TensorFlow cannot freeze it; the outputs are the same to float rounding."""
    import tensorflow as tf

    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        const = convert_variables_to_constants_v2(fn.get_concrete_function())
    except Exception:     # a TensorFlow without the converter, or a graph it cannot freeze: stay traced
        return fn

    def call(b):
        out = const(tf.convert_to_tensor(b, tf.float32))
        return out[0] if isinstance(out, (list, tuple)) else out   # the frozen function returns a list

    return call
