"""Class balancing (class weights, oversampling, the index plan for balanced batches) and the
bootstrap resample that bagged zoo members train on."""
from __future__ import annotations

import numpy as np


def class_weights(y: np.ndarray, num_classes: int | None = None) -> dict[int, float]:
    """w_j = N / n_j for every class present (absent classes get 0: nothing to weigh)."""
    counts = np.bincount(y, minlength=num_classes or 0)
    n = counts.sum()
    return {j: (float(n / c) if c else 0.0) for j, c in enumerate(counts)}


def oversample(x: np.ndarray, y: np.ndarray, fraction: float = 0.6, seed: int = 0,
               soft: np.ndarray | None = None):
    """Replicate `fraction` of each class's images, except the largest class (the study used 0.6).

    Returns (x, y) or (x, y, soft) when soft targets are given; originals come first.
    """
    if not 0 <= fraction:
        raise ValueError(f"oversampling fraction must be >= 0, got {fraction}")
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    largest = int(np.argmax(counts))
    extra = []
    for c in np.flatnonzero(counts):
        if c == largest:
            continue
        idx = np.flatnonzero(y == c)
        k = int(round(fraction * idx.size))
        extra.append(rng.choice(idx, size=k, replace=k > idx.size))
    pick = np.concatenate([np.arange(y.size)] + extra)
    out = (x[pick], y[pick])
    return out + (soft[pick],) if soft is not None else out


def balanced_batch_indices(y: np.ndarray, batch_size: int, n_batches: int, seed: int = 0) -> np.ndarray:
    """(n_batches, batch_size) indices where every batch holds each class equally often.

    batch_size must be a multiple of the number of classes present; within a class, images are
    drawn without replacement until the class is exhausted, then reshuffled.
    """
    classes = np.flatnonzero(np.bincount(y))
    k = len(classes)
    if batch_size % k:
        raise ValueError(f"balanced batches need batch_size divisible by {k} classes, got {batch_size}")
    per = batch_size // k
    rng = np.random.default_rng(seed)
    cols = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        need = per * n_batches
        reps = -(-need // idx.size)
        cols.append(np.concatenate([rng.permutation(idx) for _ in range(reps)])[:need].reshape(n_batches, per))
    batches = np.concatenate(cols, axis=1)
    return rng.permuted(batches, axis=1)


def bootstrap_indices(n: int, seed: int = 0) -> np.ndarray:
    """n indices drawn from range(n) with replacement (bagging): each member that trains on its
    own draw sees about 63% of the images, some of them more than once, so members trained on
    different draws fit different samples. Sorted, so that the draw reads like the split."""
    if n < 1:
        raise ValueError(f"a bootstrap resample needs at least one image, got {n}")
    return np.sort(np.random.default_rng(seed).integers(0, n, size=n))
