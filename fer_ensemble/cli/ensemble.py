"""CLI, ensemble stage: `search` (rank subsets of a run's caches, optionally compare ways of
choosing out of fold), `tta` (test-time augmentation of the caches), `import` (a model trained
elsewhere as a member), `export` (the fused ensemble as .keras, ONNX or SavedModel), `ship` (a
compact float16 folder with a model card) and `budget` (the members a training budget buys, as a
sub-run)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register_search(sub, add_data_args) -> None:
    p = sub.add_parser("search", help="find the best ensemble subset from a run's prediction caches")
    p.add_argument("run")
    p.add_argument("--methods", default="mean,accuracy,recall",
                   help="comma-separated: mean, accuracy, recall, vote, geometric, stacking")
    p.add_argument("--min-size", type=int, default=1)
    p.add_argument("--max-size", type=int)
    p.add_argument("--exhaustive-limit", type=int, default=None, metavar="N",
                   help="try every subset when a method has at most N (default 2^20, ~1M: 20 members); "
                        "larger zoos get greedy forward selection. Cost doubles with each member")
    p.add_argument("--top-members", type=int, default=None, metavar="K",
                   help="search only the K members with the best validation accuracy (keeps an "
                        "exhaustive search affordable as the zoo grows)")
    p.add_argument("--cv-folds", type=int, default=None, metavar="F",
                   help="also measure each way of choosing (search, greedy, mean of all candidates, "
                        "stacking, best member) out of fold on F folds of the validation split -> "
                        "search_cv.json")
    p.add_argument("--cv-seed", type=int, default=0, help="seed of the stratified folds")
    p.add_argument("--select", choices=("search", "cv"), default="search",
                   help="cv: ensemble.json becomes the pick of the procedure with the best "
                        "out-of-fold accuracy (needs --cv-folds; default: the search's choice)")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from ..ensemble import METHODS, search_run
    from ..ensemble.methods import STACKING, subset_methods
    from ..ensemble.run_search import check_cv_folds
    from ..errors import EnsembleError
    from ..rundir import MANIFEST, SEARCH_TABLE, lock_run

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise EnsembleError(f"unknown method(s) {bad}; choose from {METHODS}")
    t = time.perf_counter()
    if args.select == "cv" and args.cv_folds is None:
        raise EnsembleError("--select cv needs --cv-folds F (the folds of the validation split)")
    with lock_run(args.run, "search"):   # search.csv, ensemble.json and search_cv.json from one process
        if args.cv_folds is not None:    # before the search writes anything
            check_cv_folds(args.run, args.cv_folds)
        result, text = search_run(args.run, methods=subset_methods(methods), min_size=args.min_size,
                                  max_size=args.max_size, stacking=STACKING in methods,
                                  exhaustive_limit=args.exhaustive_limit, top_members=args.top_members)
        print(text)
        print(f"\nwrote {Path(args.run) / SEARCH_TABLE} and {Path(args.run) / MANIFEST} "
              f"({time.perf_counter() - t:.1f}s)")
        if args.cv_folds is not None:
            _search_cv(args, methods, result)
    return 0


def _search_cv(args: argparse.Namespace, methods: tuple[str, ...], result) -> None:
    """search --cv-folds: the ways of choosing compared out of fold -> search_cv.json."""
    from ..ensemble.methods import subset_methods
    from ..ensemble.run_search import cv_run
    from ..rundir import CV_FILE

    t = time.perf_counter()
    _, table = cv_run(args.run, folds=args.cv_folds, seed=args.cv_seed, select=args.select == "cv",
                      methods=subset_methods(methods), min_size=args.min_size,
                      max_size=args.max_size, exhaustive_limit=args.exhaustive_limit,
                      top_members=args.top_members, search_result=result,
                      progress=lambda p, k, acc: print(f"  cv {p} fold {k + 1}: {100 * acc:.2f}%", flush=True))
    print("\n" + table)
    print(f"\nwrote {Path(args.run) / CV_FILE}" + (" and ensemble.json (the chosen procedure's pick)"
                                                  if args.select == "cv" else "")
          + f" ({time.perf_counter() - t:.1f}s)")


def register_import(sub, add_data_args) -> None:
    p = sub.add_parser("import", help="make a model trained elsewhere a member of a run (saved as Keras 3 .keras)")
    p.add_argument("model", help="a .keras, .h5 or .hdf5 full model, or a Keras-2 architecture .json (with --weights)")
    p.add_argument("--weights", help="the weights of an architecture .json (Keras-2 save_weights .h5)")
    p.add_argument("--labels", required=True, help="comma-separated class names in the model's output order")
    p.add_argument("--scale", type=float, default=1 / 255, help="input = pixels * scale + offset")
    p.add_argument("--offset", type=float, default=0.0)
    p.add_argument("--input-size", type=int, default=None,
                   help="side of the images the model takes (default: the model's own input size)")
    p.add_argument("--classes", choices=("fer7", "fer6"), default=None,
                   help="fer6: join a 6-class run (the 7-class model's disgust probability is added to angry)")
    p.add_argument("--into", help="the run directory to add the member to (default: beside the model)")
    p.add_argument("--name", help="member name (default: file stem)")
    p.add_argument("--data", help="also cache its validation/test predictions on this data (for search)")
    p.add_argument("--logits", action="store_true",
                   help="the model outputs logits: add a softmax (without it, non-probability outputs are refused)")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from ..ensemble.importer import import_model

    path = import_model(args.model, labels=[s.strip() for s in args.labels.split(",")], scale=args.scale,
                        offset=args.offset, input_size=args.input_size, into=args.into, name=args.name,
                        data=args.data, logits=args.logits, weights=args.weights, classes=args.classes)
    side = json.loads(path.read_text())
    print(f"wrote {path.parent / side['model_file']} and {path}"
          + ("" if args.data else f" (no prediction cache: `search` leaves it out until it is imported again "
                                  "with --data DATA)"))
    return 0


def register_export(sub, add_data_args) -> None:
    p = sub.add_parser("export", help="write a run's fused ensemble as one .keras, ONNX or SavedModel file")
    p.add_argument("run")
    p.add_argument("--format", choices=("keras", "onnx", "saved_model"), default="keras",
                   help="onnx needs the extra: pip install 'fer_ensemble[onnx]' (runs in onnxruntime)")
    p.add_argument("--out", help="file (folder for saved_model) to write (default: RUN/export/fer_ensemble.*)")
    p.add_argument("--input-size", type=int, default=None,
                   help="side of the images the export takes (default: the ensemble's native size)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..ensemble.export import export_ensemble

    info = export_ensemble(args.run, args.format, out=args.out, input_size=args.input_size)
    check = (f"checked with {info['checked_with']}: max difference {info['max_abs_diff']:.2g} from the Keras fused "
             "model" if info["checked_with"] else "not checked (onnxruntime is not installed)")
    print(f"wrote {info['path']}: {info['method']} of {len(info['members'])} members, input (N, {info['input_size']}, "
          f"{info['input_size']}, 1) pixels 0-255 -> (N, {len(info['classes'])}) {','.join(info['classes'])}; {check}")
    return 0


def register_ship(sub, add_data_args) -> None:
    p = sub.add_parser("ship", help="a run's ensemble as a compact folder (float16 weights, model card) that "
                                    "--model, FaceEmotionDetector and Ensemble.load read")
    p.add_argument("run")
    p.add_argument("out", help="folder to write (replaced as a whole)")
    p.add_argument("--data", help="measure the shipped files on this data's PublicTest and PrivateTest for "
                                  "the model card")
    p.add_argument("--title", help="the model card's title")
    p.add_argument("--notes", default="", help="a paragraph for the model card (how it was trained, say)")
    p.set_defaults(func=cmd_ship)


def cmd_ship(args: argparse.Namespace) -> int:
    from ..data import load_data
    from ..ensemble.ship import CARD_TEXT, ship_run
    from ..rundir import lock_run

    with lock_run(args.run, "ship"):
        data = None
        if args.data:
            n_cls = len(_manifest_classes(args.run))
            data = load_data(args.data, classes="fer6" if n_cls == 6 else "fer7")
        card = ship_run(args.run, args.out, data=data, title=args.title, notes=args.notes)
    acc = "".join(f", {s} {100 * card[s]['accuracy']:.2f}%" for s in ("PublicTest", "PrivateTest") if s in card)
    print(f"wrote {args.out}: {card['method']} of {len(card['members'])} members, "
          f"{card['weights_bytes'] / 2**20:.1f} MiB of float16 weights{acc}; card: {Path(args.out) / CARD_TEXT}")
    return 0


def _manifest_classes(run: str) -> list[str]:
    """The run's ensemble classes without loading a model (ensemble.json, else the first sidecar)."""
    from ..rundir import MANIFEST, member_sidecars, read_manifest

    manifest = Path(run) / MANIFEST
    if manifest.exists():
        return list(read_manifest(manifest).get("class_names") or [])
    sidecars = member_sidecars(run)
    return list(next(iter(sidecars.values()))["class_names"]) if sidecars else []


def register_budget(sub, add_data_args) -> None:
    p = sub.add_parser("budget", help="copy the members a training budget buys (best on validation first, with "
                                      "their fine-tuning ancestors) into a sub-run to search")
    p.add_argument("run")
    p.add_argument("dest")
    p.add_argument("--seconds", type=float, required=True, help="training budget in seconds (e.g. 7200)")
    p.set_defaults(func=cmd_budget)


def cmd_budget(args: argparse.Namespace) -> int:
    from ..ensemble.budget import write_budget_run
    from ..rundir import BUDGET_FILE

    record = write_budget_run(args.run, args.dest, args.seconds)
    for m in record["members"]:
        val = f"{100 * m['val_accuracy']:.2f}%" if m["has_cache"] else "no cache"
        print(f"  {m['name']:<24} {m['cost_s']:>9.0f} s  validation {val}")
    print(f"{len(record['members'])} members, {record['spent_s']:.0f} of {args.seconds:.0f} s; wrote "
          f"{Path(args.dest) / BUDGET_FILE} (search it: fer-ensemble search {args.dest})")
    return 0


def register_tta(sub, add_data_args) -> None:
    p = sub.add_parser("tta", help="test-time augmentation for a run's members (updates their caches)")
    p.add_argument("run")
    p.add_argument("names", nargs="*", help="members (default: all with weights)")
    p.add_argument("--mode", choices=("flip", "flip-shift"), default="flip",
                   help="flip: image + mirror image (2 views); flip-shift: also shifted 2 px four ways (10 views)")
    p.add_argument("--data", required=True, help="the data the run was trained on")
    p.add_argument("--classes", choices=("fer7", "fer6"), default=None)
    p.set_defaults(func=cmd_tta)


def cmd_tta(args: argparse.Namespace) -> int:
    from ..data import load_data
    from ..ensemble.tta import apply_tta
    from ..rundir import lock_run, member_sidecars

    with lock_run(args.run, f"tta --mode {args.mode}"):   # before loading data: a busy run stops at once
        sidecar = next(iter(member_sidecars(args.run).values()), None)   # the run's classes: fer7 or fer6
        n_cls = len(sidecar["class_names"]) if sidecar else 7
        data = load_data(args.data, classes=args.classes or ("fer6" if n_cls == 6 else "fer7"))
        changes = apply_tta(args.run, data, args.names or None, mode=args.mode)
    for name, ch in changes.items():
        print(f"{name}: " + ", ".join(f"{s} {a:.4f} -> {b:.4f}" for s, (a, b) in ch.items()))
    if not changes:
        print(f"nothing to do (every member already uses {args.mode} TTA)")
    print("re-run the search: the caches changed")
    return 0
