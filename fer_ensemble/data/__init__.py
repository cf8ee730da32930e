"""Data layer: FER2013 / FER+ loaders, synthetic faces, balancing, augmentation, cleaning."""
from .balance import balanced_batch_indices, bootstrap_indices, class_weights, oversample
from .cleaning import cleaning_report, drop_flagged_from_train
from .fer2013 import load_fer2013, save_cache
from .ferplus import attach_ferplus_votes, blend_targets, ferplus_train_votes, load_ferplus, simulate_ferplus
from .synthetic import MIN_SYNTHETIC, make_synthetic
from ..errors import DataError
from .types import (FER6_CLASSES, FER7_CLASSES, FERPLUS_CLASSES, SPLITS, FerData, Split, to_fer6)


def load_data(source: str, classes: str = "fer7", n: int = 4000, seed: int = 0) -> FerData:
    """'synthetic' or 'synthetic:N' for built-in faces, otherwise a path for load_fer2013."""
    if source == "synthetic" or source.startswith("synthetic:"):
        if ":" in source:
            count = source.split(":", 1)[1]
            if not count.strip().isdigit() or int(count) < MIN_SYNTHETIC:
                raise DataError(f"{source}: N in synthetic:N must be a whole number of images, at least "
                                f"{MIN_SYNTHETIC} (e.g. synthetic:4000)")
            n = int(count)
        return make_synthetic(n, seed=seed, classes=classes)
    return load_fer2013(source, classes=classes)


__all__ = ["FerData", "Split", "load_fer2013", "load_ferplus", "simulate_ferplus", "ferplus_train_votes", "attach_ferplus_votes", "blend_targets", "save_cache", "make_synthetic", "load_data",
           "class_weights", "oversample", "balanced_batch_indices", "bootstrap_indices", "cleaning_report",
           "drop_flagged_from_train", "to_fer6", "FER7_CLASSES", "FER6_CLASSES", "FERPLUS_CLASSES", "SPLITS"]
