"""`fer-ensemble import` refuses what cannot be a member: logits (unless --logits), unknown or
duplicate labels, a label count that does not match the outputs, a name that leaves the run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_ensemble.errors import EnsembleError
from fer_ensemble.ensemble.importer import import_model

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _model(path, softmax: bool = True):
    """A tiny untrained 48x48 grayscale model with 7 outputs, saved to `path`."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.AveragePooling2D(8), keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax" if softmax else None)])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("elsewhere")
    return {"probs": _model(d / "probs.h5"), "logits": _model(d / "logits.h5", softmax=False)}


def test_logits_are_refused_unless_asked_then_a_softmax_is_added(models, tmp_path):
    import keras

    with pytest.raises(EnsembleError, match=f"{models['logits']}: outputs are not probabilities .*pass --logits"):
        import_model(models["logits"], LABELS, into=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    sidecar = import_model(models["logits"], LABELS, into=tmp_path / "run", name="ext", logits=True)
    side = json.loads(sidecar.read_text())
    assert side["softmax_added"] is True and side["model_file"] == "ext.h5"
    member = keras.models.load_model(tmp_path / "run" / "ext.h5", compile=False, safe_mode=True)
    original = keras.models.load_model(models["logits"], compile=False, safe_mode=True)
    x = np.random.default_rng(1).random((3, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(member.predict(x, verbose=0), keras.ops.softmax(original.predict(x, verbose=0)),
                               atol=1e-6)
    with pytest.raises(EnsembleError, match="--logits was given, but the outputs already are probabilities"):
        import_model(models["probs"], LABELS, into=tmp_path / "run", logits=True)
    with pytest.raises(EnsembleError, match="so that it does not overwrite the original"):
        import_model(models["logits"], LABELS, logits=True)


@pytest.mark.parametrize("labels, message", [
    (["angry", "disgust", "fear", "happy", "sad", "happy", "neutral"],
     "label 'happy' appears twice in --labels angry,disgust,fear,happy,sad,happy,neutral"),
    (["angry", "disgust", "fear", "joy", "sad", "surprise", "neutral"],
     "label 'joy' is not a class name of FER2013 .* or FER\\+"),
    (["angry", "disgusted", "fear", "happy", "sad", "surprise", "neutral"],
     "label 'disgusted' is not a class name .*; did you mean 'disgust'\\?"),
    (["angry", "happy"], "model has 7 outputs but 2 labels were given"),
])
def test_bad_labels_are_refused_naming_the_label(models, tmp_path, labels, message):
    with pytest.raises(EnsembleError, match=f"{models['probs']}: {message}"):
        import_model(models["probs"], labels, into=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["../pwn", "a/b", "ensemble"])
def test_a_name_that_would_leave_the_run_or_collide_is_refused(models, tmp_path, name, capsys):
    from fer_ensemble.cli import main

    run = tmp_path / "deep" / "run"
    code = main(["import", str(models["probs"]), "--labels", ",".join(LABELS), "--into", str(run), "--name", name])
    assert code == 2
    assert f"{models['probs']}: member name {name!r} is " in capsys.readouterr().err
    assert not (tmp_path / "deep").exists() and not (tmp_path / "pwn.h5").exists()


def test_a_file_stem_that_cannot_name_a_member_asks_for_a_name(models, tmp_path):
    src = tmp_path / "model.v2.h5"
    src.write_bytes(models["probs"].read_bytes())
    with pytest.raises(EnsembleError, match=r"model\.v2\.h5 \(pass --name\): member name 'model\.v2' is not allowed"):
        import_model(src, LABELS, into=tmp_path / "run")
    assert import_model(src, LABELS, into=tmp_path / "run", name="model_v2").name == "model_v2.json"
