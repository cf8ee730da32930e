"""Ensemble.load -> predict round trip, fused model, manifest, import, bad input."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_ensemble.ensemble import Ensemble, combine, fit_weights, load_caches, search_run
from fer_ensemble.errors import EnsembleError


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def test_search_then_load_exactly_the_winner(run_copy, tiny_data):
    result, text = search_run(run_copy, methods=("mean", "accuracy", "recall", "vote", "geometric"))
    assert (run_copy / "search.csv").exists() and "per-class test accuracy" in text
    manifest = json.loads((run_copy / "ensemble.json").read_text())
    ens = Ensemble.load(run_copy)
    assert [m.name for m in ens.members] == manifest["members"] and ens.method == manifest["method"]
    # Ensemble on the test split reproduces the search's test accuracy from the caches.
    ev = ens.evaluate(tiny_data.test.x, tiny_data.test.y)
    assert ev["accuracy"] == pytest.approx(manifest["test_accuracy"], abs=1.5 / len(tiny_data.test))


@pytest.mark.parametrize("method", ["mean", "accuracy", "recall", "vote", "geometric"])
def test_fused_model_matches_member_loop_and_reloads(run_copy, tiny_data, method, tmp_path):
    import keras

    ens = Ensemble.load(run_copy, method=method)
    if method in ("accuracy", "recall"):
        ens.fit_weights(tiny_data.val.x, tiny_data.val.y)
    x = tiny_data.test.x[:40]
    looped = ens.predict_proba(x, fused=False)
    fused = ens.predict_proba(x)
    np.testing.assert_allclose(fused, looped, atol=1e-5)
    caches = load_caches(run_copy)
    w = fit_weights(method, caches["val_proba"], caches["val_y"])
    np.testing.assert_allclose(looped, combine(caches["test_proba"][:, :40], method, w), atol=1e-5)
    path = tmp_path / "fused.h5"
    ens.to_keras().save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(again.predict(Ensemble.as_batch(x), verbose=0), fused, atol=1e-6)


def test_mean_with_multiplicities_matches_in_the_fused_model(run_copy, tiny_data):
    """A greedy pick stores how often each member was picked as mean weights; the member loop,
    the fused model and combine() all weigh by them."""
    ens = Ensemble.load(run_copy, method="mean")
    ens.weights = np.array([3.0, 1.0])
    x = tiny_data.test.x[:40]
    looped = ens.predict_proba(x, fused=False)
    np.testing.assert_allclose(ens.predict_proba(x), looped, atol=1e-5)
    caches = load_caches(run_copy)
    p = caches["test_proba"][:, :40]
    np.testing.assert_allclose(looped, 0.75 * p[0] + 0.25 * p[1], atol=1e-5)
    assert not np.allclose(looped, p.mean(axis=0), atol=1e-4)


def test_input_shapes(run_copy, tiny_data):
    ens = Ensemble.load(run_copy)
    x = tiny_data.test.x[:3]
    ref = ens.predict(x)
    np.testing.assert_array_equal(ens.predict(x[..., None]), ref)
    np.testing.assert_array_equal(ens.predict(x.astype(np.float32) / 255.0, value_range=1), ref)
    assert ens.predict(x[0]).shape == (1,)
    assert ens.predict_labels(x)[0] in tiny_data.class_names
    with pytest.raises(EnsembleError, match="expected images shaped"):
        ens.predict(np.zeros((2, 48, 40)))


def test_class_order_and_input_size_are_adapted(run_copy, tiny_data, tmp_path):
    """A member with permuted classes and a 64-pixel input joins and agrees after mapping."""
    import keras
    from keras import layers

    from fer_ensemble.ensemble.importer import import_model

    base = keras.models.load_model(run_copy / "a_vgg.h5", compile=False, safe_mode=True)
    perm = [6, 5, 4, 3, 2, 1, 0]
    inp = layers.Input((64, 64, 1))
    h = layers.Resizing(48, 48)(inp)
    h = base(h)
    out = layers.Dense(7, use_bias=False, trainable=False)(h)
    wrapped = keras.Model(inp, out)
    m = np.zeros((7, 7), np.float32)
    m[perm, np.arange(7)] = 1
    wrapped.layers[-1].set_weights([m])
    src = tmp_path / "elsewhere.h5"
    wrapped.save(src)
    names = list(tiny_data.class_names)
    dest = tmp_path / "ens"
    dest.mkdir()
    for f in ("a_vgg.h5", "a_vgg.json"):
        shutil.copy(run_copy / f, dest / f)
    import_model(src, labels=[names[i] for i in perm], scale=1 / 255, input_size=64, into=dest, name="imported")
    ens = Ensemble.load(dest)
    probs = ens.member_probabilities(tiny_data.test.x[:20])
    np.testing.assert_array_equal(probs[0].argmax(1), probs[1].argmax(1))
    np.testing.assert_allclose(ens.predict_proba(tiny_data.test.x[:20]), ens.predict_proba(tiny_data.test.x[:20], fused=False), atol=1e-5)


def test_bad_directories(tmp_path, run_copy):
    with pytest.raises(EnsembleError, match="no models found"):
        Ensemble.load(tmp_path)
    (run_copy / "ensemble.json").write_text(json.dumps({"members": ["a_vgg", "ghost"], "method": "mean"}))
    with pytest.raises(EnsembleError, match="member 'ghost' is missing"):
        Ensemble.load(run_copy)
    (run_copy / "ensemble.json").write_text(json.dumps({"members": ["../x"], "method": "mean"}))
    with pytest.raises(EnsembleError, match="outside the directory"):
        Ensemble.load(run_copy)
    # weights of the wrong shape for the method: the file is named before anything is combined
    (run_copy / "ensemble.json").write_text(json.dumps({"members": ["a_vgg", "b_sep"], "method": "recall",
                                                        "weights": {"a_vgg": 0.7, "b_sep": 0.6}}))
    with pytest.raises(EnsembleError, match=re.escape(f"{run_copy / 'ensemble.json'}: weight of member 'a_vgg'")):
        Ensemble.load(run_copy)
    (run_copy / "ensemble.json").unlink()
    (run_copy / "b_sep.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(EnsembleError, match="b_sep.h5: cannot load model"):
        Ensemble.load(run_copy)
    side = json.loads((run_copy / "a_vgg.json").read_text())
    side["class_names"] = ["x"] * 7
    (run_copy / "b_sep.json").write_text(json.dumps({**side, "class_names": ["p", "q", "r", "s", "t", "u", "v"],
                                                     "model_file": "a_vgg.h5"}))
    with pytest.raises(EnsembleError, match="cannot be mapped"):
        Ensemble.load(run_copy)


def test_search_needs_caches(tmp_path):
    with pytest.raises(EnsembleError, match="no NAME.preds.npz"):
        search_run(tmp_path)
    np.savez(tmp_path / "x.preds.npz", nothing=np.zeros(3))
    with pytest.raises(EnsembleError, match="x.preds.npz: not a valid prediction cache"):
        search_run(tmp_path)


def test_cli_search_and_import_errors(run_copy, capsys):
    from fer_ensemble.cli import main

    assert main(["search", str(run_copy), "--methods", "mean,recall,stacking"]) == 0
    out = capsys.readouterr().out
    assert "chosen:" in out and "stacking" in out
    assert main(["search", str(run_copy), "--methods", "median"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["search", str(run_copy), "--exhaustive-limit", "0"]) == 0   # greedy fallback on request
    assert "search: greedy" in capsys.readouterr().out
    assert json.loads((run_copy / "ensemble.json").read_text())["search"] == "greedy"
    assert main(["search", str(run_copy), "--min-size", "9"]) == 2           # names the run, no traceback
    assert f"{run_copy}: need 1 <= min_size" in capsys.readouterr().err
    assert main(["search", str(run_copy), "--top-members", "1"]) == 0        # the best member alone
    assert "candidates: the 1 of 2 members" in capsys.readouterr().out
    assert json.loads((run_copy / "ensemble.json").read_text())["candidates"] == 1
    assert main(["search", str(run_copy), "--top-members", "0"]) == 2
    assert f"{run_copy}: top_members must be >= 1" in capsys.readouterr().err
    assert main(["import", str(run_copy / "a_vgg.h5"), "--labels", "angry,happy"]) == 2
    assert "7 outputs but 2 labels" in capsys.readouterr().err


def test_the_value_range_follows_the_dtype_or_the_argument_never_the_values():
    x = np.zeros((2, 48, 48), np.uint8)
    x[0, :2] = 1
    assert Ensemble.as_batch(x).max() == 1.0                 # uint8 pixels stay pixels
    with pytest.warns(UserWarning, match="pass value_range=1"):
        assert Ensemble.as_batch(x.astype(np.float32)).max() == 1.0   # floats are pixels too: no flip
    assert Ensemble.as_batch(x.astype(np.float32), value_range=1).max() == 255.0
    f = np.full((2, 48, 48), 0.5, np.float32)
    f[1, 0, 0] = 1.0000001                                   # one pixel above 1 changes nothing for the rest
    np.testing.assert_array_equal(Ensemble.as_batch(f, value_range=1)[0], np.full((48, 48, 1), 127.5, np.float32))
    with pytest.raises(EnsembleError, match="uint8 images are 0-255 pixels; value_range=1 is for float"):
        Ensemble.as_batch(x, value_range=1)


def test_collect_then_search_on_caches_alone(tiny_run, tmp_path, capsys):
    from fer_ensemble.cli import main

    dest = tmp_path / "results"
    assert main(["collect", str(tiny_run), str(dest)]) == 0
    assert not list(dest.glob("*.h5")) and len(list(dest.glob("*.preds.npz"))) == 2
    assert main(["search", str(dest)]) == 0                   # no model files needed
    assert json.loads((dest / "ensemble.json").read_text())["members"]


def test_flip_tta_updates_caches_and_ensemble_follows(run_copy, tiny_data, tmp_path):
    import keras

    from fer_ensemble.ensemble.tta import flip_tta

    before = load_caches(run_copy)
    changes = flip_tta(run_copy, tiny_data, ["a_vgg"])
    assert set(changes) == {"a_vgg"} and set(changes["a_vgg"]) == {"val", "test"}
    side = json.loads((run_copy / "a_vgg.json").read_text())
    assert side["tta"] == "flip" and "metrics_without_tta" in side
    after = load_caches(run_copy)
    i = after["names"].index("a_vgg")
    assert not np.allclose(after["test_proba"][i], before["test_proba"][i])
    np.testing.assert_array_equal(after["test_proba"][1 - i], before["test_proba"][1 - i])
    assert side["metrics"]["test"]["accuracy"] == pytest.approx(changes["a_vgg"]["test"][1])
    # The member's own model, by hand: mean over the image and its mirror image.
    model = keras.models.load_model(run_copy / "a_vgg.h5", compile=False, safe_mode=True)
    x = tiny_data.test.x[:30].astype("float32")[..., None] / 255
    by_hand = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(after["test_proba"][i][:30], by_hand, atol=1e-6)
    ens = Ensemble.load(run_copy)
    looped, fused = ens.predict_proba(tiny_data.test.x[:30], fused=False), ens.predict_proba(tiny_data.test.x[:30])
    np.testing.assert_allclose(looped, after["test_proba"].mean(axis=0)[:30], atol=1e-5)
    np.testing.assert_allclose(fused, looped, atol=1e-5)
    path = tmp_path / "fused.h5"
    ens.to_keras().save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(again.predict(Ensemble.as_batch(tiny_data.test.x[:30]), verbose=0), fused, atol=1e-6)
    assert flip_tta(run_copy, tiny_data, ["a_vgg"]) == {}          # already applied: nothing to do
    from fer_ensemble.data import make_synthetic

    with pytest.raises(EnsembleError, match="b_sep.json: was trained on other data"):
        flip_tta(run_copy, make_synthetic(300, seed=9), ["b_sep"])
    with pytest.raises(EnsembleError, match="nowhere: not a run directory"):
        flip_tta(tmp_path / "nowhere", tiny_data)
    (tmp_path / "caches_only").mkdir()
    with pytest.raises(EnsembleError, match="caches_only: no members with weights"):
        flip_tta(tmp_path / "caches_only", tiny_data)


def test_flip_shift_tta_loop_fused_and_mode_switches(run_copy, tiny_data, tmp_path):
    import keras

    from fer_ensemble.ensemble.tta import apply_tta
    from fer_ensemble.ensemble.views import apply_view, tta_views

    flip = apply_tta(run_copy, tiny_data, ["a_vgg"], mode="flip")
    no_tta = json.loads((run_copy / "a_vgg.json").read_text())["metrics_without_tta"]
    changes = apply_tta(run_copy, tiny_data, ["a_vgg"], mode="flip-shift")     # flip -> flip-shift
    assert changes["a_vgg"]["test"][0] == flip["a_vgg"]["test"][0]             # the same no-TTA baseline
    side = json.loads((run_copy / "a_vgg.json").read_text())
    assert side["tta"] == "flip-shift" and side["metrics_without_tta"] == no_tta
    model = keras.models.load_model(run_copy / "a_vgg.h5", compile=False, safe_mode=True)
    x = tiny_data.test.x[:30].astype("float32")[..., None] / 255
    by_hand = np.mean([model.predict(apply_view(x, v), verbose=0) for v in tta_views("flip-shift", 48)], axis=0)
    i = load_caches(run_copy)["names"].index("a_vgg")
    np.testing.assert_allclose(load_caches(run_copy)["test_proba"][i][:30], by_hand, atol=1e-6)
    ens = Ensemble.load(run_copy)
    looped, fused = ens.predict_proba(tiny_data.test.x[:30], fused=False), ens.predict_proba(tiny_data.test.x[:30])
    np.testing.assert_allclose(looped, load_caches(run_copy)["test_proba"].mean(axis=0)[:30], atol=1e-5)
    np.testing.assert_allclose(fused, looped, atol=1e-5)
    path = tmp_path / "fused.h5"
    ens.to_keras().save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(again.predict(Ensemble.as_batch(tiny_data.test.x[:30]), verbose=0), fused, atol=1e-6)
    with pytest.raises(EnsembleError, match="unknown test-time augmentation 'mirror'"):
        apply_tta(run_copy, tiny_data, ["a_vgg"], mode="mirror")
    side["tta"] = "mirror"
    (run_copy / "a_vgg.json").write_text(json.dumps(side))
    with pytest.raises(EnsembleError, match="a_vgg.json: unknown test-time augmentation 'mirror'"):
        Ensemble.load(run_copy)


def test_tta_command_runs_a_mode_end_to_end(run_copy, tiny_data, tmp_path, capsys):
    from fer_ensemble.cli import main
    from fer_ensemble.data import save_cache

    data = save_cache(tiny_data, tmp_path / "tiny.npz")
    assert main(["tta", str(run_copy), "b_sep", "--data", str(data), "--mode", "flip-shift"]) == 0
    assert capsys.readouterr().out.startswith("b_sep: val ")
    assert json.loads((run_copy / "b_sep.json").read_text())["tta"] == "flip-shift"
    assert main(["tta", str(run_copy), "b_sep", "--data", str(data), "--mode", "flip-shift"]) == 0
    assert "nothing to do (every member already uses flip-shift TTA)" in capsys.readouterr().out


def test_nan_or_infinite_pixels_are_refused_naming_the_images(run_copy, tiny_data):
    ens = Ensemble.load(run_copy)
    x = tiny_data.test.x[:6].astype(np.float32)
    x[2, 5, 5] = np.nan
    x[4, 0, 0] = np.inf
    for fused in (True, False):
        with pytest.raises(EnsembleError, match=r"image\(s\) 2, 4 of the batch contain NaN or infinite pixels"):
            ens.predict_proba(x, fused=fused)


def test_an_empty_batch_gives_an_empty_result(run_copy):
    ens = Ensemble.load(run_copy)
    empty = np.zeros((0, 48, 48), np.uint8)
    assert ens.predict_proba(empty).shape == (0, 7) and ens.predict_proba(empty, fused=False).shape == (0, 7)
    assert ens.predict(empty).shape == (0,) and ens.predict_labels(empty) == []
    assert ens.member_probabilities(empty).shape == (2, 0, 7)
    with pytest.raises(EnsembleError, match="got 0 images and 0 labels"):
        ens.evaluate(empty, [])


def test_images_of_another_size_are_resized_the_same_way_on_both_paths(run_copy, tiny_data):
    import keras

    ens = Ensemble.load(run_copy)
    small = np.asarray(keras.ops.image.resize(tiny_data.test.x[:8, ..., None].astype(np.float32), (32, 32)))[..., 0]
    fused, looped = ens.predict_proba(small), ens.predict_proba(small, fused=False)
    np.testing.assert_allclose(fused, looped, atol=1e-5)
    by_hand = np.asarray(keras.ops.image.resize(small[..., None], (48, 48)))
    np.testing.assert_allclose(fused, ens.predict_proba(by_hand), atol=1e-6)


# ---------------------------------------------------------------- members from elsewhere in the fused model
K2 = Path(__file__).resolve().parent / "fixtures" / "keras2"
FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _foreign_run(run, big: str, small: str):
    """A 64-px Keras-2 functional member `big` (flip TTA), a 48-px Keras-2 Sequential `small` with
    its classes reversed, and `legacy`: the Keras-2 .h5 file itself as a member (as
    an import of an earlier version left it), whose Keras 3 call returns a one-element list."""
    from fer_ensemble.ensemble.importer import import_model

    import_model(K2 / "func64.h5", FER7, into=run, name=big)
    import_model(K2 / "seq48.json", FER7[::-1], weights=K2 / "seq48_weights.h5", into=run, name=small)
    shutil.copy(K2 / "func64.h5", run / "legacy.h5")
    (run / "legacy.json").write_text(json.dumps({"name": "legacy", "builder": "imported", "class_names": FER7,
                                                 "input_shape": [64, 64, 1], "tta": "flip"}))
    side = json.loads((run / f"{big}.json").read_text())         # TTA views in the graph too
    (run / f"{big}.json").write_text(json.dumps({**side, "tta": "flip"}))
    return run


@pytest.mark.parametrize("big, small", [("a_64px", "b_48px"), ("z_64px", "b_48px")])
def test_fused_and_member_loop_agree_with_48_and_64_px_members_in_either_name_order(tmp_path, big, small):
    import keras

    from fer_ensemble.ensemble.ensemble import load_member

    run = _foreign_run(tmp_path / "run", big, small)
    ens = Ensemble.load(run)
    assert ens.class_names == FER7           # FER2013's order, whichever member comes first
    assert ens.input_size == 48 and ens.to_keras().input_shape == (None, 48, 48, 1)
    assert ens.to_keras().output_shape == (None, 7)
    rng = np.random.default_rng(3)
    for side in (48, 64):
        x = rng.integers(0, 256, (6, side, side), dtype=np.uint8)
        fused, looped = ens.predict_proba(x), ens.predict_proba(x, fused=False)
        assert fused.shape == (6, 7)
        np.testing.assert_allclose(fused, looped, atol=1e-5)
    # the 64-px member sees 48-px faces resized once, 48 -> 64, with its mirror image (flip TTA)
    x = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    model = keras.models.load_model(K2 / "func64.h5", compile=False)
    big_input = np.asarray(keras.ops.image.resize(x[..., None].astype(np.float32), (64, 64))) / 255
    by_hand = (model.predict(big_input, verbose=0) + model.predict(big_input[:, :, ::-1], verbose=0)) / 2
    names = [m.name for m in ens.members]
    np.testing.assert_allclose(ens.member_probabilities(x)[names.index(big)], by_hand, atol=1e-6)
    # one member whose Keras 3 call returns a one-element list: (N, 7), never (1, N, 7)
    alone = Ensemble([load_member(run, "legacy", json.loads((run / "legacy.json").read_text()))])
    assert alone.predict_proba(x).shape == (6, 7)
    np.testing.assert_allclose(alone.predict_proba(x), alone.predict_proba(x, fused=False), atol=1e-5)
    path = tmp_path / "fused.keras"
    ens.to_keras().save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(again.predict(Ensemble.as_batch(x), verbose=0), ens.predict_proba(x), atol=1e-6)


def test_the_native_size_is_the_datas_never_one_members():
    from fer_ensemble.ensemble import Member

    def member(name, **side):
        return Member(name, Path(f"{name}.keras"), {"class_names": FER7, **side})

    trained64 = member("t", input_shape=[64, 64, 1])
    imported = member("i", builder="imported", input_shape=[96, 96, 1], data_input_size=64)
    assert Ensemble([imported, trained64]).input_size == 64          # the data's size, not the first member's 96
    assert Ensemble([member("x", builder="imported", input_shape=[64, 64, 1])]).input_size == 48   # unknown: 48
    assert Ensemble([trained64, member("u", input_shape=[48, 48, 1])]).input_size == 48             # disagree: 48
    assert Ensemble([trained64], input_size=40).input_size == 40
    assert Ensemble([trained64], manifest={"input_size": 56}).input_size == 56
