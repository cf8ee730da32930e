"""Device choices for whichever Keras backend runs: GPU detection, mixed-precision policy,
distribution strategy."""
from __future__ import annotations

import contextlib

from .. import _tf  # noqa: F401


def backend() -> str:
    import keras

    return keras.backend.backend()


def gpus() -> list:
    b = backend()
    if b == "tensorflow":
        import tensorflow as tf

        return tf.config.list_physical_devices("GPU")
    if b == "jax":
        import jax

        return [d for d in jax.devices() if d.platform == "gpu"]
    if b == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []


def _name_and_capability() -> tuple[str, tuple[int, int]]:
    found = gpus()
    b = backend()
    if b == "tensorflow":
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(found[0])
        return details.get("device_name", "GPU"), tuple(details.get("compute_capability") or (0, 0))
    if b == "jax":
        cc = getattr(found[0], "compute_capability", "0.0")
        return found[0].device_kind, tuple(int(v) for v in str(cc).split(".")[:2])
    import torch

    return torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0))


def device_name() -> str:
    found = gpus()
    return f"{len(found)}x {_name_and_capability()[0]}" if found else "cpu"


def precision_policy(requested: bool) -> str:
    """mixed_bfloat16 on Hopper and newer (compute capability >= 9), mixed_float16 on other GPUs,
    float32 on CPU (mixed precision slows CPU training)."""
    if not requested or not gpus():
        return "float32"
    cc = _name_and_capability()[1]
    return "mixed_bfloat16" if cc and cc[0] >= 9 else "mixed_float16"


def strategy_scope():
    """MirroredStrategy over several visible TensorFlow GPUs, otherwise the default strategy (one
    device; under JAX or torch, train several members at once with `train-all --jobs` instead)."""
    if backend() == "tensorflow" and len(gpus()) > 1:
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def versions() -> dict:
    """Backend and library versions for the sidecar."""
    import keras
    import numpy as np
    import platform

    b = backend()
    out = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__, "backend": b}
    mod = __import__(b)
    out[b] = getattr(mod, "__version__", "?")
    return out
