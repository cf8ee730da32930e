"""Experiments: every shipped config loads; each kind runs end to end on tiny data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_ensemble.data import make_synthetic, simulate_ferplus
from fer_ensemble.errors import FerEnsembleError
from fer_ensemble.workflows.experiments import load_experiment, run_experiment

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = 'builder = "lenet"\nargs = { filters = [4, 4, 4], dense_units = [8] }\n'


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_experiments_load(path):
    exp = load_experiment(path)
    assert exp.kind in ("compare", "ensemble", "labels") and exp.zoo.models and exp.description


def _write(tmp_path, kind: str, n_models: int) -> Path:
    models = "".join(f'[[model]]\nname = "m{i}"\n{TINY_MODEL}seed = {i}\n\n' for i in range(n_models))
    p = tmp_path / f"{kind}.toml"
    p.write_text(f'[experiment]\nname = "{kind}"\nkind = "{kind}"\ndescription = "t"\ndata = "synthetic:400"\n\n'
                 f'[defaults]\nepochs = 1\nbatch_size = 32\naugment = false\n\n{models}')
    return p


@pytest.mark.slow
def test_each_kind_writes_its_table(tmp_path):
    compare = run_experiment(load_experiment(_write(tmp_path, "compare", 2)), run_dir=tmp_path / "c", progress=False)
    assert list(compare["model"]) == ["m0", "m1"] and compare["test macro F1"].between(0, 1).all()
    md = (tmp_path / "c" / "results.md").read_text()
    assert "| m0 |" in md and "| m1 |" in md
    ens = run_experiment(load_experiment(_write(tmp_path, "ensemble", 3)), run_dir=tmp_path / "e", progress=False)
    assert set(ens["method"]) == {"mean", "accuracy", "recall", "single"}
    searched = ens[ens["ensemble"].str.startswith("searched")]
    alls = ens[ens["ensemble"].str.startswith("all")]
    # the searched subset is chosen on validation, so it is never worse there than all models
    assert (searched["val accuracy"].to_numpy() >= alls["val accuracy"].to_numpy() - 1e-12).all()
    labels = run_experiment(load_experiment(_write(tmp_path, "labels", 1)), run_dir=tmp_path / "l", progress=False)
    assert list(labels["labels"]) == ["original", "FER+ majority"]
    assert pd.read_csv(tmp_path / "l" / "results.csv").shape[0] == 2


def test_simulated_ferplus_and_errors(tmp_path):
    data = make_synthetic(500, seed=2)
    fp = simulate_ferplus(data, annotators=10, agree=0.6, seed=0)
    assert 0 < len(fp.train) < len(data.train)                         # ties were dropped
    idx = np.array(fp.info["row_index"]["train"])
    np.testing.assert_array_equal(fp.train.x, data.train.x[idx])
    assert (fp.train.y == data.train.y[idx]).mean() > 0.9               # ten taggers at 0.6 mostly agree
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nkind = "nope"\n[[model]]\nname = "a"\nbuilder = "lenet"\n')
    with pytest.raises(FerEnsembleError, match="bad.toml: \\[experiment\\] kind must be one of"):
        load_experiment(bad)
    bad.write_text('[[model]]\nname = "a"\nbuilder = "lenet"\n')
    with pytest.raises(FerEnsembleError, match="missing \\[experiment\\] table"):
        load_experiment(bad)
    p = _write(tmp_path, "labels", 1)
    with pytest.raises(FerEnsembleError, match="needs --ferplus"):
        run_experiment(load_experiment(p), data=str(tmp_path / "x.npz"), run_dir=tmp_path / "r", progress=False)
