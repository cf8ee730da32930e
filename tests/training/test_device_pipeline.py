"""The backend-neutral training path (numpy batches, augmentation inside the training model),
the time limit, parallel zoo training, and the backend/device helpers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_ensemble.models import ModelSpec, load_zoo
from fer_ensemble.training import artifact_paths, train_model
from fer_ensemble.training.runner import sources_first

ROOT = Path(__file__).resolve().parents[2]
TINY_ARGS = {"filters": (4, 8, 8, 8), "dropout": 0.0, "dense_units": (16,), "dense_dropout": 0.0, "first_l2": 0.0}


@pytest.fixture(scope="module")
def arrays_run(tmp_path_factory, tiny_data):
    run = tmp_path_factory.mktemp("arrays")
    spec = ModelSpec(name="arr", builder="vgg_v1", args=TINY_ARGS, epochs=2, batch_size=32, learning_rate=0.003,
                     augment={"flip": True, "rotation": 10.0, "translation": 0.05, "zoom": 0.05},
                     balancing="class_weights", seed=3)
    return run, train_model(spec, tiny_data, run, progress=False, pipeline="arrays")


def test_arrays_pipeline_saves_the_member_without_augmentation(arrays_run, tiny_data):
    import keras

    from fer_ensemble.models import create_model

    run, result = arrays_run
    side = result.sidecar
    assert side["pipeline"] == "arrays" and side["epochs_run"] == 2
    assert side["versions"]["backend"] == "tensorflow" and "keras" in side["versions"]
    model = keras.models.load_model(artifact_paths(run, "arr")["h5"], compile=False, safe_mode=True)
    bare = create_model("vgg_v1", input_shape=(48, 48, 1), num_classes=tiny_data.num_classes, **TINY_ARGS)
    assert [l.name for l in model.layers] == [l.name for l in bare.layers]  # no "augment" layer inside
    z = np.load(artifact_paths(run, "arr")["preds.npz"])
    x = tiny_data.test.x.astype("float32")[..., None] / 255.0
    np.testing.assert_allclose(model.predict(x, verbose=0), z["test_proba"], atol=1e-5)


def test_time_limit_stops_after_the_first_epoch_and_finishes_the_member(tmp_path, tiny_data):
    spec = ModelSpec(name="lim", builder="vgg_v1", args=TINY_ARGS, epochs=5, batch_size=32, seed=4, augment=False)
    r = train_model(spec, tiny_data, tmp_path, progress=False, time_limit=1e-3)
    assert r.sidecar["epochs_run"] == 1 and r.sidecar["stopped_by_time_limit"] is True
    assert all(p.exists() for p in artifact_paths(tmp_path, "lim").values())
    r = train_model(spec.replace(name="nolim", epochs=1), tiny_data, tmp_path, progress=False)
    assert r.sidecar["stopped_by_time_limit"] is None


def test_unknown_pipeline_is_refused(tmp_path, tiny_data):
    with pytest.raises(ValueError, match="unknown pipeline"):
        train_model(ModelSpec(name="x", builder="vgg_v1", args=TINY_ARGS, epochs=1), tiny_data, tmp_path,
                    progress=False, pipeline="dali")


def test_sources_come_before_the_members_that_start_from_them():
    zoo = [ModelSpec(name="c_ft", builder="lenet", init_from="b"), ModelSpec(name="b", builder="lenet", init_from="a"),
           ModelSpec(name="a", builder="lenet"), ModelSpec(name="solo", builder="lenet")]
    order = [s.name for s in sources_first(zoo)]
    assert order.index("a") < order.index("b") < order.index("c_ft") and sorted(order) == ["a", "b", "c_ft", "solo"]


def test_train_all_jobs_runs_members_on_a_local_ray_instance(tmp_path):
    """--jobs N is a local Ray run with N slots: init_from waits for its source, each member logs its
    epochs to RUN/logs/NAME.log, and its sidecar says it ran on Ray."""
    pytest.importorskip("ray")
    zoo = tmp_path / "z.toml"
    zoo.write_text("""
[zoo]
name = "par"
[defaults]
epochs = 1
batch_size = 32
augment = false
[[model]]
name = "src"
builder = "lenet"
args = { filters = [4, 4, 4], dense_units = [8] }
[[model]]
name = "src_ft"
builder = "lenet"
args = { filters = [4, 4, 4], dense_units = [8] }
init_from = "src"
learning_rate = 0.0005
[[model]]
name = "other"
builder = "lenet"
args = { filters = [4, 4, 4], dense_units = [8] }
seed = 5
""")
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "fer_ensemble", "train-all", "--zoo", str(zoo), "--run", str(run),
                          "--data", "synthetic:300", "--jobs", "2", "--time-limit", "600"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("src", "src_ft", "other"):
        assert (run / "logs" / f"{name}.log").exists()
        side = json.loads(artifact_paths(run, name)["json"].read_text())
        assert side["stopped_by_time_limit"] is False and side["executor"] == "ray"
        assert side["ray"]["cpus"] == 1 and side["ray"]["gpu_fraction"] == 0   # no GPU here to share
    assert json.loads((run / "src_ft.json").read_text())["initialized_from"]["name"] == "src"
    assert "src_ft" in out.stdout and "FAILED" not in out.stdout


def test_backend_helpers_report_tensorflow_on_cpu():
    from fer_ensemble import _tf
    from fer_ensemble.training import device

    assert _tf.default_backend() == "tensorflow"
    assert device.backend() == "tensorflow" and device.device_name() == "cpu"
    assert device.precision_policy(False) == "float32"
    v = device.versions()
    assert v["backend"] == "tensorflow" and v["tensorflow"] and v["keras"]


@pytest.mark.parametrize("flags, expected", [("fpu avx2 avx512f amx_bf16 amx_tile", True),
                                             ("fpu avx2 avx512f avx512_bf16", True),
                                             ("fpu avx2 avx512f avx512_fp16", False)])
def test_cpu_has_bf16_reads_the_cpu_flags(tmp_path, flags, expected):
    from fer_ensemble.training.device import cpu_has_bf16

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    assert cpu_has_bf16(str(info)) is expected
    assert cpu_has_bf16(str(tmp_path / "absent")) is False


@pytest.mark.parametrize("has_bf16, expected", [(True, "mixed_bfloat16"), (False, "float32")])
def test_mixed_precision_on_cpu_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch, has_bf16, expected):
    from fer_ensemble.training import device

    monkeypatch.setattr(device, "cpu_has_bf16", lambda: has_bf16)
    assert device.precision_policy(True) == expected
    assert device.precision_policy(False) == "float32"


def test_bf16_member_trains_saves_and_reloads_on_cpu(monkeypatch, tmp_path, tiny_data):
    """A mixed_precision member on a bf16 CPU trains in mixed_bfloat16, records it, leaves the
    global policy at float32, and its saved model reloads and predicts as the run recorded."""
    import keras

    from fer_ensemble.training import device

    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    spec = ModelSpec(name="bf", builder="vgg_v1", args=TINY_ARGS, epochs=1, batch_size=32, learning_rate=0.003,
                     mixed_precision=True, seed=5)
    result = train_model(spec, tiny_data, tmp_path, progress=False)
    assert result.sidecar["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    model = keras.models.load_model(artifact_paths(tmp_path, "bf")["h5"], compile=False, safe_mode=True)
    assert model.layers[1].dtype_policy.name == "mixed_bfloat16"
    from fer_ensemble.data.pipeline import scale_images

    x = scale_images(tiny_data.val.x[:16])
    proba = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    assert proba.dtype == np.float32 and np.allclose(proba.sum(axis=1), 1.0, atol=1e-3)
    cached = np.load(artifact_paths(tmp_path, "bf")["preds.npz"])["val_proba"][:16]
    assert np.allclose(proba, cached, atol=2e-2)
