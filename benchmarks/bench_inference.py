"""Ensemble inference on CPU: the fused Keras model vs looping over members, for a batch of 256
and for single images (latency). Uses the five quick-zoo members trained on synthetic data for 3
epochs (speed does not depend on accuracy; trained into runs/bench_quick when absent)."""
from __future__ import annotations

from pathlib import Path


from _common import emit, median_time
from fer_ensemble.data import make_synthetic
from fer_ensemble.ensemble import Ensemble
from fer_ensemble.models import load_zoo
from fer_ensemble.training import train_all

RUN = Path("runs/bench_quick")



def main():
    data = make_synthetic(3000, seed=0)
    train_all(load_zoo("models_zoo/quick.toml"), data, RUN, progress=False, overrides={"epochs": 3})
    ens = Ensemble.load(RUN)
    fused = ens.to_keras()
    batch = Ensemble.as_batch(data.test.x[:256])
    one = batch[:1]
    fused.predict(batch, verbose=0)
    ens.predict_proba(batch, fused=False)
    f_batch = median_time(lambda: fused.predict(batch, verbose=0), 5)
    l_batch = median_time(lambda: ens.predict_proba(batch, fused=False), 5)
    ens.predict_proba(one)
    f_one = median_time(lambda: ens.predict_proba(one), 50)
    f_batch_traced = median_time(lambda: ens.predict_proba(batch), 5)
    f_one_eager = median_time(lambda: fused(one, training=False), 10)
    l_one = median_time(lambda: [m.model(one / 255.0, training=False) for m in ens.members], 30)
    l_one_predict = median_time(lambda: ens.predict_proba(one, fused=False), 10)
    emit("inference", {"members": len(ens.members), "method": ens.method,
                       "batch256": {"fused_predict_s": round(f_batch, 4), "fused_traced_s": round(f_batch_traced, 4),
                                    "member_loop_s": round(l_batch, 4),
                                    "fused_images_per_s": round(256 / f_batch_traced),
                                    "speedup_vs_loop": round(l_batch / f_batch_traced, 2)},
                       "single_image_latency_ms": {"fused_traced (Ensemble.predict_proba)": round(f_one * 1e3, 2),
                                                   "fused_eager_call": round(f_one_eager * 1e3, 2),
                                                   "member_loop_call": round(l_one * 1e3, 2),
                                                   "member_loop_predict": round(l_one_predict * 1e3, 2)}})


if __name__ == "__main__":
    main()
