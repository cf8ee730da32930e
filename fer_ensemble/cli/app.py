"""CLI, application stage: `predict` (emotions of the faces in images, folders, a video or a
camera, with a run's ensemble or the built-in FER2013 one)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub, add_data_args) -> None:
    p = sub.add_parser("predict", help="emotions of the faces in images, folders, a video or a camera")
    p.add_argument("paths", nargs="*", help="image files or folders of images")
    p.add_argument("--model", help="run directory (its ensemble.json, or all its models); default: the "
                                   "built-in FER2013 ensemble (fer_ensemble/pretrained/fer2013/MODEL_CARD.md)")
    p.add_argument("--out", default="predictions", help="folder for annotated copies and CSV/JSON results")
    p.add_argument("--video", help="annotate this video file; writes OUT/NAME.annotated.mp4 and NAME.frames.csv")
    p.add_argument("--stride", type=int, default=1, help="video/camera: analyse every k-th frame")
    p.add_argument("--camera", type=int, help="live window from camera N (needs a display)")
    p.add_argument("--margin", type=float, default=0.1, help="face box margin, fraction of its side")
    p.add_argument("--min-face", type=int, default=48, help="smallest face side in pixels (default 48)")
    p.add_argument("--detect-scale", type=float, default=0.5,
                   help="find faces on the frame shrunk by this factor (default 0.5; 1 scans the full frame, "
                        "more slowly: docs/benchmarks.md)")
    p.add_argument("--tta", action="store_true",
                   help="add the members' test-time augmentation (mirror) views: a little more accurate, "
                        "1.6x the model's time")
    p.add_argument("--no-annotate", action="store_true", help="write only the CSV/JSON results")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from ..app import FaceEmotionDetector, display_available, run_camera
    from ..errors import FerEnsembleError

    if not (args.paths or args.video or args.camera is not None):
        raise FerEnsembleError("nothing to do: give image paths, --video FILE or --camera N")
    if args.camera is not None and (reason := display_available()):
        raise FerEnsembleError(f"--camera {args.camera}: {reason}")
    detector = FaceEmotionDetector(args.model, margin=args.margin, min_face=args.min_face,
                                   detect_scale=args.detect_scale, tta=args.tta)
    status = _predict_images(args, detector) if args.paths else 0
    if args.video:
        _predict_video(args, detector)
    if args.camera is not None:
        shown = run_camera(detector, args.camera, stride=args.stride)
        print(f"camera {args.camera}: {shown} frames")
    return status


def _predict_images(args: argparse.Namespace, detector) -> int:
    """Images and folders -> OUT/predictions.{csv,json}; 1 when a file could not be read."""
    from ..app import predict_images

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
    return 1 if (per_file["status"] == "unreadable").any() else 0


def _predict_video(args: argparse.Namespace, detector) -> None:
    from ..app import predict_video

    table = predict_video(detector, args.video, args.out, stride=args.stride, write_annotated=not args.no_annotate)
    a = table.attrs
    print(f"{args.video}: {a['frames']} frames in {a['seconds']:.1f}s ({a['frames'] / a['seconds']:.1f} frames/s), "
          f"{table['label'].notna().sum()} face detections; labels: {table['label'].value_counts().to_dict()}")
    print(f"results: {Path(args.out) / (Path(args.video).stem + '.frames.csv')}")
