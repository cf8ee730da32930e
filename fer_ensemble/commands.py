"""Sub-commands of the later stages (zoo, training, ensemble), registered on the CLI."""
from __future__ import annotations

import time
from pathlib import Path

COMMANDS: list = []  # functions (subparsers, add_data_args) -> None, in help order


def _register(fn):
    COMMANDS.append(fn)
    return fn


def _load_for_zoo(args, zoo):
    from .data import load_data

    classes = getattr(args, "classes", None) or zoo.classes
    data = load_data(args.data, classes=classes, seed=getattr(args, "data_seed", 0))
    if getattr(args, "ferplus", None):
        from .data import attach_ferplus_votes
        from .errors import DataError

        if str(args.data).startswith("synthetic"):
            raise DataError(f"--ferplus {args.ferplus}: FER+ votes belong to FER2013; the synthetic set has none")
        data = attach_ferplus_votes(data, args.data, args.ferplus)
    return data


@_register
def _zoo(sub, add_data_args):
    p = sub.add_parser("zoo", help="inspect zoo files")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    q = zsub.add_parser("list", help="each model with its builder, parameter count and depth (Table 1)")
    q.add_argument("zoo", nargs="?", default="models_zoo/quick.toml")
    q.set_defaults(func=cmd_zoo_list)
    q = zsub.add_parser("models", help="every registered builder")
    q.set_defaults(func=lambda a: print("\n".join(__import__("fer_ensemble.models", fromlist=["x"]).list_models())))


def cmd_zoo_list(args) -> int:
    from .models import create_model, load_zoo, model_depth
    from .data.types import FER6_CLASSES, FER7_CLASSES

    zoo = load_zoo(args.zoo)
    n = len(FER6_CLASSES if zoo.classes == "fer6" else FER7_CLASSES)
    print(f"zoo {zoo.name} ({zoo.path}), {zoo.classes}")
    w = max(16, *(len(m.name) + 1 for m in zoo.models))  # names never run into the builder column
    print(f"{'name':<{w}}{'builder':<16}{'depth':>6}{'params':>10}  settings")
    for m in zoo.models:
        net = create_model(m.builder, num_classes=n, **m.args)
        settings = f"{m.optimizer} lr={m.learning_rate:g} ({m.lr_schedule}) bs={m.batch_size} ep={m.epochs} bal={m.balancing} seed={m.seed}"
        settings += f" from={m.init_from}" if m.init_from else ""
        # the terms that set restarts of one source apart: input view, FER+ targets, bagging
        settings += f" view={m.args['preprocess']}" if m.args.get("preprocess") else ""
        settings += f" ferplus={m.ferplus_targets:g}" if m.ferplus_targets else ""
        settings += " bootstrap" if m.bootstrap else ""
        print(f"{m.name:<{w}}{m.builder:<16}{model_depth(net):>6}{net.count_params() / 1e6:>9.2f}M  {settings}")
    return 0


def _train_args(p, add_data_args):
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


@_register
def _train(sub, add_data_args):
    p = sub.add_parser("train", help="train one zoo entry")
    p.add_argument("name")
    _train_args(p, add_data_args)
    p.set_defaults(func=cmd_train_all)
    p = sub.add_parser("train-all", help="train every model of a zoo file (resumable)")
    _train_args(p, add_data_args)
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many members at once, one process each (small models share a GPU)")
    p.set_defaults(func=cmd_train_all, name=None)


def cmd_train_all(args) -> int:
    from .models import load_zoo
    from .training import train_all

    zoo = load_zoo(args.zoo)
    run = Path(args.run or f"runs/{zoo.name}")
    data = _load_for_zoo(args, zoo)  # also with --jobs: a bad data file fails here once, not in N processes
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("seed", args.seed))
                 if v is not None}
    print(f"training zoo {zoo.name} ({len(zoo.models)} models) on {data.source} -> {run}", flush=True)
    t = time.perf_counter()
    if getattr(args, "jobs", 1) > 1:
        from .training import train_parallel

        result = train_parallel(zoo, run, _child_args(args, run), jobs=args.jobs)
    else:
        result = train_all(zoo, data, run, only=[args.name] if args.name else None,
                           overrides=overrides, force=args.force, tensorboard=args.tensorboard,
                           jit_compile=args.xla, time_limit=args.time_limit)
    print(result.table())
    print(f"done in {time.perf_counter() - t:.0f}s")
    return 1 if result.failures else 0


def _child_args(args, run: Path) -> list[str]:
    """The `fer-ensemble train NAME` options that reproduce this train-all's settings."""
    out = ["--zoo", str(args.zoo), "--run", str(run), "--data", str(args.data), "--data-seed", str(args.data_seed)]
    for flag, value in (("--classes", args.classes), ("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--seed", args.seed), ("--time-limit", args.time_limit), ("--ferplus", args.ferplus)):
        if value is not None:
            out += [flag, str(value)]
    return out + [flag for flag, on in (("--force", args.force), ("--xla", args.xla),
                                        ("--tensorboard", args.tensorboard)) if on]


@_register
def _search(sub, add_data_args):
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


def cmd_search(args) -> int:
    from .ensemble import METHODS, search_run
    from .errors import EnsembleError

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise EnsembleError(f"unknown method(s) {bad}; choose from {METHODS}")
    t = time.perf_counter()
    if args.select == "cv" and args.cv_folds is None:
        raise EnsembleError("--select cv needs --cv-folds F (the folds of the validation split)")
    result, text = search_run(args.run, methods=[m for m in methods if m != "stacking"],
                              min_size=args.min_size, max_size=args.max_size, stacking="stacking" in methods,
                              exhaustive_limit=args.exhaustive_limit, top_members=args.top_members)
    print(text)
    print(f"\nwrote {Path(args.run) / 'search.csv'} and {Path(args.run) / 'ensemble.json'} "
          f"({time.perf_counter() - t:.1f}s)")
    if args.cv_folds is not None:
        from .ensemble.run_search import CV_FILE, cv_run

        t = time.perf_counter()
        _, table = cv_run(args.run, folds=args.cv_folds, seed=args.cv_seed, select=args.select == "cv",
                          methods=[m for m in methods if m != "stacking"], min_size=args.min_size,
                          max_size=args.max_size, exhaustive_limit=args.exhaustive_limit,
                          top_members=args.top_members, search_result=result,
                          progress=lambda p, k, acc: print(f"  cv {p} fold {k + 1}: {100 * acc:.2f}%", flush=True))
        print("\n" + table)
        print(f"\nwrote {Path(args.run) / CV_FILE}" + (" and ensemble.json (the chosen procedure's pick)"
                                                      if args.select == "cv" else "")
              + f" ({time.perf_counter() - t:.1f}s)")
    return 0


@_register
def _import(sub, add_data_args):
    p = sub.add_parser("import", help="write a sidecar so a model trained elsewhere can join an ensemble")
    p.add_argument("model", help="a Keras 3 loadable .h5 or .keras file")
    p.add_argument("--labels", required=True, help="comma-separated class names in the model's output order")
    p.add_argument("--scale", type=float, default=1 / 255, help="input = pixels * scale + offset")
    p.add_argument("--offset", type=float, default=0.0)
    p.add_argument("--input-size", type=int, default=48)
    p.add_argument("--into", help="directory to copy the model into (default: beside the model)")
    p.add_argument("--name", help="member name (default: file stem)")
    p.add_argument("--data", help="also cache its validation/test predictions on this data (for search)")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from .ensemble.importer import import_model

    path = import_model(args.model, labels=[s.strip() for s in args.labels.split(",")], scale=args.scale,
                        offset=args.offset, input_size=args.input_size, into=args.into, name=args.name,
                        data=args.data)
    print(f"wrote {path}")
    return 0


@_register
def _demo(sub, add_data_args):
    p = sub.add_parser("demo", help="the whole pipeline on built-in synthetic faces: train, search, predict")
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--n", type=int, default=3000, help="synthetic images")
    p.add_argument("--zoo", default="models_zoo/quick.toml")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from .data import make_synthetic
    from .ensemble import Ensemble, search_run
    from .models import load_zoo
    from .training import train_all

    t = time.perf_counter()
    data = make_synthetic(args.n, seed=0)
    print(data.summary(), flush=True)
    zoo = load_zoo(args.zoo)
    result = train_all(zoo, data, args.run)
    print(result.table(), flush=True)
    _, text = search_run(args.run, methods=("mean", "accuracy", "recall", "vote", "geometric"))
    print(text)
    ens = Ensemble.load(args.run)
    ev = ens.evaluate(data.test.x, data.test.y)
    print(f"\nEnsemble.load({args.run!r}).evaluate(test): accuracy {ev['accuracy']:.4f} "
          f"({ens.method} over {len(ens.members)} members)")
    print("first test images:", ens.predict_labels(data.test.x[:5]), "true:",
          [data.class_names[i] for i in data.test.y[:5]])
    from .evaluation import write_report

    rep = write_report(args.run, data=data, gradcam_per_class=2)
    print(f"report: {rep.path} ({len(rep.files)} files: tables, confusion matrices, ROC, curves, Grad-CAM)")
    print(f"demo finished in {time.perf_counter() - t:.0f}s")
    return 0


SMALL_ARTIFACTS = ("*.json", "*.history.csv", "*.preds.npz", "search.csv")


@_register
def _collect(sub, add_data_args):
    p = sub.add_parser("collect", help="copy a run's small artifacts (no weights) to a results folder")
    p.add_argument("run")
    p.add_argument("dest")
    p.set_defaults(func=cmd_collect)


def cmd_collect(args) -> int:
    import shutil

    from ._io import atomic_path
    from .errors import FerEnsembleError

    run, dest = Path(args.run), Path(args.dest)
    if not run.is_dir():
        raise FerEnsembleError(f"{run}: not a run directory")
    files = sorted({f for pattern in SMALL_ARTIFACTS for f in run.glob(pattern) if not f.name.startswith(".")})
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        with atomic_path(dest / f.name) as tmp:
            shutil.copyfile(f, tmp)
    print(f"copied {len(files)} files from {run} to {dest} (no .h5 weights)")
    return 0


@_register
def _budget(sub, add_data_args):
    p = sub.add_parser("budget", help="copy the members a training budget buys (best on validation first, with "
                                      "their fine-tuning ancestors) into a sub-run to search")
    p.add_argument("run")
    p.add_argument("dest")
    p.add_argument("--seconds", type=float, required=True, help="training budget in seconds (e.g. 7200)")
    p.set_defaults(func=cmd_budget)


def cmd_budget(args) -> int:
    from .ensemble.budget import BUDGET_FILE, write_budget_run

    record = write_budget_run(args.run, args.dest, args.seconds)
    for m in record["members"]:
        val = f"{100 * m['val_accuracy']:.2f}%" if m["has_cache"] else "no cache"
        print(f"  {m['name']:<24} {m['cost_s']:>9.0f} s  validation {val}")
    print(f"{len(record['members'])} members, {record['spent_s']:.0f} of {args.seconds:.0f} s; wrote "
          f"{Path(args.dest) / BUDGET_FILE} (search it: fer-ensemble search {args.dest})")
    return 0


@_register
def _predict(sub, add_data_args):
    p = sub.add_parser("predict", help="emotions of the faces in images, folders, a video or a camera")
    p.add_argument("paths", nargs="*", help="image files or folders of images")
    p.add_argument("--model", required=True, help="run directory (its ensemble.json, or all its models)")
    p.add_argument("--out", default="predictions", help="folder for annotated copies and CSV/JSON results")
    p.add_argument("--video", help="annotate this video file; writes OUT/NAME.annotated.mp4 and NAME.frames.csv")
    p.add_argument("--stride", type=int, default=1, help="video/camera: analyse every k-th frame")
    p.add_argument("--camera", type=int, help="live window from camera N (needs a display)")
    p.add_argument("--margin", type=float, default=0.1, help="face box margin, fraction of its side")
    p.add_argument("--min-face", type=int, default=40, help="smallest face side in pixels")
    p.add_argument("--no-annotate", action="store_true", help="write only the CSV/JSON results")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from .app import FaceEmotionDetector, display_available, predict_images, predict_video, run_camera
    from .errors import FerEnsembleError

    if not (args.paths or args.video or args.camera is not None):
        raise FerEnsembleError("nothing to do: give image paths, --video FILE or --camera N")
    if args.camera is not None and (reason := display_available()):
        raise FerEnsembleError(f"--camera {args.camera}: {reason}")
    detector = FaceEmotionDetector(args.model, margin=args.margin, min_face=args.min_face)
    status = 0
    if args.paths:
        t = time.perf_counter()
        table = predict_images(detector, args.paths, args.out, not args.no_annotate)
        print(f"done in {time.perf_counter() - t:.1f}s")
        per_file = table.drop_duplicates("file")
        for st, n in per_file["status"].value_counts().items():
            print(f"{st}: {n} file(s)")
        for _, row in per_file[per_file["status"] == "unreadable"].iterrows():
            print(f"  unreadable: {row['file']}")
        faces = table["label"].notna().sum()
        print(f"{faces} face(s); labels: {table['label'].value_counts().to_dict()}")
        print(f"results: {Path(args.out) / 'predictions.csv'}, {Path(args.out) / 'predictions.json'}")
        status = 1 if (per_file["status"] == "unreadable").any() else 0
    if args.video:
        table = predict_video(detector, args.video, args.out, stride=args.stride, write_annotated=not args.no_annotate)
        a = table.attrs
        print(f"{args.video}: {a['frames']} frames in {a['seconds']:.1f}s ({a['frames'] / a['seconds']:.1f} frames/s), "
              f"{table['label'].notna().sum()} face detections; labels: {table['label'].value_counts().to_dict()}")
        print(f"results: {Path(args.out) / (Path(args.video).stem + '.frames.csv')}")
    if args.camera is not None:
        shown = run_camera(detector, args.camera, stride=args.stride)
        print(f"camera {args.camera}: {shown} frames")
    return status


@_register
def _report(sub, add_data_args):
    p = sub.add_parser("report", help="tables, confusion matrices, curves, ROC, image grid and Grad-CAM of a run")
    p.add_argument("run")
    p.add_argument("--data", help="the data the run was trained on (default: the source its sidecars name)")
    p.add_argument("--gradcam", default="", help="comma-separated members for Grad-CAM besides the best one")
    p.add_argument("--per-class", type=int, default=3, help="Grad-CAM images per class")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from .evaluation import write_report

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


@_register
def _experiment(sub, add_data_args):
    p = sub.add_parser("experiment", help="run one of the studies' experiments (experiments/*.toml)")
    p.add_argument("file", nargs="+", help="experiment file(s)")
    p.add_argument("--data", help="data source (default: the file's, the synthetic faces)")
    p.add_argument("--ferplus", help="fer2013new.csv, for the labels experiment on FER2013")
    p.add_argument("--run", help="run directory (default runs/experiments/NAME)")
    p.add_argument("--epochs", type=int, help="override every model's epochs")
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args) -> int:
    from .errors import FerEnsembleError
    from .evaluation.experiments import load_experiment, run_experiment

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


@_register
def _tta(sub, add_data_args):
    p = sub.add_parser("tta", help="test-time augmentation for a run's members (updates their caches)")
    p.add_argument("run")
    p.add_argument("names", nargs="*", help="members (default: all with weights)")
    p.add_argument("--mode", choices=("flip", "flip-shift"), default="flip",
                   help="flip: image + mirror image (2 views); flip-shift: also shifted 2 px four ways (10 views)")
    p.add_argument("--data", required=True, help="the data the run was trained on")
    p.add_argument("--classes", choices=("fer7", "fer6"), default=None)
    p.set_defaults(func=cmd_tta)


def cmd_tta(args) -> int:
    import json

    from .data import load_data
    from .ensemble.tta import apply_tta

    sidecar = next((p for p in sorted(Path(args.run).glob("*.json")) if p.name != "ensemble.json"), None)
    n_cls = len(json.loads(sidecar.read_text())["class_names"]) if sidecar else 7
    data = load_data(args.data, classes=args.classes or ("fer6" if n_cls == 6 else "fer7"))
    changes = apply_tta(args.run, data, args.names or None, mode=args.mode)
    for name, ch in changes.items():
        print(f"{name}: " + ", ".join(f"{s} {a:.4f} -> {b:.4f}" for s, (a, b) in ch.items()))
    if not changes:
        print(f"nothing to do (every member already uses {args.mode} TTA)")
    print("re-run the search: the caches changed")
    return 0
