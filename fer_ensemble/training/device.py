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


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU multiplies bfloat16 natively (Intel AMX or AVX512-BF16), read from Linux's
    /proc/cpuinfo; False where that file is absent (bf16 would be emulated there, and slower)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def precision_policy(requested: bool) -> str:
    """mixed_bfloat16 on Hopper and newer (compute capability >= 9), mixed_float16 on other GPUs;
    on CPU, mixed_bfloat16 where the CPU has bf16 units (AMX / AVX512-BF16: 1.0-1.5x on ready tensors in
    benchmarks/bench_precision.py, no gain measured in FER2013 training), float32 elsewhere."""
    if not requested:
        return "float32"
    if not gpus():
        return "mixed_bfloat16" if backend() == "tensorflow" and cpu_has_bf16() else "float32"
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
