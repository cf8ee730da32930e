"""Atomic writing (`fer_ensemble._io`): a failure never leaves a half-written file or folder, and a
write the file system refuses (disk full) names the file."""
from __future__ import annotations

import resource
import signal
import subprocess
import sys

import pytest

from fer_ensemble._io import atomic_dir, atomic_path, write_json
from tests.helpers import ROOT


def test_atomic_path_renames_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text().strip() == '{\n  "v": 1\n}'
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_atomic_dir_replaces_the_folder_whole(tmp_path):
    target = tmp_path / "report"
    (target / "old").mkdir(parents=True)
    (target / "old" / "stale.png").write_text("stale")
    (target / "keep.md").write_text("v1")
    with atomic_dir(target) as stage:
        assert stage.parent == tmp_path and not any(stage.iterdir())
        (stage / "keep.md").write_text("v2")
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert sorted(p.name for p in target.rglob("*")) == ["keep.md"] and (target / "keep.md").read_text() == "v2"


def test_atomic_dir_keeps_the_old_folder_when_the_block_fails(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "keep.md").write_text("v1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as stage:
            (stage / "keep.md").write_text("half")
            raise ValueError("bad input")
    assert [p.name for p in tmp_path.iterdir()] == ["report"] and (target / "keep.md").read_text() == "v1"
    with atomic_dir(tmp_path / "new") as stage:   # no earlier folder: created
        (stage / "x").write_text("1")
    assert (tmp_path / "new" / "x").read_text() == "1"


def _limited(code: str, max_bytes: int) -> subprocess.CompletedProcess:
    """Run `code` in a Python process that may write no file larger than `max_bytes` (RLIMIT_FSIZE):
    its writes fail the way they fail on a full disk, from the same calls."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limit,
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize("writer", ["npz", "h5"])
def test_a_write_the_file_system_refuses_names_the_file_and_leaves_no_temporary_file(tmp_path, writer):
    target = tmp_path / f"big.{writer}"
    write = (f"write_npz({str(target)!r}, a=np.random.default_rng(0).random(200_000))" if writer == "npz" else
             "import keras\n"
             "m = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(64)])\n"
             f"with atomic_path({str(target)!r}) as tmp:\n    m.save(tmp)")
    body = "".join(f"    {line}\n" for line in write.splitlines())
    code = ("import numpy as np\nfrom fer_ensemble._io import atomic_path, write_npz\n"
            f"from fer_ensemble.errors import WriteError\ntry:\n{body}except WriteError as e:\n    print(e)\n")
    done = _limited(code, 20_000)
    assert done.stdout.strip() == f"{target}: could not be written (File too large)", done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_h5py_errors_of_a_full_disk_name_the_file(tmp_path, monkeypatch):
    import fer_ensemble._io as io

    err = RuntimeError("Can't decrement id ref count (unable to extend file properly, errno = 28, "
                       "error message = 'No space left on device')")
    full = "could not be written (No space left on device)"
    assert str(io.write_failure(err, tmp_path / "a.h5")) == f"{tmp_path / 'a.h5'}: {full}"
    later = RuntimeError("Slist already enabled?")           # h5py's next error says nothing of the disk
    assert io.write_failure(later, tmp_path / "a.h5") is None
    monkeypatch.setattr(io, "_free_bytes", lambda path: 4096)
    assert str(io.write_failure(later, tmp_path / "b.h5")) == f"{tmp_path / 'b.h5'}: {full}"
    assert io.write_failure(ValueError("x"), tmp_path / "c.h5") is None
