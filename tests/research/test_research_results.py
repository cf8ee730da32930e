"""The research record's committed artifacts agree with each other (docs/research/): the chosen way
of choosing, the budget sub-runs, the budget oracle's 2-hour scan (rerun on the committed caches),
the 2-hour zoo's cost and the strided-stem probe's recipe."""
from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
CPU = RESULTS / "fer2013-cpu"


def test_ensemble_json_is_the_procedure_search_cv_chose():
    cv = json.loads((CPU / "search_cv.json").read_text())
    manifest = json.loads((CPU / "ensemble.json").read_text())
    assert manifest["procedure"] == cv["chosen"]
    best = max(cv["procedures"], key=lambda p: cv["procedures"][p]["out_of_fold_accuracy"])
    assert cv["procedures"][best]["out_of_fold_accuracy"] == cv["procedures"][cv["chosen"]]["out_of_fold_accuracy"]
    assert manifest["test_accuracy"] == cv["procedures"][cv["chosen"]]["test_accuracy"]


def test_budget_runs_fit_their_budgets_and_search_only_what_they_bought():
    runs = sorted((RESULTS / "fer2013-cpu-budget").glob("*s/budget.json"))
    assert len(runs) == 4
    for path in runs:
        budget = json.loads(path.read_text())
        bought = {m["name"] for m in budget["members"]}
        manifest = json.loads((path.parent / "ensemble.json").read_text())
        assert budget["spent_s"] <= budget["budget_s"] and f"{int(budget['budget_s'])}s" == path.parent.name
        assert set(manifest["members"]) <= bought, path.parent.name


def test_budget_oracle_2_hour_scan_reproduces_the_committed_answer():
    """oracle_test.json's 2-hour budget (0.1 s) rerun on the committed caches gives the committed
    answer, and no 2-hour subset meets the goal under any of the three weightings."""
    from fer_ensemble.ensemble.budget import run_metas
    from fer_ensemble.ensemble.run_search import load_caches

    oracle = load_script("budget_oracle", "research/scripts")
    folder = RESULTS / "fer2013-cpu-budget"
    saved = json.loads((folder / "oracle_test.json").read_text())["budgets"]
    assert [b["budget_s"] for b in saved] == [7200, 10800, 14400]
    for name in ("oracle_test.json", "oracle_test_accuracy.json", "oracle_test_recall.json"):
        assert json.loads((folder / name).read_text())["budgets"][0]["meeting_goal"] == 0, name
    caches = load_caches(CPU)
    again = oracle.oracle(caches, run_metas(CPU, caches["names"]), 7200)
    assert again == {k: v for k, v in saved[0].items() if k != "scan_s"}


def test_two_hour_zoo_cost_fits_and_its_pick_is_below_the_goal():
    from fer_ensemble.ensemble.budget import member_cost

    run = RESULTS / "fer2013-cpu2h"
    metas = [json.loads(p.read_text()) for p in run.glob("r2h_*.json")]
    assert len(metas) == 5 and sum(member_cost(m) for m in metas) <= 7200
    manifest = json.loads((run / "ensemble.json").read_text())
    best = max(m["metrics"]["test"]["accuracy"] for m in metas)
    assert manifest["test_accuracy"] < 0.70 and manifest["test_accuracy"] - best < 0.02


def test_strided_stem_probe_members_are_flip_tta_stride_2():
    metas = [json.loads(p.read_text()) for p in (RESULTS / "fer2013-cpu2h-probe").glob("p_*.json")]
    assert len(metas) == 2
    assert all(m["spec"]["args"]["stem_stride"] == 2 and m["tta"] == "flip" for m in metas)
