"""`fer-ensemble export`: the fused ensemble of a run as one portable file.

Formats:

- `keras`: a Keras 3 `.keras` file (loads with `keras.models.load_model` in safe mode once
  `fer_ensemble.ensemble` is imported: the fused graph uses its registered layers);
- `onnx`: an ONNX graph, through Keras's own `model.export(format="onnx")`, which on TensorFlow
  converts with `tf2onnx`; it runs in `onnxruntime` with no Python code of this package (the
  optional extra `pip install fer_ensemble[onnx]` installs all three);
- `saved_model`: a TensorFlow SavedModel folder whose `serve` signature is the fused model.

Every export takes one float32 batch (N, S, S, 1) of 0-255 pixels at the ensemble's native size
(or `input_size`) and returns (N, C) probabilities in the ensemble's class order. The written file
is loaded back and run on eight probe images; its outputs must equal the Keras fused model's to
1e-4 (when the runtime that reads the format is installed; else the check is reported as skipped).
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from .._io import atomic_dir, atomic_path
from ..errors import EnsembleError
from ..rundir import lock_run

FORMATS = ("keras", "onnx", "saved_model")
TOLERANCE = 1e-4
_DEFAULT_NAMES = {"keras": "fer_ensemble.keras", "onnx": "fer_ensemble.onnx", "saved_model": "fer_ensemble_saved_model"}
EXPORT_DIR = "export"


def probe_batch(size: int, n: int = 8) -> np.ndarray:
    """(n, size, size, 1) float32 pixels in 0-255: noise, gradients, black and white faces' range."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, size, size, 1)).astype(np.float32)
    x[0], x[1] = 0.0, 255.0
    x[2] = np.linspace(0, 255, size, dtype=np.float32)[None, :, None]
    return x


def export_ensemble(run: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None,
                    input_size: int | None = None) -> dict:
    """Write `run`'s fused ensemble in `fmt` to `out` (default RUN/export/fer_ensemble.{keras,onnx}
    or RUN/export/fer_ensemble_saved_model/); returns {path, format, input_size, members, classes,
    max_abs_diff, checked_with}."""
    from .ensemble import Ensemble

    if fmt not in FORMATS:
        raise EnsembleError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    run = Path(run)
    if fmt == "onnx":
        _require("tf2onnx", "onnx")
    if not run.is_dir():
        raise EnsembleError(f"{run}: no such run directory")
    ens = Ensemble.load(run)
    model = ens.to_keras(input_size)
    size = int(model.input_shape[1])
    path = Path(out) if out else run / EXPORT_DIR / _DEFAULT_NAMES[fmt]
    expected = np.asarray(model(probe_batch(size), training=False))
    with lock_run(run, f"export --format {fmt}"):
        if fmt == "saved_model":
            with atomic_dir(path) as stage:
                _write(model, stage, fmt)
                diff, checker = _check(stage, fmt, expected, size)
        else:
            with atomic_path(path) as tmp:
                _write(model, tmp, fmt)
                diff, checker = _check(tmp, fmt, expected, size)
    return {"path": str(path), "format": fmt, "input_size": size, "members": [m.name for m in ens.members],
            "method": ens.method, "classes": list(ens.class_names), "max_abs_diff": diff, "checked_with": checker}


def _require(*packages: str) -> None:
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise EnsembleError(f"--format onnx needs {' and '.join(missing)}: pip install 'fer_ensemble[onnx]' "
                            "(tf2onnx, onnx and onnxruntime)")


def _write(model, path: Path, fmt: str) -> None:
    if fmt == "keras":
        model.save(path)
        return
    try:
        if fmt == "onnx":
            logging.getLogger("tf2onnx").setLevel(logging.ERROR)
            with warnings.catch_warnings():   # Keras's numpy-2 shim for tf2onnx probes np.object
                warnings.simplefilter("ignore", FutureWarning)
                model.export(str(path), format="onnx", verbose=False)
        else:
            model.export(str(path), format="tf_saved_model", verbose=False)
    except EnsembleError:
        raise
    except Exception as e:
        raise EnsembleError(f"{path.name}: the fused model could not be exported as {fmt} "
                            f"({e.__class__.__name__}: {str(e)[:300]})") from None


def _check(path: Path, fmt: str, expected: np.ndarray, size: int) -> tuple[float | None, str | None]:
    """Run the written file on the probe images; EnsembleError if it differs by more than TOLERANCE."""
    x = probe_batch(size)
    if fmt == "keras":
        import keras

        from . import layers as _layers  # noqa: F401  (the fused graph's layers)
        got, checker = keras.models.load_model(path, compile=False, safe_mode=True)(x, training=False), "keras"
    elif fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))     # kept: its variables live as long as it does
        got, checker = loaded.serve(x), "tensorflow"
    else:
        try:
            import onnxruntime as ort
        except ImportError:
            return None, None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got, checker = session.run(None, {session.get_inputs()[0].name: x})[0], "onnxruntime"
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise EnsembleError(f"{path.name}: the exported model outputs shape {got.shape}, expected {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:
        raise EnsembleError(f"{path.name}: the exported model differs from the fused Keras model by {diff:.3g} "
                            f"(more than {TOLERANCE:g}) on the probe images")
    return diff, checker
