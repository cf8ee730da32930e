"""Why does a member sit at chance? Train it for a few hundred steps and watch its insides.

    python scripts/diagnose_training.py models_zoo/paper.toml VGG1 --data ../shared/data/fer2013.npz \
        --steps 200 --every 20 [--args '{"dense_dropout": 0.2}'] [--out diag.json]

Trains the zoo entry with its own optimizer, learning rate, batch size, balancing and L2 terms
(float32, no augmentation, so that what is measured is the architecture and the recipe) on the
Training split, and every `--every` steps records on a fixed probe batch of Training faces:
- the training loss and accuracy over the last steps;
- per ReLU layer, the share of units that are dead (never positive on the probe batch);
- per batch-norm layer, the mean |moving mean| and mean moving variance;
- per weighted layer, the gradient norm relative to the weight norm;
- the logits' spread across images (std over the probe batch, averaged over classes) and the share
  of probe images given the most common prediction (1.0: the net answers one class for all faces).
Prints JSON, one record per checkpoint; `--out` also writes it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def probe_layers(net):
    """The layers worth watching: ReLU outputs, batch norms, the logits."""
    import keras

    relu, bn = [], []
    for layer in net.layers:
        act = getattr(layer, "activation", None)
        if isinstance(layer, keras.layers.BatchNormalization):
            bn.append(layer)
        elif (isinstance(layer, keras.layers.Activation) and getattr(act, "__name__", "") == "relu") or \
                (isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) and getattr(act, "__name__", "") == "relu"):
            relu.append(layer)
    return relu, bn, net.get_layer("logits")


def snapshot(net, probe_model, relu, bn, grads, x_probe) -> dict:
    """The insides of `net` on the probe batch, in inference mode (no dropout, moving BN stats)."""
    outs = probe_model(x_probe, training=False)
    acts, logits = outs[:-1], np.asarray(outs[-1], np.float32)
    dead = {}
    for layer, a in zip(relu, acts):
        a = np.asarray(a, np.float32).reshape(len(x_probe), -1, a.shape[-1])
        dead[layer.name] = round(float(np.mean(a.max(axis=(0, 1)) <= 0)), 4)
    bn_stats = {layer.name: {"abs_moving_mean": round(float(np.mean(np.abs(layer.moving_mean))), 4),
                             "moving_var": round(float(np.mean(layer.moving_variance)), 4)} for layer in bn}
    grad_ratio = {}
    for var, g in zip(net.trainable_variables, grads):
        if g is not None and len(var.shape) >= 2:
            w = float(np.linalg.norm(np.asarray(var)))
            grad_ratio[var.path] = float(np.linalg.norm(np.asarray(g))) / max(w, 1e-12)
    pred = logits.argmax(axis=1)
    return {"dead_relu": dead, "bn": bn_stats,
            "grad_to_weight": {k: float(f"{v:.3g}") for k, v in grad_ratio.items()},
            "logit_spread": round(float(logits.std(axis=0).mean()), 4),
            "logit_scale": round(float(np.abs(logits).mean()), 4),
            "top_class_share": round(float(np.bincount(pred).max() / len(pred)), 4)}


def build(spec, num_classes: int):
    import keras

    from fer_ensemble.models import create_model

    keras.utils.set_random_seed(spec.seed)
    net = create_model(spec.builder, num_classes=num_classes, **spec.args)
    relu, bn, logits = probe_layers(net)
    probe = keras.Model(net.inputs, [layer.output for layer in relu] + [logits.output])
    return net, probe, relu, bn


def train(spec, data, steps: int, every: int, probe_images: int, on_record=None) -> list[dict]:
    import keras
    import tensorflow as tf

    from fer_ensemble.data import class_weights
    from fer_ensemble.data.pipeline import train_batches

    net, probe, relu, bn = build(spec, data.num_classes)
    opt = keras.optimizers.Adam(spec.learning_rate)
    # class weights reach the loss as per-sample weights, as they do in the trainer
    weights = class_weights(data.train.y, data.num_classes) if spec.balancing == "class_weights" else None
    batches, _ = train_batches(data.train.x, data.train.y, data.num_classes, spec.batch_size,
                               balancing=spec.balancing, oversample_fraction=spec.oversample_fraction,
                               seed=spec.seed, class_weight=weights)
    x_probe = data.train.x[np.random.default_rng(0).choice(len(data.train.y), probe_images, replace=False)]
    x_probe = x_probe.astype(np.float32)[..., None] / 255.0
    loss_fn = keras.losses.CategoricalCrossentropy()

    @tf.function
    def step(x, y, w):
        with tf.GradientTape() as tape:
            p = net(x, training=True)
            loss = loss_fn(y, p, sample_weight=w) + (tf.add_n(net.losses) if net.losses else 0.0)
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss, tf.reduce_mean(tf.cast(tf.argmax(p, 1) == tf.argmax(y, 1), tf.float32)), grads

    records, window, t0 = [], [], time.perf_counter()
    for i, (x, y, *w) in zip(range(1, steps + 1), batches):
        loss, acc, grads = step(tf.constant(x), tf.constant(y), tf.constant(w[0] if w else np.ones(len(y), np.float32)))
        window.append((float(loss), float(acc)))
        if i % every == 0 or i == 1:
            rec = {"step": i, "loss": round(float(np.mean([w[0] for w in window])), 4),
                   "accuracy": round(float(np.mean([w[1] for w in window])), 4),
                   "seconds": round(time.perf_counter() - t0, 1)}
            rec.update(snapshot(net, probe, relu, bn, grads, x_probe))
            records.append(rec)
            if on_record:
                on_record(records)
            print(json.dumps({k: rec[k] for k in ("step", "loss", "accuracy", "logit_spread", "top_class_share")}),
                  file=sys.stderr, flush=True)
            window = []
    return records


def main(argv=None) -> int:
    from fer_ensemble.data import load_fer2013
    from fer_ensemble.models import load_zoo

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("zoo")
    p.add_argument("member")
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--probe-images", type=int, default=256)
    p.add_argument("--args", default="{}", help="JSON laid over the entry's builder args")
    p.add_argument("--learning-rate", type=float, help="override the entry's learning rate")
    p.add_argument("--batch-size", type=int, help="override the entry's batch size")
    p.add_argument("--classes", help="fer6 or fer7 (default: the zoo's)")
    p.add_argument("--balancing", choices=["none", "oversample", "batches", "class_weights"],
                   help="override the entry's balancing")
    p.add_argument("--out")
    a = p.parse_args(argv)
    zoo = load_zoo(a.zoo)
    spec = zoo.get(a.member)
    spec = spec.replace(args={**spec.args, **json.loads(a.args)},
                        learning_rate=a.learning_rate or spec.learning_rate,
                        batch_size=a.batch_size or spec.batch_size, balancing=a.balancing or spec.balancing)
    data = load_fer2013(a.data, classes=a.classes or zoo.classes)
    head = {"member": a.member, "classes": a.classes or zoo.classes, "builder": spec.builder, "args": spec.args,
            "learning_rate": spec.learning_rate, "batch_size": spec.batch_size, "balancing": spec.balancing}

    def write(records):  # after every checkpoint, so a long run can be read (or stopped) midway
        if a.out:
            tmp = Path(a.out).with_name(f".{Path(a.out).name}.tmp")
            tmp.write_text(json.dumps({**head, "records": records}, indent=1))
            tmp.replace(a.out)

    records = train(spec, data, a.steps, a.every, a.probe_images, on_record=write)
    print(json.dumps({**head, "records": records}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
