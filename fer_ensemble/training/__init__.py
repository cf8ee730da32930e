"""Training driver: one model (`train_model`) or a whole zoo (`train_all`) into a run directory."""
from ..metrics import classification_metrics
from .runner import ZooRun, train_all, train_parallel
from .trainer import ARTIFACTS, TrainResult, artifact_paths, train_model

__all__ = ["train_model", "train_all", "train_parallel", "TrainResult", "ZooRun", "artifact_paths", "ARTIFACTS",
           "classification_metrics"]
