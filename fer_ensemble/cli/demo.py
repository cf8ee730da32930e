"""CLI, workflows that run several stages: `demo` (the whole pipeline on synthetic faces) and
`experiment` (the studies' experiments, experiments/*.toml)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def register_demo(sub, add_data_args) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on built-in synthetic faces: train, search, predict")
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--n", type=int, default=3000, help="synthetic images")
    p.add_argument("--zoo", default="models_zoo/quick.toml")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..workflows.demo import run_demo

    run_demo(args.run, n=args.n, zoo=args.zoo)
    return 0


def register_experiment(sub, add_data_args) -> None:
    p = sub.add_parser("experiment", help="run one of the studies' experiments (experiments/*.toml)")
    p.add_argument("file", nargs="+", help="experiment file(s)")
    p.add_argument("--data", help="data source (default: the file's, the synthetic faces)")
    p.add_argument("--ferplus", help="fer2013new.csv, for the labels experiment on FER2013")
    p.add_argument("--run", help="run directory (default runs/experiments/NAME)")
    p.add_argument("--epochs", type=int, help="override every model's epochs")
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args: argparse.Namespace) -> int:
    from ..errors import FerEnsembleError
    from ..workflows.experiments import load_experiment, run_experiment

    if args.run and len(args.file) > 1:
        raise FerEnsembleError("--run names one run directory; give one experiment file with it")
    for f in args.file:
        exp = load_experiment(f)
        t = time.perf_counter()
        print(f"experiment {exp.name} ({exp.kind}): {exp.description}", flush=True)
        table = run_experiment(exp, data=args.data, run_dir=args.run, ferplus=args.ferplus, epochs=args.epochs)
        shown = [c for c in table.columns if c not in ("builder", "params", "augment", "members")]
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"wrote {Path(args.run or Path('runs/experiments') / exp.name) / 'results.md'} "
              f"in {time.perf_counter() - t:.0f}s\n", flush=True)
    return 0
