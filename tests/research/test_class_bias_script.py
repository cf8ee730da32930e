"""research/scripts/class_bias.py: a shifted class prior is found on validation and undone on test."""
from __future__ import annotations

import json

import numpy as np

from tests.helpers import load_script

class_bias = load_script("class_bias", "research/scripts")


def _member(rng, n, shift):
    """Probabilities that rank the true class first 70% of the time, then tilted towards class 0."""
    y = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += np.where(rng.random(n) < 0.7, 3.0, 0.0)
    logits[:, 0] += shift
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), y


def test_bias_undoes_a_prior_shift_and_leaves_a_fair_member_alone(tmp_path, capsys):
    rng = np.random.default_rng(0)
    (pv, vy), (pt, ty) = _member(rng, 3000, 2.0), _member(rng, 3000, 2.0)
    np.savez(tmp_path / "tilted.preds.npz", val_proba=pv, val_y=vy, test_proba=pt, test_y=ty)
    (fv, fvy), (ft, fty) = _member(rng, 3000, 0.0), _member(rng, 3000, 0.0)
    np.savez(tmp_path / "fair.preds.npz", val_proba=fv, val_y=fvy, test_proba=ft, test_y=fty)
    assert class_bias.main([str(tmp_path), "tilted", "fair"]) == 0
    out = json.loads(capsys.readouterr().out)
    tilted, fair = out["tilted"], out["fair"]
    assert tilted["test_accuracy_with_bias"] > tilted["test_accuracy"] + 0.03   # fitted on val, scored on test
    assert tilted["test_predicted_per_class"][0] > 1.3 * tilted["test_predicted_per_class_with_bias"][0]
    assert tilted["bias"][0] < min(tilted["bias"][1:])                         # class 0 is pushed down
    assert abs(fair["test_accuracy_with_bias"] - fair["test_accuracy"]) < 0.015
    assert class_bias.main([str(tmp_path), "missing"]) == 1
    assert "missing.preds.npz: no prediction cache" in capsys.readouterr().err
