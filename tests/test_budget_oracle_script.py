"""scripts/budget_oracle.py: every affordable subset is scored, and the goal's trade-offs found."""
from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("budget_oracle", ROOT / "scripts" / "budget_oracle.py")
budget_oracle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budget_oracle)

N = 100
Y = np.arange(N) % 3


def _proba(correct):
    """Confident when right; when wrong, the true class a close second, so a right partner wins the mean."""
    p = np.zeros((N, 3))
    for i, y in enumerate(Y):
        p[i, y], p[i, (y + 1) % 3], p[i, (y + 2) % 3] = (0.8, 0.1, 0.1) if correct[i] else (0.35, 0.45, 0.2)
    return p


def _member(run, name, right, wall, parent=None, val_right=None):
    correct = np.isin(np.arange(N), right)
    val = correct if val_right is None else np.isin(np.arange(N), val_right)
    np.savez(run / f"{name}.preds.npz", val_proba=_proba(val), val_y=Y, test_proba=_proba(correct), test_y=Y,
             class_names=np.array(["a", "b", "c"]))
    (run / f"{name}.json").write_text(json.dumps({"name": name, "wall_time_s": wall, "metrics": {},
                                                  "initialized_from": {"name": parent} if parent else None}))


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


def test_validation_split_and_a_run_without_sidecars(tmp_path, capsys):
    run = _zoo(tmp_path)
    assert budget_oracle.main([str(run), "--seconds", "60", "--split", "val"]) == 0
    (budget,) = json.loads(capsys.readouterr().out)["budgets"]
    assert budget["split"] == "val" and budget["meeting_goal"] == 0        # p alone is right everywhere there
    assert budget["best_accuracy"]["best_member"] == "p" and budget["best_accuracy"]["ensemble_accuracy"] == 1.0
    (run / "q.json").unlink()
    assert budget_oracle.main([str(run), "--seconds", "60"]) == 1
    assert "prediction caches without a sidecar: q" in capsys.readouterr().err
