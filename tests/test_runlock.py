"""The run directory's lock, member names and the clean-up of killed writers' temporary files."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from fer_ensemble import runlock
from fer_ensemble.errors import EnsembleError, FerEnsembleError, RunLockedError
from fer_ensemble.rundir import check_name, lock_run, write_predictions, write_sidecar, work_dir


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _write_lock(run, pid: int, **extra) -> None:
    (run / ".lock").write_text(json.dumps({"pid": pid, "host": runlock.socket.gethostname(), "command": "train-all",
                                           **extra}))


def test_a_live_holder_stops_a_second_process_naming_the_directory_and_its_pid(tmp_path):
    holder = _sleeper()
    try:
        _write_lock(tmp_path, holder.pid, started=runlock._start_time(holder.pid))
        with pytest.raises(RunLockedError) as e:
            with lock_run(tmp_path, "search"):
                pass
        assert str(e.value).startswith(f"{tmp_path}: in use by another fer-ensemble process (PID {holder.pid}, "
                                       "train-all)")
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path, caplog):
    dead = _dead_pid()
    _write_lock(tmp_path, dead)
    with caplog.at_level("WARNING", logger="fer_ensemble.runlock"):
        with lock_run(tmp_path, "train-all") as lock:
            assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert f"removed the stale lock of PID {dead}" in caplog.text
    assert not (tmp_path / ".lock").exists()                  # released on exit


def test_a_recycled_pid_does_not_keep_a_dead_runs_lock(tmp_path):
    """The PID is alive (this process) but started at another time: the lock is stale."""
    _write_lock(tmp_path, os.getpid(), started="1")
    with lock_run(tmp_path, "tta"):
        assert json.loads((tmp_path / ".lock").read_text())["started"] == runlock._start_time(os.getpid())


def test_an_empty_lock_file_is_being_written_until_it_is_old(tmp_path):
    (tmp_path / ".lock").write_text("")
    with pytest.raises(RunLockedError, match="taking the run directory's lock"):
        with lock_run(tmp_path, "search"):
            pass
    os.utime(tmp_path / ".lock", (0, 0))                      # a writer killed long ago
    with lock_run(tmp_path, "search"):
        pass


def test_the_lock_is_reentrant_and_shared_with_the_holders_children(tmp_path):
    with lock_run(tmp_path, "search") as lock:
        with lock_run(tmp_path, "search --cv-folds"):         # search_run inside cmd_search
            pass
        assert lock.exists()
        code = ("from fer_ensemble.rundir import lock_run\n"
                f"with lock_run({str(tmp_path)!r}, 'train x'):\n    print('in')\n")
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, **runlock.child_env(lock)})
        assert child.stdout.strip() == "in", child.stderr
        alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert alone.returncode != 0 and f"PID {os.getpid()}" in alone.stderr
    assert not lock.exists()


def test_search_on_a_missing_directory_is_refused_not_created(tmp_path):
    with pytest.raises(EnsembleError, match=f"{tmp_path / 'nope'}: no such run directory"):
        with lock_run(tmp_path / "nope", "search"):
            pass
    assert not (tmp_path / "nope").exists()


def test_temporary_files_of_killed_writers_are_removed_on_the_next_run(tmp_path):
    dead, me = _dead_pid(), os.getpid()
    stale = [tmp_path / f".a_vgg.tmp{dead}.h5", tmp_path / f".a_vgg.preds.tmp{dead}.npz",
             tmp_path / ".work" / "a_vgg" / f".state.tmp{dead}.json", tmp_path / f".lock.stale{dead}"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    (tmp_path / f".report.tmp{dead}").mkdir()
    (tmp_path / f".report.tmp{dead}" / "report.md").write_text("half")
    live = tmp_path / f".b_sep.tmp{me}.h5"          # a live writer's file stays
    live.write_bytes(b"writing")
    keep = tmp_path / "a_vgg.json"
    keep.write_text("{}")
    with lock_run(tmp_path, "train-all"):
        pass
    assert not any(p.exists() for p in stale) and not (tmp_path / f".report.tmp{dead}").exists()
    assert live.exists() and keep.exists()


@pytest.mark.parametrize("name", ["../escaped", "a/b", "a\\b", ".hidden", "", "x" * 101, "a+b", "a b", "ensemble",
                                  "budget", "search_cv", 7])
def test_names_that_would_leave_the_run_or_collide_are_refused(name):
    with pytest.raises(FerEnsembleError, match=re.escape(f"zoo.toml: model: member name {name!r} is ")):
        check_name(name, "zoo.toml: model")


def test_every_writer_refuses_a_name_that_escapes(tmp_path):
    import numpy as np

    run = tmp_path / "run"
    run.mkdir()
    p = np.full((1, 7), 1 / 7)
    for write in (lambda: write_sidecar(run, "../pwn", {}), lambda: work_dir(run, "../pwn"),
                  lambda: write_predictions(run, "../pwn", p, [0], p, [0], list("abcdefg"))):
        with pytest.raises(FerEnsembleError, match=r"member name '\.\./pwn' would write outside the run directory"):
            write()
    assert list(tmp_path.iterdir()) == [run] and not list(run.iterdir())
