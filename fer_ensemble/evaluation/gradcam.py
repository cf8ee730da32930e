"""Grad-CAM (Selvaraju et al. 2017): which part of the face drove a prediction.

The heatmap is the ReLU of the feature maps of a convolutional layer weighted by the spatially
averaged gradient of the class score (the pre-softmax logit when the model has one), upsampled to
the input size and scaled to [0, 1] per image.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError

_CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
# Layers that may follow the last convolution at the same resolution: their output is used so that
# the map is taken after batch norm and the activation (and after a residual Add or an Inception
# concatenation), not before.
_FOLLOWERS = ("BatchNormalization", "Activation", "ReLU", "Add", "Concatenate")


def last_conv_layer(model) -> str:
    """Name of the layer Grad-CAM uses by default: the last convolution with its same-resolution
    batch norm / activation / merge followers. Inside a nested backbone (a keras.applications model
    that pools internally) the name is "backbone/layer"."""
    chosen = None
    for layer in model.layers:
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is None or len(shape) != 4:
            continue
        kind = type(layer).__name__
        if kind in _CONV_TYPES:
            chosen = layer
        elif chosen is not None and kind in _FOLLOWERS and tuple(shape[1:3]) == tuple(chosen.output.shape[1:3]):
            chosen = layer
    if chosen is not None:
        return chosen.name
    for layer in reversed(model.layers):
        if _is_model(layer):
            try:
                return f"{layer.name}/{last_conv_layer(layer)}"
            except ModelError:
                continue
    raise ModelError(f"model {model.name!r}: no convolutional layer for Grad-CAM; name one with layer=")


def _is_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _ends_in_softmax(model) -> bool:
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    return type(last).__name__ == "Activation" and getattr(act, "__name__", "") == "softmax"


def _feature_fn(model, name: str):
    """A callable x -> (feature maps of layer `name`, class scores before the softmax)."""
    import keras

    if "/" not in name:
        try:
            target = model.get_layer(name)
        except ValueError:
            raise ModelError(f"model {model.name!r} has no layer {name!r}") from None
        scores = model.layers[-1].input if _ends_in_softmax(model) else model.output
        return keras.Model(model.inputs, [target.output, scores])
    outer, inner = name.split("/", 1)
    try:
        backbone = model.get_layer(outer)
        inner_model = keras.Model(backbone.inputs, [backbone.get_layer(inner).output, backbone.output])
    except ValueError:
        raise ModelError(f"model {model.name!r} has no layer {name!r}") from None
    softmax = model.layers[-1] if _ends_in_softmax(model) else None
    captured = []

    def call(layer, *args, **kwargs):
        # Re-trace the outer graph with the same layers: the backbone also yields its inner feature
        # maps, and the final softmax is skipped so that the scores are logits.
        if layer is backbone:
            feats, out = inner_model(*args, **kwargs)
            captured.append(feats)
            return out
        if layer is softmax:
            return args[0]
        return layer(*args, **kwargs)

    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return keras.Model(clone.inputs, [captured[-1], clone.output])


def gradcam(model, images, class_index=None, layer: str | None = None, batch_size: int = 64) -> np.ndarray:
    """(N, H, W) heatmaps in [0, 1] for the predicted class (or `class_index`: an int for all
    images or one per image). `images` are the model's inputs, already scaled, (N, H, W[, 1]).
    `layer` names the convolutional layer (default `last_conv_layer(model)`). Needs TensorFlow,
    whose GradientTape takes the gradient at an inner layer (Keras has no backend-neutral one)."""
    import keras

    try:
        import tensorflow as tf
    except ImportError:
        raise ModelError(f"gradcam on model {model.name!r}: Grad-CAM needs TensorFlow, which is not installed "
                         f"(Keras runs on {keras.backend.backend()} here); pip install tensorflow-cpu") from None
    if keras.backend.backend() != "tensorflow":
        # TensorFlow installed beside another backend: the model returns that backend's arrays,
        # which a GradientTape cannot watch (an AttributeError from deep inside TensorFlow).
        raise ModelError(f"gradcam on model {model.name!r}: Grad-CAM needs Keras on the TensorFlow backend, "
                         f"and it runs on {keras.backend.backend()} here; unset KERAS_BACKEND or set it "
                         f"to tensorflow")

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ModelError(f"gradcam: expected images shaped (N, H, W) or (N, H, W, 1), got {x.shape}")
    features = _feature_fn(model, layer or last_conv_layer(model))
    n = len(x)
    cls = None if class_index is None else np.broadcast_to(np.asarray(class_index), (n,))
    maps = []
    for start in range(0, n, batch_size):
        xb = tf.convert_to_tensor(x[start:start + batch_size])
        with tf.GradientTape() as tape:
            feats, scores = features(xb, training=False)
            idx = tf.argmax(scores, axis=1) if cls is None else tf.constant(cls[start:start + batch_size], tf.int64)
            chosen = tf.gather(scores, idx, axis=1, batch_dims=1)
        grads = tape.gradient(chosen, feats)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feats, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0]
        maps.append(cam.numpy())
    cam = np.concatenate(maps)
    peak = cam.reshape(n, -1).max(axis=1)[:, None, None]
    out = np.zeros_like(cam)
    np.divide(cam, peak, out=out, where=peak > 0)  # per image: the hottest pixel is 1
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An RGB uint8 image: the grayscale face with the heatmap blended over it in the jet colours."""
    from matplotlib import colormaps

    face = np.asarray(image, dtype=np.float32).reshape(heatmap.shape)
    if face.max() > 1.0:
        face = face / 255.0
    gray = np.repeat(face[..., None], 3, axis=-1)
    heat = colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3]
    return (np.clip((1 - alpha) * gray + alpha * heat, 0, 1) * 255).round().astype(np.uint8)
