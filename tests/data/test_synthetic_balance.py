"""Synthetic faces, balancing, augmentation pipeline and cleaning report."""
from __future__ import annotations

import time

import numpy as np
import pytest

from fer_ensemble.data import (FER6_CLASSES, balanced_batch_indices, bootstrap_indices, class_weights, cleaning_report,
                               drop_flagged_from_train, make_synthetic, oversample)
from fer_ensemble.data.synthetic import FER2013_PROPORTIONS


def test_synthetic_deterministic_and_proportional():
    a, b = make_synthetic(3000, seed=3), make_synthetic(3000, seed=3)
    assert a.fingerprint() == b.fingerprint()
    assert make_synthetic(3000, seed=4).fingerprint() != a.fingerprint()
    assert (len(a.train), len(a.val), len(a.test)) == (2400, 300, 300)
    y = np.concatenate([a.train.y, a.val.y, a.test.y])
    np.testing.assert_allclose(np.bincount(y, minlength=7) / y.size, FER2013_PROPORTIONS, atol=0.02)
    assert a.train.x.dtype == np.uint8 and a.train.x.shape[1:] == (48, 48)
    assert 40 < a.train.x.mean() < 200 and a.train.x.std() > 20


def test_synthetic_classes_differ_in_the_mouth_region():
    d = make_synthetic(4000, seed=0)
    x = d.train.x.astype(np.float32)
    happy, surprise = x[d.train.y == 3].mean(0), x[d.train.y == 5].mean(0)
    mouth = (slice(30, 42), slice(16, 32))
    assert abs(happy[mouth].mean() - surprise[mouth].mean()) > 5  # open mouth is darker


def test_synthetic_fer6():
    d = make_synthetic(500, classes="fer6")
    assert d.class_names == FER6_CLASSES and d.train.y.max() <= 5


def test_synthetic_speed():
    # CPU time of this process, not wall time: other work on the machine must not fail the test.
    t = time.process_time()
    make_synthetic(2000)
    assert time.process_time() - t < 3.0  # 10k in < 3 s is benchmarked; keep CI headroom


def test_class_weights_formula():
    w = class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    assert w == {0: 2.0, 1: 6.0, 2: 3.0, 3: 0.0}


def test_oversample_replicates_fraction_except_largest():
    y = np.array([0] * 10 + [1] * 5 + [2] * 20)
    x = np.arange(y.size)
    xo, yo = oversample(x, y, 0.6, seed=0)
    assert np.bincount(yo).tolist() == [16, 8, 20]
    assert set(xo[yo == 1]) == set(x[y == 1])  # only copies of real class-1 images


def test_bootstrap_draws_with_replacement_by_seed():
    a, b, c = bootstrap_indices(10_000, seed=3), bootstrap_indices(10_000, seed=3), bootstrap_indices(10_000, seed=4)
    np.testing.assert_array_equal(a, b)                      # the seed fixes the draw (resume redraws it)
    assert a.size == 10_000 and a.min() >= 0 and a.max() < 10_000 and np.all(np.diff(a) >= 0)
    assert 0.62 < np.unique(a).size / a.size < 0.645         # 1 - 1/e of the images, some repeated
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="at least one image"):
        bootstrap_indices(0)


def test_balanced_batches_equal_per_class():
    y = np.array([0] * 100 + [1] * 7 + [2] * 40)
    plan = balanced_batch_indices(y, 12, 30, seed=0)
    assert plan.shape == (30, 12)
    for batch in plan:
        assert np.bincount(y[batch], minlength=3).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="divisible by 3"):
        balanced_batch_indices(y, 10, 3)


def test_train_dataset_batches_are_balanced_and_augmented(tiny_data):
    from fer_ensemble.data.augment import AugmentConfig
    from fer_ensemble.data.pipeline import train_dataset

    ds, steps = train_dataset(tiny_data.train.x, tiny_data.train.y, 7, batch_size=14,
                              augment=AugmentConfig(erasing=0.5), balancing="batches", seed=0)
    xb, yb = next(iter(ds))
    assert xb.shape == (14, 48, 48, 1) and yb.shape == (14, 7)
    assert np.bincount(np.argmax(yb, 1), minlength=7).tolist() == [2] * 7
    assert 0.0 <= float(np.min(xb)) and float(np.max(xb)) <= 1.0
    ds2, _ = train_dataset(tiny_data.train.x, tiny_data.train.y, 7, batch_size=14, balancing="batches", seed=0)
    xb2, yb2 = next(iter(ds2))
    np.testing.assert_array_equal(yb, yb2)            # same index plan
    assert not np.allclose(xb, xb2)                   # augmentation changed the pixels


def test_cleaning_report_and_drop(tiny_data):
    from fer_ensemble.data import FerData, Split

    tr = tiny_data.train
    x = tr.x.copy()
    y = tr.y.copy()
    x[1] = x[0]
    y[1] = (y[0] + 1) % 7        # conflicting duplicate
    x[2] = 128                   # blank
    test = Split(np.concatenate([tiny_data.test.x, x[3:4]]), np.concatenate([tiny_data.test.y, y[3:4]]))
    data = FerData(Split(x, y), tiny_data.val, test, tiny_data.class_names)
    rep = cleaning_report(data)
    assert [("train", 0), ("train", 1)] in rep["conflicting_duplicates"]
    assert rep["blank"]["train"] == [2]
    assert any(("test", len(test) - 1) in g for g in rep["cross_split"])
    cleaned, n = drop_flagged_from_train(data, rep)
    assert n == 4 and len(cleaned.train) == len(tr) - 4 and len(cleaned.test) == len(test)
