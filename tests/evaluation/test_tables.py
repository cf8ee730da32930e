"""Pairwise diversity tables: disagreement, double faults and the accuracy of each pair's mean."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ensemble.evaluation import disagreement_matrix, pair_table


def _onehot(pred, k=3, p=0.6):
    out = np.full((len(pred), k), (1 - p) / (k - 1))
    out[np.arange(len(pred)), pred] = p
    return out


def test_pair_table_counts_disagreement_double_faults_and_the_gain_of_the_mean():
    y = np.array([0, 1, 2, 0])
    a = _onehot([0, 1, 1, 1])                       # right on images 0 and 1
    b = np.array([[0.6, 0.2, 0.2], [0.1, 0.4, 0.5],  # right on images 0 and 2; unsure where wrong,
                  [0.05, 0.05, 0.9], [0.3, 0.1, 0.6]])  # so the mean follows a on image 1
    t = pair_table({"a": a, "b": b}, y)
    assert list(t[["model a", "model b"]].iloc[0]) == ["a", "b"]
    row = t.iloc[0]
    assert row["disagreement"] == pytest.approx(75.0)    # images 1, 2, 3
    assert row["both wrong"] == pytest.approx(25.0)      # image 3
    assert row["pair accuracy"] == pytest.approx(75.0)   # the mean gets 0, 1 (a's) and 2 (b's), not 3
    assert row["gain"] == pytest.approx(25.0)            # over 50% for the better of the two


def test_disagreement_matrix_is_symmetric_and_matches_the_pair_table():
    rng = np.random.default_rng(0)
    named = {n: rng.dirichlet(np.ones(7), size=200) for n in ("x", "y", "z")}
    m = disagreement_matrix(named)
    assert list(m.index) == list(m.columns) == ["x", "y", "z"]
    assert np.allclose(m.to_numpy(), m.to_numpy().T) and np.all(np.diag(m.to_numpy()) == 0)
    t = pair_table(named, rng.integers(0, 7, 200))
    assert len(t) == 3
    for _, r in t.iterrows():
        assert m.loc[r["model a"], r["model b"]] == pytest.approx(r["disagreement"])
        better = r["pair accuracy"] - r["gain"]
        assert r["both wrong"] <= 100 - better + 1e-9  # both wrong only where the better one is wrong
