"""In-model input preprocessing: layers a builder's network can start with, so that a saved model
carries its own preprocessing and every caller (ensemble, TTA, Grad-CAM, app) feeds it the same
raw images.

`create_model(name, preprocess="equalize")` puts the layer in front of any registered builder.
The layers are registered Keras classes (no Lambda), so the saved `.h5` still loads in safe mode
once this module is imported; `fer_ensemble.models` and `fer_ensemble.ensemble` import it.
"""
from __future__ import annotations

from .. import _tf  # noqa: F401
import keras
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


PREPROCESSORS = {"equalize": HistogramEqualization}


def with_preprocessing(net: keras.Model, preprocess: str | None) -> keras.Model:
    """`net` behind the named preprocessing layer (a key of PREPROCESSORS; `create_model` checks
    it), as one model (`net` nested, keeping its name); `None` returns `net` unchanged."""
    if preprocess is None:
        return net
    inputs = keras.Input(net.input_shape[1:], name="image")
    x = PREPROCESSORS[preprocess](name=preprocess)(inputs)
    return keras.Model(inputs, net(x), name=net.name)
