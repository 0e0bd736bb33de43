"""Low-pT electron tagger benchmark: simulation throughput, training time, the study's figures.

Prints (and writes to ``--out``): detector-model throughput (tracks/s), Pythia track-sample throughput,
category fractions of higgsino electrons vs the study's 52.2 / 22.9 / 16.1 / 7.6 %, training time of the
per-category DNN, the inclusive network and the HGB baseline, the efficiency at 5 % fake rate per pT bin
and category for each (study: ~50 % at 1 GeV, 60-70 % at 2 GeV, > 80 % above 3 GeV), SHAP per category
(run directory with report.html) and the impact table per mass point.

Samples (make them first; the sizes of the README figures, affordable on 2 shared CPU cores; Run-2-like
pile-up mu = 33.7)::

    excess tag electrons simulate --process gun -n 40000 --chunk-size 20000 --seed 101 --pileup-mu 33.7 -o gen/gun
    excess tag electrons simulate --process wenu -n 2000 --chunk-size 1000 --seed 101 --pileup-mu 33.7 -o gen/wenu
    excess tag electrons simulate --process higgsino -n 2000 --chunk-size 2000 --seed 202 --pileup-mu 33.7 \
        -o gen/higgsino_153_150
    excess tag electrons simulate --process wenu -n 3000 --chunk-size 1500 --pthat-min 150 --seed 202 \
        --pileup-mu 33.7 --keep-tracks-met-min 150 -o gen/wenu_impact
    (and -n 1500 --chunk-size 1500 --seed 202 --pileup-mu 33.7 --keep-tracks-met-min 150 with
    --m-chi20/--m-chi10 103/100, 128/125, 155/150 for the grid)

    python benchmarks/electron_tagger.py --gen gen --out bench_electrons --resimulate --max-per-class 40000 --n-shap 100
    python benchmarks/electron_tagger.py --gen gen --out bench_impact --resimulate --impact-only bench_electrons/models/dnn

(the first command also prints the impact table when ``gen/wenu_impact`` exists.)

``--resimulate`` runs the current detector model again on every sample's stored truth
(:func:`excess.data.electrons.resimulate_tracks`, at the sample's pile-up) instead of using the stored
detector features: samples made by an older version of the model then measure the current one.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

STUDY_FRACTIONS = {"trt_calo": 0.522, "notrt_calo": 0.229, "trt_nocalo": 0.161, "notrt_nocalo": 0.076}


def throughput_detector(n=200_000, seed=0):
    from excess.data.tracks import simulate_tracks

    rng = np.random.default_rng(seed)
    pid = rng.choice([11, -11, 211, -211, 321, 2212], n)
    args = (rng.uniform(0.5, 5, n), rng.uniform(-2.5, 2.5, n), rng.uniform(-3, 3, n), pid)
    simulate_tracks(*(a[:1000] for a in args), random_state=1)  # warm-up (imports)
    t0, c0 = time.perf_counter(), time.process_time()
    simulate_tracks(*args, random_state=1)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def throughput_pythia(tmp: Path, n_events=200):
    from excess.data.electrons import generate_tracks

    t0 = time.perf_counter()
    s = generate_tracks(tmp / "wenu_throughput", n_events, process="wenu", seed=777, chunk_size=n_events)
    dt = time.perf_counter() - t0
    return {"events_per_s": n_events / dt, "tracks_per_s": s.n_tracks / dt, "wall_s": dt, "n_tracks": s.n_tracks}


def run_impact(tagger, gen: Path, load, seed: int) -> dict:
    """The impact table for every ``gen/higgsino_*`` sample against ``gen/wenu_impact`` (printed)."""
    from excess.data.io import read_metadata
    from excess.tagging.impact import impact_study

    sig = {}
    for i, d in enumerate(sorted(gen.glob("higgsino_*"))):
        st = read_metadata(d)["settings"]
        sig[(st["m_chi20"], st["m_chi10"])] = load(d, 10 + i, reco_only=False)
    imp = impact_study(tagger, sig, load(gen / "wenu_impact", 4, reco_only=False), random_state=seed)
    print("\nimpact (139 fb^-1, Asimov Z; S / B / Z; MC events in brackets; B floored at one event weight if 0):")
    for p in imp["points"]:
        cells = []
        for k in ("no_tagger", "tagger", "tagger_rate", "threshold_4p5"):
            r = p["selections"][k]
            cells.append(f"{k}: {r['s']:.2f}/{r['b']:.1f}{'*' if r['b_is_floor'] else ''}/{r['z']:.3f} "
                         f"[{r['n_sig_mc']:.3g},{r['n_bkg_mc']:.3g}]")
        print(f"  {p['m_chi20']:g}/{p['m_chi10']:g} ({p['n_signal_events']} ev. vs {p['n_background_events']}): "
              + "  ".join(cells))
    return imp


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True, help="directory holding the samples listed above")
    ap.add_argument("--out", type=Path, default=Path("bench_electrons"))
    ap.add_argument("--max-per-class", type=int, default=60_000, help="training tracks per class (electrons, others)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--models", default="dnn,inclusive,hgb")
    ap.add_argument("--n-shap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preprocessing", default="quantile", help="the networks' input map: quantile or standard")
    ap.add_argument("--min-epoch-steps", type=int, default=50, help="optimizer steps per epoch at least (0: one pass)")
    ap.add_argument("--skip-pythia", action="store_true")
    ap.add_argument("--resimulate", action="store_true", help="re-run the detector model on the samples' truth")
    ap.add_argument("--saved-models", type=Path, default=None, metavar="MODELS_DIR",
                    help="evaluate the taggers saved in MODELS_DIR/<model> (e.g. OUT/models of an earlier run) "
                         "instead of training them; same data and split")
    ap.add_argument("--no-shap", action="store_true", help="skip SHAP in the evaluation")
    ap.add_argument("--impact-only", type=Path, default=None, metavar="MODEL_DIR",
                    help="only the impact table, with a saved tagger (e.g. OUT/models/dnn of an earlier run)")
    args = ap.parse_args(argv)

    from excess.nn.io import save_model
    from excess.tagging import ElectronTagger
    from excess.tagging.evaluate import evaluate_taggers
    from excess.data.electrons import TrackSampleSettings, read_tracks, resimulate_tracks
    from excess.data.io import read_metadata

    def load(d: Path, salt: int, reco_only: bool = True):
        tr, ev = read_tracks(d)
        if args.resimulate:
            st = TrackSampleSettings.from_dict(read_metadata(d)["settings"])
            tr = resimulate_tracks(tr, st.detector(), random_state=np.random.default_rng([args.seed, salt]))
        if reco_only:
            tr = tr[tr["reco"].astype(bool)].reset_index(drop=True)
            tr["category"] = tr["category"].astype(str)
        return tr, ev

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    from excess._util import atomic_write_json

    if args.impact_only is not None:
        from excess.nn.io import load_model

        imp = run_impact(load_model(args.impact_only, device="cpu"), args.gen, load, args.seed)
        atomic_write_json(out / "impact.json", imp)
        print(f"\nwritten: {out / 'impact.json'}")
        return
    res = {"cpu_count": os.cpu_count(), "torch_threads": None}
    import torch

    res["torch_threads"] = torch.get_num_threads()
    if args.saved_models is None:
        res["detector_tracks_per_s"], res["detector_tracks_per_cpu_s"] = throughput_detector()
        print(f"detector model: {res['detector_tracks_per_s']:,.0f} tracks/s wall, {res['detector_tracks_per_cpu_s']:,.0f} per CPU s "
              "(simulate_tracks, 200k mixed particles, 1 process)")
    if not args.skip_pythia and args.saved_models is None:
        res["pythia_wenu"] = throughput_pythia(out)
        p = res["pythia_wenu"]
        print(f"W->enu+jets sample: {p['events_per_s']:.1f} events/s, {p['tracks_per_s']:.0f} tracks/s "
              f"(Pythia 8 + detector model, 200 events, 1 process)")

    # ---- category fractions of higgsino electrons ----
    hig, _ = load(args.gen / "higgsino_153_150", 1)
    cats = hig.loc[hig["label"] == 1, "category"]
    frac = cats.value_counts(normalize=True).reindex(list(STUDY_FRACTIONS), fill_value=0).to_dict()
    res["higgsino_category_fractions"] = frac
    res["higgsino_electrons"] = int(len(cats))
    print("\ncategory fractions, reconstructed higgsino electrons pT 0.5-5 GeV (153/150 GeV), "
          f"{len(cats)} electrons:")
    for c, v in frac.items():
        print(f"  {c:13s} {100 * v:5.1f} %   (study {100 * STUDY_FRACTIONS[c]:.1f} %)")

    # ---- training data: gun electrons + W+jets background tracks ----
    rng = np.random.default_rng(args.seed)
    gun, _ = load(args.gen / "gun", 2)
    bkg, _ = load(args.gen / "wenu", 3)
    bkg = bkg[bkg["label"] == 0]
    gun = gun.sample(n=min(args.max_per_class, len(gun)), random_state=args.seed)
    is_test = rng.random(len(bkg)) < 0.3
    bkg_train = bkg[~is_test].sample(n=min(args.max_per_class, int((~is_test).sum())), random_state=args.seed)
    train = pd.concat([gun, bkg_train], ignore_index=True)
    res["n_train"] = {"electrons": int(len(gun)), "others": int(len(bkg_train))}
    print(f"\ntraining: {len(gun)} gun electrons + {len(bkg_train)} W+jets tracks "
          f"(origins: {bkg_train['origin'].value_counts().to_dict()})")
    taggers, res["train_s"] = {}, {}
    for m in args.models.split(","):
        if args.saved_models is not None:
            from excess.nn.io import load_model

            taggers[m] = load_model(args.saved_models / m, device="cpu")
            print(f"  {m:10s} loaded from {args.saved_models / m}")
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        tg = ElectronTagger(model=m, epochs=args.epochs, random_state=args.seed, device="cpu",
                            preprocessing=args.preprocessing, min_epoch_steps=args.min_epoch_steps).fit(train)
        res["train_s"][m] = time.perf_counter() - t0
        res.setdefault("train_cpu_s", {})[m] = time.process_time() - c0
        taggers[m] = tg
        save_model(tg, out / "models" / m)
        print(f"  {m:10s} trained in {res['train_s'][m]:.1f} s wall, {res['train_cpu_s'][m]:.1f} s CPU")

    # ---- evaluation: higgsino electrons vs held-out W+jets tracks and the higgsino events' own tracks ----
    ev_tracks = pd.concat([hig, bkg[is_test]], ignore_index=True)
    metrics = evaluate_taggers(taggers, ev_tracks, out / "evaluation", shap=not args.no_shap, n_shap=args.n_shap, random_state=args.seed,
                               config={"benchmark": "electron_tagger", **vars(args)})
    res["evaluation"] = {m: {"auc": v["roc"], "efficiency": v["efficiency"]} for m, v in metrics["models"].items()}
    res["evaluation_s"] = metrics.get("runtime_s")
    print(f"\nevaluation incl. SHAP: {metrics.get('runtime_s', float('nan')):.0f} s wall")
    print("\nefficiency at 5 % fake rate, 68 % Clopper-Pearson interval in brackets, n electrons and b background"
          " tracks per bin")
    print(f"\nefficiency at 5 % fake rate (true pT bins; signal = higgsino electrons, {int(ev_tracks['label'].sum())};"
          f" background = {int((ev_tracks['label'] == 0).sum())} tracks)")
    for m, v in metrics["models"].items():
        print(f"  {m}: AUC combined {v['roc']['combined']['auc']:.4f}")
        rows = {}
        for e in v["efficiency"]:
            rows.setdefault(e["category"], []).append(e)
        for c, es in rows.items():
            cells = "  ".join(
                f"{e['pt_lo']:g}-{e['pt_hi']:g}: " + (f"  n/a (n={e['n_electrons']}, b={e['n_others']})"
                                                     if e["efficiency"] is None or e["efficiency"] != e["efficiency"]
                                                     else f"{100 * e['efficiency']:5.1f}% [{100 * e['eff_lo']:.1f}, "
                                                          f"{100 * e['eff_hi']:.1f}] (n={e['n_electrons']}, "
                                                          f"b={e['n_others']})")
                for e in es)
            print(f"    {c:13s} {cells}")

    print("\nSHAP, mean |SHAP| per feature, top 5 per category (plots: evaluation/plots/shap_*.png):")
    for m, v in metrics["models"].items():
        for group, imp in (v.get("shap") or {}).items():
            if not isinstance(imp, dict) or "features" not in imp:
                print(f"  {m:10s} {group:13s} {imp}")
                continue
            order = np.argsort(imp["mean_abs_shap"])[::-1][:5]
            print(f"  {m:10s} {group:13s} " + ", ".join(f"{imp['features'][i]} {imp['mean_abs_shap'][i]:.3f}"
                                                          for i in order) + f"  (n={imp['n']})")
        res["evaluation"][m]["shap"] = v.get("shap")

    # ---- impact ----
    if (args.gen / "wenu_impact").exists() and "dnn" in taggers:
        res["impact"] = run_impact(taggers["dnn"], args.gen, load, args.seed)
    atomic_write_json(out / "benchmark.json", res)
    print(f"\nwritten: {out / 'benchmark.json'}, {out / 'evaluation' / 'report.html'}")


if __name__ == "__main__":
    main()
