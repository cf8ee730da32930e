"""CLI, model stage: `zoo list` (each entry's builder, depth, parameters and settings) and
`zoo models` (every registered builder)."""
from __future__ import annotations

import argparse


def register(sub, add_data_args) -> None:
    p = sub.add_parser("zoo", help="inspect zoo files")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    q = zsub.add_parser("list", help="each model with its builder, parameter count and depth (Table 1)")
    q.add_argument("zoo", nargs="?", default="models_zoo/quick.toml")
    q.set_defaults(func=cmd_zoo_list)
    q = zsub.add_parser("models", help="every registered builder")
    q.set_defaults(func=cmd_zoo_models)


def cmd_zoo_models(args: argparse.Namespace) -> int:
    from ..models import list_models

    print("\n".join(list_models()))
    return 0


def _settings(m) -> str:
    settings = (f"{m.optimizer} lr={m.learning_rate:g} ({m.lr_schedule}) bs={m.batch_size} ep={m.epochs} "
                f"bal={m.balancing} seed={m.seed}")
    settings += f" from={m.init_from}" if m.init_from else ""
    # the terms that set restarts of one source apart: input view, FER+ targets, bagging
    settings += f" view={m.args['preprocess']}" if m.args.get("preprocess") else ""
    settings += f" ferplus={m.ferplus_targets:g}" if m.ferplus_targets else ""
    settings += " bootstrap" if m.bootstrap else ""
    return settings


def cmd_zoo_list(args: argparse.Namespace) -> int:
    from ..data.types import FER6_CLASSES, FER7_CLASSES
    from ..models import create_model, load_zoo, model_depth

    zoo = load_zoo(args.zoo)
    n = len(FER6_CLASSES if zoo.classes == "fer6" else FER7_CLASSES)
    print(f"zoo {zoo.name} ({zoo.path}), {zoo.classes}")
    w = max(16, *(len(m.name) + 1 for m in zoo.models))  # names never run into the builder column
    print(f"{'name':<{w}}{'builder':<16}{'depth':>6}{'params':>10}  settings")
    for m in zoo.models:
        net = create_model(m.builder, num_classes=n, **m.args)
        print(f"{m.name:<{w}}{m.builder:<16}{model_depth(net):>6}{net.count_params() / 1e6:>9.2f}M  {_settings(m)}")
    return 0
