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
    # fourth pass off: the crack as a hole (the third-pass model)
    "crack_as_hole": {"crack_has_calo": False},
    # fifth pass off: no fitted-pT threshold in the tracking (the fourth-pass model)
    "no_track_pt_threshold": {"track_pt_min_gev": 0.0},
    "second_pass_model": {"crack_has_calo": False, "track_pt_min_gev": 0.0, "calo_cluster_et_min_gev": 0.0, "trt_ext_ineff_base": 0.0, "trt_ext_ineff_slope": 0.0,
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


def category_drivers(electrons: pd.DataFrame, det, seed: int) -> dict:
    """Why reconstructed electrons land where they do: the default model against the same draws (same seed)
    without the TRT-extension loss and without the cluster threshold (neither consumes random numbers, so
    each electron's other draws are identical). Returns, per category, the share of its electrons
    outside the TRT (|eta| > 2.0), curled before the TRT (no straws crossed at |eta| < 2.0), with a lost
    TRT extension, outside the calorimeter (|eta| > 2.47), whose fitted helix misses the calorimeter,
    failing the cluster threshold; the median energy lost to bremsstrahlung; the share with true pT < 1 GeV.
    """
    from excess.data.electrons import resimulate_tracks

    def run(d):
        return resimulate_tracks(electrons, d, random_state=np.random.default_rng([seed, 3]))  # as the variants

    full = run(det)
    no_ext = run(dataclasses.replace(det, trt_ext_ineff_base=0.0, trt_ext_ineff_slope=0.0))
    no_thr = run(dataclasses.replace(det, calo_cluster_et_min_gev=0.0))
    r = full["reco"].to_numpy(bool)
    a = full["true_eta"].abs().to_numpy()
    trt_geo, calo_geo = no_ext["has_trt"].to_numpy(bool), no_thr["has_calo"].to_numpy(bool)
    cat = full["category"].astype(str).to_numpy()
    out = {}
    for c in sorted(set(cat[r]), key=["trt_calo", "notrt_calo", "trt_nocalo", "notrt_nocalo"].index):
        m = r & (cat == c)
        k = m.sum()
        out[c] = {
            "n": int(k),
            "outside_trt_eta": float((m & (a > 2.0)).sum() / k),
            "curled_before_trt": float((m & (a <= 2.0) & ~trt_geo).sum() / k),
            "lost_trt_extension": float((m & trt_geo & ~full["has_trt"].to_numpy(bool)).sum() / k),
            "outside_calo_eta": float((m & (a >= 2.47)).sum() / k),
            "helix_misses_calo": float((m & (a < 2.47) & ~calo_geo).sum() / k),
            "below_cluster_threshold": float((m & calo_geo & ~full["has_calo"].to_numpy(bool)).sum() / k),
            "median_brem_fraction": float(np.median(full.loc[m, "brem_fraction"])),
            "true_pt_below_1": float((m & (full["true_pt"].to_numpy() < 1.0)).sum() / k),
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench_electron_effects"))
    ap.add_argument("--max-per-class", type=int, default=40_000)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from: {', '.join(VARIANTS)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fractions-only", action="store_true",
                    help="only the higgsino category fractions per variant and their drivers (no training)")
    args = ap.parse_args(argv)

    from excess._util import atomic_write_json
    from excess.data.electrons import read_tracks, resimulate_tracks
    from excess.data.io import read_metadata
    from excess.data.tracks import TrackDetector
    from excess.errors import InputError
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
        if args.fractions_only:
            h = resimulate_tracks(hig_e, det, random_state=np.random.default_rng([args.seed, 3]))
            frac = h.loc[h["reco"], "category"].value_counts(normalize=True).to_dict()
            res["variants"][name] = {"higgsino_category_fractions": frac}
            print(f"{name}: higgsino fractions " + " ".join(f"{k} {100 * v:.1f}%" for k, v in frac.items()))
            continue
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
        try:
            tagger = ElectronTagger(model="hgb", hgb_members=1, random_state=args.seed).fit(
                pd.concat([g, bkg_train], ignore_index=True))
        except InputError as exc:  # e.g. without the cluster threshold trt_nocalo is nearly empty: record it, go on
            frac = h["category"].value_counts(normalize=True).to_dict()
            res["variants"][name] = {"error": str(exc), "higgsino_category_fractions": frac}
            print(f"\n{name}: not trainable: {exc}")
            continue
        ev = pd.concat([h, bkg_test], ignore_index=True)
        effs = efficiency_at_fake_rate(ev["label"].to_numpy(), tagger.decision_function(ev), ev["true_pt"].to_numpy(),
                                       ev["category"].astype(str).to_numpy())
        frac = h["category"].value_counts(normalize=True).to_dict()
        res["variants"][name] = {"efficiency": [e.to_dict() for e in effs], "higgsino_category_fractions": frac,
                                 "seconds": time.perf_counter() - t0}
        if name == "default":
            res["feature_auc_gun_vs_wenu"] = feature_aucs(g, bkg_train)
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out / "effects.json", res)  # after every variant: a long run can be stopped
        print(f"\n{name}: higgsino fractions " + " ".join(f"{k} {100 * v:.1f}%" for k, v in frac.items()))
        rows = {}
        for e in effs:
            rows.setdefault(e.category, []).append(e)
        for c, es in rows.items():
            print(f"  {c:13s} " + "  ".join(f"{e.pt_lo:g}-{e.pt_hi:g}: " + (" n/a " if e.efficiency != e.efficiency
                                                                             else f"{100 * e.efficiency:5.1f}%")
                                            for e in es))
    drivers = category_drivers(hig_e, TrackDetector(pileup_mu=mu), args.seed)
    res["category_drivers_default"] = drivers
    print("\nwhat puts higgsino electrons in each category (default model; shares of the category's electrons):")
    for c, d in drivers.items():
        print(f"  {c:13s} n={d['n']}: |eta|>2.0 {100 * d['outside_trt_eta']:.0f}%, curled before TRT "
              f"{100 * d['curled_before_trt']:.0f}%, TRT extension lost {100 * d['lost_trt_extension']:.0f}%, "
              f"|eta|>2.47 {100 * d['outside_calo_eta']:.0f}%, helix misses calo {100 * d['helix_misses_calo']:.0f}%, "
              f"below cluster threshold {100 * d['below_cluster_threshold']:.0f}%; median brem fraction "
              f"{d['median_brem_fraction']:.2f}, true pT < 1 GeV {100 * d['true_pt_below_1']:.0f}%")
    print("\nsingle-feature AUC (gun electrons vs W+jets tracks, default model), top 5 per category:")
    for c, row in res.get("feature_auc_gun_vs_wenu", {}).items():
        print(f"  {c:13s} " + ", ".join(f"{f} {a:.3f}" for f, a in list(row.items())[:5]))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "effects.json", res)
    print(f"\nwritten: {args.out / 'effects.json'}")


if __name__ == "__main__":
    main()
