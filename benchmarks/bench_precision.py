"""Training throughput on CPU in float32 vs Keras's mixed_bfloat16 policy, side by side in one
run, for the zoo's CPU workhorses (ResNet-18 at width 24 with local-contrast preprocessing, VGG_v2
at width 32). CPUs with AMX or AVX512-BF16 run bfloat16 matrix products natively; elsewhere bf16
is emulated and slower. Images per second, median of interleaved repeats.

    python benchmarks/bench_precision.py [--quick]
"""
from __future__ import annotations

import sys
import time

import numpy as np

from _common import emit
from fer_ensemble.models import create_model
from fer_ensemble.training.device import cpu_has_bf16

STEPS = 8 if "--quick" in sys.argv else 20
REPEAT = 2 if "--quick" in sys.argv else 3
BATCH = 64
NETS = {"resnet18_w24": ("resnet18", {"filters": 24, "dropout": 0.3}),
        "resnet18_w24_lcn": ("resnet18", {"filters": 24, "dropout": 0.3, "preprocess": "local_contrast"}),
        "vgg_v2_w32": ("vgg_v2", {"filters": [32, 64, 128, 256], "dropout": 0.1, "dense_units": [256]})}


def _model(builder: str, args: dict, policy: str):
    import keras

    keras.mixed_precision.set_global_policy(policy)
    try:
        net = create_model(builder, input_shape=(48, 48, 1), num_classes=7, **args)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    net.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    return net


def main():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((BATCH, 48, 48, 1), dtype=np.float32))
    y = tf.constant(np.eye(7, dtype="float32")[rng.integers(0, 7, BATCH)])
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    out = {}
    for key, (builder, args) in NETS.items():
        nets = {p: _model(builder, args, p) for p in ("float32", "mixed_bfloat16")}
        rates = {p: [] for p in nets}
        for net in nets.values():
            net.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # tracing
        for _ in range(REPEAT):  # interleaved, so drift in the machine's speed hits both alike
            for p, net in nets.items():
                t = time.perf_counter()
                net.fit(ds, steps_per_epoch=STEPS, epochs=1, verbose=0)
                rates[p].append(STEPS * BATCH / (time.perf_counter() - t))
        med = {p: round(float(np.median(r)), 1) for p, r in rates.items()}
        out[key] = {"params": int(nets["float32"].count_params()), "images_per_s": med,
                    "bf16_speedup": round(med["mixed_bfloat16"] / med["float32"], 2)}
    emit("precision", {"batch": BATCH, "steps": STEPS, "repeats": REPEAT, "cpu_has_bf16": cpu_has_bf16(),
                       "nets": out})


if __name__ == "__main__":
    main()
