"""Grad-CAM: every registered builder, and the heat lands where the class is decided."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from fer_ensemble.errors import ModelError
from fer_ensemble.evaluation import gradcam, last_conv_layer, overlay
from fer_ensemble.models import create_model, list_models
from tests.helpers import SMALL_ARGS


@pytest.mark.parametrize("name", list_models())
def test_gradcam_for_every_builder(name):
    model = create_model(name, **SMALL_ARGS.get(name, {}))
    x = np.random.default_rng(0).uniform(0, 1, (3, 48, 48)).astype("float32")
    heat = gradcam(model, x)
    assert heat.shape == (3, 48, 48) and np.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1
    assert all(h.max() in (0.0, 1.0) for h in heat)  # scaled per image
    assert gradcam(model, x, class_index=[0, 1, 2]).shape == (3, 48, 48)
    assert "/" in last_conv_layer(model) if name.startswith("transfer_") else "/" not in last_conv_layer(model)


def test_named_layer_and_errors():
    model = create_model("lenet", filters=(4, 4, 4), dense_units=(8,))
    assert gradcam(model, np.zeros((1, 48, 48)), layer="conv1_relu").shape == (1, 48, 48)
    with pytest.raises(ModelError, match="has no layer 'nope'"):
        gradcam(model, np.zeros((1, 48, 48)), layer="nope")
    with pytest.raises(ModelError, match="expected images shaped"):
        gradcam(model, np.zeros((48,)))
    rgb = overlay(np.full((48, 48), 128, np.uint8), np.linspace(0, 1, 48 * 48).reshape(48, 48))
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[-1, -1, 0] > rgb[-1, -1, 2]  # cold blue -> hot red


def _bars(n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The class is a bright bar's orientation (0 horizontal, 1 vertical), anywhere in the image;
    also returns a mask of the region around each bar (the region that decides the class)."""
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 0.3, (n, 48, 48)).astype("float32")
    mask = np.zeros((n, 48, 48), bool)
    for i, c in enumerate(y):
        r, col = rng.integers(2, 34, 2)
        if c:
            x[i, r:r + 12, col + 4:col + 7] = 1.0
        else:
            x[i, r + 4:r + 7, col:col + 12] = 1.0
        mask[i, max(0, r - 3):r + 15, max(0, col - 3):col + 15] = True
    return x, y, mask


def test_heatmap_follows_the_region_that_decides_the_class():
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y, _ = _bars(800, rng)
    model = create_model("sepnet", num_classes=2, filters=(8, 16), dense_units=())
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    xt, yt, region = _bars(40, rng)
    assert (model.predict(xt, verbose=0).argmax(1) == yt).mean() >= 0.95
    heat = gradcam(model, xt)  # the default layer, the predicted class
    inside = np.array([h[m].mean() for h, m in zip(heat, region)])
    outside = np.array([h[~m].mean() for h, m in zip(heat, region)])
    assert (inside > 2 * outside).mean() >= 0.9, (inside, outside)
    assert inside.mean() > 5 * outside.mean()


def test_without_tensorflow_the_error_names_the_model_and_the_fix(monkeypatch):
    """Keras on JAX (the GPU image has no TensorFlow) has no GradientTape: say so, naming the model."""
    model = create_model("lenet", filters=(4, 4, 4), dense_units=(8,))
    monkeypatch.setitem(sys.modules, "tensorflow", None)   # `import tensorflow` now fails
    with pytest.raises(ModelError, match=r"gradcam on model 'lenet': Grad-CAM needs TensorFlow.*pip install tensorflow-cpu"):
        gradcam(model, np.zeros((1, 48, 48)))


def test_on_another_keras_backend_the_error_names_the_model_and_the_fix(monkeypatch):
    """TensorFlow installed but Keras on JAX (KERAS_BACKEND=jax): the tape cannot watch JAX arrays."""
    import keras

    model = create_model("lenet", filters=(4, 4, 4), dense_units=(8,))
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ModelError, match=r"gradcam on model 'lenet': .*TensorFlow backend.*runs on jax here"):
        gradcam(model, np.zeros((1, 48, 48)))
