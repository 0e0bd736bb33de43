"""ANTELOPE benchmark: AUC / SIC of the PFN, ANTELOPE and the high-level AE across the SVJ signal grid, training
times, and (``--search``) the mT bump hunt on QCD with an injected signal and on QCD alone.

1. Reads a QCD sample and signal samples (``excess svj generate``; ``excess.data.svj.read_svj``), applies the
   >= 3-track preselection, and runs :func:`excess.antelope.evaluate.evaluate_models`: for each of ``--seeds``
   seeds the PFN is trained on QCD vs ``--train-point``, ANTELOPE's VAE on the QCD training half's PFN latent,
   the autoencoder on the QCD training half's high-level jet variables; every model scores the held-out QCD
   against every signal point. Prints the AUC table (mean ± std over seeds), the max-SIC table, and the training
   times per seed (CPU seconds of this process and wall seconds; the machine is shared, so CPU is the figure).
2. ``--search``: takes the first seed's PFN and VAE (saved to ``OUT/models``, with the ``file#row`` keys of every
   event they were trained on in ``OUT/models/train_events.json``) and runs the mT search
   (:func:`excess.antelope.search.run_antelope_search`, frozen VAE) on the QCD events that are not in that list plus
   ``--n-inject`` events of ``--inject`` (default the training point) that are not in it either, and on the same
   QCD alone. Prints the number of excluded training events (and checks that none is searched), S/sqrt(B) of the
   truth in every window before any cut (the best one), the search's best window, the mass estimate, local and
   global Z, and S/sqrt(B) of the truth in the search's best window.

Example::

    nice -n 5 .venv/bin/python benchmarks/antelope.py --qcd /data/svj/qcd --signal /data/svj/sig_* \
        --train-point 2000,0.3 --seeds 3 --out runs/bench_antelope --search
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qcd", nargs="+", required=True, help="QCD sample(s) (file or chunk directory)")
    ap.add_argument("--signal", nargs="+", required=True, help="signal sample(s), one or more points each")
    ap.add_argument("--train-point", default="2000,0.3", help="the PFN's signal point m_zprime,r_inv[,m_dark]")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="training seeds first-seed ... first-seed + seeds - 1 "
                    "(split the seeds over processes; the data split does not depend on them)")
    ap.add_argument("--max-qcd", type=int, default=None, help="use at most this many QCD events")
    ap.add_argument("--max-signal", type=int, default=None, help="use at most this many events per signal sample")
    ap.add_argument("--pfn-epochs", type=int, default=40)
    ap.add_argument("--pfn-batch", type=int, default=128, help="the paper's 500 suits samples of 100k+ events")
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--vae-epochs", type=int, default=100)
    ap.add_argument("--vae-lr", type=float, default=None, help="VAE learning rate (default the model's, 1e-3)")
    ap.add_argument("--ae-epochs", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_antelope"))
    ap.add_argument("--search", action="store_true", help="also run the mT searches (injected signal, QCD alone)")
    ap.add_argument("--inject", default=None, help="signal point injected in the search (default: --train-point)")
    ap.add_argument("--n-inject", type=int, default=300)
    ap.add_argument("--window-width", type=float, default=None, help="SR width in mT (GeV) [search default 600]")
    ap.add_argument("--window-step", type=float, default=None, help="SR step (GeV) [100]")
    ap.add_argument("--sideband-width", type=float, default=None, help="sideband width (GeV) [800]")
    ap.add_argument("--anchor", type=float, default=None, help="a window centre (GeV) [search default 3500]")
    ap.add_argument("--bin-width", type=float, default=None, help="mT bin width of the fits (GeV) [50]")
    ap.add_argument("--min-sideband-events", type=int, default=100)
    ap.add_argument("--efficiencies", default="0.1,0.03,0.01")
    ap.add_argument("--background-model", default="efficiency",
                    choices=("efficiency", "sideband", "profile", "signal_fit", "dijet_signal"),
                    help="the searches' background model (default efficiency, the model of the README's benchmark run; "
                         "`excess antelope search` defaults to dijet_signal)")
    ap.add_argument("-j", "--workers", type=int, default=1, help="worker processes of the search")
    ap.add_argument("--toys", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    from excess._util import atomic_write_json, set_quiet
    from excess.antelope.data import SVJData, load_samples, point_mask, preselect
    from excess.antelope.evaluate import auc_table, evaluate_models
    from excess.antelope.report import write_evaluation_plots, write_evaluation_report

    set_quiet(True)
    niceness = os.nice(0)
    command = (f"nice -n {niceness} " if niceness else "") + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    args.out.mkdir(parents=True, exist_ok=True)
    qcd = load_samples(args.qcd)
    if args.max_qcd:
        qcd = qcd.subset(np.arange(min(args.max_qcd, len(qcd))))
    sigs = []
    for p in args.signal:
        s = load_samples([p])
        sigs.append(s.subset(np.arange(min(args.max_signal or len(s), len(s)))))
    data, counts = preselect(SVJData.concat([qcd, *sigs]))
    print(f"events after the >= 3-track preselection: {counts}")
    params = {"pfn": {"epochs": args.pfn_epochs, "batch_size": args.pfn_batch, "patience": args.patience},
              "vae": {"epochs": args.vae_epochs, "patience": args.patience,
                      **({"lr": args.vae_lr} if args.vae_lr is not None else {})},
              "ae": {"epochs": args.ae_epochs, "patience": args.patience}}
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    res = evaluate_models(data, train_point=args.train_point, seeds=seeds, pfn_params=params["pfn"],
                          vae_params=params["vae"], ae_params=params["ae"], device=args.device,
                          save_models=args.out / "models")
    metrics = {**res.to_dict(), "preselection": counts, "command": command,
               "wall_s": time.perf_counter() - t0}
    caps = write_evaluation_plots(res, data.events, args.out / "plots")
    atomic_write_json(args.out / "metrics.json", metrics)
    write_evaluation_report(args.out, metrics, caps)
    print("\nROC AUC, QCD (held out) vs each signal point:")
    print(auc_table(metrics))
    print("\nmax SIC:")
    print(auc_table(metrics, "max_sic"))
    print("\ntraining time per seed (mean ± std; CPU s of this process / wall s):")
    for k, v in res.timing.items():
        print(f"  {k:7s} CPU {np.mean(v['cpu_s']):8.1f} ± {np.std(v['cpu_s']):.1f}   wall {np.mean(v['wall_s']):8.1f}")
    print(f"  counts: {res.counts}")

    if args.search:
        import json

        from excess.antelope.search import run_antelope_search

        ev = data.events
        lab = ev["label"].to_numpy()
        # the events the models were trained on (PFN: QCD + the training point's signal; VAE: that QCD), by
        # file#row as evaluate_models saved them: none of them is searched
        trained = set(json.loads((args.out / "models" / "train_events.json").read_text()))
        held = np.array([k not in trained for k in data.keys()])
        b_te = np.nonzero((lab == 0) & held)[0]
        inject = args.inject or args.train_point
        cand = np.nonzero(point_mask(ev, inject) & held)[0]
        pick = np.sort(np.random.default_rng(7).choice(cand, min(args.n_inject, cand.size), replace=False))
        n_excl = int((~held).sum())
        assert not set(data.keys(np.r_[b_te, pick])) & trained
        print(f"\nsearch samples: {b_te.size} held-out QCD events, {pick.size} of {cand.size} held-out events of "
              f"{inject}; {n_excl} training events excluded (none of them searched)")
        effs = tuple(float(e) for e in args.efficiencies.split(","))
        wo = {k: v for k, v in (("width", args.window_width), ("step", args.window_step),
                                ("sideband_width", args.sideband_width), ("anchor", args.anchor),
                                ("bin_width", args.bin_width)) if v is not None}
        out = {"n_training_events_excluded": n_excl, "n_qcd": int(b_te.size), "n_injected": int(pick.size),
               "inject": inject}
        for name, idx in (("injected", np.r_[b_te, pick]), ("qcd_only", b_te)):
            sub = data.subset(np.sort(idx))
            m = run_antelope_search(sub, args.out / "models", args.out / f"search_{name}",
                                    efficiencies=effs, window_options=wo, global_toys=args.toys, seed=1,
                                    device=args.device, show_progress=False, workers=args.workers,
                                    min_sideband_events=args.min_sideband_events,
                                    background_model=args.background_model)
            g = m["global_significance"] or {}
            mt, y = sub.events["mT"].to_numpy(), sub.events["label"].to_numpy()
            per_window = []
            for w in m["windows"]:
                lo, hi = w["window"]["sr_lo"], w["window"]["sr_hi"]
                sr = (mt >= lo) & (mt < hi)
                s_, b_ = int((sr & (y == 1)).sum()), int((sr & (y == 0)).sum())
                per_window.append({"sr": [lo, hi], "S": s_, "B": b_, "S_over_sqrtB": s_ / np.sqrt(b_) if b_ else None,
                                   "status": w["status"]})
            best_truth = max(per_window, key=lambda d: d["S_over_sqrtB"] or 0) if per_window else None
            out[name] = {"best": m["best"], "z_global": g.get("z_global"),
                         "z_global_is_limit": g.get("z_global_is_limit"), "n_toys": g.get("n_toys"),
                         "truth": m["truth_best_window"], "n_events": m["n_events"],
                         "truth_per_window_no_cut": per_window, "truth_best_window_no_cut": best_truth}
            b = m["best"] or {}
            tr = (m["truth_best_window"] or {}).get("inclusive", {})
            n_ok = sum(w["status"] == "ok" for w in m["windows"])
            print(f"\nmT search, {name} ({m['n_events']} events"
                  f"{'' if name == 'qcd_only' else f', {pick.size} signal events of {inject}'}; "
                  f"{n_ok}/{len(m['windows'])} windows with a result):")
            if name == "injected" and best_truth:
                print(f"  truth, best SR before any cut: {best_truth['sr']} S = {best_truth['S']}, "
                      f"B = {best_truth['B']}, S/sqrt(B) = {best_truth['S_over_sqrtB']:.2f} (search status there: "
                      f"{best_truth['status']})")
            print(f"  search's best window {b.get('window')} at efficiency {b.get('efficiency')}: local Z = "
                  f"{b.get('z_local')}, global Z {'>' if g.get('z_global_is_limit') else '='} {g.get('z_global')} "
                  f"({g.get('n_toys')} toys); mass estimate {b.get('m_res')} GeV\n  truth in that SR (no cut): "
                  f"S = {tr.get('S')}, B = {tr.get('B')}, S/sqrt(B) = {tr.get('S_over_sqrtB')}; after the cut: "
                  f"{(m['truth_best_window'] or {}).get('after_cut')}")
        atomic_write_json(args.out / "search_summary.json", out)
    print(f"\nrun directory: {args.out}\ncommand: {command}")


if __name__ == "__main__":
    main()
