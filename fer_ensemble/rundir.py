"""The run directory: the one module that knows its file names and formats.

Training writes a run directory, the ensemble search and `Ensemble` read it, the report and the
app read it again; they all go through this module, so the layout is defined once:

  RUN/NAME.h5            a member's model, best epoch by validation accuracy (or NAME.keras)
  RUN/NAME.json          its sidecar: spec, classes, input shape, scaling, data fingerprint, metrics;
                         written last, so its presence means the member is complete
  RUN/NAME.history.csv   per-epoch loss, accuracy and learning rate
  RUN/NAME.preds.npz     validation and test probabilities and labels: the search's cache
  RUN/ensemble.json      the manifest: chosen members, method, weights (written by the search)
  RUN/search.csv         the search's subsets ranked by validation accuracy
  RUN/search_cv.json     the out-of-fold comparison of ways of choosing (search --cv-folds)
  RUN/budget.json        a budget sub-run's record (fer-ensemble budget)
  RUN/report/            fer-ensemble report's tables and figures
  RUN/.work/NAME/        a member's in-progress state (resume backup, best checkpoint)

Every file is written atomically (`_io`): under a temporary name, then renamed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._io import read_json, write_json, write_npz
from .errors import EnsembleError, FerEnsembleError

ARTIFACTS = ("h5", "json", "history.csv", "preds.npz")   # a trained member's files, NAME.<artifact>
MODEL_SUFFIXES = (".h5", ".keras")
PREDS_SUFFIX = ".preds.npz"
MANIFEST = "ensemble.json"
SEARCH_TABLE = "search.csv"
CV_FILE = "search_cv.json"
BUDGET_FILE = "budget.json"
REPORT_DIR = "report"
WORK_DIR = ".work"
RUN_FILES = (MANIFEST, CV_FILE, BUDGET_FILE)   # JSON files of the run, not members' sidecars
# A member's files that travel with it (to a budget sub-run): small artifacts and weights.
MEMBER_SUFFIXES = (".json", ".history.csv", PREDS_SUFFIX, *MODEL_SUFFIXES)
# What `fer-ensemble collect` copies to a results folder: everything but the weights.
SMALL_ARTIFACTS = ("*.json", "*.history.csv", f"*{PREDS_SUFFIX}", SEARCH_TABLE)
CACHE_KEYS = ("val_proba", "val_y", "test_proba", "test_y", "class_names")


# ---------------------------------------------------------------- names
def artifact_paths(run_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Member `name`'s final files, by artifact: {"h5": RUN/NAME.h5, "json": ..., ...}."""
    run_dir = Path(run_dir)
    return {k: run_dir / f"{name}.{k}" for k in ARTIFACTS}


def sidecar_path(run_dir: str | os.PathLike, name: str) -> Path:
    return Path(run_dir) / f"{name}.json"


def preds_path(run_dir: str | os.PathLike, name: str) -> Path:
    return Path(run_dir) / f"{name}{PREDS_SUFFIX}"


def work_dir(run_dir: str | os.PathLike, name: str) -> Path:
    """The folder of member `name`'s in-progress training state."""
    return Path(run_dir) / WORK_DIR / name


def visible(path: Path) -> bool:
    """False for dot files: temporary files of an interrupted atomic write."""
    return not path.name.startswith(".")


# ---------------------------------------------------------------- sidecars and models
def read_sidecar(path: str | os.PathLike, error: type[Exception] = FerEnsembleError) -> dict:
    """A sidecar (or other JSON record of the run); unreadable or bad JSON raises `error` naming it."""
    return read_json(path, error)


def write_sidecar(run_dir: str | os.PathLike, name: str, sidecar: dict) -> Path:
    path = sidecar_path(run_dir, name)
    write_json(path, sidecar)
    return path


def member_sidecars(run_dir: str | os.PathLike, error: type[Exception] = EnsembleError,
                    keys: tuple[str, ...] = ("class_names",)) -> dict[str, dict]:
    """Every member sidecar of the run (a NAME.json holding `keys`), by file stem, sorted."""
    out = {}
    for p in sorted(Path(run_dir).glob("*.json")):
        if not visible(p) or p.name in RUN_FILES:
            continue
        d = read_sidecar(p, error)
        if isinstance(d, dict) and all(k in d for k in keys):
            out[p.stem] = d
    return out


def require_sidecars(run_dir: str | os.PathLike, names: list[str],
                     error: type[Exception] = FerEnsembleError) -> dict[str, dict]:
    """The sidecars of `names` (members with a prediction cache); each must exist."""
    out = {}
    for n in names:
        f = sidecar_path(run_dir, n)
        if not f.exists():
            raise error(f"{f}: missing (every NAME{PREDS_SUFFIX} needs its NAME.json sidecar)")
        out[n] = read_sidecar(f, error)
    return out


def has_model(run_dir: str | os.PathLike, name: str, sidecar: dict) -> bool:
    """Whether the sidecar names a model file, or one lies beside it (NAME.h5 or NAME.keras)."""
    return "model_file" in sidecar or any((Path(run_dir) / f"{name}{s}").exists() for s in MODEL_SUFFIXES)


def model_path(run_dir: str | os.PathLike, name: str, sidecar: dict) -> Path:
    """Member `name`'s model file: the sidecar's model_file, else NAME.h5 or NAME.keras; it must
    lie in the run directory."""
    run_dir = Path(run_dir)
    candidates = [run_dir / sidecar["model_file"]] if "model_file" in sidecar else []
    candidates += [run_dir / f"{name}{s}" for s in MODEL_SUFFIXES]
    for c in candidates:
        if c.resolve().parent != run_dir.resolve():
            raise EnsembleError(f"{run_dir / (name + '.json')}: model file {c.name!r} is outside the directory")
        if c.exists():
            return c
    raise EnsembleError(f"{run_dir / (name + '.json')}: no model file ({name}.h5 or {name}.keras) beside it")


# ---------------------------------------------------------------- prediction caches
def write_predictions(run_dir: str | os.PathLike, name: str, val_proba: np.ndarray, val_y: np.ndarray,
                      test_proba: np.ndarray, test_y: np.ndarray, class_names) -> Path:
    """Write member `name`'s prediction cache, RUN/NAME.preds.npz (atomically)."""
    path = preds_path(run_dir, name)
    write_npz(path, val_proba=val_proba, val_y=val_y, test_proba=test_proba, test_y=test_y,
              class_names=np.array(class_names))
    return path


def cache_files(run_dir: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(run_dir).glob(f"*{PREDS_SUFFIX}") if visible(p))


def read_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One prediction cache's arrays (CACHE_KEYS); a bad file raises EnsembleError naming it."""
    try:
        z = np.load(path, allow_pickle=False)
        return {k: z[k] for k in CACHE_KEYS}
    except (OSError, KeyError, ValueError) as e:
        raise EnsembleError(f"{path}: not a valid prediction cache ({e})") from None


def load_caches(run_dir: str | os.PathLike) -> dict:
    """Stack the members' cached validation/test probabilities; checks labels and classes agree.

    Returns {"names", "val_proba" (M, N, C), "test_proba", "val_y", "test_y", "class_names"}."""
    run_dir = Path(run_dir)
    files = cache_files(run_dir)
    if not files:
        raise EnsembleError(f"{run_dir}: no NAME{PREDS_SUFFIX} prediction caches (train the zoo first)")
    names, val, test, ref = [], [], [], None
    for f in files:
        item = read_predictions(f)
        if ref is None:
            ref = item
        for key in ("val_y", "test_y", "class_names"):
            if not np.array_equal(item[key], ref[key]):
                raise EnsembleError(f"{f}: {key} differs from {files[0].name}; members were evaluated on "
                                    "different data or classes")
        names.append(f.name[:-len(PREDS_SUFFIX)])
        val.append(item["val_proba"])
        test.append(item["test_proba"])
    return {"names": names, "val_proba": np.stack(val), "test_proba": np.stack(test), "val_y": ref["val_y"],
            "test_y": ref["test_y"], "class_names": [str(c) for c in ref["class_names"]]}


# ---------------------------------------------------------------- the manifest
def read_manifest(path: str | os.PathLike) -> dict:
    """ensemble.json as a dict with a non-empty 'members' list and a 'method'; else an error naming it.
    (Its weights and picks are checked by `ensemble.manifest`, which knows the methods.)"""
    manifest = read_json(path, EnsembleError)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), list) or not manifest["members"]:
        raise EnsembleError(f"{path}: 'members' must be a non-empty list")
    if "method" not in manifest:
        raise EnsembleError(f"{path}: 'method' is missing")
    return manifest


def write_manifest(directory: str | os.PathLike, members: list[str], method: str, class_names: list[str],
                   weights: np.ndarray | None, extra: dict | None = None, stacking: dict | None = None) -> Path:
    """Write ensemble.json without loading any model (the search works on prediction caches only)."""
    path = Path(directory) / MANIFEST
    doc = {"members": members, "method": method, "class_names": list(class_names),
           "weights": None if weights is None else {n: np.asarray(w).tolist() for n, w in zip(members, weights)},
           **({"stacking": stacking} if stacking else {}), **(extra or {})}
    write_json(path, doc)
    return path
