"""Keras layers registered by fer_ensemble for the fused ensemble model (no Lambda layers, so the
fused .h5 loads with keras.models.load_model in safe mode once fer_ensemble is imported)."""
from __future__ import annotations

from .. import _tf  # noqa: F401
import keras
from keras import ops


def _weighted(p, weights):
    w = ops.convert_to_tensor(weights, dtype=p.dtype)      # (M, C)
    return ops.sum(p * w[:, None, :], axis=0)


def _vote(p, weights):
    votes = ops.sum(ops.one_hot(ops.argmax(p, axis=-1), ops.shape(p)[-1]), axis=0)
    return votes + 0.5 * ops.mean(p, axis=0)


def _geometric(p, weights):
    logp = ops.mean(ops.log(ops.clip(p, 1e-7, 1.0)), axis=0)
    return ops.exp(logp - ops.max(logp, axis=-1, keepdims=True))


# The layer's modes; each combination method names its mode (`methods.CombinationMethod.layer`).
_MODES = {"weighted": _weighted, "vote": _vote, "geometric": _geometric}


@keras.saving.register_keras_serializable(package="fer_ensemble")
class CombineMembers(keras.layers.Layer):
    """Combine a list of (N, C) member probabilities into (N, C) ensemble probabilities.

    weights: (M, C) non-negative, already normalised per class for mean/accuracy/recall.
    method: "weighted" (Σ w·p), "vote" (argmax votes + half the mean as tie-break), "geometric".
    """

    def __init__(self, method: str = "weighted", weights=None, **kwargs):
        super().__init__(**kwargs)
        self.method = method
        self.weights_list = weights

    def call(self, inputs):
        p = ops.stack(inputs, axis=0)                                    # (M, N, C)
        out = _MODES.get(self.method, _weighted)(p, self.weights_list)   # unknown: weighted, as saved before
        return out / ops.sum(out, axis=-1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "method": self.method, "weights": self.weights_list}


@keras.saving.register_keras_serializable(package="fer_ensemble")
class HorizontalFlip(keras.layers.Layer):
    """Mirror (N, H, W, C) images left-right: the flip of flip test-time augmentation."""

    def call(self, inputs):
        return ops.flip(inputs, axis=2)


@keras.saving.register_keras_serializable(package="fer_ensemble")
class Shift(keras.layers.Layer):
    """Move (N, H, W, C) image content by (dy, dx) pixels, filling the border with the nearest
    pixel: the shifted views of "flip-shift" test-time augmentation (`views.apply_view`)."""

    def __init__(self, dy: int = 0, dx: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.dy, self.dx = int(dy), int(dx)

    @staticmethod
    def _move(x, d: int, axis: int):
        if d == 0:
            return x
        n = x.shape[axis]
        if d > 0:     # repeat the first row/column d times, drop the last d
            edge = ops.repeat(ops.take(x, [0], axis=axis), d, axis=axis)
            return ops.concatenate([edge, ops.take(x, list(range(n - d)), axis=axis)], axis=axis)
        edge = ops.repeat(ops.take(x, [n - 1], axis=axis), -d, axis=axis)
        return ops.concatenate([ops.take(x, list(range(-d, n)), axis=axis), edge], axis=axis)

    def call(self, inputs):
        return self._move(self._move(inputs, self.dy, 1), self.dx, 2)

    def get_config(self):
        return {**super().get_config(), "dy": self.dy, "dx": self.dx}
