"""Every builder learns: at its default size, and as each paper-zoo member is configured, it fits a
fixed small batch within a bounded number of Adam steps, and its training loss never climbs far
above its first batch's on the way.

"One training step lowers the loss" (test_zoo_builders.py) also passed for the two failures this
guards against (docs/research/paper-zoo.md): dense dropout 0.5 after each of VGG_v1's three dense
layers (a dead head: it fits slowly, within the 120 steps in some runs and not in others, so this
test does not reliably catch it) and the un-normalised residual stream of the study's ResNet (its
loss climbs from 1.8 on the first batch to 8.1 over the first epoch: logits blown up; healthy nets
stay within 2.1x their first batch's).

The batch is blocky class patterns under pixel noise, not synthetic faces: 64 synthetic faces take
even LeNet hundreds of steps, too long for CI to tell a slow net from a broken one.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from fer_ensemble.models import builder_arguments, create_model, list_models, load_zoo

from tests.helpers import ROOT

FIT_IMAGES = 64
SIZE = 32              # pixels for the registered builders (default widths and depths), for CI's time
PAPER_SIZE = 48        # the paper members at the study's size: at 32 pixels the broken ones fit too
BATCH = 16
MAX_EPOCHS = 30        # 120 steps; the slowest healthy builder needed 92 (vgg_v0 at 48 px)
TARGET = 0.9           # accuracy on the batch in inference mode (moving BN statistics, no dropout)
LOSS_RISE = 3.0        # every epoch's mean training loss stays under LOSS_RISE x the first batch's


def _listed(value):
    return list(value) if isinstance(value, tuple) else value


def _paper_members() -> list[tuple[str, str, dict, float]]:
    """(member, builder, args, learning rate) of every architecture in the paper zoo that is not a
    builder's default (those are tested as such)."""
    seen, out = set(), []
    for spec in load_zoo(ROOT / "models_zoo" / "paper.toml").models:
        defaults = builder_arguments(spec.builder)
        key = (spec.builder, repr(sorted(spec.args.items())))
        if key not in seen and any(_listed(v) != _listed(defaults[k]) for k, v in spec.args.items()):
            seen.add(key)
            out.append((spec.name, spec.builder, dict(spec.args), spec.learning_rate))
    return out


# Builders this test found that do not train at their defaults (an open issue): not run, to keep CI's
# time; the reasons are what was measured.
KNOWN_BROKEN = {
    "transfer_efficientnetb0": "does not fit: accuracy stays at 0.14 for 120 steps",
    "transfer_mobilenetv2": "does not fit: accuracy stays at 0.14 for 120 steps",
    "transfer_resnet50": "does not fit: accuracy 0.14 for 48 steps, peaks at 0.86, falls back to 0.6",
    "transfer_vgg16": "loss 9.4 in the first epoch, then stuck at ln(7): a dead head",
}
CASES = [pytest.param(name, {}, 1e-3, 7, SIZE, id=name,
                      marks=[pytest.mark.xfail(reason=KNOWN_BROKEN[name], run=False)] if name in KNOWN_BROKEN else [])
         for name in list_models()] + [
    pytest.param(builder, args, lr, 6, PAPER_SIZE, id=f"paper-{member}")
    for member, builder, args, lr in _paper_members()]


def fixed_batch(num_classes: int, size: int = SIZE, n: int = FIT_IMAGES, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """`n` size x size images in [0, 1]: each its class's fixed blocky pattern (cells of 8x8 pixels,
    coarse enough to survive four poolings) at 0.7, under fresh pixel noise at 0.3."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    cells = size // 8
    patterns = np.kron(rng.uniform(0, 1, (num_classes, cells, cells)), np.ones((8, 8)))[..., None]
    return (0.7 * patterns[y] + 0.3 * rng.uniform(0, 1, (n, size, size, 1))).astype("float32"), y


def fit_small_batch(builder: str, args: dict, learning_rate: float, num_classes: int, size: int,
                    max_epochs: int = MAX_EPOCHS) -> tuple[float, list[float], list[float]]:
    """The first batch's training loss, then the mean training loss of each epoch and the accuracy
    on the whole batch after it (inference mode: moving BN statistics, no dropout), stopping once
    that accuracy reaches TARGET."""
    import keras

    x, y = fixed_batch(num_classes, size)
    keras.utils.set_random_seed(0)
    net = create_model(builder, input_shape=(size, size, 1), num_classes=num_classes, **args)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    first = []
    record_first = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: first.append(logs["loss"]) if not first else None)
    losses, accuracies = [], []
    for _ in range(max_epochs):
        h = net.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[record_first])
        losses.append(float(h.history["loss"][0]))
        accuracies.append(float(np.mean(net.predict(x, batch_size=len(x), verbose=0).argmax(1) == y)))
        if accuracies[-1] >= TARGET:
            break
    return float(first[0]), losses, accuracies


@pytest.mark.slow
@pytest.mark.parametrize("builder, args, learning_rate, num_classes, size", CASES)
def test_builder_fits_a_small_batch(builder, args, learning_rate, num_classes, size):
    first, losses, accuracies = fit_small_batch(builder, args, learning_rate, num_classes, size)
    what = f"{builder} {args or '(defaults)'} at lr {learning_rate}"
    assert max(losses) < LOSS_RISE * first, (
        f"{what}: training loss per epoch {np.round(losses, 2).tolist()} climbed above {LOSS_RISE} x "
        f"the first batch's {first:.2f} (logits blown up)")
    assert accuracies[-1] >= TARGET, (
        f"{what} did not fit {FIT_IMAGES} images in {MAX_EPOCHS * FIT_IMAGES // BATCH} steps: "
        f"accuracy after each epoch {np.round(accuracies, 3).tolist()}")


@pytest.mark.slow
def test_the_fitting_test_fails_the_broken_resnet():
    """Without the batch-normalised head, the study's ResNet2 blows up in its first epoch."""
    first, losses, _ = fit_small_batch("resnet_paper", {"stages": [2, 5, 5, 2], "head_bn": False}, 1e-3, 6,
                                       PAPER_SIZE, max_epochs=1)
    assert losses[0] > LOSS_RISE * first, (first, losses)


# ---------------------------------------------------------------- the study's ResNets: the learning rate
STREAM_STEPS = 15      # Adam steps of batch 16 on the fixed batch (48 px, 6 classes)
STREAM_LIMIT = 4.0     # the head's moving variance after them: healthy 2.1-2.9, stalled on real faces 5.0-5.5


def stream_variance(args: dict, learning_rate: float) -> float:
    """The moving variance of the residual stream entering the head (`head_bn`) after STREAM_STEPS
    Adam steps: how far the branches have inflated the stream at this learning rate."""
    import keras

    x, y = fixed_batch(6, PAPER_SIZE)
    keras.utils.set_random_seed(0)
    net = create_model("resnet_paper", input_shape=(PAPER_SIZE, PAPER_SIZE, 1), num_classes=6, **args)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    for step in range(STREAM_STEPS):
        i = (step * BATCH) % len(x)
        net.train_on_batch(x[i:i + BATCH], y[i:i + BATCH])
    return float(np.mean(net.get_layer("head_bn").moving_variance))


PAPER_RESNETS = [(s.name, dict(s.args), s.learning_rate)
                 for s in load_zoo(ROOT / "models_zoo" / "paper.toml").models if s.builder == "resnet_paper"]


@pytest.mark.slow
@pytest.mark.parametrize("member, args, learning_rate", PAPER_RESNETS, ids=[m for m, _, _ in PAPER_RESNETS])
def test_each_paper_resnet_keeps_its_stream_bounded_at_its_learning_rate(member, args, learning_rate):
    """On real faces the 64-filter ResNets sat at chance at Adam 1e-3 (their stream's variance grew
    to 30-70 within 100 steps) and learn at 3e-4 or 5e-4; ResNet0 (32 filters) learns at 1e-3.
    The fixed batch shows the same split within 15 steps (docs/research/paper-zoo.md)."""
    v = stream_variance(args, learning_rate)
    assert v < STREAM_LIMIT, (f"{member} at lr {learning_rate}: the residual stream's variance at the head "
                              f"reached {v:.2f} in {STREAM_STEPS} steps (limit {STREAM_LIMIT}): too high a rate")


@pytest.mark.slow
def test_the_stream_test_fails_resnet2_at_the_rate_that_stalled_it():
    v = stream_variance({"stages": [2, 5, 5, 2], "head_bn": True}, 1e-3)
    assert v > STREAM_LIMIT, v
