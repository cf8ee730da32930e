"""Augmentation: each knob does what its AugmentConfig field says."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ensemble.data.augment import AugmentConfig, build_augmenter

ONLY = {"flip": False, "rotation": 0.0, "translation": 0.0, "zoom": 0.0}


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_erasing_is_the_per_image_probability(p):
    x = np.random.default_rng(0).random((512, 48, 48, 1)).astype("float32")
    y = np.asarray(build_augmenter(AugmentConfig(**ONLY, erasing=p), seed=3)(x, training=True))
    changed = np.abs(y - x) > 1e-6
    erased = np.any(changed, axis=(1, 2, 3))
    # Binomial sd at p=0.5, n=512 is 0.022; a single-float Keras factor would erase ~p/2.
    assert abs(erased.mean() - p) < 0.08
    if p:
        area = np.mean(changed, axis=(1, 2, 3))[erased]
        assert 0.0 < np.median(area) <= 0.2                   # patches within `scale`'s upper bound
        assert 0.0 <= y.min() and y.max() <= 1.0


def test_unknown_augment_key_is_named():
    with pytest.raises(ValueError, match="erase"):
        AugmentConfig.from_dict({"erase": 0.5})


def test_all_off_augmenter_is_an_identity_that_keeps_float32_under_a_mixed_policy():
    import keras

    x = np.random.default_rng(1).random((4, 48, 48, 1)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        y = build_augmenter(AugmentConfig(**ONLY), dtype="float32")(x, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert "float32" in str(y.dtype)
    # The Sequential itself autocasts its input under a mixed policy (float16 rounding, as with any
    # knob on), so pixels match to float16 precision rather than bit for bit.
    np.testing.assert_allclose(np.asarray(y), x, atol=5e-4)
