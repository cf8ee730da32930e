"""CLI, training stage: `train NAME` (one zoo entry) and `train-all` (every entry, resumable; several
at once as Ray tasks with --jobs N or --ray ADDRESS)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .data import load_for_zoo


def _train_args(p: argparse.ArgumentParser, add_data_args) -> None:
    add_data_args(p)
    p.add_argument("--zoo", default="models_zoo/quick.toml")
    p.add_argument("--run", default=None, help="run directory (default runs/<zoo name>)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--force", action="store_true", help="retrain even if artifacts exist")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data set")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to RUN/tensorboard/")
    p.add_argument("--xla", action="store_true", help="compile with XLA (helps on GPUs, slows CPUs)")
    p.add_argument("--ferplus", metavar="CSV", help="FER+ fer2013new.csv: crowd votes of the Training images, "
                   "blended into the targets of members that set ferplus_targets")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop each member after this much training and finish it as usual (a GPU lease)")


def register(sub, add_data_args) -> None:
    p = sub.add_parser("train", help="train one zoo entry")
    p.add_argument("name")
    _train_args(p, add_data_args)
    p.set_defaults(func=cmd_train_all)
    p = sub.add_parser("train-all", help="train every model of a zoo file (resumable)")
    _train_args(p, add_data_args)
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many members at once, on a local Ray instance with this many slots "
                        "(the machine's GPUs shared among them); needs pip install 'fer_ensemble[ray]'")
    g = p.add_argument_group("Ray (pip install 'fer_ensemble[ray]'; docs/ray.md)")
    g.add_argument("--ray", metavar="ADDRESS", help="train each member as a Ray task: local (a Ray instance on "
                   "this machine), auto (the cluster this machine joined with `ray start`) or ray://HEAD:10001")
    g.add_argument("--cpus-per-member", type=float, default=1.0, metavar="N", help="CPUs each member's task asks for")
    g.add_argument("--gpus-per-member", type=float, default=None, metavar="F",
                   help="GPUs each member's task asks for; a fraction shares a GPU (0.25: four members on one). "
                        "Default: none under --ray, the GPUs shared among the slots under --jobs")
    g.add_argument("--retries", type=int, default=3, metavar="N",
                   help="start a member whose worker or node died again, from its last epoch, up to N times")
    p.set_defaults(func=cmd_train_all, name=None)


def cmd_train_all(args: argparse.Namespace) -> int:
    from ..errors import ModelError
    from ..models import load_zoo
    from ..rundir import check_name, lock_run
    from ..training.runner import zoo_specs

    ray_options = _ray_options(args)   # checked before anything is loaded or written
    zoo = load_zoo(args.zoo)
    if args.run is None:
        check_name(zoo.name, f"{args.zoo}: zoo name (the run directory runs/NAME)", ModelError)
    run = Path(args.run or f"runs/{zoo.name}")
    zoo_specs(zoo, [args.name] if args.name else None)   # every name checked before anything is written
    # The lock first: a second process on this run stops before it loads any data.
    with lock_run(run, f"train {args.name}" if args.name else "train-all", create=True):
        data = load_for_zoo(args, zoo)
        data.check_splits()
        print(f"training zoo {zoo.name} ({len(zoo.models)} models) on {data.source} -> {run}", flush=True)
        t = time.perf_counter()
        result = _train(args, zoo, data, run, ray_options)
    print(result.table())
    print(f"done in {time.perf_counter() - t:.0f}s")
    return 1 if result.failures else 0


def _ray_options(args: argparse.Namespace):
    """train-all's RayOptions, or None when it does not run on Ray."""
    from ..errors import ModelError
    from ..training.ray_executor import RayOptions, require_ray

    jobs = getattr(args, "jobs", 1)
    if not getattr(args, "ray", None) and jobs <= 1:
        return None
    require_ray()
    if args.ray and jobs > 1:
        raise ModelError("--jobs and --ray both say how many members train at once: under --ray, Ray runs as "
                         "many as its CPUs and GPUs hold (--cpus-per-member, --gpus-per-member)")
    if args.ray:
        return RayOptions(address=args.ray, cpus_per_member=args.cpus_per_member,
                          gpus_per_member=args.gpus_per_member or 0.0, retries=args.retries)
    # --jobs N: a local Ray instance with N slots (N CPUs of one each), its GPUs shared among them
    return RayOptions(address="local", num_cpus=jobs, gpus_per_member=args.gpus_per_member, retries=args.retries)


def _train(args: argparse.Namespace, zoo, data, run: Path, ray_options=None):
    from ..training import train_all, train_all_ray

    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("seed", args.seed))
                 if v is not None}
    if ray_options is not None:
        return train_all_ray(zoo, data, run, options=ray_options, overrides=overrides, force=args.force,
                             tensorboard=args.tensorboard, jit_compile=args.xla, time_limit=args.time_limit)
    return train_all(zoo, data, run, only=[args.name] if args.name else None, overrides=overrides,
                     force=args.force, tensorboard=args.tensorboard, jit_compile=args.xla,
                     time_limit=args.time_limit)
