"""Subset search over cached member predictions; models are never re-run.

Every searchable method is additive over members: the ensemble's class scores are a sum of
per-member contributions (mean: P; accuracy: a·P; geometric: log P; vote: one-hot + P/2M;
recall: r·P over a per-class denominator Σ r). So all 2^M subset sums are built by doubling
(S[mask | bit] = S[mask] + A[bit]) on two halves of the members, and each (high, low) pair
costs one add per score instead of a fresh average. Samples on which every member agrees are
decided for every subset and are counted once, not per subset.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import os

import numpy as np

from .combine import SEARCHABLE, Stacker, combine, fit_weights, member_accuracy, member_recall

EXHAUSTIVE_LIMIT = 2 ** 20   # subsets per method; larger zoos use greedy selection
LOW_BITS = 10
_EPS = 1e-7


def contributions(method: str, proba: np.ndarray, val_proba: np.ndarray, val_y: np.ndarray):
    """Per-member additive contributions (M, N, C) for `proba`, plus (M, C) denominators for recall.
    Weights always come from the validation predictions."""
    m = proba.shape[0]
    if method == "mean":
        return proba.astype(np.float32), None
    if method == "accuracy":
        return (member_accuracy(val_proba, val_y)[:, None, None] * proba).astype(np.float32), None
    if method == "geometric":
        return np.log(np.clip(proba, _EPS, 1.0)).astype(np.float32), None
    if method == "vote":
        onehot = np.eye(proba.shape[2], dtype=np.float32)[proba.argmax(axis=2)]
        return onehot + proba.astype(np.float32) / (2 * m), None
    if method == "recall":
        r = member_recall(val_proba, val_y, proba.shape[2])
        return (r[:, None, :] * proba).astype(np.float32), r.astype(np.float32)
    raise ValueError(f"method {method!r} is not searchable; searchable: {SEARCHABLE}")


def _decided(proba: np.ndarray, method: str, denom: np.ndarray | None) -> np.ndarray:
    """Samples whose prediction is the same for every subset (so they are counted only once)."""
    top = proba.argmax(axis=2)
    if method != "recall":
        return (top == top[0]).all(axis=0)  # unanimous argmax decides every non-negative combination
    # Recall scores are per-class weighted means: decided when the top class's lowest probability
    # beats every other class's highest one, and every member gives that class a weight.
    c = top[0]
    n = np.arange(proba.shape[1])
    lo = proba[:, n, c].min(axis=0)
    others = proba.copy()
    others[:, n, c] = -1
    hi = others.max(axis=(0, 2))
    return (lo > hi) & (denom[:, c] > 0).all(axis=0)


def _all_sums(a: np.ndarray) -> np.ndarray:
    """(k, ...) -> (2^k, ...): the sum over every subset, subset index = bit mask."""
    out = np.zeros((2 ** a.shape[0],) + a.shape[1:], dtype=a.dtype)
    for i in range(a.shape[0]):
        out[2 ** i:2 ** (i + 1)] = out[:2 ** i] + a[i]
    return out


def subset_correct(contrib: np.ndarray, denom: np.ndarray | None, y: np.ndarray, method: str = "mean",
                   proba: np.ndarray | None = None, threads: int | None = None) -> np.ndarray:
    """Correct-prediction counts for every subset mask 0..2^M-1 (mask 0 is meaningless).

    Ties follow np.argmax: the lowest class index wins.
    """
    m, n, c = contrib.shape
    decided = _decided(proba, method, denom) if proba is not None else np.zeros(n, bool)
    const = int((proba[0].argmax(axis=1)[decided] == y[decided]).sum()) if decided.any() else 0
    keep = np.flatnonzero(~decided)
    order = keep[np.argsort(y[keep], kind="stable")]
    ys = y[order]
    a = np.ascontiguousarray(contrib[:, order, :].transpose(0, 2, 1))   # (M, C, n) class-major
    bounds = np.searchsorted(ys, np.arange(c + 1))
    groups = [(k, bounds[k], bounds[k + 1]) for k in range(c) if bounds[k + 1] > bounds[k]]
    lo_bits = min(m, LOW_BITS)
    low, high = _all_sums(a[:lo_bits]), _all_sums(a[lo_bits:])
    if denom is not None:
        low_d, high_d = _all_sums(denom[:lo_bits]), _all_sums(denom[lo_bits:])
    out = np.empty((high.shape[0], low.shape[0]), dtype=np.int64)

    def run(rows: range) -> None:
        for h in rows:
            t = low + high[h]                                            # (2^l, C, n)
            if denom is not None:
                t /= np.maximum(low_d + high_d[h], _EPS)[:, :, None]
            count = np.zeros(low.shape[0], dtype=np.int64)
            for k, s, e in groups:
                true = t[:, k, s:e]
                ok = None
                for j in range(c):
                    if j == k:
                        continue
                    cmp = true > t[:, j, s:e] if j < k else true >= t[:, j, s:e]
                    ok = cmp if ok is None else np.logical_and(ok, cmp, out=ok)
                count += np.count_nonzero(ok, axis=1)
            out[h] = count + const

    threads = threads or min(os.cpu_count() or 1, 4)
    parts = [range(i, high.shape[0], threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, parts))
    return out.reshape(-1)


def _popcount(masks: np.ndarray) -> np.ndarray:
    return np.unpackbits(masks.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1).sum(axis=1)


@dataclass
class SearchResult:
    names: list[str]
    table: "object"                      # pandas DataFrame: method, members, size, val, test
    best: dict                           # method -> best row (dict)
    winner: dict                         # the overall choice
    search: str                          # "exhaustive" or "greedy"
    evaluated: dict = field(default_factory=dict)


def _row(method, members, names, val_acc, test_acc, extra=None) -> dict:
    return {"method": method, "members": "+".join(names[i] for i in members), "size": len(members),
            "val_accuracy": float(val_acc), "test_accuracy": float(test_acc), **(extra or {})}


def greedy_select(method: str, val_proba: np.ndarray, val_y: np.ndarray, steps: int | None = None):
    """Caruana et al. (2004): forward selection with replacement; the best point of the trajectory.
    Returns (member multiplicities (M,), val accuracy)."""
    a, d = contributions(method, val_proba, val_proba, val_y)
    m = a.shape[0]
    steps = steps or max(2 * m, 25)
    counts = np.zeros(m, dtype=np.int64)
    s = np.zeros(a.shape[1:], np.float32)
    sd = np.zeros(a.shape[2], np.float32) if d is not None else None
    best = (-1.0, counts.copy())
    for _ in range(steps):
        cand = s[None] + a
        if d is not None:
            cand = cand / np.maximum(sd[None] + d, _EPS)[:, None, :]
        acc = (cand.argmax(axis=2) == val_y[None]).mean(axis=1)
        i = int(np.argmax(acc))
        counts[i] += 1
        s += a[i]
        if d is not None:
            sd += d[i]
        if acc[i] > best[0] + 1e-12:
            best = (float(acc[i]), counts.copy())
    return best[1], best[0]


def search_subsets(names: list[str], val_proba: np.ndarray, val_y: np.ndarray, test_proba: np.ndarray,
                   test_y: np.ndarray, methods=("mean", "accuracy", "recall"), min_size: int = 1,
                   max_size: int | None = None, top: int = 2000, stacking: bool = True) -> SearchResult:
    """Rank every subset (size in [min_size, max_size]) of every method by validation accuracy.

    Ties go to the smaller ensemble. Test accuracy is reported, never used for selection.
    """
    import pandas as pd

    m = len(names)
    max_size = max_size or m
    if not 1 <= min_size <= max_size <= m:
        raise ValueError(f"need 1 <= min_size <= max_size <= {m}, got {min_size}, {max_size}")
    n_val, n_test = len(val_y), len(test_y)
    rows, evaluated = [], {}
    exhaustive = 2 ** m - 1 <= EXHAUSTIVE_LIMIT
    for method in methods:
        if method == "stacking":
            continue
        if exhaustive:
            a, d = contributions(method, val_proba, val_proba, val_y)
            correct = subset_correct(a, d, val_y, method, val_proba)
            masks = np.arange(1, 2 ** m, dtype=np.int64)
            sizes = _popcount(masks)
            sel = (sizes >= min_size) & (sizes <= max_size)
            masks, sizes, acc = masks[sel], sizes[sel], correct[1:][sel] / n_val
            evaluated[method] = int(masks.size)
            order = np.lexsort((masks, sizes, -acc))[:top]   # best val first, then smaller
            if masks.size <= 4096:   # small zoo: test accuracy of every subset, same engine
                ta, td = contributions(method, test_proba, val_proba, val_y)
                test_correct = subset_correct(ta, td, test_y, method, None)
                test_acc = test_correct[masks[order]] / n_test
            else:
                test_acc = [_subset_test_accuracy(method, int(mask), val_proba, val_y, test_proba, test_y)
                            for mask in masks[order]]
            for mask, va, tacc in zip(masks[order], acc[order], test_acc):
                members = [i for i in range(m) if mask >> i & 1]
                rows.append(_row(method, members, names, va, tacc))
        else:
            counts, va = greedy_select(method, val_proba, val_y)
            members = [i for i in range(m) if counts[i]]
            idx = np.repeat(np.arange(m), counts)
            w = fit_weights(method, val_proba[idx], val_y)
            tacc = (combine(test_proba[idx], method, w).argmax(1) == test_y).mean()
            rows.append(_row(method, members, names, va, tacc,
                             {"multiplicity": "+".join(str(int(counts[i])) for i in members)}))
            evaluated[method] = 1
    table = pd.DataFrame(rows)
    if stacking and "stacking" in methods:
        seen = {"+".join(names)}
        cands = [list(range(m))] + [[names.index(x) for x in table[table.method == mt].iloc[0]["members"].split("+")]
                                     for mt in table.method.unique()]
        st_rows = []
        for members in cands:
            key = "+".join(names[i] for i in members)
            if key in seen and members != list(range(m)):
                continue
            seen.add(key)
            st = Stacker()
            va = st.cross_val_accuracy(val_proba[members], val_y)
            tacc = (st.fit(val_proba[members], val_y).predict_proba(test_proba[members]).argmax(1) == test_y).mean()
            st_rows.append(_row("stacking", members, names, va, tacc))
        table = pd.concat([table, pd.DataFrame(st_rows)], ignore_index=True)
        evaluated["stacking"] = len(st_rows)
    table = table.sort_values(["val_accuracy", "size"], ascending=[False, True], kind="stable").reset_index(drop=True)
    best = {mt: table[table.method == mt].iloc[0].to_dict() for mt in table.method.unique()}
    return SearchResult(names, table, best, table.iloc[0].to_dict(), "exhaustive" if exhaustive else "greedy",
                        evaluated)


def _subset_test_accuracy(method, mask, val_proba, val_y, test_proba, test_y) -> float:
    idx = [i for i in range(val_proba.shape[0]) if mask >> i & 1]
    w = fit_weights(method, val_proba[idx], val_y)
    return float((combine(test_proba[idx], method, w).argmax(1) == test_y).mean())


def brute_force_accuracy(method: str, members: list[int], proba: np.ndarray, y: np.ndarray,
                         val_proba: np.ndarray, val_y: np.ndarray) -> float:
    """Reference: recombine the member arrays for one subset (what the naive search does)."""
    w = fit_weights(method, val_proba[members], val_y)
    return float((combine(proba[members], method, w).argmax(1) == y).mean())
