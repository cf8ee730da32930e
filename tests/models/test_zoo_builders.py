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


def test_paper_zoo_states_each_deviation_from_the_study_beside_its_key():
    """paper.toml departs from the study's text in two keys only, each with a comment on its line:
    dense dropout 0.2 in VGG1-4 and a batch-normalised head in the ResNets."""
    zoo = load_zoo("models_zoo/paper.toml")
    for m in zoo.models:
        if m.builder in ("vgg_v1", "vgg_v2"):
            assert m.args["dense_dropout"] == 0.2, m.name
        if m.builder == "resnet_paper":
            assert m.args["head_bn"] is True, m.name
    lines = open("models_zoo/paper.toml").read().splitlines()
    for key in ("dense_dropout", "head_bn"):
        marked = [line for line in lines if key in line]
        assert marked and all("#" in line for line in marked), key


def test_resnet_paper_head_bn_puts_batch_norm_and_relu_before_the_pooling():
    import keras

    keras.utils.set_random_seed(0)
    plain = create_model("resnet_paper", num_classes=6, stages=[1, 1], filters=8, head_bn=False)
    headed = create_model("resnet_paper", num_classes=6, stages=[1, 1], filters=8)
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


def test_spec_roundtrip():
    zoo = load_zoo("models_zoo/paper.toml")
    spec = zoo.get("VGG2")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.replace(epochs=3).epochs == 3
