"""Calibrated electron-tagger scores vs raw ones on a Pythia-free toy: calibration error and efficiencies.

Electron-gun and charged-pion tracks (flat in pT 0.5-5 GeV, |eta| < 2.5) through the detector model
(:func:`excess.data.tracks.simulate_tracks`, no Pythia), a training and a test table; for HGB (default
ensemble) and the per-category DNN (10 epochs), trains with ``calibration=None``, ``"sigmoid"`` and
``"isotonic"`` at one seed and prints the class-balanced expected calibration error on the test table
(the probability refers to equal priors) and the efficiency at 5 % fake rate per true-pT bin and
category, raw -> calibrated. Command (the README figures)::

    OMP_NUM_THREADS=1 python benchmarks/electron_calibration.py --n-train 20000 --n-test 20000 --seed 7
"""

import argparse
import time

import numpy as np

from excess.data.tracks import toy_track_table
from excess.nn.calibration import reliability
from excess.nn.classifiers import balanced_weights
from excess.tagging import ElectronTagger
from excess.tagging.evaluate import efficiency_at_fake_rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-test", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    train, test = toy_track_table(a.n_train, 100), toy_track_table(a.n_test, 200)
    y = test["label"].to_numpy()
    print(f"train {len(train)} tracks, test {len(test)}; efficiencies in true-pT bins", flush=True)
    for model, kw in [("hgb", {}), ("dnn", dict(epochs=10, device="cpu"))]:
        res = {}
        for cal in (None, "sigmoid", "isotonic"):
            t0 = time.perf_counter()
            t = ElectronTagger(model=model, random_state=a.seed, calibration=cal, **kw).fit(train)
            p = t.predict_proba(test)[:, 1]
            res[cal] = efficiency_at_fake_rate(y, t.decision_function(test), test["true_pt"].to_numpy(),
                                               test["category"].to_numpy())
            ece = reliability(y, p, sample_weight=balanced_weights(y))["ece"]
            print(f"{model} calibration={cal}: fit {time.perf_counter() - t0:.0f} s wall, class-balanced ECE "
                  f"{ece:.4f}", flush=True)
        for cal in ("sigmoid", "isotonic"):
            print(f"  {model} efficiency at 5 % fake rate, raw -> {cal} (n electrons, Clopper-Pearson 68 % of raw)")
            for r, c in zip(res[None], res[cal]):
                if np.isfinite(r.efficiency):
                    print(f"    {r.category:13s} {r.pt_lo:.1f}-{r.pt_hi:.1f} GeV: {r.efficiency:.3f} -> "
                          f"{c.efficiency:.3f}  ({r.n_electrons}, [{r.eff_lo:.3f}, {r.eff_hi:.3f}])", flush=True)
    print("command: OMP_NUM_THREADS=1 python benchmarks/electron_calibration.py "
          f"--n-train {a.n_train} --n-test {a.n_test} --seed {a.seed}")


if __name__ == "__main__":
    main()
