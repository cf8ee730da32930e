"""Subset search speed: 11 members x 3 methods (2,047 subsets each) and 20 members x 3 methods
(1,048,575 subsets each) on 3,589 validation images, against the naive loop that recombines the
member arrays with np.average for every subset. Synthetic member probabilities with FER-like
agreement; the naive loop is timed on a sample of subsets and extrapolated. `--numpy` also times
the numpy engine at 20 members (slow)."""
from __future__ import annotations

import sys
import time

import numpy as np

from _common import emit
from fer_ensemble.ensemble.combine import fit_weights
from fer_ensemble.ensemble.search import contributions, subset_correct

METHODS = ("mean", "accuracy", "recall")


def members(m, n=3589, c=7, seed=0):
    """Members right ~63% of the time that all agree on ~30% of the images (like a CNN zoo)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(c, n, p=[.14, .015, .14, .25, .17, .11, .175])
    shared = rng.normal(size=(n, c)) * 1.2 + 2.2 * np.eye(c)[y]
    logits = shared[None] + rng.normal(size=(m, n, c)) * 0.6
    p = np.exp(logits)
    return (p / p.sum(2, keepdims=True)).astype(np.float32), y


def naive(p, y, masks):
    correct = []
    for mask in masks:
        idx = [i for i in range(p.shape[0]) if mask >> i & 1]
        for method in METHODS:
            w = fit_weights(method, p[idx], y)
            if method == "recall":
                w = w / np.maximum(w.sum(0, keepdims=True), 1e-7)
                s = (p[idx] * w[:, None, :]).sum(0)
            else:
                s = np.average(p[idx], axis=0, weights=w)
            correct.append(int((s.argmax(1) == y).sum()))
    return correct


def ours(p, y, engine):
    times = {}
    for method in METHODS:
        a, d = contributions(method, p, p, y)
        t = time.perf_counter()
        subset_correct(a, d, y, method, p, engine=engine)
        times[method] = round(time.perf_counter() - t, 3)
    return times


def main():
    """Engines side by side in one run: the default ("auto": numpy below 9 members, the compiled
    numba kernel above), the numpy engine alone, and the naive np.average loop (extrapolated)."""
    out = {}
    sizes = [11, 20] if "--quick" not in sys.argv else [11, 14]
    p, y = members(9)
    ours(p, y, "numba")                 # compile (or load the cached kernel) outside the timings
    for m in sizes:
        p, y = members(m)
        t = time.perf_counter()
        per_method = ours(p, y, "auto")
        t_ours = time.perf_counter() - t
        row = {"subsets_per_method": 2 ** m - 1, "ours_s": round(t_ours, 3), "ours_per_method_s": per_method}
        if m <= 11 or "--numpy" in sys.argv:   # the numpy engine at 20 members takes ~5 minutes
            t = time.perf_counter()
            ours(p, y, "numpy")
            row["numpy_engine_s"] = round(time.perf_counter() - t, 3)
        sample = np.random.default_rng(1).integers(1, 2 ** m, 300)
        t = time.perf_counter()
        naive(p, y, sample)
        t_naive = (time.perf_counter() - t) / len(sample) * (2 ** m - 1)
        agree = float((p.argmax(2) == p.argmax(2)[0]).all(0).mean())
        row.update({"naive_np_average_s_extrapolated": round(t_naive, 1), "speedup_vs_naive": round(t_naive / t_ours, 1),
                    "members_agree_fraction": round(agree, 3)})
        out[f"{m}_members_3_methods"] = row
    emit("search", out)


if __name__ == "__main__":
    main()
