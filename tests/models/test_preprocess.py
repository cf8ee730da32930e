"""In-model preprocessing: histogram equalization as a registered layer in front of any builder."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ensemble.errors import ModelError
from fer_ensemble.models import builder_arguments, create_model
from fer_ensemble.models.preprocess import HistogramEqualization

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
    import keras

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
    with pytest.raises(ModelError, match="model 'vgg_v2': unknown preprocess 'clahe'; choose from equalize"):
        create_model("vgg_v2", preprocess="clahe", **TINY_VGG)


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
