"""Combination methods against hand-computed examples; fast search against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from fer_ensemble.ensemble import (SEARCHABLE, brute_force_accuracy, combine, fit_weights, search_subsets)
from fer_ensemble.ensemble import search as search_mod

# Two members, two samples, three classes; labels [0, 2].
P = np.array([[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]],
              [[0.1, 0.5, 0.4], [0.1, 0.2, 0.7]]])
Y = np.array([0, 2])


def test_mean_by_hand():
    np.testing.assert_allclose(combine(P, "mean"), [[0.35, 0.4, 0.25], [0.15, 0.35, 0.5]])


def test_accuracy_weighted_by_hand():
    w = fit_weights("accuracy", P, Y)          # member 0: 1/2 right, member 1: 1/2 right... check
    np.testing.assert_allclose(w, [0.5, 0.5])
    w = np.array([3.0, 1.0])
    np.testing.assert_allclose(combine(P, "accuracy", w)[0], [0.475, 0.35, 0.175])


def test_recall_weighted_by_hand():
    w = fit_weights("recall", P, Y)            # recall per member and class
    np.testing.assert_allclose(w, [[1, 0, 0], [0, 0, 1]])
    out = combine(P, "recall", w)
    # class 0 only from member 0, class 2 only from member 1, class 1 has no weight -> 0
    raw0 = np.array([0.6, 0.0, 0.4])
    np.testing.assert_allclose(out[0], raw0 / raw0.sum())


def test_vote_and_tie_break_by_hand():
    p = np.array([[[0.5, 0.4, 0.1]], [[0.3, 0.6, 0.1]]])  # one vote each for 0 and 1
    out = combine(p, "vote")
    assert out.argmax() == 1                              # mean prob 0.5 for class 1 > 0.4 for class 0
    p3 = np.concatenate([p, [[[0.9, 0.05, 0.05]]]])
    assert combine(p3, "vote").argmax() == 0              # two votes beat any probability


def test_geometric_by_hand():
    out = combine(P, "geometric")
    g = np.sqrt(P[0, 0] * P[1, 0])
    np.testing.assert_allclose(out[0], g / g.sum())


def _problem(m, n, c=7, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(m, n, c)) + 1.2 * np.eye(c)[y][None] * rng.uniform(0.3, 1.5, (m, 1, 1))
    p = np.exp(logits)
    return (p / p.sum(2, keepdims=True)).astype(np.float32), y


@pytest.mark.parametrize("method", SEARCHABLE)
def test_fast_search_equals_brute_force(method):
    vp, vy = _problem(7, 400, seed=1)
    tp, ty = _problem(7, 300, seed=2)
    names = [f"m{i}" for i in range(7)]
    res = search_subsets(names, vp, vy, tp, ty, methods=(method,), top=10 ** 6)
    assert len(res.table) == 2 ** 7 - 1
    for _, row in res.table.iterrows():
        idx = [names.index(n) for n in row.members.split("+")]
        assert row.val_accuracy == pytest.approx(brute_force_accuracy(method, idx, vp, vy, vp, vy), abs=1e-12)
        assert row.test_accuracy == pytest.approx(brute_force_accuracy(method, idx, tp, ty, vp, vy), abs=1e-12)
    # ranking: best validation first, smaller ensembles first among ties
    best = max(brute_force_accuracy(method, list(s), vp, vy, vp, vy)
               for k in range(1, 8) for s in itertools.combinations(range(7), k))
    assert res.winner["val_accuracy"] == pytest.approx(best)
    same = res.table[res.table.val_accuracy == res.table.val_accuracy.max()]
    assert res.winner["size"] == same["size"].min()


def test_size_limits_and_selection_ignores_test_labels():
    vp, vy = _problem(8, 300, seed=3)
    tp, ty = _problem(8, 300, seed=4)
    names = [f"m{i}" for i in range(8)]
    a = search_subsets(names, vp, vy, tp, ty, min_size=3, max_size=5)
    assert a.table["size"].between(3, 5).all()
    shuffled = np.random.default_rng(0).permutation(ty)
    b = search_subsets(names, vp, vy, tp, shuffled, min_size=3, max_size=5)
    assert a.winner["members"] == b.winner["members"] and a.winner["method"] == b.winner["method"]


def test_greedy_when_too_many_subsets(monkeypatch):
    vp, vy = _problem(9, 300, seed=5)
    tp, ty = _problem(9, 300, seed=6)
    monkeypatch.setattr(search_mod, "EXHAUSTIVE_LIMIT", 100)
    res = search_subsets([f"m{i}" for i in range(9)], vp, vy, tp, ty, methods=("mean", "recall"))
    assert res.search == "greedy" and "multiplicity" in res.table.columns
    singles = [(vp[i].argmax(1) == vy).mean() for i in range(9)]
    assert res.winner["val_accuracy"] >= max(singles)


def test_exhaustive_limit_is_a_parameter():
    """The limit picks the mode per call; above it the greedy fallback, at or below it every subset."""
    vp, vy = _problem(6, 200, seed=7)
    tp, ty = _problem(6, 200, seed=8)
    names = [f"m{i}" for i in range(6)]
    assert search_subsets(names, vp, vy, tp, ty, methods=("mean",), exhaustive_limit=62).search == "greedy"
    full = search_subsets(names, vp, vy, tp, ty, methods=("mean",), exhaustive_limit=63)
    assert full.search == "exhaustive" and full.evaluated["mean"] == 63
    with pytest.raises(ValueError, match="exhaustive_limit"):
        search_subsets(names, vp, vy, tp, ty, exhaustive_limit=-1)


def test_popcount_counts_bits(monkeypatch):
    masks = np.array([0, 1, 2, 3, 7, 2 ** 22 + 5, 2 ** 23 - 1], dtype=np.int64)
    expect = [bin(int(x)).count("1") for x in masks]
    assert search_mod._popcount(masks).tolist() == expect
    monkeypatch.delattr(np, "bitwise_count", raising=False)   # the numpy 1.x path
    assert search_mod._popcount(masks).tolist() == expect


def test_stacking_is_cross_validated():
    vp, vy = _problem(4, 400, seed=7)
    tp, ty = _problem(4, 300, seed=8)
    res = search_subsets([f"m{i}" for i in range(4)], vp, vy, tp, ty, methods=("mean", "stacking"))
    st = res.best["stacking"]
    assert 0.2 < st["val_accuracy"] < 1.0 and st["size"] >= 1


@pytest.mark.parametrize("method", SEARCHABLE)
def test_compiled_engine_equals_numpy_engine_and_brute_force(method, monkeypatch):
    """The numba kernel (bound-pruned, high sums formed on the fly) on 10 members, with a split
    that leaves members on both sides, a member that never predicts one class (zero recall) and
    two identical members (exact ties)."""
    pytest.importorskip("numba")
    import fer_ensemble.ensemble.search as search
    from fer_ensemble.ensemble.search import contributions, subset_correct

    monkeypatch.setattr(search, "NUMBA_LOW_BITS", 4)
    vp, vy = _problem(10, 300, seed=3)
    vp[2, :, 1] = 0.0                      # member 2 never scores class 1: its recall of 1 is 0
    vp[2] /= vp[2].sum(axis=1, keepdims=True)
    vp[5] = vp[4]                          # identical members: exact ties between subsets
    a, d = contributions(method, vp, vp, vy)
    fast = subset_correct(a, d, vy, method, vp, engine="numba")
    ref = subset_correct(a, d, vy, method, vp, engine="numpy")
    np.testing.assert_array_equal(fast[1:], ref[1:])
    for mask in range(1, 2 ** 10):
        idx = [i for i in range(10) if mask >> i & 1]
        assert fast[mask] == round(brute_force_accuracy(method, idx, vp, vy, vp, vy) * len(vy)), (mask, idx)
    # Without the probabilities (as for the test split: nothing is pre-decided) the engines agree too.
    np.testing.assert_array_equal(subset_correct(a, d, vy, method, None, engine="numba")[1:], ref[1:])
    with pytest.raises(ValueError, match="engine must be"):
        subset_correct(a, d, vy, method, vp, engine="gpu")


def test_search_over_more_than_eight_members_reports_test_accuracy():
    """Above 8 members the search uses the compiled engine for the validation and the test split
    (the test pass has no probabilities to pre-decide samples); every method's test accuracy
    matches brute force."""
    pytest.importorskip("numba")
    names = [f"m{i}" for i in range(10)]
    vp, vy = _problem(10, 200, seed=11)
    tp, ty = _problem(10, 150, seed=12)
    res = search_subsets(names, vp, vy, tp, ty, methods=("mean", "accuracy", "recall"), stacking=False)
    for method, row in res.best.items():
        idx = [names.index(x) for x in row["members"].split("+")]
        assert row["test_accuracy"] == pytest.approx(brute_force_accuracy(method, idx, tp, ty, vp, vy))


def _write_caches(run, vp, vy, tp, ty, names):
    for i, name in enumerate(names):
        np.savez(run / f"{name}.preds.npz", val_proba=vp[i], val_y=vy, test_proba=tp[i], test_y=ty,
                 class_names=np.array([f"c{k}" for k in range(vp.shape[2])]))


def test_top_members_keeps_the_best_by_validation_only(tmp_path):
    """--top-members K: the pool is cut to the K best members on validation; a member that is
    perfect on test but weak on validation is dropped, and ensemble.json records the cut."""
    import json

    from fer_ensemble.ensemble import keep_top_members, load_caches, search_run
    from fer_ensemble.errors import EnsembleError

    vp, vy = _problem(6, 300, seed=11)
    tp, ty = _problem(6, 300, seed=12)
    vp[5] = np.eye(7)[(vy + 1) % 7]            # m5: always wrong on validation ...
    tp[5] = np.eye(7)[ty]                      # ... and always right on test
    names = [f"m{i}" for i in range(6)]
    _write_caches(tmp_path, vp, vy, tp, ty, names)
    acc = (vp.argmax(2) == vy).mean(1)
    expect = sorted(names[i] for i in np.argsort(-acc, kind="stable")[:3])

    kept = keep_top_members(load_caches(tmp_path), 3)
    assert kept["names"] == expect and kept["val_proba"].shape[0] == 3
    np.testing.assert_array_equal(kept["test_proba"], tp[[names.index(n) for n in expect]])
    assert keep_top_members(load_caches(tmp_path), 99)["names"] == names   # K >= M: unchanged

    result, text = search_run(tmp_path, methods=("mean",), top_members=3)
    assert result.evaluated["mean"] == 7                                      # 2^3 - 1 subsets
    assert set(result.winner["members"].split("+")) <= set(expect)
    assert text.startswith("candidates: the 3 of 6 members")
    manifest = json.loads((tmp_path / "ensemble.json").read_text())
    assert manifest["candidates"] == 3 and manifest["pool"] == 6
    with pytest.raises(EnsembleError, match=f"{tmp_path}: top_members must be >= 1"):
        search_run(tmp_path, top_members=0)
