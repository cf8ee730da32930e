"""Input pipelines: scaling, shuffling, balancing and batch augmentation.

`train_dataset` is the tf.data pipeline (TensorFlow backend): images stay uint8 in one tensor;
each batch is gathered by index, scaled to float and augmented in `map` on whole batches, so the
per-image cost is a few vectorised ops (benchmarks/bench_training.py). `train_batches` is the
backend-neutral one (JAX or torch, where tf.data is absent): a generator of numpy batches with the
same shuffling and balancing, whose augmentation the trainer runs on the device inside the model.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import _tf  # noqa: F401
from .augment import AugmentConfig, advance_random_state, build_augmenter
from .balance import balanced_batch_indices, oversample

# The one scaling used at training and prediction time; stored in every model's sidecar.
DEFAULT_SCALING = {"scale": 1.0 / 255.0, "offset": 0.0}


def scale_images(x: np.ndarray, scaling: dict = DEFAULT_SCALING) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, H, W, 1) with the stored scaling."""
    x = np.asarray(x, dtype=np.float32) * scaling["scale"] + scaling["offset"]
    return x[..., None] if x.ndim == 3 else x


def _targets(y: np.ndarray, num_classes: int, soft: np.ndarray | None) -> np.ndarray:
    """float32 training targets: the soft (FER+) distributions when given, else one-hot labels."""
    return soft.astype(np.float32) if soft is not None else np.eye(num_classes, dtype=np.float32)[y]


def _balanced(x, y, num_classes, soft, balancing, oversample_fraction, seed):
    """The training images, labels and targets after the balancing step both pipelines share."""
    if balancing == "oversample":
        x, y, *rest = oversample(x, y, oversample_fraction, seed=seed, soft=soft)
        soft = rest[0] if rest else None
    elif balancing not in ("none", "batches", "class_weights"):
        raise ValueError(f"unknown balancing {balancing!r}; expected none, oversample, batches or class_weights")
    targets = _targets(y, num_classes, soft)
    return x, y, targets


def train_dataset(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int = 64, *,
                  soft: np.ndarray | None = None, augment: AugmentConfig | None = None,
                  balancing: str = "none", oversample_fraction: float = 0.6, seed: int = 0,
                  scaling: dict = DEFAULT_SCALING, steps_per_epoch: int | None = None,
                  initial_epoch: int = 0):
    """A repeating, shuffled training dataset of (images, one-hot or soft targets) batches.

    balancing: "none", "oversample" (replicate a fraction of the smaller classes) or "batches"
    (every batch holds each class equally often). Class weights are applied by the trainer.
    initial_epoch: where a resumed run starts; the batches continue the order an uninterrupted run
    would have seen (the skipped index batches cost no image work), not its first epochs' again,
    with the augmentations it would have drawn.
    """
    import tensorflow as tf

    x, y, targets = _balanced(x, y, num_classes, soft, balancing, oversample_fraction, seed)
    x_t = tf.constant(x)
    t_t = tf.constant(targets)
    steps = steps_per_epoch or max(1, len(y) // batch_size)
    if balancing == "batches":
        # Index plan for 50 epochs at a time; cheap (ints) and reproducible from the seed.
        plan = balanced_batch_indices(y, batch_size, steps * 50, seed=seed)
        ds = tf.data.Dataset.from_tensor_slices(plan).repeat()
    else:
        ds = (tf.data.Dataset.range(len(y)).shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
              .repeat().batch(batch_size, drop_remainder=True))
    ds = ds.skip(initial_epoch * steps)
    scale, offset = float(scaling["scale"]), float(scaling["offset"])
    augmenter = build_augmenter(augment, seed=seed) if augment else None
    if augmenter is not None:   # resumed: the skipped batches' augmentation draws are skipped too
        advance_random_state(augmenter, initial_epoch * steps, np.asarray(x[:1], np.float32)[..., None] * scale)

    def gather(idx):
        xb = tf.cast(tf.gather(x_t, idx), tf.float32)[..., None] * scale + offset
        if augmenter is not None:
            xb = augmenter(xb, training=True)
        return xb, tf.gather(t_t, idx)

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), steps


def _index_plan(y: np.ndarray, batch_size: int, steps: int, balancing: str, seed: int, skip: int = 0):
    """Endless batches of indices: a fresh permutation per pass, or class-balanced batches; the
    first `skip` batches are left out."""
    return itertools.islice(_index_batches(y, batch_size, steps, balancing, seed), skip, None)


def _index_batches(y, batch_size, steps, balancing, seed):
    rng = np.random.default_rng(seed)
    while True:
        if balancing == "batches":
            yield from balanced_batch_indices(y, batch_size, steps * 50, seed=int(rng.integers(2**31)))
        else:
            order = rng.permutation(len(y))
            for i in range(len(y) // batch_size):
                yield order[i * batch_size:(i + 1) * batch_size]


def train_batches(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int = 64, *,
                  soft: np.ndarray | None = None, balancing: str = "none", oversample_fraction: float = 0.6,
                  seed: int = 0, scaling: dict = DEFAULT_SCALING, steps_per_epoch: int | None = None,
                  class_weight: dict[int, float] | None = None, initial_epoch: int = 0):
    """The backend-neutral counterpart of `train_dataset` without augmentation: an endless
    generator of (scaled float32 images, targets) numpy batches, and the steps per epoch.
    `class_weight` becomes a third element, per-sample weights (Keras takes no class_weight
    with generator input). A run resumed at `initial_epoch` continues the uninterrupted order."""
    x, y, targets = _balanced(x, y, num_classes, soft, balancing, oversample_fraction, seed)
    steps = steps_per_epoch or max(1, len(y) // batch_size)
    scale, offset = np.float32(scaling["scale"]), np.float32(scaling["offset"])

    per_sample = None
    if class_weight is not None:
        per_sample = np.array([class_weight.get(c, 1.0) for c in range(num_classes)], np.float32)[y]

    def batches():
        for idx in _index_plan(y, batch_size, steps, balancing, seed, skip=initial_epoch * steps):
            xb = x[idx].astype(np.float32)[..., None] * scale + offset
            yield (xb, targets[idx]) if per_sample is None else (xb, targets[idx], per_sample[idx])

    return batches(), steps


def eval_arrays(x: np.ndarray, y: np.ndarray, num_classes: int, soft: np.ndarray | None = None,
                scaling: dict = DEFAULT_SCALING) -> tuple[np.ndarray, np.ndarray]:
    """Scaled images and targets for validation without tf.data."""
    targets = _targets(y, num_classes, soft)
    return scale_images(x, scaling), targets


def eval_dataset(x: np.ndarray, y: np.ndarray | None, num_classes: int, batch_size: int = 256,
                 soft: np.ndarray | None = None, scaling: dict = DEFAULT_SCALING):
    """Unshuffled, un-augmented batches for validation and prediction."""
    import tensorflow as tf

    xs = scale_images(x, scaling)
    if y is None:
        return tf.data.Dataset.from_tensor_slices(xs).batch(batch_size)
    targets = _targets(y, num_classes, soft)
    return tf.data.Dataset.from_tensor_slices((xs, targets)).batch(batch_size).prefetch(2)
