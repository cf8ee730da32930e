"""Augmentation: each knob does what its AugmentConfig field says."""
from __future__ import annotations

import contextlib

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


@contextlib.contextmanager
def _mixed_policy():
    """The policy the trainer sets on a GPU, restored afterwards."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _assert_exact_or_mirrored(ref: np.ndarray, out: np.ndarray) -> None:
    assert out.dtype == np.float32
    for image, aug in zip(ref, out):
        assert np.array_equal(aug, image) or np.array_equal(aug, image[:, ::-1]), "pixels were rounded"


def test_all_off_augmenter_is_an_identity_that_keeps_float32_under_a_mixed_policy():
    x = np.random.default_rng(1).random((4, 48, 48, 1)).astype("float32")
    with _mixed_policy():
        y = build_augmenter(AugmentConfig(**ONLY))(x, training=True)
    assert "float32" in str(y.dtype)
    np.testing.assert_array_equal(np.asarray(y), x)  # no float16 rounding on the way in


def test_augmenter_keeps_pixels_exact_under_a_mixed_policy():
    """With a knob on, the whole augmenter (not only its layers) stays in float32: a flip moves
    pixels without rounding them to float16."""
    x = np.random.default_rng(2).random((8, 48, 48, 1)).astype("float32")
    with _mixed_policy():
        y = np.asarray(build_augmenter(AugmentConfig(**{**ONLY, "flip": True}), seed=0)(x, training=True))
    _assert_exact_or_mirrored(x, y)


def test_tf_pipeline_augments_in_float32_under_a_mixed_policy():
    """The trainer sets the mixed policy before it builds the tf.data pipeline; the pipeline's
    augmenter still keeps pixels exact (each image is its un-augmented self or its mirror)."""
    from fer_ensemble.data.pipeline import train_dataset

    x = np.random.default_rng(3).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    y = np.arange(16) % 7
    with _mixed_policy():
        plain, _ = train_dataset(x, y, 7, batch_size=8, seed=4)
        flipped, _ = train_dataset(x, y, 7, batch_size=8, seed=4, augment=AugmentConfig(**{**ONLY, "flip": True}))
        ref, out = (np.asarray(next(iter(ds))[0]) for ds in (plain, flipped))
    _assert_exact_or_mirrored(ref, out)
