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

from .methods import DEFAULT_METHODS, SEARCHABLE, STACKING, Stacker, combine, fit_weights, get_method, is_stacked, lookup

EXHAUSTIVE_LIMIT = 2 ** 20   # default subsets per method; larger zoos use greedy selection (--exhaustive-limit)
LOW_BITS = {"pruned": 6, "recall": 8}  # measured best split sizes (bench_search.py)
NUMBA_LOW_BITS = 7                      # low subsets settled by one bound check in the compiled kernel
_EPS = 1e-7
_TOL = 1e-9   # bound margin: near-ties always take the full evaluation
DTYPE = np.float64  # float32 sums in different orders flipped rare near-ties between splits


def contributions(method: str, proba: np.ndarray, val_proba: np.ndarray, val_y: np.ndarray):
    """Per-member additive contributions (M, N, C) for `proba`, plus (M, C) denominators for recall.
    Weights always come from the validation predictions."""
    spec = lookup(method)
    if spec is None or not spec.searchable:
        raise ValueError(f"method {method!r} is not searchable; searchable: {SEARCHABLE}")
    return spec.contributions(proba.astype(DTYPE), val_proba, val_y)


def _decided(proba: np.ndarray, method: str, denom: np.ndarray | None) -> np.ndarray:
    """Samples whose prediction is the same for every subset (so they are counted only once)."""
    top = proba.argmax(axis=2)
    if not get_method(method).normalised:
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


def _numba_available() -> bool:
    try:
        from . import _kernel  # noqa: F401
    except ImportError:
        return False
    return True


def _count_wins(t: np.ndarray, grp, ok: np.ndarray, cmp: np.ndarray) -> np.ndarray:
    """Per subset row of scores `t` (S, C, n), how many samples' true class wins; `grp` lists
    (class, start, end) runs of samples sorted by true class; `ok`, `cmp` are scratch buffers."""
    c = t.shape[1]
    count = np.zeros(t.shape[0], dtype=np.int64)
    for k, s, e in grp:
        true = t[:, k, s:e]
        o, c_ = ok[:, :e - s], cmp[:, :e - s]
        o.fill(True)
        for j in range(c):
            if j == k:
                continue
            (np.greater if j < k else np.greater_equal)(true, t[:, j, s:e], out=c_)
            np.logical_and(o, c_, out=o)
        count += np.count_nonzero(o, axis=1)
    return count


def _low_margin_bounds(a: np.ndarray, ys: np.ndarray, lo_bits: int):
    """Exact pruning for additive scores (all but recall): with margins g_j = score_true - score_j,
    every low subset's margin lies in [sum of negative parts, sum of positive parts] of the low
    members' margins. Returns those bounds (C, n) and the (C, n) mask of classes other than the true one."""
    true_rows = ys[None, :]
    a_true = np.take_along_axis(a, np.broadcast_to(true_rows[None], (a.shape[0], 1, ys.size)), axis=1)
    margins = a_true - a                                             # (M, C, n), 0 on the true class
    lo_min = np.minimum(margins[:lo_bits], 0).sum(axis=0)            # (C, n)
    lo_max = np.maximum(margins[:lo_bits], 0).sum(axis=0)
    other = np.arange(a.shape[1])[:, None] != ys[None, :]           # (C, n)
    return lo_min, lo_max, other


def subset_correct(contrib: np.ndarray, denom: np.ndarray | None, y: np.ndarray, method: str = "mean",
                   proba: np.ndarray | None = None, threads: int | None = None,
                   engine: str = "auto") -> np.ndarray:
    """Correct-prediction counts for every subset mask 0..2^M-1 (mask 0 is meaningless).

    Ties follow np.argmax: the lowest class index wins. `engine`: "numba" (compiled kernel),
    "numpy", or "auto" (numba when installed and the zoo has more than 8 members; below that the
    compile-free numpy engine is faster).
    """
    if engine == "auto":
        engine = "numba" if contrib.shape[0] > 8 and _numba_available() else "numpy"
    if engine == "numba":
        return _subset_correct_numba(contrib, denom, y, method, proba)
    if engine != "numpy":
        raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")
    return _subset_correct_numpy(contrib, denom, y, method, proba, threads)


def _subset_correct_numpy(contrib, denom, y, method, proba, threads) -> np.ndarray:
    """`subset_correct` in numpy: all low-subset sums at once per high subset, over threads."""
    m, n, c = contrib.shape
    decided = _decided(proba, method, denom) if proba is not None else np.zeros(n, bool)
    const = int((proba[0].argmax(axis=1)[decided] == y[decided]).sum()) if decided.any() else 0
    keep = np.flatnonzero(~decided)
    order = keep[np.argsort(y[keep], kind="stable")]
    ys = y[order]
    a = np.ascontiguousarray(contrib[:, order, :].transpose(0, 2, 1))   # (M, C, n) class-major
    bounds = np.searchsorted(ys, np.arange(c + 1))
    groups = [(k, bounds[k], bounds[k + 1]) for k in range(c) if bounds[k + 1] > bounds[k]]
    lo_bits = min(m, LOW_BITS["recall" if denom is not None else "pruned"])
    low, high = _all_sums(a[:lo_bits]), _all_sums(a[lo_bits:])
    if denom is not None:
        low_d, high_d = _all_sums(denom[:lo_bits]), _all_sums(denom[lo_bits:])
    out = np.empty((high.shape[0], low.shape[0]), dtype=np.int64)

    # A sample whose high margin plus the low members' margin range stays > 0 for every j is right
    # for all 2^l low subsets; one with some j below 0 for all of them is wrong for all.
    lo_min, lo_max, other = _low_margin_bounds(a, ys, lo_bits) if denom is None and ys.size else (None,) * 3

    def run(rows: range) -> None:
        # Buffers are allocated once per thread: fresh arrays per subset block cost page faults.
        t = np.empty_like(low) if lo_min is None else None               # (2^l, C, n); unpruned path only
        d = np.empty(low.shape[:2], dtype=low.dtype) if denom is not None else None
        ok = np.empty((low.shape[0], max((e - s for _, s, e in groups), default=0)), dtype=bool)
        cmp = np.empty_like(ok)
        for h in rows:
            if lo_min is not None:
                hh = high[h]                                             # (C, n)
                hm = np.take_along_axis(hh, ys[None, :], axis=0) - hh     # high margins
                always = ((hm + lo_min > _TOL) | ~other).all(axis=0)
                never = ((hm + lo_max < -_TOL) & other).any(axis=0)
                amb = np.flatnonzero(~always & ~never)
                base = int(always.sum())
                if amb.size == 0:
                    out[h] = base + const
                    continue
                ya = ys[amb]
                b = np.searchsorted(ya, np.arange(c + 1))
                grp = [(k, b[k], b[k + 1]) for k in range(c) if b[k + 1] > b[k]]
                ta = low[:, :, amb] + hh[:, amb]
                out[h] = _count_wins(ta, grp, ok, cmp) + base + const
                continue
            np.add(low, high[h], out=t)
            if denom is not None:
                np.add(low_d, high_d[h], out=d)
                np.maximum(d, _EPS, out=d)
                t /= d[:, :, None]
            out[h] = _count_wins(t, groups, ok, cmp) + const

    threads = threads or min(os.cpu_count() or 1, 4)
    parts = [range(i, high.shape[0], threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, parts))
    return out.reshape(-1)


def _subset_correct_numba(contrib, denom, y, method, proba) -> np.ndarray:
    from ._kernel import count_correct

    m, n, c = contrib.shape
    decided = _decided(proba, method, denom) if proba is not None else np.zeros(n, bool)
    const = int((proba[0].argmax(axis=1)[decided] == y[decided]).sum()) if decided.any() else 0
    keep = np.flatnonzero(~decided)
    a = np.ascontiguousarray(contrib[:, keep, :], dtype=DTYPE)          # (M, n, C)
    ys = y[keep].astype(np.int64)
    lo = min(m, NUMBA_LOW_BITS)
    low = np.ascontiguousarray(_all_sums(a[:lo]).transpose(1, 0, 2))  # (n, 2^lo, C)
    a_high = np.ascontiguousarray(a[lo:])
    if denom is None:
        g = np.take_along_axis(a[:lo], ys[None, :, None], axis=2) - a[:lo]   # low members' margins
        lo_min, lo_max = np.minimum(g, 0).sum(axis=0), np.maximum(g, 0).sum(axis=0)
        low_d = high_d = pmin = pmax = np.zeros((1, c))
    else:
        lo_min = lo_max = np.zeros((1, c))
        low_d, high_d = _all_sums(denom[:lo].astype(DTYPE)), _all_sums(denom[lo:].astype(DTYPE))
        weighted = denom[:lo, None, :] > 0                                # members that count for a class
        if proba is not None:
            p = proba[:lo][:, keep, :].astype(DTYPE)
        else:   # recall contributions are recall * probability: recover the probabilities
            p = np.divide(a[:lo], denom[:lo, None, :], out=np.zeros_like(a[:lo]), where=weighted)
        pmin = np.where(weighted, p, 1e30).min(axis=0)
        pmax = np.where(weighted, p, -1e30).max(axis=0)
    out = count_correct(low, a_high, ys, lo_min, lo_max, low_d, high_d, pmin, pmax, denom is not None)
    return out.reshape(-1) + const


def _popcount(masks: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):   # numpy >= 2.0
        return np.bitwise_count(masks).astype(np.int64)
    # bit by bit: unpackbits would need 32 bytes per mask (over 500 MB at 2^24 subsets)
    out = np.zeros(masks.shape, dtype=np.int64)
    for i in range(int(masks.max()).bit_length() if masks.size else 0):
        out += (masks >> i) & 1
    return out


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
    s = np.zeros(a.shape[1:], DTYPE)
    sd = np.zeros(a.shape[2], DTYPE) if d is not None else None
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
                   test_y: np.ndarray, methods=DEFAULT_METHODS, min_size: int = 1,
                   max_size: int | None = None, top: int = 2000, stacking: bool = True,
                   exhaustive_limit: int | None = None) -> SearchResult:
    """Rank every subset (size in [min_size, max_size]) of every method by validation accuracy.

    Ties go to the smaller ensemble. Test accuracy is reported, never used for selection. Zoos with
    more than `exhaustive_limit` subsets (default EXHAUSTIVE_LIMIT) get greedy forward selection;
    the exhaustive cost grows as 2^M, whatever the size bounds.
    """
    import pandas as pd

    m = len(names)
    max_size = m if max_size is None else max_size   # 0 is a size to refuse, not "all"
    if not 1 <= min_size <= max_size <= m:
        raise ValueError(f"need 1 <= min_size <= max_size <= {m}, got {min_size}, {max_size}")
    rows, evaluated = [], {}
    limit = EXHAUSTIVE_LIMIT if exhaustive_limit is None else exhaustive_limit
    if limit < 0:
        raise ValueError(f"exhaustive_limit must be >= 0, got {limit}")
    exhaustive = 2 ** m - 1 <= limit
    for method in methods:
        if is_stacked(method):   # fitted on the candidates below, not searched over subsets
            continue
        if exhaustive:
            new, evaluated[method] = _exhaustive_rows(method, names, val_proba, val_y, test_proba, test_y,
                                                      min_size, max_size, top)
        else:
            new, evaluated[method] = _greedy_rows(method, names, val_proba, val_y, test_proba, test_y), 1
        rows += new
    table = pd.DataFrame(rows)
    if stacking and STACKING in methods:
        st_rows = _stacking_rows(table, names, val_proba, val_y, test_proba, test_y)
        table = pd.concat([table, pd.DataFrame(st_rows)], ignore_index=True)
        evaluated[STACKING] = len(st_rows)
    table = table.sort_values(["val_accuracy", "size"], ascending=[False, True], kind="stable").reset_index(drop=True)
    best = {mt: table[table.method == mt].iloc[0].to_dict() for mt in table.method.unique()}
    return SearchResult(names, table, best, table.iloc[0].to_dict(), "exhaustive" if exhaustive else "greedy",
                        evaluated)


def _exhaustive_rows(method, names, val_proba, val_y, test_proba, test_y, min_size, max_size,
                     top) -> tuple[list[dict], int]:
    """Every subset of `method` within the size bounds, the `top` best by validation accuracy as
    table rows; and how many subsets were evaluated."""
    m, n_val, n_test = len(names), len(val_y), len(test_y)
    a, d = contributions(method, val_proba, val_proba, val_y)
    correct = subset_correct(a, d, val_y, method, val_proba)
    masks = np.arange(1, 2 ** m, dtype=np.int64)
    sizes = _popcount(masks)
    sel = (sizes >= min_size) & (sizes <= max_size)
    masks, sizes, acc = masks[sel], sizes[sel], correct[1:][sel] / n_val
    order = np.lexsort((masks, sizes, -acc))[:top]   # best val first, then smaller
    if masks.size <= 4096:   # small zoo: test accuracy of every subset, same engine
        ta, td = contributions(method, test_proba, val_proba, val_y)
        test_correct = subset_correct(ta, td, test_y, method, None)
        test_acc = test_correct[masks[order]] / n_test
    else:
        test_acc = [_subset_test_accuracy(method, int(mask), val_proba, val_y, test_proba, test_y)
                    for mask in masks[order]]
    rows = [_row(method, [i for i in range(m) if mask >> i & 1], names, va, tacc)
            for mask, va, tacc in zip(masks[order], acc[order], test_acc)]
    return rows, int(masks.size)


def _greedy_rows(method, names, val_proba, val_y, test_proba, test_y) -> list[dict]:
    """Greedy forward selection's pick for `method`, with how often it picked each member."""
    m = len(names)
    counts, va = greedy_select(method, val_proba, val_y)
    members = [i for i in range(m) if counts[i]]
    idx = np.repeat(np.arange(m), counts)
    w = fit_weights(method, val_proba[idx], val_y)
    tacc = (combine(test_proba[idx], method, w).argmax(1) == test_y).mean()
    return [_row(method, members, names, va, tacc, {"multiplicity": "+".join(str(int(counts[i])) for i in members)})]


def _stacking_rows(table, names, val_proba, val_y, test_proba, test_y) -> list[dict]:
    """Stacking on all members and on each searched method's best subset (each set once), scored
    by out-of-fold validation accuracy."""
    m = len(names)
    seen = {"+".join(names)}
    searched = table.method.unique() if len(table) else []   # stacking alone: only all members
    cands = [list(range(m))] + [[names.index(x) for x in table[table.method == mt].iloc[0]["members"].split("+")]
                                 for mt in searched]
    rows = []
    for members in cands:
        key = "+".join(names[i] for i in members)
        if key in seen and members != list(range(m)):
            continue
        seen.add(key)
        st = Stacker()
        va = st.cross_val_accuracy(val_proba[members], val_y)
        tacc = (st.fit(val_proba[members], val_y).predict_proba(test_proba[members]).argmax(1) == test_y).mean()
        rows.append(_row(STACKING, members, names, va, tacc))
    return rows


def _subset_test_accuracy(method, mask, val_proba, val_y, test_proba, test_y) -> float:
    idx = [i for i in range(val_proba.shape[0]) if mask >> i & 1]
    w = fit_weights(method, val_proba[idx], val_y)
    return float((combine(test_proba[idx], method, w).argmax(1) == test_y).mean())


def brute_force_accuracy(method: str, members: list[int], proba: np.ndarray, y: np.ndarray,
                         val_proba: np.ndarray, val_y: np.ndarray) -> float:
    """Reference: recombine the member arrays for one subset (what the naive search does)."""
    w = fit_weights(method, val_proba[members], val_y)
    return float((combine(proba[members], method, w).argmax(1) == y).mean())
