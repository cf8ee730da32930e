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
import tensorflow as tf

from ..errors import ModelError


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
    ~9x faster here than ranking by sort + searchsorted (benchmarks/bench_preprocess.py)."""

    def call(self, inputs):
        shape = tf.shape(inputs)
        flat = tf.reshape(tf.cast(inputs, "float32"), (shape[0], -1))
        lo = tf.reduce_min(flat, axis=-1, keepdims=True)
        span = tf.reduce_max(flat, axis=-1, keepdims=True) - lo
        levels = tf.cast(tf.round(tf.math.divide_no_nan(flat - lo, span) * 255.0), "int32")
        cdf = tf.cumsum(tf.math.bincount(levels, minlength=256, maxlength=256, axis=-1), axis=-1)
        ranks = tf.cast(tf.gather(cdf, levels, batch_dims=1), "float32")
        r_min = tf.cast(cdf[:, :1], "float32")                 # the darkest level is bin 0
        n = tf.cast(tf.shape(flat)[1], "float32")
        out = tf.math.divide_no_nan(ranks - r_min, n - r_min)
        return tf.cast(tf.reshape(out, shape), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


PREPROCESSORS = {"equalize": HistogramEqualization}


def with_preprocessing(net: keras.Model, preprocess: str | None) -> keras.Model:
    """`net` behind the named preprocessing layer, as one model (`net` nested, keeping its name);
    `None` returns `net` unchanged."""
    if preprocess is None:
        return net
    if preprocess not in PREPROCESSORS:  # create_model checks registry.PREPROCESS_CHOICES first
        raise ModelError(f"model {net.name!r}: unknown preprocess {preprocess!r}; "
                         f"choose from {', '.join(sorted(PREPROCESSORS))}")
    inputs = keras.Input(net.input_shape[1:], name="image")
    x = PREPROCESSORS[preprocess](name=preprocess)(inputs)
    return keras.Model(inputs, net(x), name=net.name)
