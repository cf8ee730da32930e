"""What makes a run directory trustworthy on the training side: a member is complete only when its
sidecar says it finished its schedule, names cannot leave the run, a full disk names the file."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from fer_ensemble.errors import ModelError
from fer_ensemble.models import ModelSpec, Zoo, load_zoo
from fer_ensemble.training import train_all, train_model
from fer_ensemble.training.trainer import finished_schedule


def _history(tmp_path, val_loss: list[float]):
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": range(len(val_loss)), "val_loss": val_loss}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("sidecar, val_loss, expected", [
    ({"stopped_by": "last_epoch", "epochs_run": 4}, None, "last_epoch"),
    ({"stopped_by": "last_epoch", "epochs_run": 2}, None, None),          # says last epoch, ran 2 of 4
    ({"stopped_by": "early_stop", "epochs_run": 3}, None, "early_stop"),
    ({"stopped_by": "time_limit", "epochs_run": 1}, None, "time_limit"),
    ({"stopped_by": "killed", "epochs_run": 1}, None, None),
    # sidecars from before `stopped_by`: epochs, the time-limit flag, or the history decide
    ({"epochs_run": 4}, None, "last_epoch"),
    ({"epochs_run": 2, "stopped_by_time_limit": True}, None, "time_limit"),
    ({"epochs_run": 3}, [1.0, 0.9, 0.95], None),                       # 1 epoch past its best: patience 2
    ({"epochs_run": 3}, [0.8, 0.9, 0.95], "early_stop"),              # 2 epochs past its best
    ({"epochs_run": 2}, None, None),                                   # no history: not shown finished
])
def test_a_member_is_complete_only_when_its_sidecar_says_it_finished_its_schedule(tmp_path, sidecar, val_loss,
                                                                                  expected):
    history = _history(tmp_path, val_loss) if val_loss else tmp_path / "missing.csv"
    assert finished_schedule({**sidecar, "spec": {"epochs": 4, "patience": 2}}, history) == expected


def test_a_member_that_stopped_early_without_reason_is_retrained_not_cached(tiny_run, tiny_data, tiny_zoo_file,
                                                                           tmp_path, caplog):
    """The files of a member cut short after 1 of 2 epochs all exist: it is trained again, with a
    warning naming its sidecar, instead of being skipped as (cached)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    sidecar = run / "b_sep.json"
    side = json.loads(sidecar.read_text())
    side.update(epochs_run=1)
    del side["stopped_by"]
    sidecar.write_text(json.dumps(side))
    spec = load_zoo(tiny_zoo_file).get("b_sep")
    with caplog.at_level("WARNING", logger="fer_ensemble.training.trainer"):
        result = train_model(spec, tiny_data, run, progress=False)
    assert f"{sidecar}: stopped after 1 of 2 epochs without early stopping or a time limit; training it again" \
        in caplog.text
    assert not result.skipped and result.sidecar["stopped_by"] == "last_epoch" and result.sidecar["epochs_run"] == 2


@pytest.mark.parametrize("name", ["../escaped", "a/b"])
def test_zoo_names_that_would_leave_the_run_are_refused_before_anything_is_written(tmp_path, tiny_data, name):
    zoo = Zoo("bad", "fer7", (ModelSpec(name=name, builder="vgg_v1", epochs=1),), path="bad.toml")
    with pytest.raises(ModelError, match=f"bad.toml: model {name!r}: member name {name!r} is not allowed"):
        train_all(zoo, tiny_data, tmp_path / "run", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_zoo_file_with_an_escaping_name_is_refused_by_the_cli(tmp_path, capsys):
    from fer_ensemble.cli import main

    zoo = tmp_path / "z.toml"
    zoo.write_text('[[model]]\nname = "../escaped"\nbuilder = "vgg_v1"\n')
    run = tmp_path / "deep" / "run"
    assert main(["train-all", "--zoo", str(zoo), "--data", "synthetic:60", "--run", str(run)]) == 2
    assert f"{zoo}: model '../escaped': member name '../escaped' is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "deep").exists()
    zoo.write_text('[zoo]\nname = "../up"\n[[model]]\nname = "ok"\nbuilder = "vgg_v1"\n')
    assert main(["train-all", "--zoo", str(zoo), "--data", "synthetic:60"]) == 2   # runs/../up
    assert f"{zoo}: zoo name (the run directory runs/NAME): member name '../up' is not allowed" \
        in capsys.readouterr().err


def test_a_full_disk_during_training_names_the_file_and_the_run_resumes_once_there_is_room(tmp_path, tiny_zoo_file,
                                                                                          monkeypatch, capsys):
    """The second epoch's backup meets a full disk, failing as h5py fails there (its message, errno
    28, taken from a real run on a full tmpfs): the error names the backup file, the command exits 2
    with no traceback, no final artifact, lock or temporary file is left; run again, it resumes."""
    import keras

    from fer_ensemble.cli import main

    save = keras.callbacks.BackupAndRestore._save_model

    def full_disk(self):
        if self._current_epoch == 2:
            raise RuntimeError(f"Can't decrement id ref count (file write failed: filename = '{self._weights_path}', "
                               "errno = 28, error message = 'No space left on device', total write size = 256)")
        save(self)

    def leave(code):
        raise SystemExit(code)

    run = tmp_path / "run"
    cmd = ["train", "b_sep", "--zoo", str(tiny_zoo_file), "--data", "synthetic:200", "--run", str(run), "--epochs", "3"]
    with monkeypatch.context() as m:
        m.setattr(keras.callbacks.BackupAndRestore, "_save_model", full_disk)
        m.setattr("fer_ensemble.cli.os._exit", leave)
        with pytest.raises(SystemExit) as stop:
            main(cmd)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    backup = run / ".work" / "b_sep" / "backup" / "latest.weights.h5"
    assert f"error: {backup}: could not be written (No space left on device)" in err and "Traceback" not in err
    assert not list(run.glob("b_sep.*")) and not list(run.rglob(".*.tmp*")) and not (run / ".lock").exists()
    assert main(cmd) == 0
    side = json.loads((run / "b_sep.json").read_text())
    assert side["resumed_from_epoch"] == 1 and side["epochs_run"] == 3
