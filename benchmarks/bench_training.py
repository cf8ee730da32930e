"""Training throughput of VGG_v1 on CPU: our tf.data pipeline (augmentation + balanced batches)
vs pre-augmented tensors (the floor: no input work at all) vs the naive way (numpy arrays into
model.fit with the augmentation layers inside the model). Images per second, median of epochs."""
from __future__ import annotations

import sys
import time

import numpy as np

from _common import emit
from fer_ensemble.data import make_synthetic
from fer_ensemble.data.augment import AugmentConfig, build_augmenter
from fer_ensemble.data.pipeline import train_dataset
from fer_ensemble.models import create_model

STEPS = 12 if "--quick" in sys.argv else 30
BATCH = 63  # divisible by 7 classes for balanced batches


def rate(fit):
    fit(2)  # warm-up: tracing
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        fit(STEPS)
        ts.append(STEPS * BATCH / (time.perf_counter() - t))
    return round(float(np.median(ts)), 1)


def main():
    import keras
    import tensorflow as tf

    data = make_synthetic(4000, seed=0)
    x, y = data.train.x, data.train.y
    cfg = AugmentConfig()

    def compiled(model):
        model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        return model

    net = compiled(create_model("vgg_v1"))
    ds, _ = train_dataset(x, y, 7, BATCH, augment=cfg, balancing="batches", seed=0)
    ours = rate(lambda s: net.fit(ds, steps_per_epoch=s, epochs=1, verbose=0))

    pre = tf.data.Dataset.from_tensors((tf.random.uniform((BATCH, 48, 48, 1)), tf.one_hot(y[:BATCH], 7))).repeat()
    net2 = compiled(create_model("vgg_v1"))
    floor = rate(lambda s: net2.fit(pre, steps_per_epoch=s, epochs=1, verbose=0))

    inp = keras.Input((48, 48, 1))
    naive_model = compiled(keras.Model(inp, create_model("vgg_v1")(build_augmenter(cfg)(inp))))
    xs = x.astype("float32")[..., None] / 255.0
    ys = np.eye(7, dtype="float32")[y]
    naive = rate(lambda s: naive_model.fit(xs[:s * BATCH], ys[:s * BATCH], batch_size=BATCH, epochs=1, verbose=0))
    emit("training", {"model": "vgg_v1", "params": int(net.count_params()), "batch": BATCH,
                      "images_per_s": {"ours_tfdata_augment_balanced": ours, "pre_augmented_tensors": floor,
                                       "naive_numpy_fit_aug_in_model": naive},
                      "input_pipeline_overhead_vs_floor": round(1 - ours / floor, 3),
                      "device": "cpu" if not tf.config.list_physical_devices("GPU") else "gpu"})


if __name__ == "__main__":
    main()
