"""CLI, data stage: `prepare` (convert a source into the .npz cache) and `data` (summarise one);
the data options the later stages share."""
from __future__ import annotations

import argparse
import time


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--data and --classes, as the training and experiment commands take them."""
    p.add_argument("--data", default="synthetic",
                   help="fer2013.csv[.gz], image folder, .npz cache, or 'synthetic[:N]' (default)")
    p.add_argument("--classes", choices=("fer7", "fer6"), default=None,
                   help="7 classes, or 6 with disgust merged into angry (default: the zoo's setting)")


def load_for_zoo(args: argparse.Namespace, zoo):
    """The data a command's --data names, in the zoo's classes, with --ferplus votes attached."""
    from ..data import load_data

    classes = getattr(args, "classes", None) or zoo.classes
    data = load_data(args.data, classes=classes, seed=getattr(args, "data_seed", 0))
    if getattr(args, "ferplus", None):
        from ..data import attach_ferplus_votes
        from ..errors import DataError

        if str(args.data).startswith("synthetic"):
            raise DataError(f"--ferplus {args.ferplus}: FER+ votes belong to FER2013; the synthetic set has none")
        data = attach_ferplus_votes(data, args.data, args.ferplus)
    return data


def register_prepare(sub, add_data_args) -> None:
    p = sub.add_parser("prepare", help="convert any supported source into the fast .npz cache")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--classes", choices=("fer7", "fer6"), default="fer7")
    p.add_argument("--clean", action="store_true", help="drop flagged images from the training split")
    p.add_argument("--report", action="store_true", help="print the cleaning report")
    p.set_defaults(func=cmd_prepare)


def register_data(sub, add_data_args) -> None:
    p = sub.add_parser("data", help="summarise a data source: class counts per split, cleaning report")
    p.add_argument("source", nargs="?", default="synthetic")
    p.add_argument("--classes", choices=("fer7", "fer6"), default="fer7")
    p.set_defaults(func=cmd_data)


def cmd_prepare(args: argparse.Namespace) -> int:
    from ..data import cleaning_report, drop_flagged_from_train, load_data, save_cache

    t = time.perf_counter()
    data = load_data(args.source, classes=args.classes or "fer7")
    if args.clean:
        data, n = drop_flagged_from_train(data)
        print(f"dropped {n} flagged training images")
    save_cache(data, args.output)
    print(data.summary())
    if args.report:
        rep = cleaning_report(data)
        print(f"cleaning: {rep['counts']}")
    print(f"wrote {args.output} in {time.perf_counter() - t:.1f}s")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from ..data import cleaning_report, load_data

    data = load_data(args.source, classes=args.classes or "fer7")
    print(data.summary())
    print(f"fingerprint: {data.fingerprint()}")
    rep = cleaning_report(data)
    print(f"cleaning: {rep['counts']}")
    return 0
