"""Could any choice of a run's members, affordable within a training budget, meet the CPU goal?

An upper bound for `fer-ensemble budget`: that command admits members by validation accuracy, as a
real run would have to; this one tries *every* subset of the run's members whose training
(fine-tuning ancestors included, each priced by its sidecar as `fer-ensemble budget` prices it)
fits the budget, scores each subset's ensemble on the chosen split (the plain mean by default;
`--method accuracy|recall` weights members as `fer-ensemble search` does, fitted on validation),
and compares it with the best member the subset's training produced (ancestors count: they were
trained). With `--split test` (the default) the subsets are chosen *on the test split itself*:
hindsight no real run has, so a budget for which even this finds nothing cannot meet the goal
with these members. Prints JSON:

    python research/scripts/budget_oracle.py results/fer2013-cpu --seconds 7200 10800 14400 --out oracle.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fer_ensemble._io import write_json
from fer_ensemble.ensemble.budget import affordable_subsets, run_metas
from fer_ensemble.ensemble.combine import _EPS, fit_weights, member_accuracy
from fer_ensemble.ensemble.run_search import load_caches
from fer_ensemble.errors import EnsembleError

SPLITS = {"test": ("test_proba", "test_y"), "val": ("val_proba", "val_y")}


def _record(subset, trained, spent, ens, best_name, best_acc) -> dict:
    return {"members": list(subset), "trained": sorted(trained), "cost_s": round(spent, 1),
            "ensemble_accuracy": round(float(ens), 4), "best_member": best_name,
            "best_member_accuracy": round(float(best_acc), 4), "margin": round(float(ens - best_acc), 4)}


def member_weights(caches: dict, method: str) -> np.ndarray:
    """(M, C) weight of each member for each class, fitted on validation as `search` fits them: a
    subset's `method` ensemble is argmax(sum of w * proba / sum of w), which running sums give."""
    m, _, c = caches["val_proba"].shape
    weights = fit_weights(method, caches["val_proba"], caches["val_y"])
    if weights is None:
        return np.ones((m, c))
    return np.broadcast_to(weights[:, None], (m, c)) if weights.ndim == 1 else weights


def oracle(caches: dict, metas: dict, seconds: float, split: str = "test", min_accuracy: float = 0.70,
           min_margin: float = 0.02, method: str = "mean") -> dict:
    """Scan every affordable subset's `method` ensemble on `split`; report the goal's two lines'
    best trade-offs."""
    proba_key, y_key = SPLITS[split]
    proba, y, names = caches[proba_key], caches[y_key], caches["names"]
    acc = dict(zip(names, member_accuracy(proba, y).tolist()))
    index = {n: i for i, n in enumerate(names)}
    weights = member_weights(caches, method)
    sums: list[tuple[np.ndarray, np.ndarray]] = []   # (sum of w * proba, sum of w) per depth
    count = meeting = 0
    best = {"accuracy": None, "margin_at_line": None, "accuracy_at_margin": None}
    score = dict.fromkeys(best)                    # the value each record in `best` won with
    for subset, trained, spent in affordable_subsets(names, metas, seconds):
        depth = len(subset)
        del sums[depth - 1:]                       # depth first: the prefix's sums are on top
        i = index[subset[-1]]
        num, den = sums[-1] if sums else (0.0, 0.0)
        sums.append((num + weights[i] * proba[i], den + weights[i]))
        ens = float(((sums[-1][0] / np.maximum(sums[-1][1], _EPS)).argmax(1) == y).mean())
        scored = [m for m in trained if m in acc]  # an ancestor without a cache cannot be scored
        best_name = max(scored, key=lambda m: (acc[m], m))
        margin = ens - acc[best_name]
        count += 1
        meeting += ens >= min_accuracy and margin >= min_margin
        for key, ok, value in (("accuracy", True, ens), ("margin_at_line", ens >= min_accuracy, margin),
                               ("accuracy_at_margin", margin >= min_margin, ens)):
            if ok and (score[key] is None or value > score[key]):
                score[key] = value
                best[key] = _record(subset, trained, spent, ens, best_name, acc[best_name])
    return {"budget_s": seconds, "split": split, "method": method, "subsets": count, "meeting_goal": int(meeting),
            "goal": {"min_accuracy": min_accuracy, "min_margin": min_margin},
            "best_accuracy": best["accuracy"], "best_margin_at_min_accuracy": best["margin_at_line"],
            "best_accuracy_at_min_margin": best["accuracy_at_margin"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run directory with NAME.preds.npz caches and NAME.json sidecars")
    ap.add_argument("--seconds", type=float, nargs="+", required=True, help="training budgets in seconds")
    ap.add_argument("--split", choices=sorted(SPLITS), default="test",
                    help="the split subsets are scored and chosen on (default: test, the oracle)")
    ap.add_argument("--method", choices=("mean", "accuracy", "recall"), default="mean",
                    help="how a subset is combined; weights are fitted on validation, as search fits them")
    ap.add_argument("--out", help="also write the JSON to this file (atomically: a failed scan leaves none)")
    ap.add_argument("--min-accuracy", type=float, default=0.70)
    ap.add_argument("--min-margin", type=float, default=0.02)
    args = ap.parse_args(argv)
    try:
        caches = load_caches(args.run)
        metas = run_metas(args.run, caches["names"])
        out = []
        for seconds in args.seconds:
            start = time.perf_counter()
            result = oracle(caches, metas, seconds, args.split, args.min_accuracy, args.min_margin, args.method)
            out.append({**result, "scan_s": round(time.perf_counter() - start, 1)})
    except EnsembleError as e:
        print(f"budget_oracle: {e}", file=sys.stderr)
        return 1
    report = {"run": str(Path(args.run)), "budgets": out}
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
