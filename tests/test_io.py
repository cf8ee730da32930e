"""Atomic writing (`fer_ensemble._io`): a failure never leaves a half-written file or folder."""
from __future__ import annotations

import pytest

from fer_ensemble._io import atomic_dir, atomic_path, write_json


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
