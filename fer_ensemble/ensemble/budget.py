"""The zoo a training budget buys, from a run that spent more.

Members are admitted in order of validation accuracy (best first, ties by name), each together
with the ancestors it was fine-tuned from (`initialized_from`), while the training time of all
admitted members stays within the budget; a member that would not fit is skipped and the next is
tried. Test predictions play no part. The admitted members' small artifacts (and weights, where
present) are copied into a sub-run with `budget.json`, which `fer-ensemble search` reads like any
other run directory.

A member's cost is its sidecar's `wall_time_s` (build, training, evaluation); for a resumed run,
whose wall time covers only its last leg, that time is scaled by epochs_run / (epochs run in the
last leg). Costs are what the run's own machine measured, so a run trained on machines of
different speeds prices its members unevenly.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

from .._io import atomic_dir, write_json
from ..errors import EnsembleError
from ..rundir import BUDGET_FILE, MEMBER_SUFFIXES, load_caches, member_sidecars
from .combine import member_accuracy
from .cv import ranked_indices

__all__ = ["BUDGET_FILE", "member_cost", "lineage", "budget_pool", "run_metas", "affordable_subsets",
           "write_budget_run"]


def member_cost(meta: dict, where: str = "sidecar") -> float:
    """Seconds one member took to train (see the module docstring); `where` names it in errors."""
    wall = meta.get("wall_time_s")
    if not isinstance(wall, (int, float)) or wall < 0:
        raise EnsembleError(f"{where}: no wall_time_s, so its training cost is unknown")
    epochs, resumed = int(meta.get("epochs_run") or 0), int(meta.get("resumed_from_epoch") or 0)
    if 0 < resumed < epochs:
        return float(wall) * epochs / (epochs - resumed)
    return float(wall)


def lineage(name: str, metas: dict[str, dict]) -> list[str]:
    """`name` and the members it was fine-tuned from, oldest first."""
    chain, seen = [], set()
    while name is not None:
        if name in seen:
            raise EnsembleError(f"{name}: initialized_from forms a cycle ({' <- '.join(chain)})")
        if name not in metas:
            child = chain[-1] if chain else name
            raise EnsembleError(f"{child}: initialized from {name}, which has no sidecar {name}.json in the run")
        seen.add(name)
        chain.append(name)
        parent = metas[name].get("initialized_from")
        name = parent["name"] if isinstance(parent, dict) else parent
    return chain[::-1]


def budget_pool(ranked: list[str], metas: dict[str, dict], seconds: float) -> tuple[list[str], float]:
    """Members admitted from `ranked` (best first) with their ancestors within `seconds`;
    returns (admitted names in admission order, seconds spent)."""
    if seconds <= 0:
        raise EnsembleError(f"budget must be positive, got {seconds} s")
    admitted: list[str] = []
    spent = 0.0
    for name in ranked:
        new = [m for m in lineage(name, metas) if m not in admitted]
        cost = sum(member_cost(metas[m], f"{m}.json") for m in new)
        if new and spent + cost <= seconds:
            admitted += new
            spent += cost
    return admitted, spent


def run_metas(run_dir: str | os.PathLike, names: list[str]) -> dict[str, dict]:
    """Every member sidecar (NAME.json) in `run_dir`, by name; each of `names` (the members with a
    prediction cache) must have one."""
    run_dir = Path(run_dir)
    # trained members, and imported ones with data: those with metrics
    metas = {meta["name"]: meta for meta in member_sidecars(run_dir, keys=("metrics", "name")).values()}
    missing = [n for n in names if n not in metas]
    if missing:
        raise EnsembleError(f"{run_dir}: prediction caches without a sidecar: {', '.join(missing)}")
    return metas


def affordable_subsets(names: list[str], metas: dict[str, dict],
                       seconds: float) -> Iterator[tuple[tuple[str, ...], frozenset[str], float]]:
    """Every non-empty subset of `names` whose training, ancestors included, fits `seconds`.

    Yields (subset, the members training it needs, their summed cost), depth first: each subset
    comes right after the subsets it extends, so a caller can keep running sums on a stack.
    Whatever it costs to find, this is the whole space a budget could buy from these members.
    """
    if seconds <= 0:
        raise EnsembleError(f"budget must be positive, got {seconds} s")
    need = {n: frozenset(lineage(n, metas)) for n in names}
    cost = {m: member_cost(metas[m], f"{m}.json") for n in names for m in need[n]}
    pool = [n for n in names if sum(cost[m] for m in need[n]) <= seconds]   # the rest never fit

    def extend(subset, trained, spent, start):
        for j in range(start, len(pool)):
            new = need[pool[j]] - trained
            total = spent + sum(cost[m] for m in new)
            if total <= seconds:
                grown, grown_trained = subset + (pool[j],), trained | new
                yield grown, grown_trained, total
                yield from extend(grown, grown_trained, total, j + 1)

    yield from extend((), frozenset(), 0.0, 0)


def write_budget_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, seconds: float) -> dict:
    """Copy the members `seconds` of training buys from `run_dir` into `out_dir` (replaced as a
    whole; refused if it holds anything but an earlier budget run); return budget.json's content."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.resolve() == run_dir.resolve():
        raise EnsembleError(f"{out_dir}: the budget run must be a different folder from {run_dir}")
    if out_dir.exists() and not out_dir.is_dir():
        raise EnsembleError(f"{out_dir}: exists and is not a folder; choose another name for the budget run")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / BUDGET_FILE).exists():
        raise EnsembleError(f"{out_dir}: exists and is not a budget run (no {BUDGET_FILE}); choose another folder")
    caches = load_caches(run_dir)
    metas = run_metas(run_dir, caches["names"])
    names = caches["names"]
    acc = member_accuracy(caches["val_proba"], caches["val_y"])
    admitted, spent = budget_pool([names[i] for i in ranked_indices(acc, names)], metas, seconds)
    val = {n: float(acc[i]) for i, n in enumerate(names)}
    record = {"source": str(run_dir), "budget_s": seconds, "spent_s": round(spent, 1),
              "rule": "best validation accuracy first, each with its initialized_from ancestors, while the "
                      "summed wall_time_s (resumed runs scaled to all their epochs) fits the budget",
              "members": [{"name": n, "cost_s": round(member_cost(metas[n]), 1), "val_accuracy": val.get(n),
                           "has_cache": n in val} for n in admitted]}
    with atomic_dir(out_dir) as stage:
        for n in admitted:
            for suffix in MEMBER_SUFFIXES:
                src = run_dir / f"{n}{suffix}"
                if src.exists():
                    shutil.copyfile(src, stage / src.name)
        write_json(stage / BUDGET_FILE, record)
    return record
