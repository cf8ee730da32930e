"""Import TensorFlow/Keras quietly: only start-up noise is silenced, real warnings still show.

TF_CPP_MIN_LOG_LEVEL=2 hides TF's INFO/WARNING C++ start-up logs (CUDA probing and the like).
TF_ENABLE_ONEDNN_OPTS is deliberately left on: turning it off hides two more start-up lines but
made CPU training about 2x slower here. Users can override both by exporting them.
"""
from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides INFO and WARNING C++ logs only
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


quiet_tensorflow()
