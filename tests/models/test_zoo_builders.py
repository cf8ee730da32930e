"""Every registered builder: build, forward pass, one training step, .h5 save/reload in safe mode."""
from __future__ import annotations

import numpy as np
import pytest

from fer_ensemble.errors import ModelError
from fer_ensemble.models import ModelSpec, create_model, list_models, load_zoo, model_depth

from tests.helpers import SMALL_ARGS as SMALL


@pytest.fixture(scope="module")
def batch():
    # A learnable batch: each label has its own pattern, so a few steps must lower the loss.
    rng = np.random.default_rng(0)
    y = np.arange(8) % 6
    patterns = rng.uniform(0, 1, (6, 48, 48, 1))
    return (0.8 * patterns[y] + 0.2 * rng.uniform(0, 1, (8, 48, 48, 1))).astype("float32"), y


@pytest.mark.parametrize("name", list_models())
def test_builder_roundtrip(name, batch, tmp_path):
    import keras

    x, y = batch
    # Seeded before the build: the initial weights must not depend on which tests ran before.
    keras.utils.set_random_seed(0)
    for n_cls in (7, 6):
        net = create_model(name, num_classes=n_cls, **SMALL.get(name, {}))
        assert net.output_shape == (None, n_cls)
        assert net.layers[-1].dtype_policy.compute_dtype == "float32"
    p = np.asarray(net(x, training=False))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # Eager steps: tracing a deep graph costs more than the few steps this test takes.
    net.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy", run_eagerly=True)
    losses = [float(net.train_on_batch(x, y)) for _ in range(8)]
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), f"{name}: training loss did not fall: {losses}"
    path = tmp_path / f"{name}.h5"
    net.save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), np.asarray(net(x, training=False)),
                               rtol=1e-5, atol=1e-6)
    assert model_depth(net) >= 3


def test_unknown_model_and_bad_override():
    with pytest.raises(ModelError, match="unknown model 'vgg9'.*vgg_v0"):
        create_model("vgg9")
    with pytest.raises(ModelError, match="unknown argument\\(s\\) widht; allowed:"):
        create_model("vgg_v0", widht=3)


def test_paper_zoo_matches_table1():
    zoo = load_zoo("models_zoo/paper.toml")
    assert [m.name for m in zoo.models] == ["old_net", "VGG0", "VGG1", "VGG2", "VGG3", "VGG4", "Inc0",
                                            "ResNet0", "ResNet2", "ResNet3", "ResNet4"]
    table1 = {"VGG0": 4.8e6, "VGG1": 5.9e6, "VGG2": 5.9e6, "VGG3": 5.9e6, "VGG4": 5.9e6, "Inc0": 4.8e6,
              "ResNet2": 15.6e6, "ResNet3": 21.3e6, "ResNet4": 21.3e6}
    for m in zoo.models:
        net = create_model(m.builder, num_classes=6, **m.args)
        if m.name in table1:
            assert abs(net.count_params() / table1[m.name] - 1) < 0.10, (m.name, net.count_params())


def test_paper_fixed_zoo_changes_only_the_two_fixes():
    """paper_fixed.toml is paper.toml but for dense dropout 0.2 in VGG1-4 and head_bn in ResNet2-4."""
    paper, fixed = load_zoo("models_zoo/paper.toml"), load_zoo("models_zoo/paper_fixed.toml")
    assert [m.name for m in fixed.models] == [m.name for m in paper.models] and fixed.classes == "fer6"
    for m in paper.models:
        change = ({"dense_dropout": 0.2} if m.name in ("VGG1", "VGG2", "VGG3", "VGG4") else
                  {"head_bn": True} if m.name in ("ResNet2", "ResNet3", "ResNet4") else {})
        assert fixed.get(m.name) == m.replace(args={**m.args, **change}), m.name


def test_resnet_paper_head_bn_puts_batch_norm_and_relu_before_the_pooling():
    import keras

    keras.utils.set_random_seed(0)
    plain = create_model("resnet_paper", num_classes=6, stages=[1, 1], filters=8)
    headed = create_model("resnet_paper", num_classes=6, stages=[1, 1], filters=8, head_bn=True)
    names = [layer.name for layer in headed.layers]
    assert names.index("head_relu") == names.index("pool") - 1 and "head_bn" not in [l.name for l in plain.layers]
    assert headed.count_params() == plain.count_params() + 4 * 16  # BN: gamma, beta, mean, variance


@pytest.mark.parametrize("builder", ["resnet18", "resnet34"])
def test_resnet_stem_stride_halves_every_stage_and_keeps_the_weights(builder: str):
    plain = create_model(builder, filters=8)
    fast = create_model(builder, filters=8, stem_stride=2)
    assert fast.count_params() == plain.count_params()
    assert plain.get_layer("stem_conv").output.shape[1:3] == (48, 48)
    assert fast.get_layer("stem_conv").output.shape[1:3] == (24, 24)
    # The last stage: 6x6 maps from the 48x48 face, 3x3 with the strided stem.
    last = [layer.name for layer in fast.layers if layer.name.endswith("_out")][-1]
    assert fast.get_layer(last).output.shape[1:3] == (3, 3)
    assert plain.get_layer(last).output.shape[1:3] == (6, 6)


def test_quick_zoo_builds():
    zoo = load_zoo("models_zoo/quick.toml")
    assert zoo.classes == "fer7" and len(zoo.models) >= 4
    for m in zoo.models:
        assert create_model(m.builder, **m.args).count_params() < 500_000


@pytest.mark.parametrize("text,message", [
    ('[[model]]\nname="a"\nbuilder="nope"\n', "model 'a': unknown builder 'nope'"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\nlerning_rate=1\n', "model 'a': unknown key\\(s\\) lerning_rate"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\nepochs=-1\n', "model 'a': 'epochs' must be positive"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\nbatch_size="big"\n', "model 'a': 'batch_size' must be int"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\nargs={depth=3}\n', "model 'a': builder 'vgg_v0' has no argument"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\naugment={spin=1}\n', "model 'a': bad 'augment'"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\n[[model]]\nname="a"\nbuilder="vgg_v1"\n', "'a' appears twice"),
    ('[zoo]\nclasses="fer9"\n[[model]]\nname="a"\nbuilder="vgg_v0"\n', "classes must be"),
    ('[zoo\n', "invalid TOML"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\ninit_from="b"\n[[model]]\nname="b"\nbuilder="vgg_v0"\n',
     "model 'a': init_from 'b' must name an earlier"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\n[[model]]\nname="b"\nbuilder="vgg_v1"\ninit_from="a"\n',
     "model 'b': init_from 'a' has a different builder or args"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\n[[model]]\nname="b"\nargs={filters=[8,16,32,64]}\ninit_from="a"\n',
     "model 'b': init_from 'a' has a different builder or args"),
    ('[[model]]\nname="b"\ninit_from="a"\n', "model 'b': init_from 'a' must name an earlier"),
    ('[[model]]\nname="b"\nlike="a"\n', "model 'b': like 'a' must name an earlier"),
    ('[[model]]\nname="a"\nbuilder="vgg_v0"\n[[model]]\nname="b"\nlike=3\n', "model 'b': 'like' must name"),
])
def test_zoo_validation(tmp_path, text, message):
    p = tmp_path / "z.toml"
    p.write_text(text)
    with pytest.raises(ModelError, match=message):
        load_zoo(p)


def test_init_from_inherits_architecture(tmp_path):
    """A warm start leaves out builder and args and gets its source's, even over [defaults];
    restating them identically is also accepted."""
    p = tmp_path / "z.toml"
    p.write_text('[defaults]\nbuilder="vgg_v1"\nepochs=3\n'
                 '[[model]]\nname="a"\nbuilder="sepnet"\nargs={filters=[8,16,32,64], dropout=0.1}\n'
                 '[[model]]\nname="a_ft"\ninit_from="a"\nlearning_rate=0.0005\n'
                 '[[model]]\nname="a_ft2"\ninit_from="a_ft"\nbuilder="sepnet"\n'
                 'args={filters=[8,16,32,64], dropout=0.1}\n')
    a, a_ft, a_ft2 = load_zoo(p).models
    assert (a_ft.builder, a_ft.args) == (a_ft2.builder, a_ft2.args) == ("sepnet", {"filters": (8, 16, 32, 64), "dropout": 0.1})
    assert a_ft.learning_rate == 0.0005 and a_ft.epochs == 3
    assert ModelSpec.from_dict(a_ft.to_dict()) == a_ft


def test_init_from_may_change_only_the_input_view(tmp_path):
    """A warm start's own args are laid over its source's: it may add or change `preprocess` (a
    weightless layer) and nothing else; restating the rest identically is accepted; a restart of
    a view restart keeps the view unless it says `preprocess = "none"`."""
    p = tmp_path / "z.toml"
    base = ('[[model]]\nname="a"\nbuilder="lenet"\nargs={dense_dropout=0.1, filters=[4, 8, 8]}\n'
            '[[model]]\nname="a_eq"\ninit_from="a"\n')
    views = ('[[model]]\nname="a_eq_ft"\ninit_from="a_eq"\n'
             '[[model]]\nname="a_eq_raw"\ninit_from="a_eq"\nargs={preprocess="none"}\n'
             '[[model]]\nname="a_lc"\ninit_from="a_eq"\nargs={preprocess="local_contrast"}\n')
    for restated in ('args={preprocess="equalize"}\n', 'args={dense_dropout=0.1, filters=[4, 8, 8], preprocess="equalize"}\n'):
        p.write_text(base + restated + views)
        a, a_eq, a_eq_ft, a_eq_raw, a_lc = load_zoo(p).models
        assert (a_eq.builder, a_eq.args) == ("lenet", {**a.args, "preprocess": "equalize"})
        assert a_eq_ft.args == a_eq.args and a_eq_raw.args == a.args
        assert a_lc.args == {**a.args, "preprocess": "local_contrast"}
        assert ModelSpec.from_dict(a_eq_raw.to_dict()) == a_eq_raw
    p.write_text(base + 'args={dense_dropout=0.2, preprocess="equalize"}\n')
    with pytest.raises(ModelError, match="model 'a_eq': init_from 'a' has a different builder or args"):
        load_zoo(p)
    p.write_text(base + 'args="equalize"\n')
    with pytest.raises(ModelError, match="model 'a_eq': 'args' must be a table"):
        load_zoo(p)


def test_like_copies_an_earlier_recipe(tmp_path):
    """`like` copies every setting but the name, over [defaults]; the entry's own keys win. A copy
    of a warm start keeps its init_from unless it restates one."""
    p = tmp_path / "z.toml"
    p.write_text('[defaults]\nepochs=3\n'
                 '[[model]]\nname="a"\nbuilder="sepnet"\nargs={filters=[8,16,32,64]}\nepochs=7\nseed=1\n'
                 'label_smoothing=0.1\n'
                 '[[model]]\nname="b"\nlike="a"\nseed=2\n'
                 '[[model]]\nname="a_ft"\ninit_from="a"\nlearning_rate=0.0005\nseed=3\n'
                 '[[model]]\nname="b_ft"\nlike="a_ft"\ninit_from="b"\nseed=4\n'
                 '[[model]]\nname="a_ft_again"\nlike="a_ft"\nseed=5\n')
    a, b, a_ft, b_ft, again = load_zoo(p).models
    assert b.replace(name="a", seed=1) == a and b.epochs == 7 and b.label_smoothing == 0.1
    assert b_ft.replace(name="a_ft", init_from="a", seed=3) == a_ft
    assert again.init_from == "a" and again.learning_rate == 0.0005
    assert "like" not in b.to_dict()   # resolved on load: sidecars store the full recipe


def test_zoo_refuses_an_unknown_preprocess(tmp_path):
    p = tmp_path / "z.toml"
    p.write_text('[[model]]\nname="eq"\nbuilder="sepnet"\nargs={preprocess="clahe"}\n')
    with pytest.raises(ModelError, match=r"z.toml: model 'eq': args.preprocess must be 'none' or one of equalize, local_contrast, got 'clahe'"):
        load_zoo(p)


def test_like_with_init_from_takes_the_sources_architecture(tmp_path):
    """A restart of another family reuses a template's schedule: the architecture comes from its
    warm-start source (restating it identically is accepted, a different one is refused)."""
    p = tmp_path / "z.toml"
    head = ('[[model]]\nname="v"\nbuilder="sepnet"\nargs={filters=[8,16,32,64]}\n'
            '[[model]]\nname="v_ft"\ninit_from="v"\nlearning_rate=0.0005\nepochs=4\n'
            '[[model]]\nname="r"\nbuilder="resnet18"\nargs={filters=8}\n')
    p.write_text(head + '[[model]]\nname="r_ft"\nlike="v_ft"\ninit_from="r"\nseed=9\n'
                 '[[model]]\nname="r_ft2"\nlike="v_ft"\ninit_from="r_ft"\nbuilder="resnet18"\nargs={filters=8}\n')
    v, v_ft, r, r_ft, r_ft2 = load_zoo(p).models
    for spec in (r_ft, r_ft2):
        assert (spec.builder, spec.args) == ("resnet18", {"filters": 8})
        assert (spec.learning_rate, spec.epochs) == (0.0005, 4)
    assert r_ft.replace(name="v_ft", builder="sepnet", args=v.args, init_from="v", seed=v_ft.seed) == v_ft
    p.write_text(head + '[[model]]\nname="r_ft"\nlike="v_ft"\ninit_from="r"\nargs={filters=16}\n')
    with pytest.raises(ModelError, match="model 'r_ft': init_from 'r' has a different builder or args"):
        load_zoo(p)


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


def test_spec_roundtrip():
    zoo = load_zoo("models_zoo/paper.toml")
    spec = zoo.get("VGG2")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.replace(epochs=3).epochs == 3


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


def test_cpu_zoo_rounds20_21_restart_resnet_and_vgg_chains_on_class_weighted_loss():
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


def test_cpu_zoo_round49_repeats_res_y24_with_random_erasing_in_every_phase():
    """Round 49's res_r24 chain is res_y24's phase by phase (a fourth restart taking the third's
    recipe) with fresh seeds, every phase adding random erasing to its twin's augmentation."""
    zoo = load_zoo("research/zoos/cpu.toml")
    twins = ["res_y24", "res_y24_ft", "res_y24_ft2", "res_y24_ft3", "res_y24_ft3"]
    augment = {**zoo.get("res_y24").augment, "erasing": 0.5}
    assert all(zoo.get(t).augment == zoo.get("res_y24").augment for t in twins)
    _assert_chain_repeats(zoo, ["res_r24", "res_r24_ft", "res_r24_ft2", "res_r24_ft3", "res_r24_ft4"], twins,
                          fields={"augment": augment})


def test_cpu_zoo_round22_repeats_the_vgg_x32_chain_with_fresh_seeds_and_ends_class_weighted():
    """Round 22's vgg_y32 chain is vgg_x32's phase by phase (FER+-blended first phase, cosine
    restarts) with fresh seeds; its last phase is the class-weighted restart, taken from the third
    restart instead of the fourth."""
    zoo = load_zoo("research/zoos/cpu.toml")
    twins = ["vgg_x32", "vgg_x32_ft", "vgg_x32_ft2", "vgg_x32_ft3", "vgg_x32_cw"]
    _assert_chain_repeats(zoo, [t.replace("x32", "y32") for t in twins], twins)
    assert zoo.get("vgg_y32").ferplus_targets == 0.5 and zoo.get("vgg_y32_cw").balancing == "class_weights"


def test_cpu_zoo_round23_restarts_res_w24_once_class_weighted():
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
