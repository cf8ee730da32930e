"""Training driver: one model (`train_model`) or a whole zoo (`train_all`; on Ray: `train_all_ray`) into a
run directory."""
from ..metrics import classification_metrics
from .ray_executor import RayOptions, train_all_ray
from .runner import ZooRun, train_all
from .trainer import ARTIFACTS, TrainResult, artifact_paths, train_model

__all__ = ["train_model", "train_all", "train_all_ray", "RayOptions", "TrainResult", "ZooRun",
           "artifact_paths", "ARTIFACTS", "classification_metrics"]
