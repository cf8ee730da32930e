"""`fer-ensemble export RUN --format keras|onnx|saved_model` (`fer_ensemble/ensemble/export.py`):
each file, read back by its own runtime (Keras in safe mode, onnxruntime, TensorFlow), predicts what
the fused ensemble predicts to 1e-4; bad requests name the run or the package that is missing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_ensemble.ensemble import Ensemble
from fer_ensemble.errors import EnsembleError

K2 = Path(__file__).resolve().parent / "fixtures" / "keras2"
FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 64-px Keras-2 functional member with flip TTA (sorting first) and a 48-px Keras-2 Sequential
    with its classes reversed, combined by accuracy weights."""
    from fer_ensemble.ensemble.importer import import_model

    run = tmp_path_factory.mktemp("export") / "run"
    import_model(K2 / "func64.h5", FER7, into=run, name="a_func64")
    import_model(K2 / "seq48.json", FER7[::-1], weights=K2 / "seq48_weights.h5", into=run, name="b_seq48")
    side = json.loads((run / "a_func64.json").read_text())
    (run / "a_func64.json").write_text(json.dumps({**side, "tta": "flip"}))
    weights = {"a_func64": 0.7, "b_seq48": 0.4}
    (run / "ensemble.json").write_text(json.dumps({"members": ["a_func64", "b_seq48"], "method": "accuracy",
                                                   "class_names": FER7, "weights": weights}))
    return run


@pytest.fixture(scope="module")
def faces():
    return np.random.default_rng(7).integers(0, 256, (9, 48, 48), dtype=np.uint8)


def test_keras_export_reloads_in_safe_mode_and_predicts_the_same(run, faces, tmp_path, capsys):
    import keras

    from fer_ensemble.cli import main

    out = tmp_path / "ens.keras"
    assert main(["export", str(run), "--format", "keras", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}: accuracy of 2 members, input (N, 48, 48, 1) pixels 0-255 -> (N, 7)" in said
    assert "checked with keras" in said
    model = keras.models.load_model(out, compile=False, safe_mode=True)
    expected = Ensemble.load(run).predict_proba(faces)
    np.testing.assert_allclose(model.predict(Ensemble.as_batch(faces), verbose=0), expected, atol=1e-4)


def test_onnx_export_runs_in_onnxruntime_with_the_same_predictions(run, faces, capsys):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'fer_ensemble[onnx]')")
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (pip install 'fer_ensemble[onnx]')")
    from fer_ensemble.cli import main

    assert main(["export", str(run), "--format", "onnx"]) == 0
    path = run / "export" / "fer_ensemble.onnx"
    assert f"wrote {path}" in capsys.readouterr().out
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: Ensemble.as_batch(faces)})
    ens = Ensemble.load(run)
    assert out.shape == (9, 7)
    np.testing.assert_allclose(out, ens.predict_proba(faces), atol=1e-4)
    np.testing.assert_allclose(out, ens.predict_proba(faces, fused=False), atol=1e-4)


def test_saved_model_export_serves_the_same_predictions(run, faces):
    import tensorflow as tf

    from fer_ensemble.ensemble.export import export_ensemble

    info = export_ensemble(run, "saved_model", input_size=64)       # another input size than the native 48
    assert info["input_size"] == 64 and info["checked_with"] == "tensorflow" and info["max_abs_diff"] <= 1e-4
    loaded = tf.saved_model.load(info["path"])
    big = np.random.default_rng(8).integers(0, 256, (5, 64, 64), dtype=np.uint8)
    np.testing.assert_allclose(loaded.serve(Ensemble.as_batch(big)).numpy(),
                               Ensemble.load(run).predict_proba(big, fused=False), atol=1e-4)


def test_bad_exports_name_the_run_the_method_or_the_missing_package(run, tmp_path, monkeypatch):
    import importlib.util

    from fer_ensemble.ensemble.export import export_ensemble

    with pytest.raises(EnsembleError, match=f"{tmp_path / 'nowhere'}: no such run directory"):
        export_ensemble(tmp_path / "nowhere", "keras")
    with pytest.raises(EnsembleError, match="unknown export format 'tflite'; choose from keras, onnx, saved_model"):
        export_ensemble(run, "tflite")
    stacked = tmp_path / "stacked"
    stacked.mkdir()
    for f in run.glob("*.*"):
        if f.is_file():
            (stacked / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((stacked / "ensemble.json").read_text())
    (stacked / "ensemble.json").write_text(json.dumps({**manifest, "method": "stacking", "weights": None,
                                                       "stacking": {"coef": [[0.0] * 14] * 7, "intercept": [0.0] * 7}}))
    with pytest.raises(EnsembleError, match="to_keras\\(\\) does not support stacking"):
        export_ensemble(stacked, "keras")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(EnsembleError, match="--format onnx needs tf2onnx: pip install 'fer_ensemble\\[onnx\\]'"):
        export_ensemble(run, "onnx")


def test_without_tta_predicts_each_member_on_the_image_alone(run, faces):
    ens = Ensemble.load(run)
    plain = ens.without_tta()
    assert [m.tta for m in ens.members] == ["flip", None] and [m.tta for m in plain.members] == [None, None]
    np.testing.assert_allclose(plain.predict_proba(faces), plain.predict_proba(faces, fused=False), atol=1e-5)
    first = plain.members[0]
    alone = np.asarray(first.model(first.prepare(Ensemble.as_batch(faces)), training=False))
    np.testing.assert_allclose(plain.member_probabilities(faces)[0], alone, atol=1e-5)
    flips = [[layer.name for layer in e.to_keras().layers if "flip" in layer.name] for e in (ens, plain)]
    assert flips == [["m0_flip"], []]
