"""The budget sub-run: member costs, fine-tuning lineages, the admission rule, and the copied run
that `search_run` reads like any other."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_ensemble.ensemble import search_run
from fer_ensemble.ensemble.budget import (BUDGET_FILE, affordable_subsets, budget_pool, lineage, member_cost,
                                          write_budget_run)
from fer_ensemble.errors import EnsembleError

CLASSES = ["a", "b", "c"]


def _meta(name, wall, parent=None, epochs=8, resumed=0):
    return {"name": name, "wall_time_s": wall, "epochs_run": epochs, "resumed_from_epoch": resumed,
            "initialized_from": {"name": parent} if parent else None, "metrics": {}}


def test_member_cost_scales_a_resumed_run_to_all_its_epochs():
    assert member_cost(_meta("m", 100.0)) == 100.0
    assert member_cost(_meta("m", 100.0, epochs=8, resumed=6)) == pytest.approx(400.0)   # 2 of 8 epochs
    with pytest.raises(EnsembleError, match="m.json: no wall_time_s"):
        member_cost({"name": "m", "wall_time_s": None}, "m.json")


def test_lineage_runs_oldest_first_and_names_a_missing_ancestor():
    metas = {"a": _meta("a", 1), "a_ft": _meta("a_ft", 1, "a"), "a_ft2": _meta("a_ft2", 1, "a_ft")}
    assert lineage("a_ft2", metas) == ["a", "a_ft", "a_ft2"]
    assert lineage("a", metas) == ["a"]
    with pytest.raises(EnsembleError, match="b_ft: initialized from b, which has no sidecar"):
        lineage("b_ft", {"b_ft": _meta("b_ft", 1, "b")})
    with pytest.raises(EnsembleError, match="cycle"):
        lineage("x", {"x": _meta("x", 1, "y"), "y": _meta("y", 1, "x")})


def test_budget_pool_admits_ancestors_and_skips_what_does_not_fit():
    metas = {"a": _meta("a", 50), "a_ft": _meta("a_ft", 30, "a"), "b": _meta("b", 40), "c": _meta("c", 15)}
    # a_ft needs a (80 s); b (40 s) no longer fits in 100; c (15 s) still does.
    assert budget_pool(["a_ft", "b", "c", "a"], metas, 100) == (["a", "a_ft", "c"], 95.0)
    assert budget_pool(["a_ft", "b", "c", "a"], metas, 79) == (["b", "c"], 55.0)   # a_ft's lineage is too dear
    assert budget_pool(["a_ft"], metas, 1000)[0] == ["a", "a_ft"]
    with pytest.raises(EnsembleError, match="budget must be positive"):
        budget_pool(["a"], metas, 0)


def test_affordable_subsets_are_every_subset_that_fits_with_its_ancestors_depth_first():
    metas = {"a": _meta("a", 50), "a_ft": _meta("a_ft", 30, "a"), "b": _meta("b", 40), "c": _meta("c", 15)}
    got = list(affordable_subsets(["a", "a_ft", "b", "c"], metas, 100))
    # Brute force over all 15 subsets, each priced with its ancestors.
    want = set()
    for mask in range(1, 16):
        subset = tuple(n for i, n in enumerate(["a", "a_ft", "b", "c"]) if mask >> i & 1)
        trained = {m for n in subset for m in lineage(n, metas)}
        if sum(metas[m]["wall_time_s"] for m in trained) <= 100:
            want.add((subset, frozenset(trained)))
    assert {(s, t) for s, t, _ in got} == want and len(got) == len(want)
    assert (("a_ft", "c"), frozenset({"a", "a_ft", "c"}), 95.0) in got
    assert not any({"a_ft", "b"} <= set(s) for s, _, _ in got)          # 120 s with a: too dear
    seen = set()
    for subset, _, _ in got:                                             # each comes after its prefix
        assert len(subset) == 1 or subset[:-1] in seen
        seen.add(subset)
    with pytest.raises(EnsembleError, match="budget must be positive"):
        next(affordable_subsets(["a"], metas, -1))


def _run(tmp_path, rng):
    """Four members on a 3-class toy split: a strong chain (s, s_ft) and two weaker singletons."""
    run = tmp_path / "run"
    run.mkdir()
    vy, ty = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    spec = {"s": (0.55, 60.0, None), "s_ft": (0.8, 40.0, "s"), "w": (0.6, 30.0, None), "x": (0.5, 20.0, None)}
    for name, (skill, wall, parent) in spec.items():
        proba = []
        for y in (vy, ty):
            p = rng.dirichlet(np.ones(3), len(y))
            hit = rng.random(len(y)) < skill
            p[hit, y[hit]] += 1.0
            proba.append(p / p.sum(1, keepdims=True))
        np.savez(run / f"{name}.preds.npz", val_proba=proba[0], val_y=vy, test_proba=proba[1], test_y=ty,
                 class_names=np.array(CLASSES))
        (run / f"{name}.json").write_text(json.dumps(_meta(name, wall, parent)))
        (run / f"{name}.history.csv").write_text("epoch,accuracy\n0,0.5\n")
    (run / "ensemble.json").write_text(json.dumps({"method": "mean", "members": ["w"]}))   # not a sidecar
    return run


def test_write_budget_run_copies_a_searchable_sub_run(tmp_path):
    run = _run(tmp_path, np.random.default_rng(0))
    out = tmp_path / "b"
    record = write_budget_run(run, out, 120)
    # s_ft is best on validation and brings s (100 s); w (30 s) would pass 120, x (20 s) fits.
    assert [m["name"] for m in record["members"]] == ["s", "s_ft", "x"]
    assert record["spent_s"] == 120.0 and json.loads((out / BUDGET_FILE).read_text()) == record
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [BUDGET_FILE] + [f"{n}{s}" for n in ("s", "s_ft", "x") for s in (".json", ".history.csv", ".preds.npz")])
    result, _ = search_run(out)
    assert set(result.winner["members"].split("+")) <= {"s", "s_ft", "x"}
    # A smaller budget replaces the earlier budget run as a whole (no stale members left behind).
    write_budget_run(run, out, 35)
    assert sorted(p.name for p in out.glob("*.preds.npz")) == ["w.preds.npz"]


def test_write_budget_run_refuses_its_source_and_a_foreign_folder(tmp_path):
    run = _run(tmp_path, np.random.default_rng(1))
    with pytest.raises(EnsembleError, match="different folder"):
        write_budget_run(run, run, 100)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(EnsembleError, match="is not a budget run"):
        write_budget_run(run, other, 100)
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(EnsembleError, match="notes.txt: exists and is not a folder"):
        write_budget_run(run, other / "notes.txt", 100)
    (run / ".y.tmp1.json").write_text("{half")   # an interrupted write's leftover is not read
    assert write_budget_run(run, tmp_path / "ok", 100)["members"]
    (run / "z.json").write_text("{half")
    with pytest.raises(EnsembleError, match="z.json: cannot read JSON"):
        write_budget_run(run, tmp_path / "ok", 100)
    (run / "z.json").unlink()
    (run / "x.json").unlink()
    with pytest.raises(EnsembleError, match="caches without a sidecar: x"):
        write_budget_run(run, tmp_path / "b", 100)


def test_budget_command_then_search_on_the_sub_run(tmp_path, capsys):
    from fer_ensemble.cli import main

    run = _run(tmp_path, np.random.default_rng(2))
    out = tmp_path / "b"
    assert main(["budget", str(run), str(out), "--seconds", "120"]) == 0
    printed = capsys.readouterr().out
    assert "3 members, 120 of 120 s" in printed and "s_ft" in printed
    assert main(["search", str(out)]) == 0
    assert set(json.loads((out / "ensemble.json").read_text())["members"]) <= {"s", "s_ft", "x"}
    assert main(["budget", str(run), str(run), "--seconds", "120"]) != 0
    assert "different folder" in capsys.readouterr().err
