"""`fer-ensemble` command line: prepare data, list/train the zoo, search ensembles, report, predict."""
from __future__ import annotations

import argparse
import sys
import time

from . import _tf  # noqa: F401
from .errors import FerEnsembleError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="synthetic",
                   help="fer2013.csv[.gz], image folder, .npz cache, or 'synthetic[:N]' (default)")
    p.add_argument("--classes", choices=("fer7", "fer6"), default=None,
                   help="7 classes, or 6 with disgust merged into angry (default: the zoo's setting)")


def cmd_prepare(args: argparse.Namespace) -> int:
    from .data import load_data, save_cache, cleaning_report, drop_flagged_from_train

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
    from .data import cleaning_report, load_data

    data = load_data(args.source, classes=args.classes or "fer7")
    print(data.summary())
    print(f"fingerprint: {data.fingerprint()}")
    rep = cleaning_report(data)
    print(f"cleaning: {rep['counts']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-ensemble", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="convert any supported source into the fast .npz cache")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--classes", choices=("fer7", "fer6"), default="fer7")
    p.add_argument("--clean", action="store_true", help="drop flagged images from the training split")
    p.add_argument("--report", action="store_true", help="print the cleaning report")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("data", help="summarise a data source: class counts per split, cleaning report")
    p.add_argument("source", nargs="?", default="synthetic")
    p.add_argument("--classes", choices=("fer7", "fer6"), default="fer7")
    p.set_defaults(func=cmd_data)

    from .commands import COMMANDS  # the later stages' commands (zoo, train, search, ...)

    for register in COMMANDS:
        register(sub, _add_data_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FerEnsembleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
