"""train_batches: the numpy batch generator of the backend-neutral training path."""
from __future__ import annotations

import numpy as np

from fer_ensemble.data.pipeline import eval_arrays, train_batches


def _coded(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose first pixel is their index, so batches can be traced back to samples."""
    x = np.zeros((n, 48, 48), np.uint8)
    x[:, 0, 0] = np.arange(n)
    return x, np.arange(n) % 3


def test_each_pass_visits_every_sample_once_in_a_new_order():
    x, y = _coded(96)
    gen, steps = train_batches(x, y, 3, batch_size=32, seed=0)
    assert steps == 3
    passes = [[next(gen) for _ in range(steps)] for _ in range(2)]
    order = [np.concatenate([np.rint(b[0][:, 0, 0, 0] * 255).astype(int) for b in p]) for p in passes]
    assert sorted(order[0]) == list(range(96)) and sorted(order[1]) == list(range(96))
    assert not np.array_equal(order[0], order[1])
    xb, tb = passes[0][0]
    assert xb.shape == (32, 48, 48, 1) and xb.dtype == np.float32 and tb.shape == (32, 3)
    idx = np.rint(xb[:, 0, 0, 0] * 255).astype(int)
    np.testing.assert_array_equal(tb.argmax(1), y[idx])


def test_class_weights_become_per_sample_weights():
    x, y = _coded(60)
    gen, _ = train_batches(x, y, 3, batch_size=20, seed=1, class_weight={0: 1.0, 1: 2.0, 2: 5.0})
    xb, tb, wb = next(gen)
    np.testing.assert_array_equal(wb, np.array([1.0, 2.0, 5.0], np.float32)[tb.argmax(1)])


def test_balanced_batches_and_oversampling():
    x, y = _coded(90)
    y = np.where(np.arange(90) < 80, 0, 1)  # 80 vs 10
    gen, _ = train_batches(x, y, 2, batch_size=20, balancing="batches", seed=2)
    _, tb = next(gen)
    assert tb.sum(0).tolist() == [10, 10]
    _, steps_over = train_batches(x, y, 2, batch_size=10, balancing="oversample", oversample_fraction=1.0)
    _, steps_none = train_batches(x, y, 2, batch_size=10)
    assert steps_over > steps_none


def test_eval_arrays_scale_and_one_hot():
    x, y = _coded(5)
    xs, t = eval_arrays(x, y, 3)
    assert xs.shape == (5, 48, 48, 1) and xs.max() <= 1.0 and t.argmax(1).tolist() == y.tolist()
