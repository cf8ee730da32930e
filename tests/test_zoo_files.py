"""models_zoo/fer2013.toml, the recommended FER2013 zoo, is the recipe of the committed best
ensemble: its entries are that ensemble's members and their warm-start ancestors, and each resolves
to exactly the spec the lab zoo (research/zoos/cpu.toml) trained under the same name, which is also
the spec recorded in the member's committed sidecar. models_zoo/pretrained.toml, the built-in
ensemble's zoo, is that recipe cut to fewer chains."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_ensemble.models.zoo import load_zoo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "fer2013-cpu"


@pytest.fixture(scope="module")
def zoos():
    return load_zoo(ROOT / "models_zoo" / "fer2013.toml"), load_zoo(ROOT / "research" / "zoos" / "cpu.toml")


def _with_ancestors(zoo, names):
    """`names` and every member they were warm-started from, transitively."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            if zoo.get(name).init_from:
                todo.append(zoo.get(name).init_from)
    return out


def test_recipe_holds_the_committed_ensemble_and_its_ancestors_only(zoos):
    recipe, lab = zoos
    members = json.loads((RESULTS / "ensemble.json").read_text())["members"]
    names = [m.name for m in recipe.models]
    assert len(names) == len(set(names))
    assert set(names) == _with_ancestors(lab, members)
    assert set(members) <= set(names) and recipe.classes == lab.classes


def test_every_recipe_entry_resolves_to_the_lab_zoos_spec(zoos):
    recipe, lab = zoos
    for spec in recipe.models:
        assert spec.to_dict() == lab.get(spec.name).to_dict(), spec.name


def test_every_recipe_entry_is_the_spec_its_committed_sidecar_recorded(zoos):
    recipe, _ = zoos
    for spec in recipe.models:
        side = json.loads((RESULTS / f"{spec.name}.json").read_text())["spec"]
        want = json.loads(json.dumps(spec.to_dict()))   # tuples -> lists, as JSON holds them
        assert {k: side.get(k, want[k]) for k in want} == want, spec.name


def test_the_recipe_reads_as_one_recipe(zoos):
    """Written with `like`/`init_from`: only the two templates state the training settings."""
    text = (ROOT / "models_zoo" / "fer2013.toml").read_text()
    assert text.count("learning_rate =") == 2 and text.count("epochs =") == 2
    recipe, _ = zoos
    assert {m.builder for m in recipe.models} == {"resnet18"}


def test_the_shipped_ensembles_zoo_is_the_recipe_cut_short(zoos):
    """models_zoo/pretrained.toml (the built-in ensemble's zoo) trains entries of the recipe,
    unchanged: each resolves to the spec of the recipe's entry of the same name."""
    recipe, _ = zoos
    shipped = load_zoo(ROOT / "models_zoo" / "pretrained.toml")
    assert shipped.classes == recipe.classes and len(shipped.models) >= 4
    for spec in shipped.models:
        assert spec.to_dict() == recipe.get(spec.name).to_dict(), spec.name
