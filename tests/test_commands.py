"""The command line end to end: `demo` (the README's first command, on a tiny zoo) and `zoo list`."""
from __future__ import annotations

import json

from fer_ensemble.cli import main


def test_demo_trains_searches_predicts_and_reports(tmp_path, tiny_zoo_file, capsys):
    run = tmp_path / "demo"
    assert main(["demo", "--run", str(run), "--n", "400", "--zoo", str(tiny_zoo_file)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((run / "ensemble.json").read_text())
    assert set(manifest["members"]) <= {"a_vgg", "b_sep"} and manifest["members"]
    assert "Ensemble.load(" in out and "accuracy" in out
    report = (run / "report" / "report.md").read_text()
    assert "confusion" in report.lower() and "Grad-CAM" in report
    assert list((run / "report").glob("*.png"))


def test_zoo_list_shows_every_member_and_warm_starts(capsys):
    assert main(["zoo", "list", "research/zoos/cpu.toml"]) == 0
    out = capsys.readouterr().out
    for name in ("lenet_a", "sep_n32", "inc_s", "sep_n32_ft", "inc_s_ft"):
        assert name in out
    assert "from=sep_n32" in out and "from=inc_s" in out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert rows["res_w24_ft4_lc"].endswith("from=res_w24_ft4 view=local_contrast")
    assert rows["res_w24_ft4_fp"].endswith("from=res_w24_ft4 ferplus=0.5")
    assert rows["res_w24_ft4_bag"].endswith("from=res_w24_ft4 bootstrap")
    assert rows["res_w24_ft4"].endswith("from=res_w24_ft3")
    assert rows["res_w24_ft4_lc_cw"].split()[1] == "resnet18"   # a 17-character name keeps its column


def test_train_ferplus_needs_fer2013(tmp_path, tiny_zoo_file, capsys):
    """--ferplus with the synthetic set is refused before any training, naming the option."""
    code = main(["train", "a_vgg", "--zoo", str(tiny_zoo_file), "--run", str(tmp_path / "run"),
                 "--data", "synthetic:200", "--ferplus", str(tmp_path / "new.csv")])
    assert code != 0
    assert "--ferplus" in capsys.readouterr().err and not (tmp_path / "run" / "a_vgg.json").exists()
