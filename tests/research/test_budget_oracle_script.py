"""research/scripts/budget_oracle.py: every affordable subset is scored, and the goal's trade-offs found."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from fer_ensemble.ensemble.combine import combine, fit_weights
from tests.helpers import load_script

budget_oracle = load_script("budget_oracle", "research/scripts")

N = 100
Y = np.arange(N) % 3


def _proba(correct):
    """Confident when right; when wrong, the true class a close second, so a right partner wins the mean."""
    p = np.zeros((N, 3))
    for i, y in enumerate(Y):
        p[i, y], p[i, (y + 1) % 3], p[i, (y + 2) % 3] = (0.8, 0.1, 0.1) if correct[i] else (0.35, 0.45, 0.2)
    return p


def _write(run, name, val_proba, test_proba, wall, parent=None):
    """A member's prediction cache and the sidecar fields the oracle reads (cost, lineage)."""
    np.savez(run / f"{name}.preds.npz", val_proba=val_proba, val_y=Y, test_proba=test_proba, test_y=Y,
             class_names=np.array(["a", "b", "c"]))
    (run / f"{name}.json").write_text(json.dumps({"name": name, "wall_time_s": wall, "metrics": {},
                                                  "initialized_from": {"name": parent} if parent else None}))


def _member(run, name, right, wall, parent=None, val_right=None):
    correct = np.isin(np.arange(N), right)
    val = correct if val_right is None else np.isin(np.arange(N), val_right)
    _write(run, name, _proba(val), _proba(correct), wall, parent)


def _zoo(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _member(run, "p", range(0, 60), 30, val_right=range(0, 100))   # 60% on test, all right on validation
    _member(run, "q", range(40, 100), 30)                          # 60%, right where p is wrong
    _member(run, "s", range(0, 50), 60)
    _member(run, "s_ft", range(0, 90), 40, parent="s")             # 90%, but needs s's 60 s too
    return run


def test_oracle_finds_the_diverse_pair_and_agrees_with_brute_force(tmp_path, capsys):
    run = _zoo(tmp_path)
    assert budget_oracle.main([str(run), "--seconds", "60", "100"]) == 0
    small, large = json.loads(capsys.readouterr().out)["budgets"]
    # 60 s buys p, q, s, and p + q: their mean is right wherever either is, 100% against 60%.
    assert small["subsets"] == 4 and small["meeting_goal"] == 1
    assert small["best_accuracy"]["members"] == ["p", "q"] and small["best_accuracy"]["margin"] == 0.4
    assert small["best_accuracy_at_min_margin"] == small["best_margin_at_min_accuracy"] == small["best_accuracy"]
    # 100 s also buys s_ft (with s): a subset holding it must beat 90%, which only the trained s_ft sets.
    best = large["best_margin_at_min_accuracy"]
    assert set(best["members"]) == {"p", "q"} and best["margin"] == 0.4
    # Brute force with plain numpy: the counts of affordable subsets and of those meeting the goal.
    z = {n: np.load(run / f"{n}.preds.npz") for n in ("p", "q", "s", "s_ft")}
    acc = {n: (z[n]["test_proba"].argmax(1) == Y).mean() for n in z}
    cost, need = {"p": 30, "q": 30, "s": 60, "s_ft": 40}, {"s_ft": {"s", "s_ft"}}
    fits = meets = 0
    for k in range(1, 5):
        for subset in itertools.combinations(z, k):
            trained = set().union(*(need.get(n, {n}) for n in subset))
            if sum(cost[m] for m in trained) > 100:
                continue
            fits += 1
            ens = (np.mean([z[n]["test_proba"] for n in subset], 0).argmax(1) == Y).mean()
            meets += ens >= 0.7 and ens - max(acc[m] for m in trained) >= 0.02
    assert (large["subsets"], large["meeting_goal"]) == (fits, meets)


def test_validation_split_the_out_file_and_a_run_without_sidecars(tmp_path, capsys):
    run = _zoo(tmp_path)
    assert budget_oracle.main([str(run), "--seconds", "60", "--split", "val"]) == 0
    (budget,) = json.loads(capsys.readouterr().out)["budgets"]
    assert budget["split"] == "val" and budget["meeting_goal"] == 0        # p alone is right everywhere there
    assert budget["best_accuracy"]["best_member"] == "p" and budget["best_accuracy"]["ensemble_accuracy"] == 1.0
    assert budget_oracle.main([str(run), "--seconds", "60", "--out", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text()) == json.loads(capsys.readouterr().out)
    (run / "q.json").unlink()
    assert budget_oracle.main([str(run), "--seconds", "60", "--out", str(tmp_path / "bad.json")]) == 1
    assert "prediction caches without a sidecar: q" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "run"]   # no file, no temporary left


@pytest.mark.parametrize("method", ["mean", "accuracy", "recall"])
def test_running_sums_score_every_subset_as_the_package_combines_it(tmp_path, method):
    """Random members of uneven per-class skill: the oracle's scan equals combine() on each subset."""
    rng = np.random.default_rng(3)
    run = tmp_path / "run"
    run.mkdir()
    names, walls = ["a", "a_ft", "b", "c", "d"], [40, 20, 30, 25, 35]
    skills = rng.uniform(0.2, 0.9, (5, 3))                         # per member, per class
    for k, (name, wall) in enumerate(zip(names, walls)):
        proba = {}
        for split in ("val", "test"):
            p = rng.dirichlet(np.ones(3), N)
            hit = rng.random(N) < skills[k, Y]
            p[hit, Y[hit]] += 1.0
            proba[split] = p / p.sum(1, keepdims=True)
        _write(run, name, proba["val"], proba["test"], wall, "a" if name == "a_ft" else None)
    from fer_ensemble.ensemble.budget import run_metas
    from fer_ensemble.ensemble.run_search import load_caches

    caches = load_caches(run)
    got = budget_oracle.oracle(caches, run_metas(run, names), 100, "test", 0.5, 0.0, method)
    weights = fit_weights(method, caches["val_proba"], caches["val_y"])
    acc = (caches["test_proba"].argmax(2) == Y).mean(1)
    fits = meets = 0
    top = -1.0
    for k in range(1, 6):
        for subset in itertools.combinations(range(5), k):
            trained = set(subset) | ({0} if 1 in subset else set())
            if sum(walls[i] for i in trained) > 100:
                continue
            w = None if weights is None else weights[list(subset)]
            ens = (combine(caches["test_proba"][list(subset)], method, w).argmax(1) == Y).mean()
            fits += 1
            meets += ens >= 0.5 and ens >= max(acc[i] for i in trained)
            top = max(top, ens)
    assert (got["subsets"], got["meeting_goal"], got["method"]) == (fits, meets, method)
    assert got["best_accuracy"]["ensemble_accuracy"] == pytest.approx(top, abs=5e-5)
