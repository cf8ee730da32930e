"""Keras-2 models as Keras 3 models (`fer_ensemble/ensemble/keras2.py`): architecture JSON of
tf.keras and of Keras <= 2.3 with their weights, and legacy full `.h5` models, reproduce tf-keras's
own outputs; code (Lambda, TensorFlow ops) and custom layers are refused naming the layer and key.

The files are in `fixtures/keras2/`, made by `fixtures/make_keras2_models.py` with tf-keras; where
tf-keras is installed the script also runs here, into a temporary folder, and its files are checked
the same way.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_ensemble.ensemble.importer import load_foreign
from fer_ensemble.errors import EnsembleError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
K2 = FIXTURES / "keras2"
sys.path.insert(0, str(FIXTURES))
from make_keras2_models import probe_images  # noqa: E402

# (model file, weights file, expected outputs' key, input size)
CASES = [("seq48.json", "seq48_weights.h5", "seq48", 48), ("old_seq48.json", "seq48_weights.h5", "seq48", 48),
         ("func64.json", "func64.h5", "func64", 64), ("old_func64.json", "func64.h5", "func64", 64),
         ("func64.h5", None, "func64", 64), ("logits48.h5", None, "logits48", 48)]


def _check_reproduces(folder: Path, model_file: str, weights: str | None, key: str, size: int) -> None:
    import keras

    model = load_foreign(folder / model_file, folder / weights if weights else None)
    expected = np.load(folder / "expected.npz")[key]
    np.testing.assert_allclose(model.predict(probe_images(size), verbose=0), expected, atol=1e-5)
    out = model(keras.Input((size, size, 1)))       # one tensor, not a one-element list
    assert not isinstance(out, (list, tuple)) and tuple(out.shape) == (None, 7)


@pytest.mark.parametrize("model_file, weights, key, size", CASES)
def test_keras2_files_reproduce_the_outputs_tf_keras_computed(model_file, weights, key, size):
    _check_reproduces(K2, model_file, weights, key, size)


def test_keras2_files_that_tf_keras_writes_today_convert_too(tmp_path):
    pytest.importorskip("tf_keras", reason="tf-keras is not installed (make install adds it; pip install tf-keras)")
    script = FIXTURES / "make_keras2_models.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for case in CASES:
        _check_reproduces(tmp_path, *case)


def _edited(tmp_path: Path, source: str, edit) -> Path:
    doc = json.loads((K2 / source).read_text())
    edit(doc)
    path = tmp_path / f"edited_{source}"
    path.write_text(json.dumps(doc))
    return path


def _seq_layer(doc: dict, class_name: str) -> dict:
    return next(layer for layer in doc["config"]["layers"] if layer["class_name"] == class_name)


@pytest.mark.parametrize("source, edit, message", [
    ("lambda48.json", None, "layer 'times_two', key 'class_name': a Lambda layer holds Python/TensorFlow code"),
    ("tfop48.json", None, "layer 'tf.math.truediv', key 'class_name': a TFOpLambda layer holds Python/TensorFlow"),
    ("seq48.json", lambda d: _seq_layer(d, "Conv2D").update(class_name="MyConv", registered_name="Custom>MyConv"),
     "layer 'conv2d', key 'class_name': 'Custom>MyConv' is not a built-in Keras layer; custom objects are not"),
    ("seq48.json", lambda d: _seq_layer(d, "Dense")["config"].update(bogus_arg=3),
     "layer 'dense', key 'bogus_arg': Dense in Keras 3 has no argument 'bogus_arg'"),
    ("seq48.json", lambda d: _seq_layer(d, "BatchNormalization")["config"].update(axis=[1, 3]),
     r"layer 'batch_normalization', key 'axis': axis \[1, 3\] \(several axes\) has no Keras 3 equivalent"),
    ("seq48.json", lambda d: _seq_layer(d, "Dense")["config"].update(activation="my_swish"),
     "layer 'dense', key 'activation': activation 'my_swish' is not a built-in Keras activation"),
    ("old_seq48.json", lambda d: d.update(class_name="Graph"),
     "layer 'model', key 'class_name': 'Graph' is not a model class"),
])
def test_code_custom_layers_and_unknown_keys_are_refused_naming_the_layer_and_key(tmp_path, source, edit, message):
    path = _edited(tmp_path, source, edit) if edit else K2 / source
    with pytest.raises(EnsembleError, match=f"{path}: {message}"):
        load_foreign(path, K2 / "seq48_weights.h5")


def test_weights_that_do_not_fit_and_missing_weights_name_the_file(tmp_path):
    with pytest.raises(EnsembleError, match=f"{K2 / 'func64.h5'}: these weights do not fit seq48.json"):
        load_foreign(K2 / "seq48.json", K2 / "func64.h5")
    with pytest.raises(EnsembleError, match=f"{K2 / 'seq48.json'}: an architecture .json needs its weights: pass "
                                            "--weights"):
        load_foreign(K2 / "seq48.json")
    with pytest.raises(EnsembleError, match=f"{K2 / 'seq48_weights.h5'}: holds weights only .*pass the model's "
                                            "architecture .json as MODEL and this file as --weights"):
        load_foreign(K2 / "seq48_weights.h5")
    with pytest.raises(EnsembleError, match=f"{K2 / 'func64.h5'}: --weights is for an architecture .json"):
        load_foreign(K2 / "func64.h5", K2 / "seq48_weights.h5")
    with pytest.raises(EnsembleError, match=f"{tmp_path / 'nothing.h5'}: no such weights file"):
        load_foreign(K2 / "seq48.json", tmp_path / "nothing.h5")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(EnsembleError, match=f"{broken}: not a readable model JSON"):
        load_foreign(broken, K2 / "seq48_weights.h5")
