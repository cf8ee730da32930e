"""Search a run directory: read every NAME.preds.npz cache, rank subsets, write search.csv and
ensemble.json, and print the leaderboard with per-class tables (the study's Tables 2 and 3)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import EnsembleError
from .combine import Stacker, combine, fit_weights, member_accuracy
from .ensemble import write_manifest
from .search import SearchResult, search_subsets


def load_caches(run_dir: str | os.PathLike) -> dict:
    """Stack the members' cached validation/test probabilities; checks labels and classes agree."""
    run_dir = Path(run_dir)
    files = sorted(p for p in run_dir.glob("*.preds.npz") if not p.name.startswith("."))
    if not files:
        raise EnsembleError(f"{run_dir}: no NAME.preds.npz prediction caches (train the zoo first)")
    names, val, test, ref = [], [], [], None
    for f in files:
        try:
            z = np.load(f, allow_pickle=False)
            item = {k: z[k] for k in ("val_proba", "val_y", "test_proba", "test_y", "class_names")}
        except (OSError, KeyError, ValueError) as e:
            raise EnsembleError(f"{f}: not a valid prediction cache ({e})") from None
        if ref is None:
            ref = item
        for key in ("val_y", "test_y", "class_names"):
            if not np.array_equal(item[key], ref[key]):
                raise EnsembleError(f"{f}: {key} differs from {files[0].name}; members were evaluated on "
                                    "different data or classes")
        names.append(f.name[:-len(".preds.npz")])
        val.append(item["val_proba"])
        test.append(item["test_proba"])
    return {"names": names, "val_proba": np.stack(val), "test_proba": np.stack(test), "val_y": ref["val_y"],
            "test_y": ref["test_y"], "class_names": [str(c) for c in ref["class_names"]]}


def keep_top_members(caches: dict, k: int) -> dict:
    """Keep the k members with the highest validation accuracy (ties: earlier name first).

    A validation-only rule that bounds the exhaustive search (2^M subsets) as zoos grow; test
    predictions play no part in it.
    """
    m = len(caches["names"])
    if k < 1:
        raise ValueError(f"top_members must be >= 1, got {k}")
    if k >= m:
        return caches
    acc = member_accuracy(caches["val_proba"], caches["val_y"])
    keep = sorted(sorted(range(m), key=lambda i: (-acc[i], caches["names"][i]))[:k])
    return {**caches, "names": [caches["names"][i] for i in keep],
            "val_proba": caches["val_proba"][keep], "test_proba": caches["test_proba"][keep]}


def per_class_accuracy(proba: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    pred = proba.argmax(axis=1)
    return np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(n)])


def search_run(run_dir: str | os.PathLike, methods=("mean", "accuracy", "recall"), min_size: int = 1,
               max_size: int | None = None, stacking: bool = False,
               exhaustive_limit: int | None = None,
               top_members: int | None = None) -> tuple[SearchResult, str]:
    """Search `run_dir`'s caches; write search.csv and ensemble.json; return (result, report text).

    `top_members=K` searches only the K members with the best validation accuracy.
    """
    run_dir = Path(run_dir)
    c = load_caches(run_dir)
    pool = len(c["names"])
    if top_members is not None:
        try:
            c = keep_top_members(c, top_members)
        except ValueError as e:
            raise EnsembleError(f"{run_dir}: {e}") from None
    names, vp, tp, vy, ty, cls = (c["names"], c["val_proba"], c["test_proba"], c["val_y"], c["test_y"],
                                  c["class_names"])
    methods = tuple(methods) + (("stacking",) if stacking and "stacking" not in methods else ())
    try:
        result = search_subsets(names, vp, vy, tp, ty, methods=methods, min_size=min_size, max_size=max_size,
                                exhaustive_limit=exhaustive_limit)
    except ValueError as e:   # bad size bounds or limit: name the run, no traceback
        raise EnsembleError(f"{run_dir}: {e}") from None
    with atomic_path(run_dir / "search.csv") as tmp:
        result.table.to_csv(tmp, index=False)
    win = result.winner
    members = win["members"].split("+")
    idx = [names.index(n) for n in members]
    st = None
    weights = None
    if win["method"] == "stacking":
        st = Stacker().fit(vp[idx], vy).params()
    else:
        weights = fit_weights(win["method"], vp[idx], vy)
    write_manifest(run_dir, members, win["method"], cls, weights, stacking=st, extra={
        "val_accuracy": win["val_accuracy"], "test_accuracy": win["test_accuracy"], "search": result.search,
        "evaluated": result.evaluated, "min_size": min_size, "max_size": max_size or len(names),
        "candidates": len(names), "pool": pool})
    text = leaderboard(result, c)
    if len(names) < pool:
        text = f"candidates: the {len(names)} of {pool} members with the best validation accuracy\n" + text
    return result, text


def leaderboard(result: SearchResult, caches: dict, top: int = 10) -> str:
    names, vp, tp, vy, ty, cls = (caches["names"], caches["val_proba"], caches["test_proba"], caches["val_y"],
                                  caches["test_y"], caches["class_names"])
    lines = [f"search: {result.search}; subsets evaluated per method: {result.evaluated}", "",
             f"top {top} by validation accuracy (test shown, never used to choose):"]
    t = result.table.head(top)
    w = max(12, min(60, t["members"].str.len().max()))
    lines.append(f"{'method':<10} {'size':>4} {'val':>7} {'test':>7}  members")
    for _, r in t.iterrows():
        lines.append(f"{r.method:<10} {r['size']:>4} {r.val_accuracy:7.4f} {r.test_accuracy:7.4f}  {r.members[:w]}")
    # Per-class test accuracy: best ensemble of each method beside every single model (Tables 2-3).
    head = f"{'':<22}" + "".join(f"{c[:8]:>9}" for c in cls) + f"{'test':>9}"
    rows = [head]
    for method, r in result.best.items():
        idx = [names.index(n) for n in r["members"].split("+")]
        if method == "stacking":
            p = Stacker().fit(vp[idx], vy).predict_proba(tp[idx])
        else:
            p = combine(tp[idx], method, fit_weights(method, vp[idx], vy))
        pc = per_class_accuracy(p, ty, len(cls))
        rows.append(f"{'ens_' + method + str(len(idx)):<22}" + "".join(f"{v * 100:9.2f}" for v in pc)
                    + f"{(p.argmax(1) == ty).mean() * 100:9.2f}")
    for i, n in enumerate(names):
        pc = per_class_accuracy(tp[i], ty, len(cls))
        rows.append(f"{n[:22]:<22}" + "".join(f"{v * 100:9.2f}" for v in pc) + f"{(tp[i].argmax(1) == ty).mean() * 100:9.2f}")
    best_single = int(np.argmax(member_accuracy(vp, vy)))   # first of equals, as max() took
    lines += ["", "per-class test accuracy (%):", *rows, "",
              f"chosen: {result.winner['method']} over {result.winner['members']} "
              f"(val {result.winner['val_accuracy']:.4f}, test {result.winner['test_accuracy']:.4f}); "
              f"best single by val: {names[best_single]} (test {(tp[best_single].argmax(1) == ty).mean():.4f})"]
    return "\n".join(lines)


def manifest_proba(manifest: dict, caches: dict, split: str = "test") -> np.ndarray:
    """The ensemble.json winner's probabilities on a cached split, from the caches alone."""
    names = caches["names"]
    missing = [n for n in manifest["members"] if n not in names]
    if missing:
        raise EnsembleError(f"ensemble.json names members without a prediction cache: {', '.join(missing)}")
    proba = caches[f"{split}_proba"][[names.index(n) for n in manifest["members"]]]
    if manifest["method"] == "stacking":
        return Stacker.from_params(manifest["stacking"]).predict_proba(proba)
    w = manifest.get("weights")
    weights = None if w is None else np.array([w[n] for n in manifest["members"]], dtype=np.float64)
    return combine(proba, manifest["method"], weights)
