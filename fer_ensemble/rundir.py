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
  RUN/.lock              the PID lock of the process writing the run (`runlock`)

Every file is written atomically (`_io`): under a temporary name, then renamed. A member's NAME
must pass `check_name`, so that its files stay inside the run directory. The stages that write a
run (train, tta, search, import, budget) hold its lock (`lock_run`), which also clears the
temporary files of writers killed earlier.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import runlock
from ._io import read_json, remove_stale_temps, write_json, write_npz
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
# A member's name becomes file names (RUN/NAME.h5, ...) and is joined with "+" in search.csv.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
RESERVED_NAMES = tuple(Path(f).stem for f in RUN_FILES)   # NAME.json would overwrite these


# ---------------------------------------------------------------- the lock
@contextlib.contextmanager
def lock_run(run_dir: str | os.PathLike, command: str, create: bool = False) -> Iterator[Path]:
    """Hold `run_dir`'s lock for the block (RunLockedError naming the holder's PID if another
    live process has it), after removing the temporary files of writers that were killed.
    `create`: make the directory (training, import); else it must exist."""
    if create:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    elif not Path(run_dir).is_dir():
        raise EnsembleError(f"{run_dir}: no such run directory")
    with runlock.hold(run_dir, command) as lock:
        remove_stale_temps(run_dir)
        yield lock


def locked(command: str) -> Callable:
    """Decorator: the function (whose first argument is the run directory) runs under `lock_run`."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run_locked(run_dir, *args, **kwargs):
            with lock_run(run_dir, command):
                return fn(run_dir, *args, **kwargs)
        return run_locked
    return wrap


# ---------------------------------------------------------------- names
def check_name(name: object, where: str, error: type[Exception] = FerEnsembleError) -> str:
    """`name` if it can name a member (letters, digits, '_' and '-', up to 100, not a run file's
    name); else `error` saying why, prefixed with `where`."""
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        raise error(f"{where}: member name {name!r} is not allowed: use letters, digits, '_' and '-' "
                    "(up to 100, starting with a letter or digit), since it becomes file names in the "
                    "run directory")
    if name in RESERVED_NAMES:
        raise error(f"{where}: member name {name!r} is reserved ({name}.json is a file of the run itself)")
    return name


def _inside(run_dir: str | os.PathLike, name: str) -> Path:
    """RUN, after making sure files named after `name` stay in it (the last guard before a
    write; names are checked in full where they are defined, by `check_name`)."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or Path(name).name != name:
        raise FerEnsembleError(f"{run_dir}: member name {name!r} would write outside the run directory")
    return Path(run_dir)


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
    return _inside(run_dir, name) / WORK_DIR / name


def visible(path: Path) -> bool:
    """False for dot files: temporary files of an interrupted atomic write."""
    return not path.name.startswith(".")


# ---------------------------------------------------------------- sidecars and models
def read_sidecar(path: str | os.PathLike, error: type[Exception] = FerEnsembleError) -> dict:
    """A sidecar (or other JSON record of the run); unreadable or bad JSON raises `error` naming it."""
    return read_json(path, error)


def write_sidecar(run_dir: str | os.PathLike, name: str, sidecar: dict) -> Path:
    path = sidecar_path(_inside(run_dir, name), name)
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
    path = preds_path(_inside(run_dir, name), name)
    write_npz(path, val_proba=val_proba, val_y=val_y, test_proba=test_proba, test_y=test_y,
              class_names=np.array(class_names))
    return path


def cache_files(run_dir: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(run_dir).glob(f"*{PREDS_SUFFIX}") if visible(p))


def read_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One prediction cache's arrays (CACHE_KEYS); a bad file raises EnsembleError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            item = {k: z[k] for k in CACHE_KEYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise EnsembleError(f"{path}: not a valid prediction cache ({e or e.__class__.__name__})") from None
    _check_cache(item, path)
    return item


def _check_cache(item: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Probabilities (N, C) for N labels and C classes, finite, each row a distribution."""
    classes = len(item["class_names"])
    for split in ("val", "test"):
        proba, y = item[f"{split}_proba"], item[f"{split}_y"]
        if proba.ndim != 2 or proba.shape != (len(y), classes):
            raise EnsembleError(f"{path}: {split}_proba has shape {proba.shape}, expected ({len(y)}, {classes}) "
                                f"for {len(y)} {split}_y labels and {classes} classes")
        bad = np.flatnonzero(~np.isfinite(proba).all(axis=1))
        if bad.size:
            raise EnsembleError(f"{path}: {split}_proba has NaN or infinite values (rows {_rows(bad)})")
        # bf16 members round each probability to ~3 digits: a loose bound still tells logits apart
        off = np.flatnonzero((proba < -1e-3).any(axis=1) | (np.abs(proba.sum(axis=1) - 1) > 0.02))
        if off.size:
            raise EnsembleError(f"{path}: {split}_proba rows {_rows(off)} are not probabilities "
                                "(negative, or not summing to 1)")
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise EnsembleError(f"{path}: {split}_y has labels outside 0-{classes - 1}")


def _rows(idx: np.ndarray) -> str:
    return ", ".join(map(str, idx[:10])) + (f" and {idx.size - 10} more" if idx.size > 10 else "")


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
