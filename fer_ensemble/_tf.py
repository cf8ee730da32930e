"""Import TensorFlow/Keras quietly, and pick a Keras backend that is installed.

TF_CPP_MIN_LOG_LEVEL=2 hides TF's INFO/WARNING C++ start-up logs (CUDA probing and the like).
TF_ENABLE_ONEDNN_OPTS is deliberately left on: turning it off hides two more start-up lines but
made CPU training about 2x slower here. Users can override both by exporting them.

The backend is TensorFlow unless KERAS_BACKEND says otherwise; where TensorFlow is not installed
but JAX is (a GPU image with JAX and no TensorFlow, say), JAX is used, so training still runs.
"""
from __future__ import annotations

import importlib.util
import os


def default_backend() -> str:
    if importlib.util.find_spec("tensorflow") is None and importlib.util.find_spec("jax") is not None:
        return "jax"
    return "tensorflow"


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides INFO and WARNING C++ logs only
    os.environ.setdefault("KERAS_BACKEND", default_backend())


quiet_tensorflow()
