"""The compiled inner loop of the subset search (numba): correct counts for every (high, low)
pair of member subsets, with per-sample bounds that settle a sample for all low subsets at once.

Scores are formed as the numpy engine forms them (one add of the two partial sums); recall then
multiplies by the reciprocal of the denominator where numpy divides, which can differ in the last
bit. Tests compare both engines and brute force on every subset.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_TOL = 1e-9   # bound margin: near-ties always take the exact evaluation
_EPS = 1e-7   # recall denominators are clipped here, as in combine()


@njit(cache=True, nogil=True)
def _exact(low, hrow, k, i, d_row, recall, out_row):
    """Add 1 to out_row[l] for every low subset l where sample i's true class k wins; d_row holds
    the reciprocal recall denominators (unused for additive methods)."""
    L, C = low.shape[1], low.shape[2]
    for l in range(L):
        best = low[i, l, k] + hrow[k]
        if recall:
            best = best * d_row[l, k]
        ok = 1
        for j in range(C):
            if j == k:
                continue
            v = low[i, l, j] + hrow[j]
            if recall:
                v = v * d_row[l, j]
            if v > best or (v == best and j < k):   # ties go to the lowest class index (np.argmax)
                ok = 0
                break
        out_row[l] += ok


@njit(parallel=True, cache=True)
def count_correct(low, a_high, ys, lo_min, lo_max, low_d, high_d, pmin, pmax, recall):
    """low (n, L, C): every subset sum of the low members, sample-major; a_high (Mh, n, C): the
    high members' contributions, summed per high subset h on the fly (in increasing member order,
    as the doubling does), so the 2^Mh high sums are never stored.
    Additive methods: lo_min/lo_max (n, C) bound the low part of the margin true - j.
    Recall: low_d (L, C), high_d (H, C) denominators; pmin/pmax (n, C) bound the low members'
    per-class probabilities (the mediant bound). Returns (H, L) correct counts."""
    n, L, C = low.shape
    mh = a_high.shape[0]
    H = 2 ** mh
    out = np.zeros((H, L), np.int64)
    for h in prange(H):
        high = np.zeros((n, C))
        for b in range(mh):
            if h >> b & 1:
                for i in range(n):
                    for c in range(C):
                        high[i, c] += a_high[b, i, c]
        out_row = np.zeros(L, np.int64)
        d_row = np.empty((L, C))
        lo_s = np.empty(C)
        hi_s = np.empty(C)
        if recall:
            for l in range(L):
                for c in range(C):
                    d = low_d[l, c] + high_d[h, c]
                    d_row[l, c] = 1.0 / (d if d > _EPS else _EPS)   # reciprocal: multiply, not divide
        always = 0
        for i in range(n):
            k = ys[i]
            hrow = high[i]
            settled = False
            if not recall:
                all_ok = True
                for j in range(C):
                    if j == k:
                        continue
                    g = hrow[k] - hrow[j]
                    if g + lo_max[i, j] < -_TOL:      # wrong for every low subset
                        settled = True
                        all_ok = False
                        break
                    if not g + lo_min[i, j] > _TOL:
                        all_ok = False
                if all_ok:
                    always += 1
                    settled = True
            else:
                # score_c = rho + DL / (DH + DL) * (rhoL - rho), with rho = NH/DH the high part's
                # weighted mean, rhoL within the low members' extreme probabilities and
                # DL <= DLfull, so the low part moves the score by at most w = DLfull / (DH + DLfull)
                # of the way towards those extremes.
                valid = True
                for c in range(C):
                    dh = high_d[h, c]
                    if dh <= 1e-6:
                        valid = False
                        break
                    rho = hrow[c] / dh
                    dlf = low_d[L - 1, c]
                    w = dlf / (dh + dlf)
                    lo_s[c] = rho + w * min(pmin[i, c] - rho, 0.0)
                    hi_s[c] = rho + w * max(pmax[i, c] - rho, 0.0)
                if valid:
                    all_ok = True
                    for j in range(C):
                        if j == k:
                            continue
                        if lo_s[j] > hi_s[k] + _TOL:
                            settled = True
                            all_ok = False
                            break
                        if not lo_s[k] > hi_s[j] + _TOL:
                            all_ok = False
                    if all_ok:
                        always += 1
                        settled = True
            if not settled:
                _exact(low, hrow, k, i, d_row, recall, out_row)
        for l in range(L):
            out[h, l] = out_row[l] + always
    return out
