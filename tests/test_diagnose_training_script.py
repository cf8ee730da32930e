"""scripts/diagnose_training.py trains a zoo entry with its own recipe, class weights included."""
from __future__ import annotations

from tests.helpers import load_script

diagnose = load_script("diagnose_training")


def test_class_weights_reach_the_loss(tiny_data, tiny_zoo_file):
    from fer_ensemble.models import load_zoo

    spec = load_zoo(tiny_zoo_file).get("a_vgg")
    first = {b: diagnose.train(spec.replace(balancing=b), tiny_data, steps=1, every=1, probe_images=16)[0]
             for b in ("none", "class_weights")}
    # w_j = N / n_j averages to the number of classes over the faces, so the weighted first loss is
    # about 7x the plain one; a diagnosis that dropped the weights would report the same loss
    assert first["class_weights"]["loss"] > 3 * first["none"]["loss"]
    assert {r["step"] for r in first.values()} == {1}
