"""Callbacks: resume-aware state seeding, epoch timing, a quiet progress display, and the
writing callbacks, whose failed writes (disk full) name the file."""
from __future__ import annotations

import logging
import sys
import time

from .. import _tf  # noqa: F401
import keras
import numpy as np
import pandas as pd

from .._io import read_json, write_failure, write_json

log = logging.getLogger("fer_ensemble.training.trainer")


def best_so_far(history: pd.DataFrame, monitor: str, mode: str) -> tuple[float | None, int]:
    """(best value, epochs since it) over a history frame, for seeding callbacks after a resume."""
    if history.empty or monitor not in history:
        return None, 0
    values = history[monitor].to_numpy(dtype=float)
    i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
    return float(values[i]), len(values) - 1 - i


class SeedResumedState(keras.callbacks.Callback):
    """After a resume, restore the patience counters that EarlyStopping and ReduceLROnPlateau reset
    in on_train_begin, from the history of the epochs already done. Must come after them."""

    def __init__(self, history: pd.DataFrame, callbacks: list[keras.callbacks.Callback]):
        super().__init__()
        self.history, self.callbacks = history, callbacks

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            mode = "min" if "loss" in cb.monitor else "max"
            best, wait = best_so_far(self.history, cb.monitor, mode)
            if best is not None:
                cb.best, cb.wait = best, wait


class _NamesFailedWrites:
    """Mixin for the callbacks that write files every epoch: a write the file system refuses
    (disk full, say) raises WriteError naming the file, not h5py's RuntimeError from inside fit()."""

    def written(self) -> str:
        raise NotImplementedError

    def on_epoch_end(self, epoch, logs=None):
        try:
            super().on_epoch_end(epoch, logs)
        except (OSError, RuntimeError) as e:
            failure = write_failure(e, self.written())
            if failure is None:
                raise
            raise failure from None


class Backup(_NamesFailedWrites, keras.callbacks.BackupAndRestore):
    """BackupAndRestore (the resume state) whose failed writes name the backup file."""

    def written(self) -> str:
        return self._weights_path


class HistoryLogger(_NamesFailedWrites, keras.callbacks.CSVLogger):
    """CSVLogger (the epoch history) whose failed writes name the file."""

    def written(self) -> str:
        return self.filename


class RandomStateBackup(keras.callbacks.Callback):
    """The random state of the trained model's layers (dropout masks, augmentation on the device),
    saved at each epoch's end and put back when a run resumes from that epoch's backup, so that
    the resumed epochs draw what an uninterrupted run draws (BackupAndRestore saves weights and
    the optimizer, not this state). It comes before the backup and keeps the last few epochs, so
    whichever epoch the backup holds after a kill, its state is here."""

    KEEP = 3   # the backup's epoch, or the one before (its .bkp copy), after a kill at any moment

    def __init__(self, path: str, initial_epoch: int, name: str):
        super().__init__()
        self.path, self.initial_epoch, self.name = path, initial_epoch, name

    def _saved(self) -> dict:
        try:
            saved = read_json(self.path, ValueError)
        except ValueError:   # none yet, or cut short by a kill
            return {}
        return saved.get("epochs", {}) if isinstance(saved, dict) else {}

    def on_train_begin(self, logs=None):
        from ..data.augment import seed_generators

        gens = seed_generators(self.model)
        if not self.initial_epoch or not gens:
            return
        states = self._saved().get(str(self.initial_epoch))
        if states is None or len(states) != len(gens):
            log.warning("model %r: no random state saved for epoch %d; the resumed epochs draw other dropout "
                        "and augmentation than an uninterrupted run", self.name, self.initial_epoch)
            return
        for gen, state in zip(gens, states):
            gen.state.assign(np.asarray(state, dtype=keras.ops.convert_to_numpy(gen.state.value).dtype))

    def on_epoch_end(self, epoch, logs=None):
        from ..data.augment import seed_generators

        gens = seed_generators(self.model)
        if not gens:
            return
        kept = {e: v for e, v in self._saved().items() if int(e) > epoch + 1 - self.KEEP}
        kept[str(epoch + 1)] = [keras.ops.convert_to_numpy(g.state.value).tolist() for g in gens]
        write_json(self.path, {"epochs": kept})


class InnerModelCheckpoint(_NamesFailedWrites, keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that saves `inner` (the member) while fit() trains a model wrapping it
    (augmentation on the device + member); ModelCheckpoint uses its model only to save it."""

    def __init__(self, inner: keras.Model, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inner = inner

    def set_model(self, model):
        super().set_model(self.inner)

    def written(self) -> str:
        return self.filepath


class TimeLimit(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that finishes after `seconds` of wall time, so
    a member ends cleanly (best checkpoint, predictions, sidecar) inside a fixed time budget."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.stopped_epoch = seconds, None

    def on_train_begin(self, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.t0 >= self.seconds:
            self.model.stop_training = True
            self.stopped_epoch = epoch + 1


class LogLearningRate(keras.callbacks.Callback):
    """Put the current learning rate into the epoch logs (ReduceLROnPlateau does this itself; a
    schedule does not), so the history and the learning-rate curve of the report always have it."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class LogEpochTime(keras.callbacks.Callback):
    """Put each epoch's wall time (training and validation) into the epoch logs as `epoch_time_s`,
    so the history, which a resume keeps, adds up to a member's training time over every leg."""

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self.t


def train_time(history: pd.DataFrame) -> float | None:
    """Seconds spent in a history's epochs, all legs of a resumed run together; None when some
    epoch has no time (an earlier leg written before the column existed)."""
    if history.empty or "epoch_time_s" not in history or history["epoch_time_s"].isna().any():
        return None
    return round(float(history["epoch_time_s"].sum()), 2)


class EpochProgress(keras.callbacks.Callback):
    """A tqdm bar over epochs on a terminal; one line per epoch in logs (no bar redraws)."""

    def __init__(self, name: str, epochs: int, initial_epoch: int = 0):
        super().__init__()
        self.name, self.epochs, self.initial = name, epochs, initial_epoch
        self.interactive = sys.stderr.isatty()
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.interactive:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, initial=self.initial, desc=self.name, unit="ep", leave=False)
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        stats = {k: logs[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs}
        if self.bar is not None:
            self.bar.set_postfix({**{k: f"{v:.4f}" for k, v in stats.items()}, "lr": f"{lr:.1e}"})
            self.bar.update(1)
        else:
            text = " ".join(f"{k}={v:.4f}" for k, v in stats.items())
            print(f"[{self.name}] epoch {epoch + 1}/{self.epochs} {text} lr={lr:.1e} "
                  f"({time.perf_counter() - self.t:.0f}s)", flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
