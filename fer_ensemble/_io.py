"""Atomic file writing: every artifact is written under a temporary name, then renamed.

A crash or kill therefore never leaves a half-written file under the final name; the temporary
files a killed writer leaves behind (`TEMP_NAME`) are removed by the next run (`remove_stale_temps`).
A write that fails for want of room or rights raises WriteError naming the file.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import WriteError

# Temporary names of atomic_path / atomic_dir (and of a stale lock set aside): .NAME.tmpPID[.suffix]
TEMP_NAME = re.compile(r"^\..+\.(?:tmp|old|stale)(\d+)(?:\.[^.]+)?$")
_H5_ERRNO = re.compile(r"errno = (\d+), error message = '([^']*)'")


def write_failure(error: BaseException, path: str | os.PathLike) -> WriteError | None:
    """`error` as a WriteError naming `path` when it is a failed write (an OSError, or the
    RuntimeError h5py raises when the file system refuses: disk full, file too large); None for
    any other error."""
    if isinstance(error, WriteError):
        return error
    if not isinstance(error, (OSError, RuntimeError)):
        return None
    h5 = _H5_ERRNO.search(str(error))   # h5py's messages carry the system's errno and its text
    reason = error.strerror if isinstance(error, OSError) and error.strerror else h5.group(2) if h5 else None
    if reason is None and _free_bytes(path) < 1 << 20:   # h5py's later errors ("Slist already enabled?")
        reason = "No space left on device"                # say nothing of the disk
    if reason is None:
        return WriteError(f"{path}: could not be written ({error})") if isinstance(error, OSError) else None
    return WriteError(f"{path}: could not be written ({reason})")


def _free_bytes(path: str | os.PathLike) -> int:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return 1 << 62


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: Keras and numpy pick formats from it.
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        failure = write_failure(e, path)
        if failure is None:
            raise
        raise failure from None
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside `path`; if the block succeeds, it replaces `path` as a
    whole (files an earlier version held and this one did not write are gone). If the block fails,
    `path` is left as it was. (Between the two renames `path` is briefly absent; a folder cannot
    be swapped onto a non-empty one in one rename.)"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = path.with_name(f".{path.name}.tmp{os.getpid()}")
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    for leftover in (stage, old):
        shutil.rmtree(leftover, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        if path.exists():
            os.replace(path, old)
        os.replace(stage, path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_temps(root: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders (`TEMP_NAME`) under `root` whose writer process is
    gone: what a killed writer left. Returns what was removed."""
    from .runlock import alive

    removed = []
    for p in sorted(Path(root).rglob(".*")):
        m = TEMP_NAME.match(p.name)
        if not m or int(m.group(1)) == os.getpid() or alive(int(m.group(1))) or not p.exists():
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_npz(path: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file handle stops numpy from appending ".npz"
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: str | os.PathLike, error: type[Exception]) -> Any:
    """Parse a JSON file; an unreadable file or bad syntax raises `error` naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise error(f"{path}: cannot read JSON ({e})") from None


def read_toml(path: str | os.PathLike, what: str, error: type[Exception]) -> dict:
    """Parse a TOML file; a missing file or bad syntax raises `error` naming the file."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: invalid TOML ({e})") from None
