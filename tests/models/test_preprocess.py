"""In-model preprocessing: histogram equalization and local contrast normalization as registered
layers in front of any builder."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_ensemble.errors import ModelError
from fer_ensemble.models import builder_arguments, create_model
from fer_ensemble.models.preprocess import HistogramEqualization, LocalContrastNormalization

TINY_VGG = {"filters": [8, 8, 16, 16], "dense_units": [16]}


def _faces(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.5, (n, 48, 48, 1)).astype("float32")


def test_equalization_matches_opencv():
    import cv2

    rng = np.random.default_rng(1)
    # Faces-like grey levels: a narrow, uneven histogram with many ties (uint8, as cv2 needs).
    imgs = np.clip(rng.normal(110, 18, (3, 48, 48)), 60, 170).astype("uint8")
    imgs[2, :20] = 60                                          # a large block at the darkest value
    out = np.asarray(HistogramEqualization()(imgs[..., None].astype("float32") / 255.0))[..., 0]
    for img, eq in zip(imgs, out):
        reference = cv2.equalizeHist(img).astype("float32")
        # cv2 rounds to uint8 (saturate_cast), we keep floats: equal within rounding.
        assert np.abs(eq * 255.0 - reference).max() <= 0.5 + 1e-3
        assert eq.min() == 0.0 and eq.max() == 1.0
    assert not np.asarray(HistogramEqualization()(np.full((1, 48, 48, 1), 0.4, "float32"))).any()


def test_equalized_model_ignores_exposure_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    net = create_model("vgg_v2", preprocess="equalize", **TINY_VGG)
    assert [layer.name for layer in net.layers][:2] == ["image", "equalize"]
    assert net.name == "vgg_v2" and net.output_shape == (None, 7)
    x = _faces()
    p = np.asarray(net(x, training=False))
    # A brighter, lower-contrast copy of the same faces gives the same prediction.
    np.testing.assert_allclose(np.asarray(net(0.5 * x + 0.3, training=False)), p, atol=1e-5)
    plain = create_model("vgg_v2", **TINY_VGG)
    assert plain.count_params() == net.count_params()
    path = tmp_path / "eq.h5"
    net.save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), p, rtol=1e-5, atol=1e-6)


def test_preprocess_is_offered_to_every_builder_and_checked():
    assert builder_arguments("resnet18")["preprocess"] is None
    with pytest.raises(ModelError,
                       match="model 'vgg_v2': unknown preprocess 'clahe'; choose from equalize, local_contrast"):
        create_model("vgg_v2", preprocess="clahe", **TINY_VGG)


def _local_contrast_reference(img, sigma):
    """The layer's formula with OpenCV's Gaussian blur (mirrored border), one 2-D image at a time."""
    import cv2

    size = 2 * int(2 * sigma + 0.5) + 1
    blur = lambda a: cv2.GaussianBlur(a, (size, size), sigma, borderType=cv2.BORDER_REFLECT)
    centred = img - blur(img)
    spread = np.sqrt(np.maximum(blur(centred * centred), 0.0))
    spread = np.maximum(spread, max(spread.mean(), 0.25 / 255.0))
    return 0.5 + 0.25 * centred / spread


@pytest.mark.parametrize("side, sigma", [(48, None), (48, 2.0), (24, None)])
def test_local_contrast_matches_opencv_and_ignores_exposure(side, sigma):
    rng = np.random.default_rng(2)
    # Noisy faces-like images under an illumination gradient; the last one is flat.
    imgs = rng.normal(0.45, 0.08, (3, side, side, 1)) + np.linspace(0.0, 0.3, side)[None, None, :, None]
    imgs[2] = 0.4
    imgs = imgs.astype("float32")
    layer = LocalContrastNormalization(sigma=sigma)
    out = np.asarray(layer(imgs))
    for img, got in zip(imgs[:2], out[:2]):
        np.testing.assert_allclose(got[..., 0], _local_contrast_reference(img[..., 0], sigma or side / 12),
                                   atol=1e-5)
        assert abs(got.mean() - 0.5) < 0.05 and 0.15 < got.std() < 0.3    # raw faces' spread
    np.testing.assert_allclose(out[2], 0.5, atol=1e-4)                   # flat: no pattern
    np.testing.assert_allclose(np.asarray(layer(0.6 * imgs[:2] + 0.2)), out[:2], atol=1e-4)
    again = LocalContrastNormalization.from_config(layer.get_config())
    assert again.sigma == sigma


@pytest.mark.parametrize("sigma", [0, -1.5, float("nan"), float("inf"), "wide"])
def test_local_contrast_rejects_a_width_with_no_gaussian(sigma):
    with pytest.raises(ValueError, match=r"LocalContrastNormalization: sigma must be a positive"):
        LocalContrastNormalization(sigma=sigma)


def test_local_contrast_model_round_trips_in_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    net = create_model("vgg_v2", preprocess="local_contrast", **TINY_VGG)
    assert [layer.name for layer in net.layers][:2] == ["image", "local_contrast"]
    assert net.count_params() == create_model("vgg_v2", **TINY_VGG).count_params()
    x = _faces()
    p = np.asarray(net(x, training=False))
    np.testing.assert_allclose(np.asarray(net(0.5 * x + 0.3, training=False)), p, atol=1e-4)
    net.save(tmp_path / "lcn.h5")
    again = keras.models.load_model(tmp_path / "lcn.h5", compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), p, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="Grad-CAM needs Keras on the TensorFlow backend")
def test_gradcam_sees_through_the_preprocessing_layer():
    from fer_ensemble.evaluation.gradcam import gradcam, last_conv_layer

    net = create_model("vgg_v2", preprocess="equalize", **TINY_VGG)
    assert last_conv_layer(net).startswith("vgg_v2/")
    heat = gradcam(net, _faces(2))
    assert heat.shape == (2, 48, 48) and np.isfinite(heat).all()


def test_a_fresh_process_loads_an_equalized_member_through_the_ensemble_package(tmp_path):
    """The ensemble stage alone (no `fer_ensemble.models` import of its own) must know the layer."""
    import subprocess
    import sys

    net = create_model("vgg_v2", preprocess="equalize", **TINY_VGG)
    net.save(tmp_path / "eq.h5")
    code = ("import sys; from pathlib import Path; from fer_ensemble.ensemble.ensemble import load_member; "
            "m = load_member(Path(sys.argv[1]), 'eq', {}); print(m.model.layers[1].__class__.__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "HistogramEqualization"
