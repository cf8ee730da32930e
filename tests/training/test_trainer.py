"""Training driver: artifacts, consistency, skip/resume, mismatches, failure isolation, determinism."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_ensemble.errors import TrainingError
from fer_ensemble.models import ModelSpec, load_zoo
from fer_ensemble.training import artifact_paths, train_all, train_model

ROOT = Path(__file__).resolve().parents[2]


def test_artifacts_present_and_consistent(tiny_run, tiny_data):
    import keras

    for name in ("a_vgg", "b_sep"):
        paths = artifact_paths(tiny_run, name)
        assert all(p.exists() for p in paths.values())
        side = json.loads(paths["json"].read_text())
        z = np.load(paths["preds.npz"])
        from_cache = float((z["test_proba"].argmax(1) == z["test_y"]).mean())
        assert side["metrics"]["test"]["accuracy"] == pytest.approx(from_cache, abs=1e-12)
        model = keras.models.load_model(paths["h5"], compile=False, safe_mode=True)
        x = tiny_data.test.x.astype("float32")[..., None] * side["scaling"]["scale"]
        rerun = float((model.predict(x, verbose=0).argmax(1) == tiny_data.test.y).mean())
        assert rerun == pytest.approx(from_cache, abs=1e-12)
        assert side["data_fingerprint"] == tiny_data.fingerprint()
        assert side["class_names"] == list(tiny_data.class_names) and side["input_shape"] == [48, 48, 1]
        cm = np.array(side["metrics"]["val"]["confusion_matrix"])
        assert cm.sum() == len(tiny_data.val)
        hist = pd.read_csv(paths["history.csv"])
        assert hist["epoch"].tolist() == list(range(side["epochs_run"]))
        assert {"loss", "val_accuracy", "learning_rate"} <= set(hist.columns)
        assert side["stopped_by"] == "last_epoch" and side["epochs_run"] == side["spec"]["epochs"]
    assert not (tiny_run / ".work").exists()
    assert not list(tiny_run.glob(".*tmp*")) and not (tiny_run / ".lock").exists()


def test_complete_models_are_skipped(tiny_run, tiny_data, tiny_zoo_file):
    before = {p: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    result = train_all(load_zoo(tiny_zoo_file), tiny_data, tiny_run, progress=False)
    assert all(r.skipped for r in result.results)
    assert before == {p: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    assert "(cached)" in result.table()


def test_mismatched_data_or_spec_refused(tiny_run, tiny_data, tiny_zoo_file):
    from fer_ensemble.data import make_synthetic

    spec = load_zoo(tiny_zoo_file).get("a_vgg")
    with pytest.raises(TrainingError, match="a_vgg.json: was trained on different data"):
        train_model(spec, make_synthetic(600, seed=99), tiny_run, progress=False)
    with pytest.raises(TrainingError, match="different spec \\(differs in learning_rate\\)"):
        train_model(spec.replace(learning_rate=0.1), tiny_data, tiny_run, progress=False)


def test_failure_isolation_and_nan(tmp_path, tiny_data, tiny_zoo_file):
    zoo = load_zoo(tiny_zoo_file)
    bad_build = ModelSpec(name="bad", builder="transfer_mobilenetv2", args={"resize": 16}, epochs=1)
    nan = ModelSpec(name="nan", builder="vgg_v1", optimizer="sgd", learning_rate=1e12, epochs=2, augment=False,
                    args={"filters": (4, 4, 4, 4), "dense_units": (8,)})
    good = zoo.get("b_sep").replace(epochs=1)
    from fer_ensemble.models import Zoo

    result = train_all(Zoo("mixed", "fer7", (bad_build, nan, good)), tiny_data, tmp_path, progress=False)
    assert [r.name for r in result.results] == ["b_sep"]
    assert "builder 'transfer_mobilenetv2' failed" in result.failures["bad"]
    assert "NaN" in result.failures["nan"]
    assert "FAILED" in result.table()
    assert not (tmp_path / "bad.json").exists() and not (tmp_path / "nan.h5").exists()


def test_same_seed_same_metrics_on_cpu(tmp_path, tiny_data, tiny_zoo_file):
    spec = load_zoo(tiny_zoo_file).get("a_vgg").replace(epochs=1)
    r1 = train_model(spec, tiny_data, tmp_path / "one", progress=False)
    r2 = train_model(spec, tiny_data, tmp_path / "two", progress=False)
    p1 = np.load(tmp_path / "one" / "a_vgg.preds.npz")["val_proba"]
    p2 = np.load(tmp_path / "two" / "a_vgg.preds.npz")["val_proba"]
    np.testing.assert_array_equal(p1, p2)
    assert r1.sidecar["metrics"] == r2.sidecar["metrics"]


class _Stop(Exception):
    """Interrupts a run in-process (see `_stop_after`)."""


def _stop_after(monkeypatch, last_epoch: int) -> None:
    """Make train_model raise _Stop once epoch `last_epoch` (0-based) is finished and backed up: the
    trainer's last callback raises, as a kill right after that epoch would stop it."""
    import fer_ensemble.training.callbacks as callbacks

    class StopAfter(callbacks.SeedResumedState):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == last_epoch:
                raise _Stop

    monkeypatch.setattr(callbacks, "SeedResumedState", StopAfter)


def _with_dropout(spec):
    """`spec` with dropout: random layers in the model, beside the augmentation."""
    return spec.replace(args={**spec.args, "dropout": 0.2, "dense_dropout": 0.3})


def assert_same_history(a: Path, b: Path) -> None:
    """Two histories agree to the bit in every column but the epochs' wall times."""
    h_a, h_b = pd.read_csv(a), pd.read_csv(b)
    assert list(h_a.columns) == list(h_b.columns)
    for col in h_a.columns.drop("epoch_time_s"):
        np.testing.assert_array_equal(h_a[col].to_numpy(), h_b[col].to_numpy(), err_msg=col)


@pytest.mark.parametrize("pipeline", ["tf", "arrays"])
def test_an_interrupted_run_resumes_as_if_uninterrupted(tmp_path, tiny_data, tiny_zoo_file, monkeypatch, pipeline):
    """Stopped after its second epoch and run again, a member with augmentation and dropout trains its
    last epochs on the batches, augmentations and dropout masks an uninterrupted run draws there: on
    the CPU with a fixed seed the histories and predictions agree to the bit."""
    spec = _with_dropout(load_zoo(tiny_zoo_file).get("a_vgg").replace(epochs=4))
    whole = train_model(spec, tiny_data, tmp_path / "whole", progress=False, pipeline=pipeline)
    with monkeypatch.context() as m:
        _stop_after(m, 1)
        with pytest.raises(_Stop):
            train_model(spec, tiny_data, tmp_path / "cut", progress=False, pipeline=pipeline)
    resumed = train_model(spec, tiny_data, tmp_path / "cut", progress=False, pipeline=pipeline)
    assert resumed.sidecar["resumed_from_epoch"] == 2 and resumed.sidecar["epochs_run"] == 4
    assert_same_history(tmp_path / "whole" / "a_vgg.history.csv", tmp_path / "cut" / "a_vgg.history.csv")
    for d in ("whole", "cut"):
        assert not (tmp_path / d / ".lock").exists()
    cached = [np.load(tmp_path / d / "a_vgg.preds.npz") for d in ("whole", "cut")]
    np.testing.assert_array_equal(cached[0]["test_proba"], cached[1]["test_proba"])
    assert resumed.sidecar["metrics"] == whole.sidecar["metrics"]
    # training time counts both legs: the history keeps the first leg's epoch times
    h_cut, h_whole = (pd.read_csv(tmp_path / d / "a_vgg.history.csv") for d in ("cut", "whole"))
    assert (h_cut["epoch_time_s"] > 0).all() and (h_whole["epoch_time_s"] > 0).all()
    assert resumed.sidecar["train_time_s"] == pytest.approx(h_cut["epoch_time_s"].sum(), abs=0.01)
    assert whole.sidecar["train_time_s"] == pytest.approx(h_whole["epoch_time_s"].sum(), abs=0.01)
    assert whole.sidecar["train_time_s"] <= whole.sidecar["wall_time_s"]


def test_a_leg_from_before_epoch_times_resumes_into_a_well_formed_history(tmp_path, tiny_data, tiny_zoo_file,
                                                                        monkeypatch):
    """A run begun without the epoch-time column and resumed with it keeps one header and aligned
    columns; its training time is unknown (None), not the later leg's alone."""
    import fer_ensemble.training.callbacks as callbacks

    spec = load_zoo(tiny_zoo_file).get("a_vgg").replace(epochs=3, augment=False)
    with monkeypatch.context() as m:
        _stop_after(m, 0)
        m.setattr(callbacks.LogEpochTime, "on_epoch_end", lambda self, epoch, logs=None: None)
        with pytest.raises(_Stop):
            train_model(spec, tiny_data, tmp_path, progress=False)
    assert "epoch_time_s" not in pd.read_csv(tmp_path / ".work" / "a_vgg" / "history.csv")
    done = train_model(spec, tiny_data, tmp_path, progress=False)
    hist = pd.read_csv(tmp_path / "a_vgg.history.csv")
    assert hist["epoch"].tolist() == [0, 1, 2]
    assert hist["epoch_time_s"].isna().tolist() == [True, False, False]
    assert (hist["val_accuracy"].between(0, 1)).all() and (hist["learning_rate"] > 0).all()
    assert done.sidecar["train_time_s"] is None and done.sidecar["resumed_from_epoch"] == 1


@pytest.mark.parametrize("previous, resumes_at", [(True, 1), (False, 0)])
def test_a_backup_cut_short_by_a_kill_falls_back_to_the_previous_epoch(tmp_path, tiny_data, tiny_zoo_file, caplog,
                                                                      monkeypatch, previous, resumes_at):
    """A run killed while its backup was written leaves a truncated weights file: the resume takes
    the previous epoch's copy, or starts the phase over when there is none, and says so."""
    spec = load_zoo(tiny_zoo_file).get("a_vgg").replace(epochs=3, augment=False)
    with monkeypatch.context() as m:
        _stop_after(m, 1)
        with pytest.raises(_Stop):
            train_model(spec, tiny_data, tmp_path, progress=False)
    backup = tmp_path / ".work" / "a_vgg" / "backup"
    weights = backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:96])                  # cut mid-write
    if not previous:
        for p in backup.glob("*.bkp"):
            p.unlink()
    with caplog.at_level("WARNING", logger="fer_ensemble.training.trainer"):
        done = train_model(spec, tiny_data, tmp_path, progress=False)
    assert "cut short" in caplog.text and "a_vgg" in caplog.text
    assert done.sidecar["resumed_from_epoch"] == resumes_at
    assert pd.read_csv(tmp_path / "a_vgg.history.csv")["epoch"].tolist() == [0, 1, 2]


def test_synthetic_data_is_learnable_but_not_trivial(tmp_path):
    from fer_ensemble.data import make_synthetic

    data = make_synthetic(2000, seed=5)
    spec = ModelSpec(name="probe", builder="vgg_v1", epochs=6, batch_size=32, learning_rate=0.003, patience=6,
                     args={"filters": (8, 16, 32, 32), "dropout": 0.05, "dense_units": (64,), "dense_dropout": 0.1,
                           "first_l2": 0.0005}, augment=False, seed=0)
    acc = train_model(spec, data, tmp_path, progress=False).sidecar["metrics"]["val"]["accuracy"]
    majority = np.bincount(data.val.y).max() / len(data.val)
    assert majority + 0.15 < acc < 0.97, acc


def _first_to_exit(procs: list, timeout: float = 240) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [i for i, p in enumerate(procs) if p.poll() is not None]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError("neither process exited")


def test_two_runs_at_once_then_sigkill_then_an_exact_resume(tmp_path, tiny_zoo_file):
    """Two train-all on one run directory: the second stops at once, naming the directory and the
    holder's PID. The holder is then killed with SIGKILL after epoch 2 of 4; the next run takes over
    its stale lock and finishes with the history an uninterrupted run has, to the bit."""
    from fer_ensemble.data import make_synthetic

    zoo = tmp_path / "z.toml"
    zoo.write_text(tiny_zoo_file.read_text().replace("epochs = 2", "epochs = 4")
                   .replace("dropout = 0.0, dense_units", "dropout = 0.2, dense_units"))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "fer_ensemble", "train-all", "--data", "synthetic:600", "--zoo", str(zoo),
           "--run", str(run)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = [open(tmp_path / f"err{i}.txt", "w+") for i in range(2)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=logs[i]) for i in range(2)]
    loser = _first_to_exit(procs)
    holder = procs[1 - loser]
    logs[loser].seek(0)
    assert procs[loser].returncode == 2
    assert f"error: {run}: in use by another fer-ensemble process (PID {holder.pid}, train-all)" in logs[loser].read()
    backup = run / ".work" / "a_vgg" / "backup" / "training_metadata.json"
    deadline, seen = time.time() + 240, 0
    while time.time() < deadline and holder.poll() is None:
        try:
            seen = json.loads(backup.read_text())["epoch"]
        except (OSError, ValueError):
            pass
        if seen >= 2:
            break
        time.sleep(0.05)
    assert holder.poll() is None, "train-all finished before it could be killed"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert not (run / "a_vgg.json").exists() and json.loads((run / ".lock").read_text())["pid"] == holder.pid
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"removed the stale lock of PID {holder.pid}" in done.stderr
    side = json.loads((run / "a_vgg.json").read_text())
    assert side["resumed_from_epoch"] >= seen >= 2 and side["epochs_run"] == 4
    train_model(load_zoo(zoo).get("a_vgg"), make_synthetic(600, seed=0), tmp_path / "whole", progress=False)
    assert_same_history(tmp_path / "whole" / "a_vgg.history.csv", run / "a_vgg.history.csv")
    assert (run / "b_sep.json").exists() and not (run / ".work").exists() and not (run / ".lock").exists()


def test_tensorboard_option_and_cli_overrides(tmp_path, tiny_zoo_file):
    from fer_ensemble.cli import main

    run = tmp_path / "run"
    code = main(["train", "b_sep", "--zoo", str(tiny_zoo_file), "--data", "synthetic:600", "--run", str(run),
                 "--epochs", "1", "--tensorboard", "--data-seed", "1"])
    assert code == 0
    side = json.loads((run / "b_sep.json").read_text())
    assert side["spec"]["epochs"] == 1 and side["epochs_run"] == 1
    assert any((run / "tensorboard" / "b_sep").rglob("*tfevents*"))
    assert not (run / "a_vgg.json").exists()            # `train NAME` trains only that entry


def test_cosine_schedule_decays_to_zero_and_is_logged(tmp_path, tiny_data, caplog):
    spec = ModelSpec(name="cos", builder="lenet", args={"filters": (4, 4, 4), "dense_units": (8,)}, epochs=3,
                     batch_size=64, learning_rate=0.002, lr_schedule="cosine", augment=False)
    result = train_model(spec, tiny_data, tmp_path, progress=False)
    lr = pd.read_csv(tmp_path / "cos.history.csv")["learning_rate"].to_numpy()
    # cosine over 3 epochs, read at each epoch end: lr0 * (1 + cos(pi * k / 3)) / 2
    expected = 0.002 * (1 + np.cos(np.pi * np.arange(1, 4) / 3)) / 2
    np.testing.assert_allclose(lr, expected, atol=1e-9)
    assert result.sidecar["final_learning_rate"] == pytest.approx(0.0, abs=1e-9)
    # checkpoints and the final save are .h5 by design: Keras's "legacy format" note is not logged
    assert not [r for r in caplog.records if "HDF5" in r.getMessage()]
    with pytest.raises(Exception, match="lr_schedule"):
        spec.replace(lr_schedule="step")


def test_artifacts_from_before_a_new_spec_field_are_still_reused(tiny_run, tiny_data, tiny_zoo_file):
    """A sidecar written before `lr_schedule` existed (key absent) matches a spec at its default."""
    side_file = artifact_paths(tiny_run, "a_vgg")["json"]
    original = side_file.read_text()
    side = json.loads(original)
    del side["spec"]["lr_schedule"]
    try:
        side_file.write_text(json.dumps(side))
        spec = load_zoo(tiny_zoo_file).get("a_vgg")
        assert train_model(spec, tiny_data, tiny_run, progress=False).skipped
        with pytest.raises(TrainingError, match="differs in lr_schedule"):
            train_model(spec.replace(lr_schedule="cosine"), tiny_data, tiny_run, progress=False)
    finally:
        side_file.write_text(original)


def test_warm_start_copies_the_source_weights(tiny_run, tiny_data, tmp_path):
    """init_from starts from the finished member's weights: with a learning rate of ~0 the trained
    weights stay those of the source; a missing source is a clear error naming the file."""
    import shutil

    import keras

    for path in artifact_paths(tiny_run, "b_sep").values():
        shutil.copy(path, tmp_path / path.name)
    source_side = json.loads((tmp_path / "b_sep.json").read_text())
    spec = ModelSpec.from_dict({**source_side["spec"], "name": "b_ft", "init_from": "b_sep", "epochs": 1,
                                "learning_rate": 1e-12, "augment": False})
    result = train_model(spec, tiny_data, tmp_path, progress=False)
    assert result.sidecar["initialized_from"] == {"name": "b_sep", "epochs_run": source_side["epochs_run"],
                                                  "val_accuracy": source_side["metrics"]["val"]["accuracy"]}

    def trainable(name):
        m = keras.models.load_model(tmp_path / f"{name}.h5", compile=False, safe_mode=True)
        return [w.numpy() for w in m.trainable_weights]

    for a, b in zip(trainable("b_ft"), trainable("b_sep")):
        np.testing.assert_allclose(a, b, atol=1e-6)
    cold = train_model(spec.replace(name="b_cold", init_from=""), tiny_data, tmp_path, progress=False)
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(trainable("b_cold"), trainable("b_sep")))
    assert cold.sidecar["initialized_from"] is None
    with pytest.raises(TrainingError, match=r"init_from 'nope'.*nope.h5"):
        train_model(spec.replace(name="b_x", init_from="nope"), tiny_data, tmp_path, progress=False)
    # A restart on another input view: the weights behind the (weightless) equalize layer are the source's.
    eq = train_model(spec.replace(name="b_eq", args={**spec.args, "preprocess": "equalize"}), tiny_data, tmp_path,
                     progress=False)
    assert eq.sidecar["initialized_from"]["name"] == "b_sep"
    assert [layer.name for layer in keras.models.load_model(tmp_path / "b_eq.h5", compile=False,
                                                             safe_mode=True).layers][1] == "equalize"
    for a, b in zip(trainable("b_eq"), trainable("b_sep")):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_ferplus_targets_blend_the_votes_into_training_targets(tmp_path, tiny_data, monkeypatch):
    """A member with ferplus_targets trains on one-hot labels blended with the attached votes; the
    data fingerprint stays that of the images and labels, and without votes it is a clear error."""
    from dataclasses import replace

    from fer_ensemble.data import blend_targets
    from fer_ensemble.training import trainer

    spec = ModelSpec(name="fp", builder="lenet", args={"filters": (4, 4, 4), "dense_units": (8,)}, epochs=1,
                     batch_size=64, augment=False, ferplus_targets=0.5)
    with pytest.raises(TrainingError, match=r"model 'fp': ferplus_targets = 0.5 needs .*--ferplus"):
        train_model(spec, tiny_data, tmp_path, progress=False)
    assert not (tmp_path / "fp.json").exists()
    votes = np.random.default_rng(0).dirichlet(np.ones(tiny_data.num_classes), len(tiny_data.train)).astype(np.float32)
    data = replace(tiny_data, info={**tiny_data.info, "ferplus_votes": votes, "ferplus_csv": "votes.csv"})
    seen = {}
    original = trainer.train_dataset

    def spy(*args, **kwargs):
        seen["soft"] = kwargs["soft"]
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_dataset", spy)
    result = train_model(spec, data, tmp_path, progress=False)
    np.testing.assert_allclose(seen["soft"], blend_targets(tiny_data.train.y, votes, 0.5))
    assert result.sidecar["spec"]["ferplus_targets"] == 0.5 and result.sidecar["ferplus_csv"] == "votes.csv"
    assert result.sidecar["data_fingerprint"] == tiny_data.fingerprint()
    plain = train_model(spec.replace(name="plain", ferplus_targets=0.0), data, tmp_path, progress=False)
    assert seen["soft"] is None and "ferplus_csv" not in plain.sidecar
    with pytest.raises(Exception, match="ferplus_targets' must be between 0 and 1"):
        spec.replace(ferplus_targets=1.5)


def test_bootstrap_member_trains_on_its_own_draw(tmp_path, tiny_data, monkeypatch):
    """A bagged member (bootstrap = true) trains on its seed's draw of the Training split, with
    labels and soft targets drawn alike, and its sidecar says how many distinct images it saw;
    evaluation still uses the whole validation and test splits."""
    from fer_ensemble.data import bootstrap_indices
    from fer_ensemble.training import trainer

    seen = {}
    original = trainer.train_dataset

    def spy(x, y, *args, **kwargs):
        seen.update(x=x, y=y, soft=kwargs["soft"])
        return original(x, y, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_dataset", spy)
    spec = ModelSpec(name="bag", builder="lenet", args={"filters": (4, 4, 4), "dense_units": (8,)}, epochs=1,
                     batch_size=64, augment=False, bootstrap=True, seed=7)
    result = train_model(spec, tiny_data, tmp_path, progress=False)
    pick = bootstrap_indices(len(tiny_data.train), 7)
    np.testing.assert_array_equal(seen["x"], tiny_data.train.x[pick])
    np.testing.assert_array_equal(seen["y"], tiny_data.train.y[pick])
    assert result.sidecar["bootstrap"] == {"images": len(tiny_data.train), "distinct": int(np.unique(pick).size),
                                           "seed": 7}
    assert sum(result.sidecar["metrics"]["test"]["support"].values()) == len(tiny_data.test)
    plain = train_model(spec.replace(name="plain", bootstrap=False), tiny_data, tmp_path, progress=False)
    assert seen["x"] is tiny_data.train.x and "bootstrap" not in plain.sidecar
    # soft targets (here FER+-blended) are drawn with their images
    from dataclasses import replace

    from fer_ensemble.data import blend_targets

    votes = np.random.default_rng(0).dirichlet(np.ones(tiny_data.num_classes), len(tiny_data.train)).astype(np.float32)
    voted = replace(tiny_data, info={**tiny_data.info, "ferplus_votes": votes, "ferplus_csv": "votes.csv"})
    train_model(spec.replace(name="bag_fp", ferplus_targets=0.5), voted, tmp_path, progress=False)
    np.testing.assert_allclose(seen["soft"], blend_targets(tiny_data.train.y, votes, 0.5)[pick])
    with pytest.raises(Exception, match="'bootstrap' must be bool"):
        spec.replace(bootstrap="yes")
