"""docs/reliability.md, the catalogue of bad input and faults: every case names a test that exists."""
from __future__ import annotations

import re

from tests.helpers import ROOT

ROW = re.compile(r"^\| (\d+) \| (.+) \| (.+) \| `(tests/[\w/]+\.py)::(\w+)` \|$")


def test_the_catalogue_lists_forty_cases_or_more_each_with_an_existing_test():
    text = (ROOT / "docs" / "reliability.md").read_text()
    lines = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    rows = [ROW.match(line) for line in lines]
    assert all(rows), [line for line, row in zip(lines, rows) if not row]
    assert [int(r.group(1)) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= 40
    for r in rows:
        path, name = ROOT / r.group(4), r.group(5)
        assert path.exists() and re.search(rf"^def {name}\(", path.read_text(), re.M), f"{r.group(4)}::{name}"
