"""scripts/paper_smoke.py: one JSON per member with its verdicts, reused when the budget matches."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_csv
from tests.helpers import load_script

paper_smoke = load_script("paper_smoke")


def _csv(tmp_path, data):
    rows = [(int(y), x, usage) for split, usage in (("train", "Training"), ("val", "PublicTest"),
                                                     ("test", "PrivateTest"))
            for x, y in zip(data.split(split).x, data.split(split).y)]
    return write_csv(tmp_path / "fer2013.csv", rows)


def _run(capsys, csv, zoo, tmp_path, epochs, *extra):
    argv = ["--data", str(csv), "--zoo", str(zoo), "--classes", "fer6", "--members", "a_vgg",
            "--epochs", str(epochs), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"), *extra]
    assert paper_smoke.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_smoke_writes_verdicts_reuses_them_and_retrains_for_another_budget(tmp_path, capsys, tiny_data,
                                                                            tiny_zoo_file):
    csv = _csv(tmp_path, tiny_data)
    summary = _run(capsys, csv, tiny_zoo_file, tmp_path, 2)
    (rec,) = summary["members"]
    assert rec["member"] == "a_vgg" and rec["classes"] == "fer6" and rec["epochs"] == 2
    assert (rec["balancing"], rec["learning_rate"], rec["batch_size"]) == ("none", 0.003, 32)
    assert len(rec["train_accuracy"]) == len(rec["publictest_accuracy"]) == 2
    assert rec["best_publictest"] == max(rec["publictest_accuracy"])
    assert rec["leaves_chance"] == (rec["best_publictest"] >= 0.40)
    assert rec["rises"] == (rec["train_accuracy"][1] > rec["train_accuracy"][0])
    assert summary["all_leave_chance"] == rec["leaves_chance"] and summary["all_rise"] == rec["rises"]
    assert summary["epochs"] == {"a_vgg": 2}
    record = tmp_path / "out" / "fer6" / "a_vgg.json"
    assert json.loads(record.read_text()) == rec

    sidecar = tmp_path / "work" / "fer6" / "a_vgg.json"
    stamp = sidecar.stat().st_mtime_ns
    assert _run(capsys, csv, tiny_zoo_file, tmp_path, 2)["members"] == [rec]   # the same budget: reused
    assert sidecar.stat().st_mtime_ns == stamp

    (longer,) = _run(capsys, csv, tiny_zoo_file, tmp_path, 3)["members"]      # another budget: trained again
    assert longer["epochs"] == 3 and json.loads(record.read_text())["epochs"] == 3

    fewer = longer["train_images"] - 6                                        # other faces: trained again
    (subset,) = _run(capsys, csv, tiny_zoo_file, tmp_path, 3, "--train-images", str(fewer))["members"]
    assert subset["train_images"] == fewer and json.loads(record.read_text())["train_images"] == fewer
    assert (tmp_path / "work" / f"fer6-{fewer}" / "a_vgg.json").exists()


def test_table_lists_each_record_with_its_verdict():
    rec = {"member": "m", "classes": "fer6", "epochs": 2, "params": 1234567, "wall_s": 1500.4,
           "train_accuracy": [0.2, 0.3], "publictest_accuracy": [0.35, 0.41], "best_publictest": 0.41,
           "leaves_chance": True, "rises": True}
    failing = {**rec, "member": "n", "train_accuracy": [0.3, 0.2], "rises": False}
    header, rule, ok, bad = paper_smoke.markdown_table([rec, failing]).splitlines()
    assert header.count("|") == rule.count("|") == ok.count("|") == 10
    assert ok == "| m | fer6 | 2 | 1,234,567 | 1,500 | 0.200, 0.300 | 0.350, 0.410 | 0.410 | yes |"
    assert bad.startswith("| n |") and bad.endswith("| **no** |")


def test_budget_is_three_epochs_for_the_resnets_six_for_the_rest_unless_given():
    from fer_ensemble.models import load_zoo

    zoo = load_zoo(Path(__file__).resolve().parents[1] / "models_zoo" / "paper.toml")
    budgets = {s.name: paper_smoke.budget(s) for s in zoo.models}
    assert budgets == {s.name: 3 if s.name.startswith("ResNet") else 6 for s in zoo.models}
    assert {paper_smoke.budget(s, 4) for s in zoo.models} == {4}
    assert paper_smoke.budget_help() == "6, 3 for builder resnet_paper"


def test_committed_records_follow_from_their_numbers_and_are_quoted_in_the_docs():
    from fer_ensemble.models import load_zoo

    root = Path(__file__).resolve().parents[1]
    zoo = load_zoo(root / "models_zoo" / "paper.toml")
    doc = (root / "docs" / "research" / "paper-zoo.md").read_text()
    records = sorted((root / "results" / "paper-smoke").glob("fer[67]/*.json"))
    superseded = sorted((root / "results" / "paper-smoke" / "class-weights").glob("fer[67]/*.json"))  # VGG3 before
    assert records
    for path in records + superseded:
        rec = json.loads(path.read_text())
        assert (rec["classes"], rec["member"]) == (path.parent.name, path.stem)
        assert rec["epochs"] == len(rec["train_accuracy"]) == len(rec["publictest_accuracy"])
        if path in records:   # a current record holds its member's budget and, where it says, recipe
            spec = zoo.get(rec["member"])
            assert rec["epochs"] == paper_smoke.budget(spec), path
            said = [k for k in ("balancing", "learning_rate", "batch_size") if k in rec]
            assert [rec[k] for k in said] == [getattr(spec, k) for k in said], path
        assert rec["best_publictest"] == max(rec["publictest_accuracy"])
        assert rec["leaves_chance"] == (rec["best_publictest"] >= paper_smoke.CHANCE_BAR)
        assert rec["rises"] == all(b > a for a, b in zip(rec["train_accuracy"], rec["train_accuracy"][1:]))
        row = paper_smoke.markdown_table([rec]).splitlines()[-1]
        assert row in doc, f"{path} is not quoted in docs/research/paper-zoo.md"
