"""Which detector effect drives the low-pT electron efficiency: one-at-a-time ablations of the detector model.

The stored truth of the samples is re-simulated (:func:`excess.data.electrons.resimulate_tracks`) with the
default :class:`~excess.data.tracks.TrackDetector` at the samples' pile-up and with one effect switched off
at a time (or a feature group hidden from the tagger); an HGB tagger (one member per category, fast) is trained on gun electrons vs W+jets tracks and
evaluated on higgsino electrons vs held-out W+jets tracks: efficiency at 5 % fake rate per category and
true-pT bin, plus the single-feature AUCs (gun vs W+jets) of the default model per category.

    python benchmarks/electron_detector_effects.py --gen GEN --out bench_electron_effects

``GEN`` holds ``gun``, ``wenu`` and ``higgsino_153_150`` made by ``excess tag electrons simulate`` (see
``benchmarks/electron_tagger.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {
    "default": {},
    "no_pileup": {"pileup_mu": 0.0},
    "no_trt_occupancy": {"trt_ht_occupancy": 0.0},
    "no_id_hadronic_interactions": {"id_lambda_per_x0": 0.0},
    "no_pi0_fluctuations": {"fem_concentration": 1e4, "charge_exchange_prob": 0.0},
    "physical_calo_acceptance": {"calo_acceptance": "physical"},
    # third pass, one effect off at a time (conversions at the layers are made at generation, not here)
    "no_cluster_threshold": {"calo_cluster_et_min_gev": 0.0},
    "no_trt_extension_loss": {"trt_ext_ineff_base": 0.0, "trt_ext_ineff_slope": 0.0},
    "no_shower_latent": {"shower_latent_rho": 0.0},
    "no_brem_latent": {"brem_latent_rho": 0.0, "brem_fit_log_sigma": 0.0},
    "gaussian_shapes": {"shape_tail_dof": None},
    "no_overlapping_hadrons": {"ov_had_em_beta": None},
    "second_pass_model": {"calo_cluster_et_min_gev": 0.0, "trt_ext_ineff_base": 0.0, "trt_ext_ineff_slope": 0.0,
                          "shower_latent_rho": 0.0, "brem_latent_rho": 0.0, "brem_fit_log_sigma": 0.0,
                          "shape_tail_dof": None, "ov_had_em_beta": None},
    # the default model, with a feature group hidden from the tagger (set to 0 in training and evaluation)
    "without_dpoverp": {"drop": ("dpoverp",)},
    "without_trt_pid": {"drop": ("f_ht", "trt_pid")},
    "without_calorimeter": {"drop": ("e_over_p", "f0", "f1", "f3", "rhad", "reta", "rphi", "weta2", "deta1", "dphi2")},
}


def feature_aucs(sig: pd.DataFrame, bkg: pd.DataFrame) -> dict:
    from excess.data.tracks import CATEGORIES, category_features
    from excess.stats.roc import roc_auc

    out = {}
    for cat in CATEGORIES:
        s, b = sig[sig["category"] == cat], bkg[bkg["category"] == cat]
        if len(s) < 20 or len(b) < 20:
            continue
        row = {}
        for f in category_features(cat):
            y = np.r_[np.ones(len(s)), np.zeros(len(b))]
            a = roc_auc(y, np.r_[s[f].to_numpy(float), b[f].to_numpy(float)])
            row[f] = max(a, 1 - a)
        out[cat] = dict(sorted(row.items(), key=lambda kv: -kv[1]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench_electron_effects"))
    ap.add_argument("--max-per-class", type=int, default=40_000)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from: {', '.join(VARIANTS)}")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    from excess._util import atomic_write_json
    from excess.data.electrons import read_tracks, resimulate_tracks
    from excess.data.io import read_metadata
    from excess.data.tracks import TrackDetector
    from excess.tagging import ElectronTagger
    from excess.tagging.evaluate import efficiency_at_fake_rate

    def load(name):
        t, _ = read_tracks(args.gen / name)
        mu = read_metadata(args.gen / name)["settings"].get("pileup_mu", 0.0)
        return t, mu

    gun, mu = load("gun")
    wenu, _ = load("wenu")
    hig, _ = load("higgsino_153_150")
    rng = np.random.default_rng(args.seed)
    gun = gun.sample(n=min(args.max_per_class, len(gun)), random_state=args.seed).reset_index(drop=True)
    test = rng.random(len(wenu)) < 0.3
    hig_e = hig[hig["label"] == 1].reset_index(drop=True)
    res = {"pileup_mu": mu, "variants": {}}
    print(f"samples: {len(gun)} gun electrons, {len(wenu)} W+jets tracks ({int(test.sum())} held out), "
          f"{len(hig_e)} higgsino electrons; pile-up mu = {mu}")
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    for name in args.variants.split(","):
        spec = dict(VARIANTS[name])
        drop = spec.pop("drop", ())
        det = dataclasses.replace(TrackDetector(pileup_mu=mu), **spec)
        t0 = time.perf_counter()
        g = resimulate_tracks(gun, det, random_state=np.random.default_rng([args.seed, 1]))
        w = resimulate_tracks(wenu, det, random_state=np.random.default_rng([args.seed, 2]))
        h = resimulate_tracks(hig_e, det, random_state=np.random.default_rng([args.seed, 3]))
        g, h = g[g["reco"]].copy(), h[h["reco"]].copy()
        for df in (g, w, h):
            for f in drop:  # hidden from the tagger; NaN (absent sub-detector) stays NaN
                df[f] = np.where(df[f].isna(), np.nan, 0.0)
        wr = w["reco"].to_numpy(bool)
        bkg_train = w[~test & wr & (w["label"] == 0)]
        bkg_train = bkg_train.sample(n=min(args.max_per_class, len(bkg_train)), random_state=args.seed)
        bkg_test = w[test & wr & (w["label"] == 0)]
        tagger = ElectronTagger(model="hgb", hgb_members=1, random_state=args.seed).fit(
            pd.concat([g, bkg_train], ignore_index=True))
        ev = pd.concat([h, bkg_test], ignore_index=True)
        effs = efficiency_at_fake_rate(ev["label"].to_numpy(), tagger.decision_function(ev), ev["true_pt"].to_numpy(),
                                       ev["category"].astype(str).to_numpy())
        frac = h["category"].value_counts(normalize=True).to_dict()
        res["variants"][name] = {"efficiency": [e.to_dict() for e in effs], "higgsino_category_fractions": frac,
                                 "seconds": time.perf_counter() - t0}
        if name == "default":
            res["feature_auc_gun_vs_wenu"] = feature_aucs(g, bkg_train)
        print(f"\n{name}: higgsino fractions " + " ".join(f"{k} {100 * v:.1f}%" for k, v in frac.items()))
        rows = {}
        for e in effs:
            rows.setdefault(e.category, []).append(e)
        for c, es in rows.items():
            print(f"  {c:13s} " + "  ".join(f"{e.pt_lo:g}-{e.pt_hi:g}: " + (" n/a " if e.efficiency != e.efficiency
                                                                             else f"{100 * e.efficiency:5.1f}%")
                                            for e in es))
    print("\nsingle-feature AUC (gun electrons vs W+jets tracks, default model), top 5 per category:")
    for c, row in res.get("feature_auc_gun_vs_wenu", {}).items():
        print(f"  {c:13s} " + ", ".join(f"{f} {a:.3f}" for f, a in list(row.items())[:5]))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "effects.json", res)
    print(f"\nwritten: {args.out / 'effects.json'}")


if __name__ == "__main__":
    main()
