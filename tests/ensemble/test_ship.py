"""`fer-ensemble ship` (`fer_ensemble/ensemble/ship.py`) and the built-in ensemble: the shipped
folder is half the bytes, loads with `Ensemble.load` in safe mode, predicts what the run predicts,
and carries a card whose numbers are the shipped files' own."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_ensemble.ensemble import Ensemble
from fer_ensemble.ensemble.ship import CARD, CARD_TEXT, pretrained_dir, probe_faces, save_float16, ship_run
from fer_ensemble.errors import EnsembleError


@pytest.fixture(scope="module")
def shipped(tiny_run, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ship") / "tiny"
    card = ship_run(tiny_run, out, data=tiny_data, title="tiny")
    return out, card


def test_float16_storage_halves_the_weights_and_keeps_the_outputs(tmp_path):
    import keras

    from fer_ensemble.models import create_model

    model = create_model("resnet18", num_classes=7, filters=16)
    full, half = tmp_path / "full.keras", tmp_path / "half.keras"
    model.save(full)
    save_float16(model, half)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = keras.models.load_model(half, compile=False, safe_mode=True)
    assert all(v.dtype == "float32" for v in loaded.weights)
    x = probe_faces(8)[..., None].astype("float32") / 255
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-3)
    for a, b in zip(loaded.weights, model.weights):   # the stored values are the float16 roundings
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b).astype(np.float16).astype(np.float32))


def test_shipped_folder_predicts_what_the_run_predicts(shipped, tiny_run, tiny_data):
    out, card = shipped
    run, ship = Ensemble.load(tiny_run), Ensemble.load(out)
    assert [m.name for m in ship.members] == [m.name for m in run.members]
    x = tiny_data.test.x
    assert np.abs(ship.predict_proba(x) - run.predict_proba(x)).max() < 5e-3
    assert card["float16_max_prob_change"] < 5e-3
    assert not list(out.glob("*.h5")) and not list(out.glob("*.preds.npz"))
    side = json.loads((out / f"{run.members[0].name}.json").read_text())
    assert "data_source" not in side and side["storage"] == "float16"


def test_card_numbers_are_the_shipped_files_own(shipped, tiny_data):
    out, card = shipped
    ens = Ensemble.load(out)
    assert card == json.loads((out / CARD).read_text())
    measured = ens.evaluate(tiny_data.test.x, tiny_data.test.y)["accuracy"]
    assert card["PrivateTest"]["accuracy"] == pytest.approx(measured)
    assert card["PublicTest"]["images"] == len(tiny_data.val.y)
    np.testing.assert_allclose(ens.predict_proba(probe_faces(card["probe"]["n"])), card["probe"]["probabilities"],
                               atol=1e-5)
    text = (out / CARD_TEXT).read_text()
    assert f"{100 * card['PrivateTest']['accuracy']:.2f}%" in text and "## Data and known limits" in text
    assert f"{100 * card['members'][0]['val_accuracy']:.2f}%" in text


def test_ship_cli_and_predict_with_the_shipped_folder(tiny_run, tmp_path, capsys):
    import cv2

    from fer_ensemble.cli import main

    out = tmp_path / "shipped"
    assert main(["ship", str(tiny_run), str(out), "--data", "synthetic:200"]) == 0
    assert "PrivateTest" in capsys.readouterr().out
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), np.full((120, 120), 128, np.uint8))
    assert main(["predict", str(img), "--model", str(out), "--out", str(tmp_path / "pred"), "--no-annotate"]) == 0
    assert (tmp_path / "pred" / "predictions.csv").exists()


def test_ship_of_a_missing_run_names_it(tmp_path):
    with pytest.raises(EnsembleError, match="nope"):
        ship_run(tmp_path / "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_builtin_ensemble_is_named():
    with pytest.raises(EnsembleError, match="fer2099"):
        pretrained_dir("fer2099")


def test_pretrained_is_an_ensemble_classmethod_that_names_what_is_missing(monkeypatch, tmp_path):
    from fer_ensemble.ensemble import ship

    monkeypatch.setattr(ship, "PRETRAINED_ROOT", tmp_path)
    with pytest.raises(EnsembleError, match="missing from this install"):
        Ensemble.pretrained()


def test_builtin_ensemble_is_small_complete_and_reproduces_its_card():
    """The shipped FER2013 ensemble: 7 classes, at most 30 MB of weights, and the probe faces'
    probabilities recorded when it was shipped (so a changed builder or loader shows here)."""
    folder = pretrained_dir()
    card = json.loads((folder / CARD).read_text())
    ens = Ensemble.pretrained()
    assert ens.class_names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert sum(p.stat().st_size for p in folder.glob("*.keras")) <= 30 * 2**20
    assert card["PrivateTest"]["images"] == 3589 and card["PrivateTest"]["accuracy"] > 0.658   # the fer package
    np.testing.assert_allclose(ens.predict_proba(probe_faces(card["probe"]["n"])), card["probe"]["probabilities"],
                               atol=1e-4)


@pytest.mark.slow
@pytest.mark.realdata
def test_builtin_ensemble_scores_its_cards_accuracy_on_real_privatetest(shared_data):
    from fer_ensemble.data import load_fer2013

    card = json.loads((pretrained_dir() / CARD).read_text())
    test = load_fer2013(shared_data / "fer2013.npz").test
    assert Ensemble.pretrained().evaluate(test.x, test.y)["accuracy"] == pytest.approx(
        card["PrivateTest"]["accuracy"], abs=1e-9)
