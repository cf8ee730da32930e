"""`fer-ensemble import` refuses what cannot be a member: logits (unless --logits), unknown or
duplicate labels, a label count that does not match the outputs, a name that leaves the run.
(Foreign formats, Keras-2 files and --classes fer6: tests/ensemble/test_keras2.py.)"""
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
    assert side["softmax_added"] is True and side["model_file"] == "ext.keras"
    member = keras.models.load_model(tmp_path / "run" / "ext.keras", compile=False, safe_mode=True)
    original = keras.models.load_model(models["logits"], compile=False, safe_mode=True)
    x = np.random.default_rng(1).random((3, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(member.predict(x, verbose=0), keras.ops.softmax(original.predict(x, verbose=0)),
                               atol=1e-6)
    with pytest.raises(EnsembleError, match="--logits was given, but the outputs already are probabilities"):
        import_model(models["probs"], LABELS, into=tmp_path / "run", logits=True)
    src = tmp_path / "logits.keras"          # a member is NAME.keras: a .keras original would be replaced
    original.save(src)
    with pytest.raises(EnsembleError, match=f"{src}: the member is a new file .*so that it does not overwrite the"):
        import_model(src, LABELS, logits=True)
    beside = tmp_path / "h5" / "logits.h5"     # an .h5 original stays: the member is logits.keras beside it
    beside.parent.mkdir()
    beside.write_bytes(models["logits"].read_bytes())
    assert import_model(beside, LABELS, logits=True).name == "logits.json" and beside.exists()


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


# ---------------------------------------------------------------- models from elsewhere (fixtures/keras2/)
K2 = __import__("pathlib").Path(__file__).resolve().parent / "fixtures" / "keras2"


@pytest.fixture(scope="module")
def tiny_npz(tiny_data, tmp_path_factory):
    from fer_ensemble.data import save_cache

    return str(save_cache(tiny_data, tmp_path_factory.mktemp("data") / "tiny.npz"))


def test_keras2_json_and_hdf5_models_become_keras3_members_with_caches(tmp_path, tiny_npz, capsys):
    import keras

    from fer_ensemble.cli import main

    run = tmp_path / "run"
    hdf5 = tmp_path / "func64.hdf5"                  # the .hdf5 suffix is read like .h5
    hdf5.write_bytes((K2 / "func64.h5").read_bytes())
    assert main(["import", str(K2 / "seq48.json"), "--weights", str(K2 / "seq48_weights.h5"), "--labels",
                 ",".join(LABELS), "--into", str(run), "--data", tiny_npz]) == 0
    assert main(["import", str(hdf5), "--labels", ",".join(LABELS), "--into", str(run), "--data", tiny_npz]) == 0
    assert f"wrote {run / 'func64.keras'} and {run / 'func64.json'}" in capsys.readouterr().out
    for name, size in (("seq48", 48), ("func64", 64)):
        side = json.loads((run / f"{name}.json").read_text())
        assert side["model_file"] == f"{name}.keras" and side["input_shape"] == [size, size, 1]
        assert side["data_input_size"] == 48 and (run / f"{name}.preds.npz").exists()
        member = keras.models.load_model(run / f"{name}.keras", compile=False, safe_mode=True)
        assert not isinstance(member(keras.Input((size, size, 1))), list)     # one tensor, never a list of one
    assert json.loads((run / "seq48.json").read_text())["weights_from"] == str(K2 / "seq48_weights.h5")


def test_an_input_size_that_does_not_match_the_model_names_both(tmp_path):
    with pytest.raises(EnsembleError, match=f"{K2 / 'func64.h5'}: model input \\(None, 64, 64, 1\\) does not match "
                                            "--input-size 48; pass --input-size 64 or leave it out"):
        import_model(K2 / "func64.h5", LABELS, input_size=48, into=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_classes_fer6_adds_disgust_to_angry_inside_the_member(tmp_path, tiny_npz):
    import keras

    from fer_ensemble.data import FER6_CLASSES

    run = tmp_path / "run6"
    side = json.loads(import_model(K2 / "func64.h5", LABELS, into=run, name="m6", classes="fer6",
                                   data=tiny_npz).read_text())
    assert side["class_names"] == list(FER6_CLASSES) and side["merged_classes"] == {"disgust": "angry"}
    x = np.random.default_rng(0).random((3, 64, 64, 1)).astype(np.float32)
    p7 = keras.models.load_model(K2 / "func64.h5", compile=False).predict(x, verbose=0)
    p6 = keras.models.load_model(run / "m6.keras", compile=False, safe_mode=True).predict(x, verbose=0)
    np.testing.assert_allclose(p6, np.column_stack([p7[:, 0] + p7[:, 1], p7[:, 2:]]), atol=1e-6)
    cache = np.load(run / "m6.preds.npz")
    assert list(cache["class_names"]) == list(FER6_CLASSES) and cache["val_proba"].shape[1] == 6
    with pytest.raises(EnsembleError, match=f"{K2 / 'seq48.json'}: the members of {run} have 6 classes \\(fer6\\) and "
                                            "this model 7; pass --classes fer6"):
        import_model(K2 / "seq48.json", LABELS, weights=K2 / "seq48_weights.h5", into=run)
    with pytest.raises(EnsembleError, match=f"{K2 / 'func64.h5'}: --classes fer6 takes a 6-class model, or merges .*"
                                            "--labels angry,happy,sad,fear,surprise,neutral,contempt are neither"):
        import_model(K2 / "func64.h5", ["angry", "happy", "sad", "fear", "surprise", "neutral", "contempt"],
                     into=run, classes="fer6")


def test_search_names_a_member_imported_without_data_and_the_command_that_caches_it(tmp_path, tiny_npz, capsys):
    from fer_ensemble.cli import main

    run = tmp_path / "run"
    import_model(K2 / "logits48.h5", LABELS, into=run, name="cached", logits=True, data=tiny_npz)
    import_model(K2 / "func64.h5", LABELS, into=run, name="uncached")
    assert main(["search", str(run)]) == 0
    out = capsys.readouterr().out
    fix = (f"not searched, uncached was imported without --data (no uncached.preds.npz prediction cache); to include "
           f"it, cache its predictions on the run's data: fer-ensemble import {run / 'uncached.keras'} --into {run} "
           f"--name uncached --labels {','.join(LABELS)} --scale {1 / 255} --offset 0.0 --data DATA")
    assert fix in out
    assert json.loads((run / "ensemble.json").read_text())["members"] == ["cached"]
    command = fix.split("fer-ensemble ")[1].split()
    assert main(command[:-1] + [tiny_npz]) == 0                # the printed command, with the data
    assert json.loads((run / "uncached.json").read_text())["imported_from"] == str(K2 / "func64.h5")
    assert main(["search", str(run)]) == 0
    assert "not searched" not in capsys.readouterr().out
    assert json.loads((run / "ensemble.json").read_text())["candidates"] == 2


def test_a_3_channel_model_gets_the_grey_face_three_times(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    rgb = keras.Sequential([keras.Input((48, 48, 3)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(7, activation="softmax")])
    rgb.save(tmp_path / "rgb.keras")
    side = json.loads(import_model(tmp_path / "rgb.keras", LABELS, into=tmp_path / "run").read_text())
    assert side["grey_to_rgb"] is True and side["input_shape"] == [48, 48, 1]
    member = keras.models.load_model(tmp_path / "run" / "rgb.keras", compile=False, safe_mode=True)
    grey = np.random.default_rng(2).random((3, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(member.predict(grey, verbose=0), rgb.predict(np.repeat(grey, 3, axis=-1), verbose=0),
                               atol=1e-6)
