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
    """Per-image histogram equalization with OpenCV's mapping (`cv2.equalizeHist`, here on floats
    and inside the graph): a pixel becomes (r - r_min) / (n - r_min), where r counts the image's
    pixels not brighter than it and r_min is that count for its darkest value. So each image spans
    [0, 1] whatever its exposure and contrast; the map is monotone and ties keep equal values.
    A flat image (r_min = n) maps to 0."""

    def call(self, inputs):
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, (shape[0], -1))
        n = tf.cast(tf.shape(flat)[1], inputs.dtype)
        ranks = tf.cast(tf.searchsorted(tf.sort(flat, axis=-1), flat, side="right"), inputs.dtype)
        r_min = tf.reduce_min(ranks, axis=-1, keepdims=True)
        return tf.reshape(tf.math.divide_no_nan(ranks - r_min, n - r_min), shape)

    def compute_output_shape(self, input_shape):
        return input_shape


PREPROCESSORS = {"equalize": HistogramEqualization}


def with_preprocessing(net: keras.Model, preprocess: str | None) -> keras.Model:
    """`net` behind the named preprocessing layer, as one model (`net` nested, keeping its name);
    `None` returns `net` unchanged."""
    if preprocess is None:
        return net
    if preprocess not in PREPROCESSORS:
        raise ModelError(f"model {net.name!r}: unknown preprocess {preprocess!r}; "
                         f"choose from {', '.join(sorted(PREPROCESSORS))}")
    inputs = keras.Input(net.input_shape[1:], name="image")
    x = PREPROCESSORS[preprocess](name=preprocess)(inputs)
    return keras.Model(inputs, net(x), name=net.name)
