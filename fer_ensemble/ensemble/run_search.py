"""Search a run directory: read every NAME.preds.npz cache, rank subsets, write search.csv and
ensemble.json, and print the leaderboard with per-class tables (the study's Tables 2 and 3)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import atomic_path, write_json
from ..errors import EnsembleError
from ..rundir import (CV_FILE, MANIFEST, PREDS_SUFFIX, SEARCH_TABLE, load_caches, locked, member_sidecars,
                      read_sidecar, write_manifest)
from .methods import (DEFAULT_METHODS, METHODS, STACKING, Stacker, get_method, is_stacked, lookup, member_accuracy,
                      subset_methods)
from .cv import (PROCEDURES, check_folds, choose_procedure, cross_validate, fit_procedure, pick_from_row, row_counts,
                 row_weights, top_indices)
from .manifest import manifest_weights, picks_record
from .search import SearchResult, search_subsets


def keep_top_members(caches: dict, k: int) -> dict:
    """Keep the k members with the highest validation accuracy (ties: earlier name first).

    A validation-only rule that bounds the exhaustive search (2^M subsets) as zoos grow; test
    predictions play no part in it.
    """
    keep = top_indices(caches["val_proba"], caches["val_y"], caches["names"], k)   # refuses k < 1
    if len(keep) == len(caches["names"]):
        return caches
    return {**caches, "names": [caches["names"][i] for i in keep],
            "val_proba": caches["val_proba"][keep], "test_proba": caches["test_proba"][keep]}


def per_class_accuracy(proba: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    pred = proba.argmax(axis=1)
    return np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(n)])


def check_cv_folds(run_dir: str | os.PathLike, folds: int) -> None:
    """EnsembleError naming the run unless its validation labels allow `folds` stratified folds;
    `search --cv-folds` checks this before the search writes anything."""
    caches = load_caches(run_dir)
    try:
        check_folds(caches["val_y"], folds, caches["class_names"])
    except ValueError as e:
        raise EnsembleError(f"{run_dir}: {e}") from None


def uncached_members(run_dir: str | os.PathLike, cached: list[str]) -> list[str]:
    """Members of the run (sidecars) that have no prediction cache, so no search can use them."""
    return [n for n in member_sidecars(run_dir) if n not in cached]


@locked("search")
def search_run(run_dir: str | os.PathLike, methods=DEFAULT_METHODS, min_size: int = 1,
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
    methods = tuple(methods) + ((STACKING,) if stacking and STACKING not in methods else ())
    try:
        result = search_subsets(names, vp, vy, tp, ty, methods=methods, min_size=min_size, max_size=max_size,
                                exhaustive_limit=exhaustive_limit)
    except ValueError as e:   # bad size bounds or limit: name the run, no traceback
        raise EnsembleError(f"{run_dir}: {e}") from None
    with atomic_path(run_dir / SEARCH_TABLE) as tmp:
        result.table.to_csv(tmp, index=False)
    win = result.winner
    members = win["members"].split("+")
    idx = [names.index(n) for n in members]
    st = None
    weights = None
    if is_stacked(win["method"]):
        st = Stacker().fit(vp[idx], vy).params()
    else:   # greedy selection may repeat a member: its multiplicity goes into the stored weights
        try:
            weights = row_weights(win, vp[idx], vy)
        except ValueError as e:
            raise EnsembleError(f"{run_dir}: {e}") from None
    write_manifest(run_dir, members, win["method"], cls, weights, stacking=st, extra={
        "val_accuracy": win["val_accuracy"], "test_accuracy": win["test_accuracy"], "search": result.search,
        "evaluated": result.evaluated, "min_size": min_size, "max_size": max_size or len(names),
        "candidates": len(names), "pool": pool,
        **picks_record(members, row_counts(win))})
    text = leaderboard(result, c)
    if len(names) < pool:
        text = f"candidates: the {len(names)} of {pool} members with the best validation accuracy\n" + text
    text = _uncached_note(run_dir, c["names"]) + text
    return result, text


def _uncached_note(run_dir: str | os.PathLike, cached: list[str]) -> str:
    """The lines that name the members the search left out for want of a cache, with the fix."""
    sidecars = member_sidecars(run_dir)
    missing = uncached_members(run_dir, cached)
    imported = [n for n in missing if sidecars[n].get("builder") == "imported"]
    trained = [n for n in missing if n not in imported]
    text = ""
    if trained:
        text += (f"not searched, no NAME{PREDS_SUFFIX} prediction cache (train them to the end, or import "
                 f"with --data): {', '.join(trained)}\n")
    for n in imported:
        side = sidecars[n]
        scaling = side.get("scaling", {})
        member = Path(run_dir) / str(side.get("model_file", f"{n}.keras"))
        text += (f"not searched, {n} was imported without --data (no {n}{PREDS_SUFFIX} prediction cache); to "
                 f"include it, cache its predictions on the run's data: fer-ensemble import {member} --into {run_dir} "
                 f"--name {n} --labels {','.join(side['class_names'])} --scale {scaling.get('scale', 1 / 255)} "
                 f"--offset {scaling.get('offset', 0.0)}{' --classes fer6' if side.get('classes') == 'fer6' else ''} "
                 "--data DATA\n")
    return text


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
        label = f"ens_{method}{len(idx)}"
        if isinstance(r.get("multiplicity"), str):   # a greedy row: each member as often as it was picked
            idx = list(np.repeat(idx, [int(c) for c in r["multiplicity"].split("+")]))
        p = get_method(method).fit_predict(vp[idx], vy, tp[idx])
        pc = per_class_accuracy(p, ty, len(cls))
        rows.append(f"{label:<22}" + "".join(f"{v * 100:9.2f}" for v in pc)
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


def manifest_proba(manifest: dict, caches: dict, split: str = "test",
                   where: str | os.PathLike = MANIFEST) -> np.ndarray:
    """The ensemble.json winner's probabilities on a cached split, from the caches alone;
    `where` names the file in errors."""
    names = caches["names"]
    missing = [n for n in manifest["members"] if n not in names]
    if missing:
        raise EnsembleError(f"{where} names members without a prediction cache: {', '.join(missing)}")
    proba = caches[f"{split}_proba"][[names.index(n) for n in manifest["members"]]]
    method = lookup(manifest["method"])
    if method is None:
        raise EnsembleError(f"{where}: unknown method {manifest['method']!r}; expected one of {METHODS}")
    if method.stacked:
        return method.predict(proba, stacking=manifest["stacking"])
    weights = manifest_weights(manifest, where)
    if weights is None and method.needs_weights:
        raise EnsembleError(f"{where}: method {method.name!r} needs 'weights'")
    if weights is not None and method.weights == "class" and weights.shape[1] != proba.shape[2]:
        raise EnsembleError(f"{where}: {method.name} weights have {weights.shape[1]} classes, "
                            f"the caches {proba.shape[2]}")
    return method.predict(proba, weights)


@locked("search --cv-folds")
def cv_run(run_dir: str | os.PathLike, folds: int = 5, seed: int = 0, select: bool = False,
           procedures=PROCEDURES, methods=DEFAULT_METHODS, min_size: int = 1,
           max_size: int | None = None, exhaustive_limit: int | None = None,
           top_members: int | None = None, progress=None,
           search_result: SearchResult | None = None) -> tuple[dict, str]:
    """Out-of-fold accuracy of each procedure on `run_dir`'s validation caches -> search_cv.json.

    Each procedure (with its own top-member cut) is also run once on the whole validation split;
    its test accuracy is reported, never used. With `select`, ensemble.json becomes the pick of
    the procedure with the best out-of-fold accuracy (ties: the order of PROCEDURES).
    `search_result`: `search_run`'s result with the same options, whose choice is the `search`
    procedure's on the whole split (unless stacking won it), so that search is not run twice.
    """
    run_dir = Path(run_dir)
    c = load_caches(run_dir)
    names, vp, tp, vy, ty, cls = (c["names"], c["val_proba"], c["test_proba"], c["val_y"], c["test_y"],
                                  c["class_names"])
    options = {"methods": tuple(methods), "top_members": top_members, "exhaustive_limit": exhaustive_limit,
               "min_size": min_size, "max_size": max_size}
    if not subset_methods(methods):   # nothing to search: compare the rest
        procedures = tuple(p for p in procedures if p not in ("search", "greedy"))
    try:
        cv = cross_validate(names, vp, vy, procedures=procedures, folds=folds, seed=seed, progress=progress,
                            **options)
        reuse = search_result is not None and not is_stacked(search_result.winner["method"])
        full = {p: pick_from_row(p, search_result.winner, names, vp, vy) if p == "search" and reuse
                else fit_procedure(p, names, vp, vy, **options) for p in procedures}
    except ValueError as e:   # bad folds, sizes or procedure names: name the run, no traceback
        raise EnsembleError(f"{run_dir}: {e}") from None
    chosen = choose_procedure(cv)
    for p, pick in full.items():
        cv["procedures"][p].update({
            "method": pick.method, "members": [names[i] for i in pick.members],
            "val_accuracy": pick.fit_accuracy,
            "test_accuracy": float((pick.proba(tp).argmax(1) == ty).mean())})
    cv.update({"chosen": chosen, "options": {**options, "methods": list(methods)}, "pool": len(names)})
    write_json(run_dir / CV_FILE, cv)
    if select:
        pick = full[chosen]
        members = [names[i] for i in pick.members]
        record = {"procedure": chosen, "selected_by": f"{folds}-fold out-of-fold accuracy ({CV_FILE})",
                  "out_of_fold_accuracy": cv["procedures"][chosen]["out_of_fold_accuracy"],
                  **picks_record(members, pick.counts)}
        previous = run_dir / MANIFEST
        try:
            old = read_sidecar(previous, EnsembleError) if previous.exists() else {}
        except EnsembleError:   # unreadable: replaced by the chosen pick below
            old = {}
        if _same_ensemble(old, members, pick):   # the search's own choice: keep its record, add the cv's
            write_json(previous, {**old, **record})
        else:
            write_manifest(run_dir, members, pick.method, cls, pick.weights, stacking=pick.stacking, extra={
                "val_accuracy": pick.fit_accuracy, "test_accuracy": cv["procedures"][chosen]["test_accuracy"],
                **record, "candidates": len(top_indices(vp, vy, names, top_members)), "pool": len(names)})
    return cv, cv_table(cv)


def _same_ensemble(manifest: dict, members: list[str], pick) -> bool:
    if manifest.get("members") != members or manifest.get("method") != pick.method or is_stacked(pick.method):
        return False
    w = manifest.get("weights")
    if w is None or pick.weights is None:
        return w is None and pick.weights is None
    if not isinstance(w, dict) or any(n not in w for n in members):
        return False
    return np.allclose(np.array([w[n] for n in members], dtype=np.float64), pick.weights)


def procedure_table(cv: dict) -> "pandas.DataFrame":
    """The ways of choosing an ensemble side by side, from `search --cv-folds` (search_cv.json), in %:
    out-of-fold validation accuracy (the honest measure, and the one `--select cv` chooses by), its
    margin over the best member chosen the same way, each fold, and the pick each way makes on the
    whole validation split with that pick's validation (optimistic) and test (reported only) accuracy."""
    import pandas as pd   # lazily, as in search.py: `Ensemble` users need no pandas at import

    procs = cv["procedures"]
    base = procs.get("best", {}).get("out_of_fold_accuracy")
    rows = []
    for name, r in procs.items():
        oof = r["out_of_fold_accuracy"]
        rows.append({"procedure": name, "chosen": "yes" if name == cv.get("chosen") else "",
                     "out-of-fold accuracy": 100 * oof,
                     "vs best": np.nan if base is None else 100 * (oof - base),
                     "folds": " / ".join(f"{100 * a:.2f}" for a in r.get("fold_accuracy", [])),
                     "val accuracy (whole split)": 100 * r.get("val_accuracy", np.nan),
                     "test accuracy": 100 * r.get("test_accuracy", np.nan),
                     "pick": f"{r.get('method', '?')} of {len(r.get('members', []))}"})
    return pd.DataFrame(rows)


def cv_table(cv: dict) -> str:
    """Procedures side by side: out-of-fold (honest) against whole-split (optimistic) validation."""
    lines = [f"{cv['folds']}-fold out-of-fold validation accuracy (seed {cv['seed']}); test shown, never used:",
             f"{'procedure':<10} {'out-of-fold':>11} {'vs best':>8} {'val (fit)':>9} {'test':>7}  pick"]
    for r in procedure_table(cv).to_dict("records"):
        gain = "" if np.isnan(r["vs best"]) else f"{r['vs best']:+8.2f}"
        lines.append(f"{r['procedure']:<10} {r['out-of-fold accuracy']:10.2f}% {gain:>8} "
                     f"{r['val accuracy (whole split)']:8.2f}% {r['test accuracy']:6.2f}%  {r['pick']}")
    lines.append(f"chosen by out-of-fold accuracy: {cv['chosen']}")
    return "\n".join(lines)
