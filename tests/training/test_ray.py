"""A zoo trained on Ray (`train-all --ray`): members as tasks on a local Ray instance give the
artifacts the plain sequential run gives, a warm start reads its source through Ray, and a worker
killed mid-member is started again and resumes from the last epoch the driver received."""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_ensemble.errors import TrainingError
from fer_ensemble.models import load_zoo
from fer_ensemble.training import RayOptions, train_all, train_all_ray
from fer_ensemble.training.ray_executor import _share_gpus, pack_dir, share_gpu, unpack_dir

# a_vgg trains long enough to be killed after its second epoch; a_ft starts from its weights.
ZOO = """
[zoo]
name = "rayzoo"
[defaults]
epochs = 2
batch_size = 32
learning_rate = 0.003
patience = 8
augment = { flip = true, rotation = 5.0, translation = 0.0, zoom = 0.0 }
[[model]]
name = "a_vgg"
builder = "vgg_v1"
args = { filters = [4, 8, 8, 8], dropout = 0.2, dense_units = [16], dense_dropout = 0.0, first_l2 = 0.0 }
epochs = 8
seed = 1
[[model]]
name = "b_sep"
builder = "sepnet"
args = { filters = [8, 8], dense_units = [16] }
balancing = "batches"
batch_size = 28
seed = 2
[[model]]
name = "a_ft"
builder = "vgg_v1"
args = { filters = [4, 8, 8, 8], dropout = 0.2, dense_units = [16], dense_dropout = 0.0, first_l2 = 0.0 }
init_from = "a_vgg"
learning_rate = 0.0005
seed = 3
"""
MEMBERS = ("a_vgg", "b_sep", "a_ft")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False)   # never a cluster `ray start` left
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("rayzoo") / "rayzoo.toml"
    p.write_text(ZOO)
    return p


def _worker_pids(task_name: str) -> list[int]:
    """PIDs of the Ray workers running the task `task_name` (their process title is ray::NAME)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(f"ray::{task_name}".encode()):
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


def _kill_after_epoch(run: Path, name: str, epoch: int, killed: list) -> threading.Thread:
    """Kill (SIGKILL) the worker training `name` once the driver holds its state after `epoch`."""
    meta = run / ".work" / name / "backup" / "training_metadata.json"

    def watch():
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                seen = json.loads(meta.read_text())["epoch"]
            except (OSError, ValueError, KeyError):
                seen = 0
            if seen >= epoch:
                for pid in _worker_pids(f"train {name}"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, seen))
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_killed_worker_resumes_and_the_zoo_equals_the_sequential_run(ray_local, tiny_data, zoo_file, tmp_path,
                                                                      capsys, monkeypatch):
    from fer_ensemble.training import ray_executor

    monkeypatch.setattr(ray_executor._Driver, "POLL_S", 0.1)   # the kill follows epoch 2 closely
    zoo = load_zoo(zoo_file)
    seq = train_all(zoo, tiny_data, tmp_path / "seq", progress=False)
    assert not seq.failures
    run, killed = tmp_path / "ray", []
    watcher = _kill_after_epoch(run, "a_vgg", 2, killed)
    result = train_all_ray(zoo, tiny_data, run)
    watcher.join()
    assert killed, "a_vgg finished before its worker could be killed"
    assert not result.failures and [r.name for r in result.results] == list(MEMBERS)

    out = capsys.readouterr()
    assert "a_vgg: its worker was lost (WorkerCrashedError); starting it again from epoch" in out.err
    lines = [ln for ln in out.out.splitlines() if ln.startswith("[zoo rayzoo]")]
    assert len(lines) == 3 and all(": val " in ln for ln in lines)
    for name in MEMBERS:
        side = json.loads((run / f"{name}.json").read_text())
        base = json.loads((tmp_path / "seq" / f"{name}.json").read_text())
        assert side["executor"] == "ray" and side["stopped_by"] == "last_epoch"
        where = side["ray"]
        assert where["node_id"] and where["hostname"] and where["gpu_fraction"] == 0 and where["cpus"] == 1
        assert where["attempts"] == (2 if name == "a_vgg" else 1) and where["task_wall_time_s"] > 0
        for split in ("val", "test"):
            assert side["metrics"][split]["accuracy"] == pytest.approx(base["metrics"][split]["accuracy"], abs=1e-9)
        cached = [np.load(d / f"{name}.preds.npz") for d in (run, tmp_path / "seq")]
        np.testing.assert_allclose(cached[0]["val_proba"], cached[1]["val_proba"], atol=1e-6)
        np.testing.assert_allclose(cached[0]["test_proba"], cached[1]["test_proba"], atol=1e-6)
        h_ray, h_seq = (pd.read_csv(d / f"{name}.history.csv") for d in (run, tmp_path / "seq"))
        cols = h_seq.columns.drop("epoch_time_s")
        np.testing.assert_allclose(h_ray[cols].to_numpy(), h_seq[cols].to_numpy(), rtol=1e-6, err_msg=name)
        assert (run / "logs" / f"{name}.log").exists()
    resumed = json.loads((run / "a_vgg.json").read_text())
    assert resumed["resumed_from_epoch"] >= killed[0][1] >= 2 and resumed["epochs_run"] == 8
    assert json.loads((run / "a_ft.json").read_text())["initialized_from"]["name"] == "a_vgg"
    assert "worker lost (WorkerCrashedError)" in (run / "logs" / "a_vgg.log").read_text()
    assert not (run / ".work").exists() and not (run / ".lock").exists()

    again = train_all_ray(zoo, tiny_data, run, progress=False)   # finished members are skipped
    assert all(r.skipped for r in again.results) and len(again.results) == 3


def test_the_cli_trains_on_the_ray_instance_it_runs_in(ray_local, tmp_path, zoo_file, capsys):
    from fer_ensemble.cli import main

    zoo = tmp_path / "one.toml"
    zoo.write_text(ZOO.split("[[model]]")[0] + "[[model]]" + ZOO.split("[[model]]")[2])   # b_sep alone
    run = tmp_path / "run"
    assert main(["train-all", "--zoo", str(zoo), "--data", "synthetic:300", "--run", str(run), "--ray", "local",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "[zoo rayzoo] 1/1 b_sep: val " in out and "b_sep" in out.split("done in")[0].splitlines()[-1]
    assert json.loads((run / "b_sep.json").read_text())["executor"] == "ray"


def test_a_member_that_fails_in_its_task_is_reported_and_its_dependants_skipped(ray_local, tiny_data, tmp_path,
                                                                                zoo_file):
    from fer_ensemble.models import Zoo

    zoo = load_zoo(zoo_file)
    nan = zoo.get("a_vgg").replace(epochs=1, optimizer="sgd", learning_rate=1e12, augment=False)
    result = train_all_ray(Zoo("bad", "fer7", (nan, zoo.get("a_ft").replace(epochs=1))), tiny_data,
                           tmp_path / "run", progress=False)
    assert not result.results
    assert "model 'a_vgg': loss became NaN" in result.failures["a_vgg"]
    assert result.failures["a_ft"] == "its init_from 'a_vgg' failed"
    assert not (tmp_path / "run" / "a_vgg.json").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"cpus_per_member": 0}, "--cpus-per-member must be above 0"),
    ({"gpus_per_member": 1.5}, "--gpus-per-member must be a fraction of one GPU"),
    ({"retries": -1}, "--retries must be 0 or more"),
    ({"address": "auto", "num_cpus": 2}, "set where its nodes start"),
])
def test_ray_options_are_checked(kwargs, message):
    with pytest.raises(TrainingError, match=message):
        RayOptions(**kwargs)


@pytest.mark.parametrize("gpus, jobs, share", [(1, 4, 0.25), (2, 3, 0.666), (4, 2, 1.0), (0, 2, 0.0)])
def test_jobs_share_the_gpus_ray_finds_among_the_slots(gpus, jobs, share):
    class FakeRay:
        @staticmethod
        def cluster_resources():
            return {"CPU": 16.0, **({"GPU": float(gpus)} if gpus else {})}

    options = _share_gpus(FakeRay, RayOptions(num_cpus=jobs, gpus_per_member=None))
    assert options.gpus_per_member == share
    assert _share_gpus(FakeRay, RayOptions(gpus_per_member=0.5)).gpus_per_member == 0.5   # given: kept


def test_a_task_with_a_gpu_fraction_lets_the_framework_grow_into_its_share(monkeypatch):
    for var in ("TF_FORCE_GPU_ALLOW_GROWTH", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    share_gpu(0.0)   # asked for no GPU: sees none
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in os.environ and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    share_gpu(0.25)
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.95 * 0.25, abs=1e-3)


def test_without_ray_jobs_and_ray_say_how_to_install_it(tmp_path, capsys, monkeypatch):
    import importlib.util

    from fer_ensemble.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    run = tmp_path / "run"
    for how in (["--jobs", "2"], ["--ray", "auto"]):
        assert main(["train-all", "--zoo", "models_zoo/quick.toml", "--run", str(run), *how]) == 2
        assert "the ray package is not installed: pip install 'fer_ensemble[ray]'" in capsys.readouterr().err
    assert not run.exists()


def test_jobs_and_ray_together_are_refused_before_anything_is_written(tmp_path, capsys):
    from fer_ensemble.cli import main

    run = tmp_path / "run"
    assert main(["train-all", "--zoo", "models_zoo/quick.toml", "--run", str(run), "--ray", "local",
                 "--jobs", "2"]) == 2
    assert "--jobs and --ray both say how many members train at once" in capsys.readouterr().err
    assert not run.exists()


def test_a_packed_state_unpacks_to_the_same_files_and_refuses_paths_outside(tmp_path):
    import io
    import tarfile

    src = tmp_path / "src"
    (src / "backup").mkdir(parents=True)
    (src / "backup" / "latest.weights.h5").write_bytes(b"w" * 100)
    (src / "backup" / "latest.weights.h5.bkp").write_bytes(b"old")      # the previous epoch's copy: not sent
    (src / "history.csv").write_text("epoch\n0\n")
    unpack_dir(pack_dir(src), tmp_path / "dst")
    assert sorted(p.relative_to(tmp_path / "dst").as_posix() for p in (tmp_path / "dst").rglob("*") if p.is_file()) \
        == ["backup/latest.weights.h5", "history.csv"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escaped")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(TrainingError, match="not a file inside"):
        unpack_dir(buf.getvalue(), tmp_path / "dst2")
    assert not (tmp_path / "escaped").exists()
    shutil.rmtree(tmp_path / "dst")


def test_a_run_interrupted_without_ray_resumes_on_ray_from_its_work_folder(ray_local, tiny_data, zoo_file, tmp_path,
                                                                          monkeypatch):
    """RUN/.work/NAME is the same state on both paths: a member stopped after its second epoch (as a
    killed driver leaves it) is sent to its Ray task and resumes there."""
    from fer_ensemble.models import Zoo
    from fer_ensemble.training import train_model

    from .test_trainer import _Stop, _stop_after

    spec = load_zoo(zoo_file).get("b_sep").replace(epochs=4)
    with monkeypatch.context() as m:
        _stop_after(m, 1)
        with pytest.raises(_Stop):
            train_model(spec, tiny_data, tmp_path, progress=False)
    result = train_all_ray(Zoo("one", "fer7", (spec,)), tiny_data, tmp_path, progress=False)
    side = result.results[0].sidecar
    assert side["executor"] == "ray" and side["resumed_from_epoch"] == 2 and side["epochs_run"] == 4
    assert pd.read_csv(tmp_path / "b_sep.history.csv")["epoch"].tolist() == [0, 1, 2, 3]
    assert not (tmp_path / ".work").exists()
