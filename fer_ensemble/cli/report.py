"""CLI, results stage: `report` (tables and figures of a run) and `collect` (a run's small
artifacts, no weights, copied to a results folder)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def register_collect(sub, add_data_args) -> None:
    p = sub.add_parser("collect", help="copy a run's small artifacts (no weights) to a results folder")
    p.add_argument("run")
    p.add_argument("dest")
    p.set_defaults(func=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    import shutil

    from .._io import atomic_path
    from ..errors import FerEnsembleError
    from ..rundir import SMALL_ARTIFACTS, visible

    run, dest = Path(args.run), Path(args.dest)
    if not run.is_dir():
        raise FerEnsembleError(f"{run}: not a run directory")
    files = sorted({f for pattern in SMALL_ARTIFACTS for f in run.glob(pattern) if visible(f)})
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        with atomic_path(dest / f.name) as tmp:
            shutil.copyfile(f, tmp)
    print(f"copied {len(files)} files from {run} to {dest} (no .h5 weights)")
    return 0


def register_report(sub, add_data_args) -> None:
    p = sub.add_parser("report", help="tables, confusion matrices, curves, ROC, image grid and Grad-CAM of a run")
    p.add_argument("run")
    p.add_argument("--data", help="the data the run was trained on (default: the source its sidecars name)")
    p.add_argument("--gradcam", default="", help="comma-separated members for Grad-CAM besides the best one")
    p.add_argument("--per-class", type=int, default=3, help="Grad-CAM images per class")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..evaluation import write_report

    t = time.perf_counter()
    rep = write_report(args.run, data=args.data, gradcam=tuple(g for g in args.gradcam.split(",") if g),
                       gradcam_per_class=args.per_class)
    if rep.summary is not None:
        cols = ["model", "val accuracy", "accuracy", "macro F1"]
        print(rep.summary[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for note in rep.notes:
        print(f"note: {note}")
    print(f"wrote {rep.path} and {len(rep.files) - 1} other files in {time.perf_counter() - t:.1f}s")
    return 0
