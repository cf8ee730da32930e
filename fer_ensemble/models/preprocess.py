"""In-model input preprocessing: layers a builder's network can start with, so that a saved model
carries its own preprocessing and every caller (ensemble, TTA, Grad-CAM, app) feeds it the same
raw images.

`create_model(name, preprocess="equalize")` (or `"local_contrast"`) puts the layer in front of any
registered builder.
The layers are registered Keras classes (no Lambda), so the saved `.h5` still loads in safe mode
once this module is imported; `fer_ensemble.models` and `fer_ensemble.ensemble` import it.
"""
from __future__ import annotations

from .. import _tf  # noqa: F401
import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="fer_ensemble")
class HistogramEqualization(keras.layers.Layer):
    """Per-image histogram equalization with OpenCV's mapping (`cv2.equalizeHist`, inside the
    graph): a pixel becomes (r - r_min) / (n - r_min), where r counts the image's pixels not
    brighter than it and r_min is that count for its darkest value. So each image spans [0, 1]
    whatever its exposure and contrast; the map is monotone and ties keep equal values. A flat
    image (r_min = n) maps to 0.

    Counted in 256 bins between each image's darkest and brightest value: an 8-bit face (at any
    scale and offset) has at most 256 levels, which stretching keeps apart, so the result equals
    cv2's exactly; finer inputs are binned as cv2 bins 8-bit ones. A histogram and a gather are
    ~6x faster here than ranking by sort + searchsorted (benchmarks/bench_preprocess.py).

    Written in keras.ops (no TensorFlow import), so the package and such models also work on the
    JAX backend; the per-image histograms are one segment sum over (image, level) ids."""

    def call(self, inputs):
        shape = ops.shape(inputs)
        flat = ops.reshape(ops.cast(inputs, "float32"), (shape[0], -1))
        rows = ops.shape(flat)[0]
        lo = ops.min(flat, axis=-1, keepdims=True)
        span = ops.max(flat, axis=-1, keepdims=True) - lo
        levels = ops.cast(ops.round(ops.divide_no_nan(flat - lo, span) * 255.0), "int32")
        ids = ops.reshape(levels + 256 * ops.arange(rows, dtype="int32")[:, None], (-1,))
        counts = ops.segment_sum(ops.ones_like(ids, dtype="float32"), ids, num_segments=rows * 256)
        cdf = ops.cumsum(ops.reshape(counts, (rows, 256)), axis=-1)
        ranks = ops.take_along_axis(cdf, levels, axis=-1)
        r_min = cdf[:, :1]                                     # the darkest level is bin 0
        n = ops.cast(ops.shape(flat)[1], "float32")
        out = ops.divide_no_nan(ranks - r_min, n - r_min)
        return ops.cast(ops.reshape(out, shape), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


_MIN_SPREAD = 0.25 / 255.0


@keras.saving.register_keras_serializable(package="fer_ensemble")
class LocalContrastNormalization(keras.layers.Layer):
    """Local contrast normalization (Jarrett et al., 2009): each pixel minus the Gaussian-weighted
    mean of its neighbourhood, divided by the neighbourhood's Gaussian-weighted standard deviation,
    floored at that deviation's mean over the image so that flat regions are not blown up into
    noise. So it removes slow illumination gradients and evens out local contrast, where
    `HistogramEqualization` only remaps grey levels over the whole image: the same face, another
    view. Any brightness and contrast (x -> a x + b, a > 0) gives the same output, as long as the
    image's mean local spread stays above a quarter of an 8-bit grey level (inputs on [0, 1]).

    `sigma` is the Gaussian's width in pixels; None takes 1/12 of the input's side (4 px at 48×48).
    The kernel is cut at 2 sigma and the border mirrored (`cv2.BORDER_REFLECT`); the blur is one
    matrix product per axis. The output is 0.5 + z / 4, the spread of raw faces on [0, 1] (mean
    ~0.5, sd ~0.25), so a network warm-started from raw-input weights sees familiar input
    statistics. A flat image maps to 0.5.
    Written in keras.ops, like the layer above."""

    def __init__(self, sigma: float | None = None, **kwargs):
        super().__init__(**kwargs)
        # 0 would silently fall back to the default width, and a negative or NaN width has no
        # Gaussian: say so at construction, not as NaNs in the first batch.
        try:
            self.sigma = None if sigma is None else float(sigma)
        except (TypeError, ValueError):
            self.sigma = float("nan")
        if self.sigma is not None and not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"LocalContrastNormalization: sigma must be a positive number of "
                             f"pixels or None, got {sigma!r}")

    def build(self, input_shape):
        side = min(input_shape[1], input_shape[2])
        self._rows = self._blur_matrix(input_shape[1], side)
        self._cols = self._blur_matrix(input_shape[2], side)

    def _blur_matrix(self, n: int, side: int) -> np.ndarray:
        """The n×n matrix that blurs one axis: the Gaussian's taps over the rows of an identity
        padded by numpy's "symmetric" mode (pixel -1 is pixel 0, as cv2.BORDER_REFLECT), so the
        mirrored border is folded in."""
        sigma = self.sigma or side / 12.0
        radius = int(2.0 * sigma + 0.5)
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps /= taps.sum()
        padded = np.pad(np.eye(n), ((radius, radius), (0, 0)), mode="symmetric")
        return sum(w * padded[k:k + n] for k, w in enumerate(taps)).astype("float32")

    def _blur(self, x):
        # Two small matrix products (one per axis) run far faster on CPU than a 1-channel
        # convolution (benchmarks/bench_preprocess.py).
        return ops.einsum("kl,bilc->bikc", self._cols, ops.einsum("ij,bjkc->bikc", self._rows, x))

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        centred = x - self._blur(x)
        spread = ops.sqrt(ops.maximum(self._blur(centred * centred), 0.0))
        # The floor is also at least a quarter of an 8-bit grey level, so that the round-off left
        # in a flat image is not stretched into a pattern.
        floor = ops.maximum(ops.mean(spread, axis=(1, 2), keepdims=True), _MIN_SPREAD)
        z = ops.divide_no_nan(centred, ops.maximum(spread, floor))
        return ops.cast(0.5 + 0.25 * z, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


PREPROCESSORS = {"equalize": HistogramEqualization, "local_contrast": LocalContrastNormalization}


def with_preprocessing(net: keras.Model, preprocess: str | None) -> keras.Model:
    """`net` behind the named preprocessing layer (a key of PREPROCESSORS; `create_model` checks
    it), as one model (`net` nested, keeping its name); `None` returns `net` unchanged."""
    if preprocess is None:
        return net
    inputs = keras.Input(net.input_shape[1:], name="image")
    x = PREPROCESSORS[preprocess](name=preprocess)(inputs)
    return keras.Model(inputs, net(x), name=net.name)
