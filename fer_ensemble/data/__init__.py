"""Data layer: FER2013 / FER+ loaders, synthetic faces, balancing, augmentation, cleaning."""
from .balance import balanced_batch_indices, bootstrap_indices, class_weights, oversample
from .cleaning import cleaning_report, drop_flagged_from_train
from .fer2013 import load_fer2013, save_cache
from .ferplus import attach_ferplus_votes, blend_targets, ferplus_train_votes, load_ferplus, simulate_ferplus
from .synthetic import make_synthetic
from .types import (FER6_CLASSES, FER7_CLASSES, FERPLUS_CLASSES, SPLITS, FerData, Split, to_fer6)


def load_data(source: str, classes: str = "fer7", n: int = 4000, seed: int = 0) -> FerData:
    """'synthetic' or 'synthetic:N' for built-in faces, otherwise a path for load_fer2013."""
    if source == "synthetic" or source.startswith("synthetic:"):
        if ":" in source:
            n = int(source.split(":", 1)[1])
        return make_synthetic(n, seed=seed, classes=classes)
    return load_fer2013(source, classes=classes)


__all__ = ["FerData", "Split", "load_fer2013", "load_ferplus", "simulate_ferplus", "ferplus_train_votes", "attach_ferplus_votes", "blend_targets", "save_cache", "make_synthetic", "load_data",
           "class_weights", "oversample", "balanced_batch_indices", "bootstrap_indices", "cleaning_report",
           "drop_flagged_from_train", "to_fer6", "FER7_CLASSES", "FER6_CLASSES", "FERPLUS_CLASSES", "SPLITS"]
