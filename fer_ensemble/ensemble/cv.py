"""How well does a way of choosing an ensemble do on faces it did not choose on?

A search over millions of subsets picks the one that is best on the validation split, so its
validation accuracy is biased upward by the choice itself. `cross_validate` measures each
*procedure* (the subset search, greedy selection, the mean of all candidates, stacking, the single
best member) out of fold: the validation split is cut into stratified folds, the procedure runs
on all folds but one (its own top-member cut included), and its pick is scored on the fold it
never saw. Test predictions play no part. `choose_procedure` then takes the procedure with the
best out-of-fold accuracy, so even the way of choosing is chosen on the validation split alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .methods import DEFAULT_METHODS, SEARCHABLE, STACKING, Stacker, fit_weights, get_method, member_accuracy, subset_methods
from .search import search_subsets

PROCEDURES = ("search", "greedy", "all", "stacking", "best")   # listed order breaks ties


@dataclass
class Pick:
    """One procedure's ensemble: indices into the member pool, stored as ensemble.json stores it."""

    procedure: str
    method: str
    members: list[int]
    weights: np.ndarray | None = None    # multiplicities folded in (greedy selection repeats members)
    counts: list[int] | None = None      # greedy selection: how often each member was picked
    stacking: dict | None = None
    fit_accuracy: float = float("nan")   # on the samples it was chosen on (optimistic)

    def proba(self, pool_proba: np.ndarray) -> np.ndarray:
        """(N, C) ensemble probabilities from the whole pool's (M, N, C) probabilities."""
        return get_method(self.method).predict(pool_proba[self.members], self.weights, self.stacking)


def ranked_indices(acc: np.ndarray, names: list[str]) -> list[int]:
    """Members best first by validation accuracy (ties: earlier name first)."""
    return sorted(range(len(names)), key=lambda i: (-acc[i], names[i]))


def top_indices(val_proba: np.ndarray, val_y: np.ndarray, names: list[str], k: int | None) -> list[int]:
    """The k members best on validation (ties: earlier name first), in pool order; all when k is None."""
    m = len(names)
    if k is None or k >= m:
        return list(range(m))
    if k < 1:
        raise ValueError(f"top_members must be >= 1, got {k}")
    return sorted(ranked_indices(member_accuracy(val_proba, val_y), names)[:k])


def stored_weights(method: str, proba: np.ndarray, y: np.ndarray, counts: np.ndarray | None = None):
    """Weights as ensemble.json stores them; a member picked n times counts n times (for mean,
    the weights are the multiplicities themselves)."""
    w = fit_weights(method, proba, y)
    if counts is None or np.all(counts == 1):
        return w
    counts = np.asarray(counts, dtype=np.float64)
    repeats = get_method(method).repeats
    if repeats == "counts":
        return counts
    if repeats == "scale":
        return w * (counts if w.ndim == 1 else counts[:, None])
    storing = ", ".join(m for m in SEARCHABLE if get_method(m).repeats)
    raise ValueError(f"greedy selection repeated a member; {method!r} cannot store repeats "
                     f"(use {' or '.join(storing.rsplit(', ', 1))}, or raise --exhaustive-limit)")


def row_counts(row: dict) -> list[int] | None:
    """How often a greedy search table row picked each member ("multiplicity"); None for other rows."""
    counts = row.get("multiplicity")
    return [int(c) for c in counts.split("+")] if isinstance(counts, str) else None


def row_weights(row: dict, proba: np.ndarray, y: np.ndarray):
    """Stored weights of a search table row's ensemble, from its members' validation `proba`."""
    counts = row_counts(row)
    return stored_weights(row["method"], proba, y, None if counts is None else np.array(counts))


def pick_from_row(procedure: str, row: dict, names: list[str], val_proba: np.ndarray, val_y: np.ndarray) -> Pick:
    """The pick a searched (non-stacking) table row describes, as indices into the pool `names`."""
    members = [names.index(n) for n in row["members"].split("+")]
    pick = Pick(procedure, row["method"], members, row_weights(row, val_proba[members], val_y), row_counts(row))
    pick.fit_accuracy = float((pick.proba(val_proba).argmax(1) == val_y).mean())
    return pick


def fit_procedure(procedure: str, names: list[str], val_proba: np.ndarray, val_y: np.ndarray,
                  methods=DEFAULT_METHODS, top_members: int | None = None,
                  exhaustive_limit: int | None = None, min_size: int = 1, max_size: int | None = None) -> Pick:
    """Run one procedure on (val_proba, val_y) and return its pick."""
    cand = top_indices(val_proba, val_y, names, top_members)
    vp = val_proba[cand]
    acc = member_accuracy(vp, val_y)
    if procedure == "best":
        pick = Pick(procedure, "mean", [cand[int(np.argmax(acc))]])   # argmax: first of equals, by name
    elif procedure == "all":
        pick = Pick(procedure, "mean", cand)
    elif procedure == "stacking":
        st = Stacker().fit(vp, val_y)
        pick = Pick(procedure, STACKING, cand, stacking=st.params())
    elif procedure in ("search", "greedy"):
        methods = tuple(subset_methods(methods))
        if not methods:
            raise ValueError(f"procedure {procedure!r} needs a searchable method (mean, accuracy, recall, "
                             "vote or geometric)")
        sub = [names[i] for i in cand]
        limit = 0 if procedure == "greedy" else exhaustive_limit
        # The fit samples stand in for the test split: only the chosen row is kept (top=1).
        res = search_subsets(sub, vp, val_y, vp, val_y, methods=methods,
                             min_size=min_size, max_size=max_size, top=1, stacking=False, exhaustive_limit=limit)
        return pick_from_row(procedure, res.winner, names, val_proba, val_y)
    else:
        raise ValueError(f"unknown procedure {procedure!r}; expected one of {PROCEDURES}")
    pick.fit_accuracy = float((pick.proba(val_proba).argmax(1) == val_y).mean())
    return pick


def check_folds(y: np.ndarray, folds: int, class_names: list[str] | None = None) -> None:
    """ValueError unless `folds` stratified folds of labels `y` are possible (2 <= folds <= the
    smallest class's count)."""
    counts = np.bincount(y)
    if folds < 2:
        raise ValueError(f"cv folds must be >= 2, got {folds}")
    smallest = int(np.flatnonzero(counts == counts[counts > 0].min())[0])
    if counts[smallest] < folds:
        label = class_names[smallest] if class_names is not None and smallest < len(class_names) else smallest
        raise ValueError(f"cv folds ({folds}) exceed the smallest class's validation count "
                         f"({counts[smallest]} images of {label!r})")


def _folds(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import StratifiedKFold

    check_folds(y, folds)
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return [held for _, held in skf.split(np.zeros(len(y)), y)]


def cross_validate(names: list[str], val_proba: np.ndarray, val_y: np.ndarray, procedures=PROCEDURES,
                   folds: int = 5, seed: int = 0, progress=None, **options) -> dict:
    """Out-of-fold accuracy of each procedure on the validation split (test predictions unused).

    Returns {"folds", "seed", "procedures": {name: {"out_of_fold_accuracy", "fold_accuracy",
    "fold_picks"}}}; `options` go to `fit_procedure` (methods, top_members, exhaustive_limit, sizes).
    """
    bad = [p for p in procedures if p not in PROCEDURES]
    if bad:
        raise ValueError(f"unknown procedure(s) {bad}; expected some of {PROCEDURES}")
    held_out = _folds(val_y, folds, seed)
    out = {}
    for proc in procedures:
        correct, fold_acc, picks = 0, [], []
        for k, held in enumerate(held_out):
            fit = np.setdiff1d(np.arange(len(val_y)), held)
            pick = fit_procedure(proc, names, val_proba[:, fit], val_y[fit], **options)
            right = pick.proba(val_proba[:, held]).argmax(1) == val_y[held]
            correct += int(right.sum())
            fold_acc.append(float(right.mean()))
            picks.append({"method": pick.method, "members": "+".join(names[i] for i in pick.members)})
            if progress:
                progress(proc, k, float(right.mean()))
        out[proc] = {"out_of_fold_accuracy": correct / len(val_y), "fold_accuracy": fold_acc,
                     "fold_picks": picks}
    return {"folds": folds, "seed": seed, "procedures": out}


def choose_procedure(cv: dict) -> str:
    """The procedure with the best out-of-fold accuracy; ties go to the one listed first."""
    procs = cv["procedures"]
    order = [p for p in PROCEDURES if p in procs]
    return max(order, key=lambda p: (procs[p]["out_of_fold_accuracy"], -order.index(p)))
