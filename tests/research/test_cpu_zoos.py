"""The research zoos (research/zoos/cpu*.toml) say what their records claim: which member restarts
which, with which recipe and seed."""
from __future__ import annotations

import pytest

from fer_ensemble.models import load_zoo


def test_cpu_zoo_seeds_share_one_recipe():
    """cpu.toml writes its VGG recipe once; the other seeds and their restarts differ in seed only."""
    zoo = load_zoo("research/zoos/cpu.toml")
    s, s_ft = zoo.get("vgg_s32"), zoo.get("vgg_s32_ft")
    for tag in "tuvw":
        assert zoo.get(f"vgg_{tag}32").replace(name="vgg_s32", seed=s.seed) == s
        ft = zoo.get(f"vgg_{tag}32_ft")
        assert ft.replace(name="vgg_s32_ft", init_from="vgg_s32", seed=s_ft.seed) == s_ft
    snap = zoo.get("vgg_u32_ft2")     # every snapshot restart: one recipe, from the previous phase
    sources = {"vgg_s32_ft2": "vgg_s32_ft", "vgg_t32_ft2": "vgg_t32_ft", "vgg_v32_ft2": "vgg_v32_ft",
               "vgg_v32_ft3": "vgg_v32_ft2", "vgg_w32_ft2": "vgg_w32_ft", "vgg_w32_ft3": "vgg_w32_ft2",
               "vgg_w32_ft4": "vgg_w32_ft3"}
    for name, source in sources.items():
        spec = zoo.get(name)
        assert spec.init_from == source
        assert spec.replace(name=snap.name, init_from=snap.init_from, seed=snap.seed) == snap
    # round 13: the same chain again; the first phase also blends in FER+ votes, the restarts do not
    x_sources = {"vgg_x32": ("vgg_s32", ""), "vgg_x32_ft": ("vgg_s32_ft", "vgg_s32"),
                 "vgg_x32_ft2": ("vgg_u32_ft2", "vgg_u32_ft"), "vgg_x32_ft3": ("vgg_u32_ft2", "vgg_u32_ft"),
                 "vgg_x32_ft4": ("vgg_u32_ft2", "vgg_u32_ft")}
    previous = ""
    for name, (recipe, recipe_source) in x_sources.items():
        spec, ref = zoo.get(name), zoo.get(recipe)
        assert spec.ferplus_targets == (0.5 if name == "vgg_x32" else 0.0) and spec.init_from == previous
        assert spec.replace(name=ref.name, init_from=recipe_source, seed=ref.seed, ferplus_targets=0.0) == ref
        previous = name


def _assert_fresh_seeds(zoo, names: list[str]) -> None:
    """The seeds of `names` differ from each other and from every other member's."""
    seeds = [zoo.get(n).seed for n in names]
    others = {spec.seed for spec in zoo.models if spec.name not in names}
    assert len(set(seeds)) == len(seeds) and not set(seeds) & others, names


@pytest.mark.parametrize("chain, builder, args", [
    ("res_y24", "resnet18", {"filters": 24, "dropout": 0.3}),
    ("inc_x32", "inception", {"stem_filters": 32, "blocks": 4, "n_start": 32, "n_step": 48,
                              "dense_units": (256,), "dropout": 0.4}),
])
def test_cpu_zoo_new_family_chain_reuses_the_vgg_schedule(chain: str, builder: str, args: dict):
    """Rounds 14 and 31 change the family only: the first phase (res_y24, inc_x32) trains as vgg_x32
    does (FER+-blended, 18 cosine epochs) and each restart as a VGG restart does, each from the
    previous phase, with seeds no other member uses."""
    zoo = load_zoo("research/zoos/cpu.toml")
    first, x = zoo.get(chain), zoo.get("vgg_x32")
    assert (first.builder, first.args) == (builder, args)
    assert first.replace(name=x.name, builder=x.builder, args=x.args, seed=x.seed) == x
    snap = zoo.get("vgg_u32_ft2")
    names = [chain, f"{chain}_ft", f"{chain}_ft2", f"{chain}_ft3"]
    for previous, name in zip(names, names[1:]):
        spec = zoo.get(name)
        assert spec.init_from == previous and (spec.builder, spec.args) == (first.builder, first.args)
        assert spec.replace(name=snap.name, builder=snap.builder, args=snap.args,
                            init_from=snap.init_from, seed=snap.seed) == snap
    _assert_fresh_seeds(zoo, names)


def test_cpu_zoo_equalized_chain_differs_from_vgg_x32_only_in_its_input():
    """Round 15's vgg_e32 chain is vgg_x32's chain with `preprocess = "equalize"` and other seeds."""
    zoo = load_zoo("research/zoos/cpu.toml")
    previous = ""
    for name in ("vgg_e32", "vgg_e32_ft", "vgg_e32_ft2", "vgg_e32_ft3"):
        spec, twin = zoo.get(name), zoo.get(name.replace("vgg_e32", "vgg_x32"))
        assert spec.args == {**twin.args, "preprocess": "equalize"}
        assert spec.init_from == previous and twin.init_from == previous.replace("e32", "x32")
        assert spec.replace(name=twin.name, args=twin.args, init_from=twin.init_from, seed=twin.seed) == twin
        previous = name


def test_cpu_zoo_class_weighted_restarts_of_resnet_and_vgg_chains():
    """Rounds 20-21: one class-weighted restart of the last phase of three ResNet chains (not the
    best member's) and two VGG chains; rounds 25 and 28 add res_w24's (from its third and fourth
    restarts), round 29 vgg_y32's (from its fourth). Otherwise the restarts' recipe and the
    source's architecture, with fresh seeds."""
    zoo = load_zoo("research/zoos/cpu.toml")
    seeds = {spec.seed for spec in zoo.models if not spec.name.endswith("_cw")}
    for name, source in (("res_z24_cw", "res_z24_ft3"), ("res_v24_cw", "res_v24_ft3"), ("res_e24_cw", "res_e24_ft3"),
                         ("res_w24_ft3_cw", "res_w24_ft3"), ("res_w24_ft4_cw", "res_w24_ft4"),
                         ("vgg_x32_cw", "vgg_x32_ft4"), ("vgg_w32_cw", "vgg_w32_ft4"),
                         ("vgg_y32_ft4_cw", "vgg_y32_ft4")):
        spec, source = zoo.get(name), zoo.get(source)
        assert spec.init_from == source.name and spec.args == source.args
        assert spec.balancing == "class_weights" and source.balancing == "none"
        assert spec.replace(name=source.name, init_from=source.init_from, seed=source.seed,
                            balancing="none") == source
        assert spec.seed not in seeds
        seeds.add(spec.seed)


def _assert_chain_repeats(zoo, chain: list[str], twins: list[str], view: dict | None = None,
                          fields: dict | None = None) -> None:
    """Each phase of `chain` starts from the phase before it and equals its twin's spec except for
    the name, `init_from`, the seed, the input view (`view`, added to the twin's args) and any other
    `fields` (set to these values, which the twin's differ from); every seed is fresh, among the
    chain's and every other member's."""
    fields = fields or {}
    previous = ""
    for name, twin in zip(chain, twins, strict=True):
        spec, twin = zoo.get(name), zoo.get(twin)
        assert spec.init_from == previous, name
        assert spec.args == {**twin.args, **(view or {})}, name
        assert all(getattr(spec, k) == v != getattr(twin, k) for k, v in fields.items()), name
        assert spec.replace(name=twin.name, args=twin.args, init_from=twin.init_from, seed=twin.seed,
                            **{k: getattr(twin, k) for k in fields}) == twin, name
        previous = name
    _assert_fresh_seeds(zoo, chain)


_EQUALIZED = {"preprocess": "equalize"}
_LOCAL_CONTRAST = {"preprocess": "local_contrast"}


@pytest.mark.parametrize("tag, view", [("z24", {}), ("v24", {}), ("e24", _EQUALIZED), ("w24", {}), ("t24", {}),
                                       ("s24", {}), ("q24", _LOCAL_CONTRAST), ("p24", _LOCAL_CONTRAST)])
def test_cpu_zoo_resnet_reseeds_differ_from_the_first_chain_only_in_their_seeds(tag: str, view: dict):
    """Rounds 16-18's res_z24, res_v24 and res_e24 chains, rounds 23-25's res_w24 chain and rounds
    36's res_t24 and 41's res_s24 chains repeat res_y24's, phase by phase, with fresh seeds; round 18's also sees histogram-equalized faces
    and rounds 44-45's locally contrast-normalized ones, and every restart inherits that view."""
    zoo = load_zoo("research/zoos/cpu.toml")
    twins = ["res_y24", "res_y24_ft", "res_y24_ft2", "res_y24_ft3"]
    assert [zoo.get(t).init_from for t in twins] == ["", *twins[:-1]]
    _assert_chain_repeats(zoo, [t.replace("y24", tag) for t in twins], twins, view)


def test_cpu_zoo_res_r24_repeats_res_y24_with_random_erasing_in_every_phase():
    """Round 49's res_r24 chain is res_y24's phase by phase (a fourth restart taking the third's
    recipe) with fresh seeds, every phase adding random erasing to its twin's augmentation."""
    zoo = load_zoo("research/zoos/cpu.toml")
    twins = ["res_y24", "res_y24_ft", "res_y24_ft2", "res_y24_ft3", "res_y24_ft3"]
    augment = {**zoo.get("res_y24").augment, "erasing": 0.5}
    assert all(zoo.get(t).augment == zoo.get("res_y24").augment for t in twins)
    _assert_chain_repeats(zoo, ["res_r24", "res_r24_ft", "res_r24_ft2", "res_r24_ft3", "res_r24_ft4"], twins,
                          fields={"augment": augment})


def test_cpu_zoo_vgg_y32_repeats_the_vgg_x32_chain_with_fresh_seeds_and_ends_class_weighted():
    """Round 22's vgg_y32 chain is vgg_x32's phase by phase (FER+-blended first phase, cosine
    restarts) with fresh seeds; its last phase is the class-weighted restart, taken from the third
    restart instead of the fourth."""
    zoo = load_zoo("research/zoos/cpu.toml")
    twins = ["vgg_x32", "vgg_x32_ft", "vgg_x32_ft2", "vgg_x32_ft3", "vgg_x32_cw"]
    _assert_chain_repeats(zoo, [t.replace("x32", "y32") for t in twins], twins)
    assert zoo.get("vgg_y32").ferplus_targets == 0.5 and zoo.get("vgg_y32_cw").balancing == "class_weights"


def test_cpu_zoo_res_w24_cw_restarts_res_w24_once_class_weighted():
    """Round 23's first restart of res_w24 (whose chain the reseed test above checks phase by phase)
    is its plain sibling res_w24_ft on class-weighted loss (rounds 20-21's lever), freshly seeded."""
    zoo = load_zoo("research/zoos/cpu.toml")
    spec, sibling = zoo.get("res_w24_cw"), zoo.get("res_w24_ft")
    assert spec.balancing == "class_weights" and sibling.balancing == "none"
    assert spec.replace(name=sibling.name, seed=sibling.seed, balancing="none") == sibling
    assert spec.seed not in {s.seed for s in zoo.models if s.name != "res_w24_cw"}


@pytest.mark.parametrize("name, source, view, fields", [
    *[(f"res_{tag}_eq", f"res_{tag}_ft3", _EQUALIZED, {}) for tag in ("y24", "z24", "v24", "w24", "t24", "s24")],
    ("res_w24_ft4", "res_w24_ft3", {}, {}), ("vgg_y32_ft4", "vgg_y32_ft3", {}, {}),
    ("vgg_y32_ft5", "vgg_y32_ft4", {}, {}), ("vgg_y32_ft6", "vgg_y32_ft5", {}, {}),
    ("vgg_y32_ft4_eq", "vgg_y32_ft4", _EQUALIZED, {}), ("res_w24_ft4_eq", "res_w24_ft4", _EQUALIZED, {}),
    ("res_w24_ft4_lc", "res_w24_ft4", _LOCAL_CONTRAST, {}),
    ("res_w24_ft4_fp", "res_w24_ft4", {}, {"ferplus_targets": 0.5}),
    ("vgg_y32_ft6_lc", "vgg_y32_ft6", _LOCAL_CONTRAST, {}),
    ("res_w24_ft4_lc_cw", "res_w24_ft4_lc", {}, {"balancing": "class_weights"}),
    ("res_w24_ft4_bag", "res_w24_ft4", {}, {"bootstrap": True}),
    ("vgg_y32_ft6_bag", "vgg_y32_ft6", {}, {"bootstrap": True}),
    ("res_w24_ft4_bag2", "res_w24_ft4", {}, {"bootstrap": True}),
    ("res_t24_cw", "res_t24_ft3", {}, {"balancing": "class_weights"}),
    ("res_t24_ft4", "res_t24_ft3", {}, {}), ("res_t24_ft4_bag", "res_t24_ft4", {}, {"bootstrap": True}),
    ("res_t24_ft4_cw", "res_t24_ft4", {}, {"balancing": "class_weights"}),
    ("res_t24_ft4_eq", "res_t24_ft4", _EQUALIZED, {}),
    ("res_t24_ft4_bag2", "res_t24_ft4", {}, {"bootstrap": True}),
    ("res_t24_ft5", "res_t24_ft4", {}, {}), ("res_t24_ft5_bag", "res_t24_ft5", {}, {"bootstrap": True}),
    ("res_t24_ft5_cw", "res_t24_ft5", {}, {"balancing": "class_weights"}),
    ("res_t24_ft5_bag2", "res_t24_ft5", {}, {"bootstrap": True}), ("res_t24_ft5_eq", "res_t24_ft5", _EQUALIZED, {}),
    ("res_s24_ft4", "res_s24_ft3", {}, {}), ("res_s24_ft4_bag", "res_s24_ft4", {}, {"bootstrap": True}),
    ("res_s24_cw", "res_s24_ft3", {}, {"balancing": "class_weights"}),
    ("res_q24_cw", "res_q24_ft3", {}, {"balancing": "class_weights"}),
    ("res_q24_ft4", "res_q24_ft3", {}, {}), ("res_q24_ft4_bag", "res_q24_ft4", {}, {"bootstrap": True}),
    ("res_q24_eq", "res_q24_ft3", _EQUALIZED, {}),
    ("res_q24_ft5", "res_q24_ft4", {}, {}), ("res_q24_ft4_bag2", "res_q24_ft4", {}, {"bootstrap": True}),
    ("res_q24_ft4_cw", "res_q24_ft4", {}, {"balancing": "class_weights"}),
    ("res_r24_ft5", "res_r24_ft4", {}, {}), ("res_r24_ft4_cw", "res_r24_ft4", {}, {"balancing": "class_weights"}),
    ("res_r24_ft6", "res_r24_ft5", {}, {}), ("res_r24_ft5_eq", "res_r24_ft5", _EQUALIZED, {}),
    ("res_r24_ft5_bag", "res_r24_ft5", {}, {"bootstrap": True}),
    ("res_r24_ft5_cw", "res_r24_ft5", {}, {"balancing": "class_weights"}),
    ("res_r24_ft7", "res_r24_ft6", {}, {}), ("res_r24_ft8", "res_r24_ft7", {}, {}),
    ("res_r24_ft7_eq", "res_r24_ft7", _EQUALIZED, {}), ("res_r24_ft9", "res_r24_ft8", {}, {})])
def test_cpu_zoo_restart_takes_its_sources_recipe(name: str, source: str, view: dict, fields: dict):
    """A restart is its source restart's spec started from that restart, with the input view added
    to its args, any other changed `fields`, and a seed no other member uses. Round 19 restarts each
    raw-input ResNet seed's third restart on equalized faces (round 26 adds res_w24's); round 27
    takes a fourth restart of the res_w24 and vgg_y32 chains; rounds 29-30 a fifth and a sixth of
    vgg_y32's and one on equalized faces; round 32 restarts the best member, res_w24_ft4, on
    equalized and on locally contrast-normalized faces, and on FER+-blended targets; round 33 puts
    vgg_y32_ft6 on the local-contrast view and restarts res_w24_ft4_lc with class weights; round 34
    restarts res_w24_ft4 and vgg_y32_ft6 each on a bootstrap draw of the Training split (bagging),
    and res_w24_ft4 once more on a second draw; round 37 branches the fifth seed's third restart,
    res_t24_ft3, class-weighted and on equalized faces; round 38 takes its fourth restart and
    branches that on a bootstrap draw, class-weighted and on equalized faces; round 39 takes a second
    draw; round 40 takes a fifth restart and branches it on two draws, class-weighted and on equalized faces;
    round 42 takes the sixth seed's fourth restart and branches it on a bootstrap draw; round 43
    branches the sixth seed's third restart class-weighted and on equalized faces; round 46 branches
    the local-contrast seed's third restart class-weighted; round 47 takes its fourth restart, branches
    that on a bootstrap draw, and branches the third restart on equalized faces; round 48 takes its
    fifth restart and branches the fourth on a second draw and class-weighted; round 50 takes the
    erasing seed's fifth restart and branches its fourth class-weighted (erasing kept, as the recipe);
    round 51 takes its sixth restart and branches the fifth on equalized faces, on a bootstrap draw
    and class-weighted; round 52 takes its seventh, eighth and ninth restarts and branches the
    seventh on equalized faces."""
    zoo = load_zoo("research/zoos/cpu.toml")
    spec, last = zoo.get(name), zoo.get(source)
    assert spec.init_from == source and spec.args == {**last.args, **view}
    assert all(getattr(spec, k) == v != getattr(last, k) for k, v in fields.items())
    assert spec.replace(name=last.name, args=last.args, init_from=last.init_from, seed=last.seed,
                        **{k: getattr(last, k) for k in fields}) == last
    _assert_fresh_seeds(zoo, [name])


def test_cpu2h_zoo_is_three_independent_shortened_resnet_chains():
    """cpu2h.toml (the 2-hour zoo): res_q24's recipe (local contrast) for chains a and c, res_y24's
    (raw faces) for b, shortened to 14 + 6 epochs in mixed precision; each restart from its own
    chain's first phase with res_q24_ft's recipe; seeds unused by cpu.toml; and research/scripts/cpu2h.sh
    trains exactly these phases, first phases before restarts."""
    import re
    from pathlib import Path

    small, big = load_zoo("research/zoos/cpu2h.toml"), load_zoo("research/zoos/cpu.toml")
    short = dict(epochs=14, patience=14, mixed_precision=True)
    for name, recipe in (("r2h_a", "res_q24"), ("r2h_b", "res_y24"), ("r2h_c", "res_q24")):
        spec, ref = small.get(name), big.get(recipe)
        assert spec.init_from == "" and spec.replace(name=ref.name, seed=ref.seed, plateau_patience=ref.plateau_patience,
                                                     **{k: getattr(ref, k) for k in short}) == ref
        assert all(getattr(spec, k) == v for k, v in short.items())
        ft, ref_ft = small.get(f"{name}_ft"), big.get(f"{recipe}_ft")
        assert ft.init_from == name and (ft.builder, ft.args) == (spec.builder, spec.args)
        assert ft.epochs == 6 and ft.mixed_precision
        assert ft.replace(name=ref_ft.name, init_from=ref_ft.init_from, seed=ref_ft.seed, epochs=ref_ft.epochs,
                          patience=ref_ft.patience, plateau_patience=ref_ft.plateau_patience,
                          mixed_precision=False) == ref_ft
    seeds = [m.seed for m in small.models]
    assert len(set(seeds)) == len(seeds) and not set(seeds) & {m.seed for m in big.models}
    script = (Path(__file__).resolve().parents[2] / "research" / "scripts" / "cpu2h.sh").read_text()
    phases = re.search(r"for phase in ([^;]+);", script).group(1).split()
    assert [p.split(":") for p in phases] == [[m.name, str(m.epochs)] for m in
                                              sorted(small.models, key=lambda m: bool(m.init_from))]
