"""One writer at a time in a run directory: a PID lock file, RUN/.lock.

The file is created with O_CREAT | O_EXCL (atomic on local file systems) and holds the holder's
PID, host, process start time and command. A second process finds it and stops at once with a
message naming the directory and the holder's PID. A lock whose process is gone (killed, crashed)
is stale: it is detected by `os.kill(pid, 0)` plus the start time in /proc (a recycled PID does
not keep a dead run's lock) and taken over. The lock is re-entrant within a process, and child
processes that the holder starts with `child_env` share it through an environment variable.
(`train-all --jobs/--ray` needs no sharing: its Ray tasks write in scratch folders and the driver,
the holder, writes the run directory.)
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from .errors import RunLockedError

LOCK_FILE = ".lock"
LOCK_ENV = "FER_ENSEMBLE_RUN_LOCK"   # "<lock path>:<holder pid>", set for the holder's children
_EMPTY_GRACE_S = 5.0                 # an empty lock file younger than this is being written
_held: dict[Path, int] = {}          # lock files this process holds -> nesting depth
log = logging.getLogger(__name__)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]   # field 22; the command name may hold spaces


def _me(command: str) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
            "command": command}


def alive(pid: int, started: str | None = None, host: str | None = None) -> bool:
    """Whether process `pid` (started at `started`, on `host`) still runs; a lock from another
    host cannot be checked and counts as alive."""
    if host not in (None, socket.gethostname()):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: it exists
        pass
    now = _start_time(pid)
    return started is None or now is None or now == started


def _read(path: Path) -> dict | None:
    """The holder recorded in `path`; None when the file is empty or garbled."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def _inherited(path: Path) -> bool:
    """True in a child of the holder (started with `child_env`), which works under its parent's lock."""
    value = os.environ.get(LOCK_ENV, "")
    where, _, pid = value.rpartition(":")
    holder = _read(path)
    return (bool(where) and Path(where) == path and holder is not None and str(holder["pid"]) == pid
            and alive(holder["pid"], holder.get("started"), holder.get("host")))


def _take_over(path: Path, stale: dict | None) -> None:
    """Remove a stale lock file, unless another process replaced it meanwhile (then put it back)."""
    aside = path.with_name(f"{path.name}.stale{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if _read(aside) != stale:   # not the file we judged stale: a live process's fresh lock
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink()
    log.warning("%s: removed the stale lock of PID %s (the process is gone)", path.parent,
                stale["pid"] if stale else "unknown")


def _acquire(path: Path, command: str) -> None:
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:
                try:
                    age = time.time() - path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age < _EMPTY_GRACE_S:
                    raise RunLockedError(f"{path.parent}: another process is taking the run directory's "
                                         f"lock ({path}) right now") from None
            elif alive(holder["pid"], holder.get("started"), holder.get("host")):
                raise RunLockedError(
                    f"{path.parent}: in use by another fer-ensemble process (PID {holder['pid']}, "
                    f"{holder.get('command', '?')}); wait for it to finish. If no such process runs, "
                    f"remove {path}") from None
            _take_over(path, holder)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(_me(command), fh)
        return
    raise RunLockedError(f"{path.parent}: could not take the lock {path} (other processes keep taking it)")


@contextlib.contextmanager
def hold(run_dir: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold RUN/.lock for the block; RunLockedError (naming the directory and the holder's PID)
    when a live process holds it. Yields the lock file's path."""
    path = (Path(run_dir) / LOCK_FILE).resolve()
    if path in _held or _inherited(path):
        _held[path] = _held.get(path, 0) + 1
        try:
            yield path
        finally:
            _held[path] -= 1
            if not _held[path]:
                del _held[path]
        return
    _acquire(path, command)
    _held[path] = 1
    try:
        yield path
    finally:
        del _held[path]
        holder = _read(path)
        if holder is not None and holder["pid"] == os.getpid():
            path.unlink()


def child_env(lock: Path) -> dict[str, str]:
    """The environment entry that lets this process's children work under its lock."""
    return {LOCK_ENV: f"{lock}:{os.getpid()}"}
