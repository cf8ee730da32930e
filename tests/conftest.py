"""Shared test fixtures: tiny synthetic data, the real-data folder (skipped when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")   # the Ray tests start Ray: no usage report

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fer2013.npz").exists():
        pytest.skip(f"real FER2013 not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_data():
    from fer_ensemble.data import make_synthetic

    return make_synthetic(600, seed=1)


def write_csv(path: Path, rows: list[tuple], header: str = "emotion,pixels,Usage") -> Path:
    """Write a fer2013-style csv; rows are (label, pixels array or string, usage)."""
    lines = [header]
    for label, pixels, usage in rows:
        if not isinstance(pixels, str):
            pixels = " ".join(str(int(v)) for v in np.asarray(pixels).ravel())
        lines.append(f"{label},{pixels},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


TINY_ZOO = """
[zoo]
name = "tiny"
[defaults]
epochs = 2
batch_size = 32
learning_rate = 0.003
patience = 5
augment = { flip = true, rotation = 5.0, translation = 0.0, zoom = 0.0 }
[[model]]
name = "a_vgg"
builder = "vgg_v1"
args = { filters = [4, 8, 8, 8], dropout = 0.0, dense_units = [16], dense_dropout = 0.0, first_l2 = 0.0 }
seed = 1
[[model]]
name = "b_sep"
builder = "sepnet"
args = { filters = [8, 8], dense_units = [16] }
balancing = "batches"
batch_size = 28
seed = 2
"""


@pytest.fixture(scope="session")
def tiny_zoo_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("zoo") / "tiny.toml"
    p.write_text(TINY_ZOO)
    return p


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data, tiny_zoo_file):
    """A trained two-model run directory (shared: training it takes ~20 s)."""
    from fer_ensemble.models import load_zoo
    from fer_ensemble.training import train_all

    run = tmp_path_factory.mktemp("run")
    result = train_all(load_zoo(tiny_zoo_file), tiny_data, run, progress=False)
    assert not result.failures, result.failures
    return run
