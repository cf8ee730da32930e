"""Train one zoo member and leave every artifact that evaluation and ensembling need.

Per model NAME, the run directory (`fer_ensemble.rundir`) gets NAME.h5, NAME.json (the sidecar),
NAME.history.csv and NAME.preds.npz; .work/NAME/ holds the in-progress state (backup for resume,
best checkpoint) and is removed when done. Every final file is written under a temporary name and
renamed; NAME.json is written last. A member counts as finished only when its sidecar says it
finished its schedule (`finished_schedule`: last epoch, early stop or time limit), never because
its files exist. Training holds the run directory's lock (`rundir.lock_run`).
"""
from __future__ import annotations

import json
import logging
import os
import warnings
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _tf  # noqa: F401
from .._io import atomic_path, write_json, write_text
from ..data import FerData, blend_targets
from ..data.augment import AugmentConfig, build_augmenter
from ..data.balance import bootstrap_indices, class_weights
from ..data.pipeline import DEFAULT_SCALING, eval_arrays, eval_dataset, scale_images, train_batches, train_dataset
from ..errors import ModelError, TrainingError
from ..models import ModelSpec, create_model
from ..metrics import classification_metrics
from ..rundir import (ARTIFACTS, artifact_paths, check_name, lock_run, read_sidecar, work_dir, write_predictions,
                      write_sidecar)

__all__ = ["train_model", "TrainResult", "artifact_paths", "ARTIFACTS", "SIDECAR_FORMAT", "finished_schedule",
           "reuse_finished"]


class _SkipLegacyH5Note(logging.Filter):
    """.h5 is the format the run directory promises; Keras's "HDF5 is legacy" note on every
    checkpoint and final save is noise in the training log. Other absl messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "saving your model as an HDF5 file" not in record.getMessage()


if not any(isinstance(f, _SkipLegacyH5Note) for f in logging.getLogger("absl").filters):
    logging.getLogger("absl").addFilter(_SkipLegacyH5Note())
log = logging.getLogger(__name__)
SIDECAR_FORMAT = 1
STOPS = ("last_epoch", "early_stop", "time_limit")   # the sidecar's `stopped_by`: how a schedule ends


@dataclass
class TrainResult:
    name: str
    sidecar: dict
    skipped: bool = False

    @property
    def val_accuracy(self) -> float:
        return self.sidecar["metrics"]["val"]["accuracy"]

    @property
    def test_accuracy(self) -> float:
        return self.sidecar["metrics"]["test"]["accuracy"]


def _canonical(spec: ModelSpec) -> dict:
    return json.loads(json.dumps(spec.to_dict()))


def _spec_as_stored(stored_spec: dict, spec: ModelSpec) -> dict:
    """The spec in canonical form, without keys added to ModelSpec after `stored_spec` was written
    that still hold their defaults, so artifacts of older versions stay reusable."""
    defaults = _canonical(ModelSpec(name=spec.name, builder=spec.builder))
    return {k: v for k, v in _canonical(spec).items() if k in stored_spec or v != defaults.get(k)}


def _train_targets(spec: ModelSpec, data: FerData) -> np.ndarray | None:
    """The Training split's soft targets: the data's own, or one-hot labels blended with the FER+
    crowd votes that `attach_ferplus_votes` put in data.info (spec.ferplus_targets > 0)."""
    if not spec.ferplus_targets:
        return data.train.soft
    votes = data.info.get("ferplus_votes")
    if votes is None:
        raise TrainingError(f"model {spec.name!r}: ferplus_targets = {spec.ferplus_targets:g} needs the FER+ votes "
                            "of the Training split; pass --ferplus fer2013new.csv")
    if data.train.soft is not None:
        raise TrainingError(f"model {spec.name!r}: ferplus_targets needs hard labels, but {data.source} "
                            "already has soft training targets")
    if len(votes) != len(data.train):
        raise TrainingError(f"model {spec.name!r}: {len(votes)} FER+ vote rows for {len(data.train)} Training images")
    return blend_targets(data.train.y, votes, spec.ferplus_targets)


def _check_existing(stored: dict, spec: ModelSpec, fingerprint: str, where: Path) -> None:
    if stored.get("data_fingerprint") != fingerprint:
        raise TrainingError(f"{where}: was trained on different data (fingerprint "
                            f"{stored.get('data_fingerprint')} != {fingerprint}); use another run "
                            "directory, or --force to retrain")
    current = _spec_as_stored(stored.get("spec", {}), spec)
    if stored.get("spec") != current:
        diff = sorted(k for k in set(stored.get("spec", {})) | set(current)
                      if stored.get("spec", {}).get(k) != current.get(k))
        raise TrainingError(f"{where}: was trained with a different spec (differs in {', '.join(diff)}); "
                            "use another run directory, or --force to retrain")


def train_model(spec: ModelSpec, data: FerData, out_dir: str | os.PathLike, *, force: bool = False,
                progress: bool = True, jit_compile: bool | str = False, tensorboard: bool = False,
                pipeline: str = "auto", time_limit: float | None = None,
                extra_callbacks: list | None = None) -> TrainResult:
    """Train `spec` on `data`, writing NAME.{h5,json,history.csv,preds.npz} into `out_dir`.

    Complete artifacts for the same spec and data are reused (skipped=True); an interrupted run
    resumes from its last finished epoch. `jit_compile` turns on XLA (it helps on GPUs and slows
    CPU training 2-3x; JAX always compiles); `tensorboard` writes logs to out_dir/tensorboard/NAME.
    `pipeline`: "tf" (tf.data, augmentation on the host), "arrays" (numpy batches, augmentation
    inside the training model, on the device) or "auto" (tf under TensorFlow, else arrays).
    `time_limit`: seconds of training after which the member stops at the end of its epoch and
    is finished as usual (the sidecar records it); None trains to its epochs or early stop.
    `extra_callbacks`: Keras callbacks that run after the trainer's own, so at each epoch's end
    they see the epoch's backup, history row and checkpoint written (the Ray executor ships them).
    The run directory is locked meanwhile: RunLockedError if another process holds it.
    """
    out_dir = Path(out_dir)
    check_name(spec.name, str(out_dir), ModelError)
    data.check_splits()
    pipeline, jit_compile = _resolve_pipeline(pipeline, jit_compile)
    with lock_run(out_dir, f"train {spec.name}", create=True):
        return _train(spec, data, out_dir, force, progress, jit_compile, tensorboard, pipeline, time_limit,
                      list(extra_callbacks or ()))


def _train(spec: ModelSpec, data: FerData, out_dir: Path, force: bool, progress: bool, jit_compile: bool | str,
           tensorboard: bool, pipeline: str, time_limit: float | None, extra_callbacks: list) -> TrainResult:
    """train_model's work, under the run directory's lock."""
    import keras

    from .device import precision_policy

    fingerprint = data.fingerprint()  # of the images and labels: FER+ targets are part of the spec
    train_soft = _train_targets(spec, data)
    done = reuse_finished(spec, out_dir, fingerprint, force)
    if done is not None:
        return done
    state = _resume_state(spec, out_dir, fingerprint, force)
    _seed(spec)
    augment = AugmentConfig.from_dict(spec.augment)
    # built before the precision policy is set, so its layers stay float32
    device_augmenter = build_augmenter(augment, seed=spec.seed) if augment and pipeline == "arrays" else None
    policy = precision_policy(spec.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    t0 = time.perf_counter()
    try:
        draw = _training_draw(spec, data, train_soft)
        train_ds, steps, val_ds, weights = _datasets(spec, data, draw, augment, pipeline, state.initial_epoch)
        net, trained, source = _build(spec, data, out_dir, fingerprint, state.initial_epoch, steps,
                                      device_augmenter, jit_compile)
        callbacks, limit = _callbacks(spec, net, out_dir, state, progress, tensorboard, time_limit)
        callbacks += extra_callbacks
        best = _fit(spec, trained, train_ds, steps, val_ds, weights, callbacks, pipeline, state)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    early = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    run = {"wall": time.perf_counter() - t0, "initial_epoch": state.initial_epoch, "limit": limit,
           "source": source, "drawn": draw.drawn, "policy": policy, "pipeline": pipeline,
           "early_stopped": early.stopped_epoch > 0}   # Keras stops early only after epoch 0
    sidecar = _write_artifacts(spec, data, out_dir, best, state.history_file, fingerprint, run)
    shutil.rmtree(state.work, ignore_errors=True)
    _remove_empty(state.work.parent)
    return TrainResult(spec.name, sidecar)


def _resolve_pipeline(pipeline: str, jit_compile: bool | str) -> tuple[str, bool | str]:
    """("tf" or "arrays", jit_compile) for this backend; JAX always compiles."""
    from .device import backend

    if pipeline == "auto":
        pipeline = "tf" if backend() == "tensorflow" else "arrays"
    if pipeline not in ("tf", "arrays"):
        raise ValueError(f"unknown pipeline {pipeline!r}; expected auto, tf or arrays")
    if pipeline == "tf" and backend() != "tensorflow":
        raise TrainingError(f"pipeline 'tf' needs the TensorFlow backend (this is {backend()!r})")
    if backend() == "jax":
        jit_compile = True  # un-jitted JAX training runs op by op, orders of magnitude slower
    return pipeline, jit_compile


def reuse_finished(spec: ModelSpec, out_dir: Path, fingerprint: str, force: bool) -> TrainResult | None:
    """The finished member's result when all its artifacts exist for this spec and data; None to train.
    A sidecar from another spec or other data is refused (unless `force`)."""
    paths = artifact_paths(out_dir, spec.name)
    if paths["json"].exists() and not force:
        stored = read_sidecar(paths["json"], TrainingError)
        _check_existing(stored, spec, fingerprint, paths["json"])
        if all(p.exists() for p in paths.values()):
            if finished_schedule(stored, paths["history.csv"]) is not None:
                return TrainResult(spec.name, stored, skipped=True)
            log.warning("%s: stopped after %s of %s epochs without early stopping or a time limit; "
                        "training it again", paths["json"], stored.get("epochs_run"), spec.epochs)
    return None


def finished_schedule(sidecar: dict, history_file: str | os.PathLike | None = None) -> str | None:
    """How a member's training ended ("last_epoch", "early_stop" or "time_limit") when its sidecar
    shows a finished schedule; None when it does not (a member cut short is not complete).
    Sidecars from before `stopped_by` are judged by their epochs, time-limit flag and history:
    Keras's EarlyStopping(val_loss) ends a run `patience` epochs after its best val_loss."""
    spec, epochs = sidecar.get("spec") or {}, sidecar.get("epochs_run")
    stopped = sidecar.get("stopped_by")
    if stopped is not None:
        complete = stopped in STOPS and (stopped != "last_epoch" or epochs == spec.get("epochs"))
        return stopped if complete else None
    if epochs is not None and epochs == spec.get("epochs"):
        return "last_epoch"
    if sidecar.get("stopped_by_time_limit"):
        return "time_limit"
    return "early_stop" if _history_shows_early_stop(history_file, spec.get("patience")) else None


def _history_shows_early_stop(history_file: str | os.PathLike | None, patience: int | None) -> bool:
    import pandas as pd

    try:
        loss = pd.read_csv(history_file)["val_loss"].to_numpy(dtype=float)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if patience is None or len(loss) < 2 or np.isnan(loss).all():
        return False
    return len(loss) - 1 - int(np.nanargmin(loss)) >= patience


@dataclass
class _Resume:
    """Where an interrupted member picks up: its work folder, epochs finished, history so far."""

    work: Path
    backup_dir: Path
    history_file: Path
    history: "object"          # pandas DataFrame, trimmed to the finished epochs
    initial_epoch: int


def _resume_state(spec: ModelSpec, out_dir: Path, fingerprint: str, force: bool) -> _Resume:
    """Prepare RUN/.work/NAME: check an earlier leg's spec and data, find the usable backup, and
    trim the history to the epochs it holds."""
    import pandas as pd

    work = work_dir(out_dir, spec.name)
    state_file = work / "state.json"
    if force and work.exists():
        shutil.rmtree(work)
    if state_file.exists():
        _check_existing(read_sidecar(state_file, TrainingError), spec, fingerprint, work)
    work.mkdir(parents=True, exist_ok=True)
    write_json(state_file, {"spec": _canonical(spec), "data_fingerprint": fingerprint})

    # Resume bookkeeping: epochs finished according to the backup, history trimmed to match.
    backup_dir = work / "backup"
    initial_epoch = _usable_backup(backup_dir, spec.name)
    history_file = work / "history.csv"
    history = pd.read_csv(history_file) if history_file.exists() and history_file.stat().st_size else pd.DataFrame()
    if not history.empty:
        history = history[history["epoch"] < initial_epoch]
        # A leg from before the epoch-time column gets it (empty), in CSVLogger's order (epoch,
        # then the sorted keys): it appends rows without a header, matched to the file's by position.
        history = history.reindex(columns=["epoch", *sorted({*history.columns, "epoch_time_s"} - {"epoch"})])
        write_text(history_file, history.to_csv(index=False))
    elif history_file.exists():
        history_file.unlink()
    return _Resume(work, backup_dir, history_file, history, initial_epoch)


def _seed(spec: ModelSpec) -> None:
    """Seed Keras (and make TensorFlow's CPU ops deterministic)."""
    import keras

    from .device import backend, gpus

    keras.utils.set_random_seed(spec.seed)
    if backend() == "tensorflow" and not gpus():
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@dataclass
class _Draw:
    """The Training images a member trains on: all of them, or its bootstrap draw."""

    x: np.ndarray
    y: np.ndarray
    soft: np.ndarray | None
    drawn: dict | None      # the bootstrap draw's summary for the sidecar


def _training_draw(spec: ModelSpec, data: FerData, train_soft: np.ndarray | None) -> _Draw:
    # Bagging: the member's own draw of the Training split (by its seed, so resume redraws it).
    if not spec.bootstrap:
        return _Draw(data.train.x, data.train.y, train_soft, None)
    pick = bootstrap_indices(len(data.train.y), spec.seed)
    return _Draw(data.train.x[pick], data.train.y[pick], None if train_soft is None else train_soft[pick],
                 {"images": int(pick.size), "distinct": int(np.unique(pick).size), "seed": spec.seed})


def _datasets(spec: ModelSpec, data: FerData, draw: _Draw, augment: AugmentConfig, pipeline: str,
              initial_epoch: int):
    """(training batches, steps per epoch, validation data, class weights for fit)."""
    weights = class_weights(draw.y, data.num_classes) if spec.balancing == "class_weights" else None
    common = dict(soft=draw.soft, balancing=spec.balancing, oversample_fraction=spec.oversample_fraction,
                  seed=spec.seed, steps_per_epoch=spec.steps_per_epoch or None, initial_epoch=initial_epoch)
    if pipeline == "tf":
        train_ds, steps = train_dataset(draw.x, draw.y, data.num_classes, spec.batch_size, augment=augment, **common)
        val_ds = eval_dataset(data.val.x, data.val.y, data.num_classes, soft=data.val.soft)
        return train_ds, steps, val_ds, weights
    train_ds, steps = train_batches(draw.x, draw.y, data.num_classes, spec.batch_size, class_weight=weights, **common)
    val_ds = eval_arrays(data.val.x, data.val.y, data.num_classes, soft=data.val.soft)
    return train_ds, steps, val_ds, None  # class weights are in the batches, as sample weights


def _build(spec: ModelSpec, data: FerData, out_dir: Path, fingerprint: str, initial_epoch: int, steps: int,
           device_augmenter, jit_compile: bool | str):
    """(the member, the model fit() trains, its init_from source's summary), compiled; with a
    `device_augmenter`, fit() trains augmentation + member as one model."""
    import keras

    from .device import strategy_scope

    with strategy_scope():
        try:
            net = create_model(spec.builder, input_shape=(*data.image_shape, 1),
                               num_classes=data.num_classes, **spec.args)
        except Exception as e:
            raise TrainingError(f"model {spec.name!r}: builder {spec.builder!r} failed: {e}") from e
        # on resume the backup holds the weights; the source is still checked and summarised
        source = (_warm_start(net, spec, out_dir, fingerprint, copy_weights=initial_epoch == 0)
                  if spec.init_from else None)
        lr = spec.learning_rate
        if spec.lr_schedule == "cosine":  # optimizer.iterations is in the backup, so resume continues the curve
            lr = keras.optimizers.schedules.CosineDecay(spec.learning_rate, decay_steps=steps * spec.epochs)
        opt = (keras.optimizers.Adam(lr) if spec.optimizer == "adam"
               else keras.optimizers.SGD(lr, momentum=spec.momentum))
        # The model that fit() sees: the member itself, or augmentation + member (on the
        # device); checkpoints and the saved .h5 hold the member alone either way.
        trained = net if device_augmenter is None else _augmented(net, device_augmenter)
        trained.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(label_smoothing=spec.label_smoothing),
                        metrics=["accuracy"], jit_compile=jit_compile)
    return net, trained, source


def _callbacks(spec: ModelSpec, net, out_dir: Path, state: _Resume, progress: bool, tensorboard: bool,
               time_limit: float | None) -> tuple[list, object]:
    """fit()'s callbacks, in the order resume relies on, and the time limit's callback (or None)."""
    import keras

    from .callbacks import (Backup, EpochProgress, HistoryLogger, InnerModelCheckpoint, LogEpochTime,
                            LogLearningRate, RandomStateBackup, SeedResumedState, TimeLimit)

    history = state.history
    best_acc = None if history.empty else float(history["val_accuracy"].max())  # resume: keep the best
    # Callbacks with patience counters (re-seeded after a resume); with a cosine schedule the
    # schedule owns the learning rate, so there is no plateau callback.
    patient = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience)]
    if spec.lr_schedule == "plateau":
        patient.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=spec.plateau_factor,
                                                         patience=spec.plateau_patience, min_lr=spec.min_lr))
    # The backup is written after the epoch's history row, checkpoint and random state: a run
    # killed between them redoes that epoch and drops the extra row on resume, instead of losing it.
    callbacks = [
        *patient, keras.callbacks.TerminateOnNaN(), LogLearningRate(), LogEpochTime(),
        InnerModelCheckpoint(net, str(state.work / "best.h5"), monitor="val_accuracy", mode="max",
                             save_best_only=True, initial_value_threshold=best_acc),
        HistoryLogger(str(state.history_file), append=True),
        RandomStateBackup(str(state.work / "random_state.json"), state.initial_epoch, spec.name),
        Backup(str(state.backup_dir), double_checkpoint=True),
        SeedResumedState(history, patient),
    ]
    limit = TimeLimit(time_limit) if time_limit else None
    if limit is not None:
        callbacks.append(limit)
    if progress:
        callbacks.append(EpochProgress(spec.name, spec.epochs, state.initial_epoch))
    if tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise TrainingError("--tensorboard needs the tensorboard package: "
                                "pip install 'fer_ensemble[tensorboard]'")
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard" / spec.name)))
    return callbacks, limit


def _fit(spec: ModelSpec, trained, train_ds, steps: int, val_ds, weights, callbacks: list, pipeline: str,
         state: _Resume):
    """Run fit() and return the best checkpoint, loaded; NaN loss or no finished epoch is an error."""
    import keras

    warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")  # the pipeline shuffles
    fit = trained.fit(train_ds, steps_per_epoch=steps, epochs=spec.epochs, validation_data=val_ds,
                      callbacks=callbacks, class_weight=weights, verbose=0,
                      **({} if pipeline == "tf" else {"validation_batch_size": 512}))
    losses = fit.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise TrainingError(f"model {spec.name!r}: loss became NaN at epoch {len(losses) + state.initial_epoch}; "
                            "lower the learning rate or check the data")
    best_ckpt = state.work / "best.h5"
    if not best_ckpt.exists():
        raise TrainingError(f"model {spec.name!r}: no checkpoint was written (no epoch finished)")
    return keras.models.load_model(best_ckpt, compile=False, safe_mode=True)


def _write_artifacts(spec: ModelSpec, data: FerData, out_dir: Path, best, history_file: Path, fingerprint: str,
                     run: dict) -> dict:
    """Evaluate the best model and write its cache, history, weights and (last) sidecar; returns the sidecar."""
    import pandas as pd

    hist = pd.read_csv(history_file).drop_duplicates("epoch", keep="last").sort_values("epoch")
    run["stopped_by"] = _stopped_by(spec, len(hist), run)
    probs = {s: best.predict(scale_images(data.split(s).x), batch_size=512, verbose=0).astype(np.float32)
             for s in ("val", "test")}
    sidecar = _sidecar(spec, data, best, hist, fingerprint, run, probs)
    paths = artifact_paths(out_dir, spec.name)
    write_predictions(out_dir, spec.name, probs["val"], data.val.y, probs["test"], data.test.y, data.class_names)
    write_text(paths["history.csv"], hist.to_csv(index=False))
    with atomic_path(paths["h5"]) as tmp:
        best.save(tmp)
    write_sidecar(out_dir, spec.name, sidecar)
    return sidecar


def _stopped_by(spec: ModelSpec, epochs_run: int, run: dict) -> str:
    """How the schedule ended; a run that ended otherwise is not finished and gets no sidecar."""
    limit = run["limit"]
    if epochs_run >= spec.epochs:
        return "last_epoch"
    if limit is not None and limit.stopped_epoch is not None:
        return "time_limit"
    if run["early_stopped"]:
        return "early_stop"
    raise TrainingError(f"model {spec.name!r}: training stopped after {epochs_run} of {spec.epochs} epochs "
                        "without early stopping or a time limit; run it again to resume")


def _sidecar(spec: ModelSpec, data: FerData, best, hist, fingerprint: str, run: dict, probs: dict) -> dict:
    """NAME.json: what the member is, what it was trained on and how, and its metrics."""
    from .callbacks import train_time
    from .device import device_name, versions

    lr_col = "learning_rate" if "learning_rate" in hist else None
    limit = run["limit"]
    return {
        "format": SIDECAR_FORMAT,
        "name": spec.name,
        "model_file": artifact_paths(".", spec.name)["h5"].name,   # NAME.h5, beside the sidecar
        "builder": spec.builder,
        "spec": _canonical(spec),
        "class_names": list(data.class_names),
        "input_shape": [*data.image_shape, 1],
        "scaling": DEFAULT_SCALING,
        "data_fingerprint": fingerprint,
        "data_source": data.source,
        **({"ferplus_csv": data.info.get("ferplus_csv")} if spec.ferplus_targets else {}),
        "parameters": int(best.count_params()),
        "epochs_run": int(len(hist)),
        "best_epoch": int(hist.loc[hist["val_accuracy"].idxmax(), "epoch"]) + 1,
        "final_learning_rate": float(hist[lr_col].iloc[-1]) if lr_col else None,
        "wall_time_s": round(run["wall"], 2),  # this invocation only; train_time_s covers a resume's earlier legs
        "train_time_s": train_time(hist),
        "resumed_from_epoch": run["initial_epoch"],
        "stopped_by_time_limit": None if limit is None else limit.stopped_epoch is not None,
        "stopped_by": run["stopped_by"],
        "initialized_from": run["source"],
        **({"bootstrap": run["drawn"]} if run["drawn"] else {}),
        "device": device_name(),
        "precision": run["policy"],
        "pipeline": run["pipeline"],
        "versions": versions(),
        "metrics": {s: classification_metrics(data.split(s).y, probs[s], data.class_names) for s in ("val", "test")},
    }


def _usable_backup(backup_dir: Path, name: str) -> int:
    """Epochs finished according to the BackupAndRestore backup in `backup_dir` (0 without one),
    after making it loadable: a run killed while the backup was being written leaves a truncated
    weights file or metadata; then the previous epoch's copy (`double_checkpoint`) replaces it, or,
    when there is none, the phase starts over. Keras stores the number of finished epochs, which is
    also the index of the epoch that resumes."""
    import h5py

    weights, meta = backup_dir / "latest.weights.h5", backup_dir / "training_metadata.json"

    def finished() -> int | None:
        try:
            with h5py.File(weights, "r"):
                pass
            return int(json.loads(meta.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    if not (weights.exists() or meta.exists()):
        return 0
    epochs = finished()
    if epochs is None:
        previous = [Path(f"{p}.bkp") for p in (weights, meta)]
        if all(p.exists() for p in previous):
            for src, dst in zip(previous, (weights, meta)):
                shutil.copyfile(src, dst)
            epochs = finished()
        if epochs is None:
            shutil.rmtree(backup_dir)
            epochs = 0
        log.warning("model %r: the last backup was cut short (killed while it was written); "
                    "resuming from %s", name, f"epoch {epochs}" if epochs else "the start of the phase")
    return epochs


def _augmented(net, augmenter):
    """augmenter -> net as one model; the augmentation layers are identity outside training."""
    import keras

    inputs = keras.Input(net.input_shape[1:], name="image")
    return keras.Model(inputs, net(augmenter(inputs)), name=f"{net.name}_train")


def _warm_start(net, spec: ModelSpec, out_dir: Path, fingerprint: str, copy_weights: bool = True) -> dict:
    """Copy the weights of the finished member `spec.init_from` (same run directory, same data)
    into `net`: a new training phase with a fresh optimizer, e.g. a low-learning-rate cosine
    continuation of a member that was still improving. Returns the source's summary for the
    sidecar (read once, here)."""
    import keras

    src = artifact_paths(out_dir, spec.init_from)
    where = f"model {spec.name!r}: init_from {spec.init_from!r}"
    if not (src["json"].exists() and src["h5"].exists()):
        raise TrainingError(f"{where}: {src['h5']} and {src['json'].name} are needed; train "
                            f"{spec.init_from!r} into {out_dir} first")
    stored = read_sidecar(src["json"], TrainingError)
    if stored.get("data_fingerprint") != fingerprint:
        raise TrainingError(f"{where}: {src['json']} was trained on different data")
    if copy_weights:
        try:
            trained = keras.models.load_model(src["h5"], compile=False, safe_mode=True)
            net.set_weights(trained.get_weights())
        except (OSError, ValueError) as e:
            raise TrainingError(f"{where}: cannot take the weights of {src['h5']}: {e}") from None
    return {"name": spec.init_from, "epochs_run": stored.get("epochs_run"),
            "val_accuracy": stored["metrics"]["val"]["accuracy"]}


def _remove_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass
