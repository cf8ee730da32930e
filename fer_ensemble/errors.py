"""Exceptions raised by fer_ensemble: one base class so callers (and the CLI) can catch them all."""


class FerEnsembleError(Exception):
    """Base class: a problem with the user's input that the message explains."""


class DataError(FerEnsembleError, ValueError):
    """A data source is malformed; the message names the file and row or image."""


class ModelError(FerEnsembleError, ValueError):
    """A model name, override, zoo entry or saved model is invalid."""


class TrainingError(FerEnsembleError, RuntimeError):
    """Training could not proceed (NaN loss, conflicting artifacts, failed build)."""


class EnsembleError(FerEnsembleError, ValueError):
    """An ensemble directory, manifest or member is invalid."""


class RunLockedError(FerEnsembleError, RuntimeError):
    """Another process holds the run directory's lock; the message names the directory and its PID."""


class WriteError(FerEnsembleError, OSError):
    """A file could not be written (disk full, no permission); the message names the file."""
