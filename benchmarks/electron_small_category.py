"""One category's tagger member alone: the study's DNN vs HGB on the same training rows (a diagnostic).

Same data, re-simulation seeds and split as ``benchmarks/electron_tagger.py`` (gun electrons vs W+jets
tracks for training; higgsino electrons plus the held-out 30 % of the W+jets tracks for the test); prints
the efficiency at 5 % fake rate per true-pT bin of a DNN member (2 x 128, dropout 0.5, Adam 1e-3, batch 512)
and of an HGB member trained on the tracks of ``--category`` only. The DNN uses the tagger's defaults
(quantile input map, epochs of at least 50 optimizer steps); ``--preprocessing standard --min-epoch-steps 0``
gives the study's plain network, which failed in ``notrt_nocalo`` below 1 GeV (README)::

    python benchmarks/electron_small_category.py --gen gen --category notrt_nocalo
    python benchmarks/electron_small_category.py --gen gen --category notrt_nocalo \
        --preprocessing standard --min-epoch-steps 0
    python benchmarks/electron_small_category.py --gen gen --category notrt_nocalo --max-per-class 0   # all gun electrons
    python benchmarks/electron_small_category.py --gen gen --category notrt_nocalo --epochs 150 --patience 30 --models dnn
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True, help="holds gun, wenu and higgsino_153_150")
    ap.add_argument("--category", default="notrt_nocalo")
    ap.add_argument("--max-per-class", type=int, default=15000, help="gun electrons and W+jets tracks (0: all)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--models", default="dnn,hgb")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preprocessing", default="quantile", help="the DNN's input map: quantile (default) or standard")
    ap.add_argument("--min-epoch-steps", type=int, default=50, help="optimizer steps per epoch at least (0: one pass)")
    args = ap.parse_args(argv)

    from excess.data.electrons import TrackSampleSettings, read_tracks, resimulate_tracks
    from excess.data.io import read_metadata
    from excess.data.tracks import CATEGORIES, category_features
    from excess.nn.classifiers import HGBEnsemble, MLPClassifier
    from excess.tagging.evaluate import efficiency_at_fake_rate

    if args.category not in CATEGORIES:
        raise SystemExit(f"unknown category {args.category!r}; known: {', '.join(CATEGORIES)}")

    def load(name, salt):  # as benchmarks/electron_tagger.py --resimulate
        tr, _ = read_tracks(args.gen / name)
        st = TrackSampleSettings.from_dict(read_metadata(args.gen / name)["settings"])
        tr = resimulate_tracks(tr, st.detector(), random_state=np.random.default_rng([args.seed, salt]))
        tr = tr[tr["reco"].astype(bool)].reset_index(drop=True)
        tr["category"] = tr["category"].astype(str)
        return tr

    hig, gun, bkg = load("higgsino_153_150", 1), load("gun", 2), load("wenu", 3)
    bkg = bkg[bkg["label"] == 0]
    is_test = np.random.default_rng(args.seed).random(len(bkg)) < 0.3
    n = args.max_per_class or len(gun)
    gun = gun.sample(n=min(n, len(gun)), random_state=args.seed)
    b = bkg[~is_test]
    b = b.sample(n=min(args.max_per_class or len(b), len(b)), random_state=args.seed)
    cat, feats = args.category, list(category_features(args.category))
    tr = pd.concat([gun[gun["category"] == cat], b[b["category"] == cat]], ignore_index=True)
    ev = pd.concat([hig, bkg[is_test]], ignore_index=True)
    ev = ev[ev["category"] == cat]
    X, y = tr[feats].to_numpy(float), tr["label"].to_numpy()
    print(f"{cat}: training {int(y.sum())} gun electrons / {int((y == 0).sum())} W+jets tracks; test "
          f"{int(ev['label'].sum())} higgsino electrons / {int((ev['label'] == 0).sum())} tracks")
    for name in args.models.split(","):
        est = (MLPClassifier(hidden=(128, 128), epochs=args.epochs, batch_size=512, lr=1e-3, patience=args.patience,
                             n_best=1, validation_fraction=0.2, dropout=0.5, random_state=args.seed, device="cpu",
                             preprocessing=args.preprocessing, min_epoch_steps=args.min_epoch_steps)
               if name == "dnn" else HGBEnsemble(n_members=3, random_state=args.seed))
        c0 = time.process_time()
        est.fit(X, y)
        s = est.predict_proba(ev[feats].to_numpy(float))[:, 1]
        effs = efficiency_at_fake_rate(ev["label"].to_numpy(), s, ev["true_pt"].to_numpy())
        print(f"  {name}: {time.process_time() - c0:.1f} CPU s; " + "  ".join(
            f"{e.pt_lo:g}-{e.pt_hi:g}: {100 * e.efficiency:.1f}% [{100 * e.eff_lo:.0f}-{100 * e.eff_hi:.0f}] "
            f"(n={e.n_electrons})" for e in effs))


if __name__ == "__main__":
    main()
