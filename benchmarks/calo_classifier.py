"""The evaluation's classifier test on a small fixed case: AUC / JSD per seed, and its time.

Two GFLASH ds1-like reference samples of the same settings (seeds 1 and 2: AUC should be 0.5) and one with
half the spots per shower (``spot_factor=0.5``: larger fluctuations, a mild difference), compared with
``excess.calo.evaluate.classifier_test`` on low-level (voxels) and high-level (features) inputs for a few
seeds. Run it with two versions of the code on the same cached showers to see what a change of the
classifier does to the calo figures:

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/calo_classifier.py --cache /tmp/calo_clf
    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/calo_classifier.py --cache /tmp/calo_clf
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=3000, help="showers per sample")
    ap.add_argument("--seeds", default="0,1,2", help="classifier seeds")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--cache", type=Path, default=Path("runs/calo_classifier"), help="where the simulated showers are kept")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, default=None, help="JSON file for the figures")
    a = ap.parse_args(argv)

    import torch

    from excess.calo.evaluate import classifier_test
    from excess.calo.gflash import GFlashSimulator, sample_incident_energies
    from excess.calo.io import read_showers, write_showers

    torch.set_num_threads(a.threads)
    a.cache.mkdir(parents=True, exist_ok=True)
    samples = {}
    for name, seed, spot in (("ref_a", 1, 1.0), ("ref_b", 2, 1.0), ("spots_half", 3, 0.5)):
        f = a.cache / f"{name}_{a.n}.h5"
        if not f.exists():
            sim = GFlashSimulator.preset("ds1-like", spot_factor=spot)
            rng = np.random.default_rng(seed)
            e = sample_incident_energies(a.n, "discrete", e_min=256, e_max=2.0**22, random_state=rng)
            write_showers(f, e, sim.simulate(e, rng), geometry=sim.geometry)
        samples[name] = read_showers(f)
    ref = samples["ref_a"]
    rows = []
    for other in ("ref_b", "spots_half"):
        o = samples[other]
        for inputs in ("low", "high"):
            for seed in (int(s) for s in a.seeds.split(",")):
                t0 = time.perf_counter()
                r = classifier_test(ref.showers, ref.incident_energies, o.showers, o.incident_energies, ref.geometry,
                                    inputs=inputs, epochs=a.epochs, random_state=seed)
                rows.append({"vs": other, "inputs": inputs, "seed": seed, "auc": r.auc, "jsd": r.jsd,
                             "epochs_run": r.epochs_run, "seconds": time.perf_counter() - t0})
                print(f"ref_a vs {other:>10} {inputs:>4}-level seed {seed}: AUC {r.auc:.4f}  JSD {r.jsd:+.4f}  "
                      f"epochs {r.epochs_run:>2}  {rows[-1]['seconds']:.1f} s", flush=True)
    for other in ("ref_b", "spots_half"):
        for inputs in ("low", "high"):
            aucs = [r["auc"] for r in rows if r["vs"] == other and r["inputs"] == inputs]
            print(f"mean AUC ref_a vs {other:>10} {inputs:>4}-level: {np.mean(aucs):.4f} (range {min(aucs):.4f}-{max(aucs):.4f})")
    if a.output:
        a.output.write_text(json.dumps(rows, indent=1))
    print("reproduce:", f"OMP_NUM_THREADS={a.threads} .venv/bin/python", shlex.join(["benchmarks/calo_classifier.py", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
