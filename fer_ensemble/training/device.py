"""Device choices: GPU detection, mixed-precision policy, distribution strategy."""
from __future__ import annotations

import contextlib

from .. import _tf  # noqa: F401


def gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def device_name() -> str:
    found = gpus()
    if not found:
        return "cpu"
    import tensorflow as tf

    details = tf.config.experimental.get_device_details(found[0])
    return f"{len(found)}x {details.get('device_name', 'GPU')}"


def precision_policy(requested: bool) -> str:
    """mixed_bfloat16 on Hopper and newer (compute capability >= 9), mixed_float16 on other GPUs,
    float32 on CPU (mixed precision slows CPU training)."""
    found = gpus()
    if not requested or not found:
        return "float32"
    import tensorflow as tf

    cc = tf.config.experimental.get_device_details(found[0]).get("compute_capability", (0, 0))
    return "mixed_bfloat16" if cc and cc[0] >= 9 else "mixed_float16"


def strategy_scope():
    """MirroredStrategy over several visible GPUs, otherwise the default strategy."""
    import tensorflow as tf

    if len(gpus()) > 1:
        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()
