"""`fer-ensemble report RUN_DIR`: tables and figures for every model of a run and its ensemble.

Everything that needs only numbers (tables, confusion matrices, ROC curves, learning curves) comes
from the run's caches (NAME.preds.npz, NAME.history.csv, NAME.json, ensemble.json), so a results
folder without weights can be reported. The sections that need images (class distribution of the
training split, the image grid, Grad-CAM) load the data the run was trained on (from its sidecar,
or --data), checked by fingerprint; Grad-CAM also needs the members' weights.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_dir, write_text
from ..data import FerData, load_data, oversample
from ..ensemble import manifest_proba, procedure_table
from ..ensemble.manifest import manifest_picks
from ..ensemble.methods import lookup
from ..errors import FerEnsembleError
from ..rundir import (CV_FILE, MANIFEST, REPORT_DIR, SEARCH_TABLE, artifact_paths, load_caches, read_manifest,
                      read_sidecar, require_sidecars)
from . import plots
from .tables import comparison_table, disagreement_matrix, pair_table, per_class_table, to_markdown

ENSEMBLE = "ensemble"


@dataclass
class Report:
    path: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: pd.DataFrame | None = None


def resolve_data(sidecar: dict, source: str | None = None) -> tuple[FerData | None, str]:
    """The data a run was trained on: `source` if given, else the sidecar's data_source (a path
    that exists, or the synthetic set with its n and seed). (None, why) when not available or when
    the fingerprint differs."""
    classes = "fer6" if len(sidecar["class_names"]) == 6 else "fer7"
    src = source or sidecar.get("data_source", "")
    m = re.fullmatch(r"synthetic\(n=(\d+), seed=(\d+)\)", src)
    try:
        if m:
            data = load_data(f"synthetic:{m.group(1)}", classes=classes, seed=int(m.group(2)))
        elif src and (src.startswith("synthetic") or Path(src).exists()):
            data = load_data(src, classes=classes)
        else:
            return None, f"the training data ({src or 'unknown'}) is not available here; pass --data"
    except FerEnsembleError as e:
        return None, f"cannot load the training data: {e}"
    if data.fingerprint() != sidecar.get("data_fingerprint"):
        return None, f"{src}: is not the data this run was trained on (fingerprint differs)"
    return data, f"data: {data.source}"


def write_report(run_dir: str | os.PathLike, data: str | FerData | None = None, gradcam: tuple[str, ...] = (),
                 gradcam_per_class: int = 3, grid_images: int = 24) -> Report:
    """Write RUN_DIR/report/ (report.md, tables/*.csv, PNG figures); returns what was written.

    The folder is built aside and swapped in whole: a report that fails leaves the previous one
    as it was, and a new one holds no figures left over from an earlier report (say Grad-CAM maps
    of models no longer asked for)."""
    run = Path(run_dir)
    final = run / REPORT_DIR
    with atomic_dir(final) as stage:
        rep = _build_report(run, stage, data, gradcam, gradcam_per_class, grid_images)
    rep.path = final / rep.path.relative_to(stage)
    rep.files = [final / f.relative_to(stage) for f in rep.files]
    return rep


@dataclass
class _Run:
    """What every section of a report reads: the run's predictions, members and ensemble."""

    run: Path
    out: Path
    rep: Report
    names: list[str]
    cls: list[str]
    sidecars: dict[str, dict]
    test: dict[str, np.ndarray]      # model (and ENSEMBLE) -> test probabilities
    val: dict[str, np.ndarray]
    ty: np.ndarray
    vy: np.ndarray
    manifest: dict | None
    ens_label: str
    val_acc: dict[str, float]
    best: str                        # the best single model by validation accuracy


def _read_run(run: Path, out: Path) -> tuple[_Run, str]:
    """The run's caches, sidecars and ensemble (from ensemble.json, or the mean of all members);
    also the ensemble's members as the header shows them."""
    caches = load_caches(run)
    names = caches["names"]
    sidecars = require_sidecars(run, names)
    test = {n: caches["test_proba"][i] for i, n in enumerate(names)}
    val = {n: caches["val_proba"][i] for i, n in enumerate(names)}
    where = run / MANIFEST
    manifest = read_manifest(where) if where.exists() else None
    members_text = ""
    if manifest:
        test[ENSEMBLE], val[ENSEMBLE] = (manifest_proba(manifest, caches, s, where) for s in ("test", "val"))
        ens_label, members_text = _ensemble_label(manifest, where)   # after: missing members get a clear error
    else:
        ens_label = f"{ENSEMBLE} (mean of all {len(names)}; no ensemble.json: run the search)"
        test[ENSEMBLE] = caches["test_proba"].mean(axis=0)
        val[ENSEMBLE] = caches["val_proba"].mean(axis=0)
    vy = caches["val_y"]
    val_acc = {n: float((v.argmax(1) == vy).mean()) for n, v in val.items()}   # members and the ensemble
    best = max(names, key=lambda n: (val_acc[n], n))
    r = _Run(run, out, Report(out / "report.md"), names, caches["class_names"], sidecars, test, val,
             caches["test_y"], vy, manifest, ens_label, val_acc, best)
    return r, members_text


def _build_report(run: Path, out: Path, data, gradcam, gradcam_per_class, grid_images) -> Report:
    r, members_text = _read_run(run, out)
    md = [f"# Report: {run.name}", "",
          f"{len(r.names)} model(s); classes: {', '.join(r.cls)}; validation {len(r.vy)} images (used for every "
          f"choice), test {len(r.ty)} images (reported only).", "",
          f"Ensemble: {r.ens_label}" + (f", members {members_text}" if r.manifest else ""),
          f"Best single model by validation accuracy: {r.best}.", ""]
    md += _tables_section(r)
    md += _figures_section(r)
    md += _diversity_section(out, r.rep, r.names, r.val, r.test, r.vy, r.ty, r.manifest, r.best, r.val_acc)
    md += _curves_section(r)
    md += _image_sections(r, data, gradcam, gradcam_per_class, grid_images)
    if r.rep.notes:
        md += ["## Notes", "", *[f"- {n}" for n in r.rep.notes], ""]
    write_text(r.rep.path, "\n".join(md))
    r.rep.files.append(r.rep.path)
    return r.rep


def _tables_section(r: _Run) -> list[str]:
    """The summary and per-class tables, and how the ensemble was chosen."""
    out, rep = r.out, r.rep
    (out / "tables").mkdir(parents=True, exist_ok=True)
    summary = comparison_table(r.test, r.ty, r.cls)
    summary.insert(1, "val accuracy", [100 * r.val_acc[n] for n in summary["model"]])
    rep.summary = summary
    rep.files.append(_write_csv(summary, out / "tables" / "summary_test.csv"))
    md = ["## Test accuracy per class (%)", "", "Per-class accuracy is the recall of the class, as in the "
          "reference study's Tables 2-5.", "", to_markdown(summary, 2), ""]
    md += _selection_section(r.run, out, rep, len(r.names))
    md += ["## Precision, recall, F1 per model (test)", ""]
    for n in [ENSEMBLE, *r.names]:
        t = per_class_table(r.ty, r.test[n], r.cls)
        rep.files.append(_write_csv(t, out / "tables" / f"{n}.test.csv"))
        md += [f"<details><summary>{r.ens_label if n == ENSEMBLE else n}</summary>", "", to_markdown(t), "",
               "</details>", ""]
    return md


def _figures_section(r: _Run) -> list[str]:
    """Confusion matrices of every model, ROC curves of the ensemble and the best model."""
    out, rep, ty, cls = r.out, r.rep, r.ty, r.cls
    md = ["## Confusion matrices (test)", ""]
    for n in [ENSEMBLE, *r.names]:
        for norm in (False, True):
            kind = "normalized" if norm else "counts"
            p = plots.confusion_matrix_plot(ty, r.test[n], cls, out / "confusion" / f"{n}.{kind}.png",
                                            f"{n}: confusion matrix ({kind}, test)", normalize=norm)
            rep.files.append(p)
        md.append(f"**{n}**: ![{n} counts](confusion/{n}.counts.png) ![{n} normalized](confusion/{n}.normalized.png)")
        md.append("")
    md += ["## ROC curves, one vs rest (test)", ""]
    auc_rows = []
    for n in dict.fromkeys([ENSEMBLE, r.best]):
        p, aucs = plots.roc_curves(ty, r.test[n], cls, out / "roc" / f"{n}.png", f"{n}: ROC (test)")
        rep.files.append(p)
        auc_rows.append({"model": n, **aucs})
        md.append(f"![{n} ROC](roc/{n}.png)")
    auc = pd.DataFrame(auc_rows)
    rep.files.append(_write_csv(auc, out / "tables" / "auc_test.csv"))
    return md + ["", to_markdown(auc), ""]


def _curves_section(r: _Run) -> list[str]:
    md = ["## Learning curves", ""]
    for n in r.names:
        hist_file = artifact_paths(r.run, n)["history.csv"]
        if hist_file.exists():
            r.rep.files.append(plots.learning_curves(pd.read_csv(hist_file), r.out / "curves" / f"{n}.png",
                                                     f"{n} ({r.sidecars[n].get('builder', '?')})"))
            md.append(f"![{n} learning curves](curves/{n}.png)")
    md.append("")
    return md


def _image_sections(r: _Run, data, gradcam, gradcam_per_class, grid_images) -> list[str]:
    """The sections that need the images: class distribution, the test image grid, Grad-CAM."""
    fer = data if isinstance(data, FerData) else None
    why = ""
    if fer is None:
        fer, why = resolve_data(r.sidecars[r.names[0]], data)
    md = _distribution_section(r, fer, why)
    if fer is not None:
        x_test = fer.test.x
        if len(x_test) != len(r.ty) or not np.array_equal(fer.test.y, r.ty):
            raise FerEnsembleError(f"{r.run}: the caches' test labels do not match {fer.source}")
        r.rep.files.append(plots.image_grid(x_test, r.ty, r.test[ENSEMBLE], r.cls, r.out / "predictions_grid.png",
                                            f"{ENSEMBLE}: test images, mistakes first", n=grid_images))
        md += ["## Test images (mistakes first, in red)", "", "![grid](predictions_grid.png)", ""]
        md += _gradcam_section(r.run, r.out, r.rep, r.sidecars, [r.best, *[g for g in gradcam if g != r.best]],
                               x_test, r.ty, r.cls, gradcam_per_class)
    return md


def _distribution_section(r: _Run, fer: FerData | None, why: str) -> list[str]:
    """Images per class in each split, and in training after balancing when the data is here."""
    cls, out, rep = r.cls, r.out, r.rep
    counts = pd.DataFrame({"validation": np.bincount(r.vy, minlength=len(cls)),
                           "test": np.bincount(r.ty, minlength=len(cls))}, index=cls)
    if fer is not None:
        ytr = fer.train.y
        fraction = next((s["spec"]["oversample_fraction"] for s in r.sidecars.values()
                         if s["spec"].get("balancing") == "oversample"), 0.6)
        counts.insert(0, f"training, oversampled ({fraction:g})",
                      np.bincount(oversample(np.zeros(len(ytr)), ytr, fraction)[1], minlength=len(cls)))
        counts.insert(0, "training, balanced batches", np.full(len(cls), round(len(ytr) / len(cls))))
        counts.insert(0, "training", np.bincount(ytr, minlength=len(cls)))
    else:
        rep.notes.append(f"class distribution of the training split, image grid and Grad-CAM skipped: {why}")
    rep.files.append(plots.class_distribution(counts, out / "class_distribution.png",
                                              "images per class: splits, and training after balancing"))
    rep.files.append(_write_csv(counts.rename_axis("class").reset_index(), out / "tables" / "class_distribution.csv"))
    return ["## Class distribution", "", "![class distribution](class_distribution.png)", "",
            to_markdown(counts.rename_axis("class").reset_index()), ""]


def _ensemble_label(manifest: dict, where: Path) -> tuple[str, str]:
    """The ensemble's method and its members for the report's header. Greedy selection's pick is
    shown with how often it picked each member (`name ×k`), from ensemble.json's "picks"."""
    members, method = manifest["members"], manifest["method"]
    picks = manifest_picks(manifest, where)
    spec = lookup(method)
    counted = spec is not None and spec.repeats == "counts"   # its weights are the pick counts (mean)
    kind = "weighted mean" if counted else f"{method}-weighted mean"
    if picks is not None and (counted or any(k != 1 for k in picks.values())):
        label = f"{ENSEMBLE} ({kind} of {len(members)}, {sum(picks.values())} picks)"
        return label, ", ".join(n if k == 1 else f"{n} ×{k}" for n, k in picks.items())
    if counted and manifest.get("weights") is not None:   # counts not recorded (an older file)
        return f"{ENSEMBLE} ({kind} of {len(members)})", ", ".join(members)
    return f"{ENSEMBLE} ({method} of {len(members)})", ", ".join(members)


def _selection_section(run: Path, out: Path, rep: Report, pool: int, shown: int = 10) -> list[str]:
    """How ensemble.json was chosen: the search's best candidates (search.csv) and, after
    `search --cv-folds`, the out-of-fold comparison of the ways of choosing (search_cv.json).
    `pool`: the run's number of models, to flag a comparison written before models were added."""
    md = []
    board_file, cv_file = run / SEARCH_TABLE, run / CV_FILE
    if board_file.exists():
        try:   # sorted by validation accuracy when written; the first rows are the leaderboard
            board = pd.read_csv(board_file, nrows=shown)
            board = pd.DataFrame({"method": board["method"], "size": board["size"],
                                  "val accuracy": 100 * board["val_accuracy"],
                                  "test accuracy": 100 * board["test_accuracy"], "members": board["members"]})
        except (OSError, ValueError, KeyError) as e:
            rep.notes.append(f"{board_file}: unreadable ({e!r}); the search's leaderboard is not shown")
        else:
            md += ["## How the ensemble was chosen", "",
                   f"The {len(board)} best candidates of the subset search (search.csv) by validation accuracy; "
                   "test accuracy is reported, never used to choose.", "", to_markdown(board, 2), ""]
    if cv_file.exists():
        try:
            cv = read_sidecar(cv_file, ValueError)
            table = procedure_table(cv)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            rep.notes.append(f"{cv_file}: unreadable ({e!r}); the out-of-fold comparison is not shown")
            return md
        if cv.get("pool", pool) != pool:
            rep.notes.append(f"{cv_file} compared {cv['pool']} models, the run now has {pool}: run "
                             "`fer-ensemble search RUN --cv-folds F` again")
        rep.files.append(_write_csv(table, out / "tables" / "search_cv.csv"))
        md += ([] if md else ["## How the ensemble was chosen", ""]) + [
               f"### Ways of choosing, out of fold ({cv.get('folds', '?')} folds of the validation split, "
               f"seed {cv.get('seed', '?')})", "",
               "Each way of choosing ran on all folds but one and was scored on the fold it did not see; "
               "`vs best` is the margin over the best member chosen the same way. The last columns are each "
               "way's pick on the whole validation split (optimistic) and that pick's test accuracy "
               f"(reported only). Chosen by out-of-fold accuracy: **{cv.get('chosen', '?')}**.", "",
               to_markdown(table, 2), ""]
    return md


def _diversity_section(out, rep, names, val, test, vy, ty, manifest, best, val_acc,
                       shown_pairs: int = 10) -> list[str]:
    """Pairwise disagreement of the members and the accuracy of each pair's mean: the raw material
    of an ensemble's gain. Pairs are ranked on validation, like every choice in the package."""
    if len(names) < 2:
        return []
    pairs = pair_table({n: test[n] for n in names}, ty)
    pairs.insert(4, "pair val accuracy", pair_table({n: val[n] for n in names}, vy)["pair accuracy"])
    pairs = pairs.rename(columns={"pair accuracy": "pair test accuracy", "gain": "test gain"})
    pairs = pairs.sort_values(["pair val accuracy", "model a", "model b"], ascending=[False, True, True],
                              kind="stable", ignore_index=True)
    rep.files.append(_write_csv(pairs, out / "tables" / "pairs_test.csv"))
    if manifest:
        shown, which = list(dict.fromkeys([*manifest["members"], best])), "the ensemble's members and the best model"
    else:
        shown = sorted(names, key=lambda n: -val_acc[n])[:12]
        which = "the 12 best models on validation" if len(names) > 12 else "all models"
    matrix = disagreement_matrix({n: test[n] for n in shown})
    rep.files.append(_write_csv(matrix.reset_index(), out / "tables" / "disagreement_test.csv"))
    rep.files.append(plots.disagreement_heatmap(matrix, out / "diversity.png",
                                                f"disagreement (% of test images): {which}"))
    return ["## Diversity of the members (test)", "",
            f"Disagreement (% of test images two models predict differently) among {which}; averaging can "
            "only gain where members disagree.", "", "![disagreement](diversity.png)", "",
            f"The {min(shown_pairs, len(pairs))} best pairs by the validation accuracy of their mean (all "
            f"{len(pairs)} in tables/pairs_test.csv); test gain is over the better member of the pair, in points.",
            "", to_markdown(pairs.head(shown_pairs), 2), ""]


def _gradcam_section(run, out, rep, sidecars, members, x, y, cls, per_class) -> list[str]:
    import keras

    from ..ensemble.ensemble import load_member
    from .gradcam import gradcam

    md = ["## Grad-CAM", "", f"{per_class} test images per class; heat marks the regions that raised the score "
          "of the predicted class (last convolutional layer).", ""]
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, int((y == c).sum())), replace=False)
                           for c in range(len(cls)) if (y == c).any()])
    for n in members:
        if n not in sidecars:
            raise FerEnsembleError(f"--gradcam {n}: no such model in {run}; models: {', '.join(sidecars)}")
        try:
            member = load_member(run, n, sidecars[n])
            xs = member.prepare(x[pick].astype(np.float32)[..., None])
            heat = gradcam(member.model, xs)
        except FerEnsembleError as e:      # no weights here (a results folder), unreadable ones, no TensorFlow
            rep.notes.append(f"Grad-CAM for {n} skipped: {e}")
            continue
        pred = member.model.predict(xs, verbose=0).argmax(1)
        names = sidecars[n]["class_names"]
        titles = [f"true {cls[y[i]]}\npred {names[p]}" for i, p in zip(pick, pred)]
        if heat.shape[1] != x.shape[1]:
            heat = np.asarray(keras.ops.image.resize(heat[..., None], x.shape[1:3]))[..., 0]
        rep.files.append(plots.gradcam_grid(x[pick], heat, titles, out / "gradcam" / f"{n}.png",
                                            f"Grad-CAM: {n}", cols=per_class * 2 if per_class <= 3 else per_class))
        md += [f"![Grad-CAM {n}](gradcam/{n}.png)", ""]
    return md


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    write_text(path, df.to_csv(index=False))
    return path
