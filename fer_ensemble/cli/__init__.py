"""`fer-ensemble` command line: prepare data, list/train the zoo, search ensembles, report, predict."""
# One module per stage (data, zoo, train, ensemble, report, app, demo); each registers its
# sub-commands and imports its stage lazily, so `fer-ensemble --help` loads no TensorFlow.
from __future__ import annotations

import argparse
import os
import sys

from .. import _tf  # noqa: F401
from ..errors import FerEnsembleError, WriteError
from . import app, data, demo, ensemble, report, train, zoo

# In help order; each takes the sub-parsers and the shared data options.
COMMANDS = (data.register_prepare, data.register_data, zoo.register, train.register, ensemble.register_search,
            ensemble.register_import, ensemble.register_export, ensemble.register_ship, demo.register_demo,
            report.register_collect,
            ensemble.register_budget, app.register, report.register_report, demo.register_experiment,
            ensemble.register_tta)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-ensemble", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for register in COMMANDS:
        register(sub, data.add_data_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a FerEnsembleError, 130 on Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WriteError as e:
        print(f"error: {e}", file=sys.stderr)
        # h5py objects that a refused write left half-written can crash the interpreter when they are
        # freed at exit (HDF5 flushes them again): leave now, with the lock and temporary files
        # already released by the blocks the error passed through.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)
    except FerEnsembleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
