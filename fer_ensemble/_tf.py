"""Import TensorFlow/Keras quietly: only start-up noise is silenced, real warnings still show.

TF prints oneDNN and CUDA probing lines at import that ignore TF_CPP_MIN_LOG_LEVEL; setting the
variables before the first import removes them. Users can override both by exporting them.
"""
from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides INFO and WARNING C++ logs only
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


quiet_tensorflow()
