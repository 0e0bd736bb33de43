"""Issue 22: what the residual sculpting of a window is made of (background only; README, "Background only").

``window``: the scan's own CWoLa selection of one window, rebuilt exactly (``run_scan`` on that window alone
with the scan's seed: :func:`excess.search.analysis.window_seed` depends only on the base seed and the window,
so it is the window of ``sensitivity.py sample --s-over-sqrt-b 0 --seed-list S --windows all``; pass
``--signal`` to draw the events in the order that command uses), then per cut:

* the selected SR count against the prediction of the efficiency model with the degree chosen by the
  likelihood-ratio tests (the default), fixed at 1 or 2, and averaged (``efficiency_degree: average``);
* per test fold, the selected SR count against that fold's share of the prediction
  (:func:`excess.search.sculpting.sculpting_check`'s ``fold_z``): the folds' test events are disjoint and
  each fold's classifier never saw them, so a fluctuation scatters these around 0 while a SR-vs-SB
  difference of the *population* (sculpting) gives them all one sign;
* the selected / inclusive ratio over the cut's efficiency in 100 GeV bins (flat: no sculpting);
* the excess split by the largest ``|z|`` of the event's decorrelated features (the decorrelation fitted
  once on the window): where in feature space it sits.

``transform-noise``: toys whose features do *not* depend on mjj (``toy_events``); the decorrelation fitted
on one training fold's worth of window events and applied to an independent large sample (as a scan
applies it to its test fold), per 200 GeV bin the mapped features' fraction beyond ``|z| > 2`` and their
variance, out of sample and in sample (the training events), averaged over fits: where the transform's own
estimation error widens the mapped distribution.

::

    python benchmarks/residual_sculpting.py window --background data/qcd_1m --signal data/signal_20k --sr 3500 3900 --seed 1
    python benchmarks/residual_sculpting.py window ... --part 0 2    # and --part 1 2: the two halves
    python benchmarks/residual_sculpting.py transform-noise --decorrelation auto --fits 20
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from excess.search.decorrelation import make_transform, resolve_decorrelation
from excess.stats.windows import LHCO_SR, Window

FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")


def _params(kv) -> dict:
    """``--decorrelation-param KEY=VALUE`` pairs (:func:`excess.cli.common.parse_params`: values as JSON, else strings)."""
    from excess.cli.common import parse_params

    return parse_params(kv or (), option="--decorrelation-param")


def cmd_window(a) -> None:
    from excess.anomaly.base import stratified_folds
    from excess.data.io import read_events
    from excess.search import run_scan
    from excess.search.sculpting import fold_pulls
    from excess.search.selection import fold_thresholds, select
    from excess.stats.sideband import background_estimate

    cols = ["mjj", "mj1", "mj2", "delta_mj", "tau21_j1", "tau21_j2"]
    ev = read_events(a.background, columns=cols + (["jet1_eta", "jet2_eta"] if a.max_deta else []))
    if a.max_deta:  # the dijet searches' |Delta eta| cut: keeps the leading-jet pT threshold away from the window
        ev = ev[(ev["jet1_eta"] - ev["jet2_eta"]).abs() < a.max_deta][cols].reset_index(drop=True)
    if a.part:  # every N-th event from K: independent subsamples of one sample
        k, n = a.part
        ev = ev.iloc[k::n].reset_index(drop=True)
    if a.signal:  # the event order of `sensitivity.py sample --s-over-sqrt-b 0`
        from excess.data.mix import inject_signal

        ev, _ = inject_signal(ev, read_events(a.signal, columns=cols), n_signal=0, sr=LHCO_SR, random_state=a.seed)
    win = Window.around(tuple(a.sr))
    dparams = _params(a.decorrelation_param) or None
    t0 = time.process_time()
    r = run_scan(ev, method="cwola", method_params={}, features=list(FEATURES), windows=[win],
                 efficiencies=a.efficiencies, n_folds=a.n_folds, n_workers=1, random_state=a.seed, global_toys=0,
                 show_progress=False, decorrelation=a.decorrelation, decorrelation_params=dparams)
    w = r.windows[0]
    m_all = ev["mjj"].to_numpy(float)
    in_win, _, _ = win.masks(m_all)
    idx = np.nonzero(in_win)[0]
    m, sc = m_all[idx], w.scores[idx].astype(np.float32).astype(float)
    _, in_sr, _ = win.masks(m)
    fold = stratified_folds(in_sr, a.n_folds, np.random.default_rng(w.seed))
    X = ev[list(FEATURES)].to_numpy(float)[idx]
    kind = resolve_decorrelation(a.decorrelation, "cwola")
    Z = X if kind == "none" else make_transform(kind, FEATURES, {k: v for k, v in (dparams or {}).items()
                                                                 if k not in ("fit_on", "heldout_fraction")}).fit(
        X, m, sr=win.sr).transform(X, m)
    zmax = np.abs(Z).max(axis=1)
    degrees = ("auto", 1, 2, "average")
    ests = {d: background_estimate("efficiency", min_events=20, degree=d).bind(m, win) for d in degrees}
    edges = np.arange(win.sb_lo, win.sb_hi + 1, 100.0)
    b = np.clip(np.digitize(m, edges) - 1, 0, edges.size - 2)
    n_incl = np.bincount(b, minlength=edges.size - 1)
    sb_to_sr = in_sr.sum() / (~in_sr).sum()
    print(f"# python benchmarks/residual_sculpting.py {' '.join(sys.argv[1:])}")
    print(f"{win.label}: {in_sr.sum()} SR / {(~in_sr).sum()} SB events, CWoLa (default), decorrelation {kind} "
          f"{dparams or ''}, seed {a.seed} (window seed {w.seed}); {time.process_time() - t0:.0f}s CPU")
    for eff in a.efficiencies:
        sel = select(sc, fold, fold_thresholds(sc, fold, ~in_sr, eff))
        n_sr = int((sel & in_sr).sum())
        if (sel & ~in_sr).sum() < 20:
            continue
        preds = []
        for d, est in ests.items():
            t = est(m[sel], win)
            preds.append(f"{d}: {t.b_hat:.1f} +- {t.sigma_b:.1f} (Z {t.z_signed:+.2f})" if t.ok else f"{d}: {t.status}")
        t = ests["auto"](m[sel], win)
        fz, _ = fold_pulls(sel, fold, in_sr, float(t.b_hat))
        ratio = np.bincount(b[sel], minlength=edges.size - 1) / np.maximum(n_incl, 1) / eff
        print(f"\neff {eff:g}: {n_sr} selected in the SR; predicted " + "; ".join(preds))
        print("  per-fold z (auto): " + " ".join(f"{z:+.1f}" for z in fz))
        print("  selected / inclusive / eff per 100 GeV from " + f"{edges[0]:.0f}: " + " ".join(f"{x:.3f}" for x in ratio)
              + "  (+- " + " ".join(f"{x:.3f}" for x in np.sqrt(np.maximum(ratio, 1e-12) / np.maximum(n_incl * eff, 1))) + ")")
        parts = []
        for lo, hi in ((0, 2), (2, 2.5), (2.5, 3), (3, np.inf)):
            g = sel & (zmax >= lo) & (zmax < hi)
            exp = (g & ~in_sr).sum() * sb_to_sr
            parts.append(f"{lo}-{hi}: {int((g & in_sr).sum())} / {exp:.0f} ({((g & in_sr).sum() - exp) / np.sqrt(max(exp, 1)):+.1f})")
        print("  selected SR / SB x (SR/SB events) by the largest |z| of the decorrelated features: " + ", ".join(parts))


def cmd_transform_noise(a) -> None:
    from excess.search.synthetic import toy_events

    win = Window.around(LHCO_SR)
    kind = resolve_decorrelation(a.decorrelation, "cwola")
    params = _params(a.decorrelation_param)

    def window(ev):
        m = ev["mjj"].to_numpy(float)
        w = (m >= win.sb_lo) & (m < win.sb_hi)
        return ev[list(FEATURES)].to_numpy(float)[w], m[w]

    Xt, mt = window(toy_events(a.n_test, 0, random_state=a.seed + 10_000))
    edges = np.arange(win.sb_lo, win.sb_hi + 1, 200.0)
    nb = edges.size - 1
    bt = np.clip(np.digitize(mt, edges) - 1, 0, nb - 1)
    out, ins = [], []
    n_fit = 0
    for s in range(a.fits):
        X, m = window(toy_events(a.n_background, 0, random_state=a.seed + s))
        n_fit = int(a.train_fraction * len(m))
        X, m = X[:n_fit], m[:n_fit]
        tr = make_transform(kind, FEATURES, params).fit(X, m, sr=win.sr)
        for Z, bb, acc in ((tr.transform(Xt, mt), bt, out), (tr.transform(X, m), np.clip(np.digitize(m, edges) - 1, 0, nb - 1), ins)):
            acc.append([[np.mean(np.abs(Z[bb == i]) > 2.0) for i in range(nb)], [Z[bb == i].var(0).mean() for i in range(nb)]])
    out, ins = np.array(out), np.array(ins)
    print(f"# python benchmarks/residual_sculpting.py {' '.join(sys.argv[1:])}")
    print(f"toys without any mjj dependence: decorrelation {kind} {params or ''} fitted on {n_fit} window events "
          f"({a.train_fraction:g} of the {a.n_background}-event toys' window), {a.fits} fits; per 200 GeV bin from "
          f"{edges[0]:.0f} (the SR is {win.sr[0]:.0f}-{win.sr[1]:.0f}):")
    err = out[:, 0].std(0).mean() / np.sqrt(a.fits)
    print("  fraction |z| > 2 (0.0455 expected), out of sample: " + " ".join(f"{x:.4f}" for x in out[:, 0].mean(0)) + f"  (+- {err:.4f})")
    print("                                     in sample:     " + " ".join(f"{x:.4f}" for x in ins[:, 0].mean(0)))
    print("  variance of z (1 expected),          out of sample: " + " ".join(f"{x:.3f}" for x in out[:, 1].mean(0)))
    print("                                       in sample:     " + " ".join(f"{x:.3f}" for x in ins[:, 1].mean(0)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("window", help="the scan's selection of one window, taken apart")
    w.add_argument("--background", required=True, help="background events (chunk folder or file)")
    w.add_argument("--signal", help="signal sample: draw the events in the order of `sensitivity.py sample`")
    w.add_argument("--sr", type=float, nargs=2, default=list(LHCO_SR), metavar=("LO", "HI"))
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--n-folds", type=int, default=5)
    w.add_argument("--part", type=int, nargs=2, metavar=("K", "N"),
                   help="only every N-th background event from the K-th (0-based): independent subsamples")
    w.add_argument("--max-deta", type=float, help="keep events with |eta_1 - eta_2| below this (e.g. 1.3)")
    w.add_argument("--efficiencies", type=float, nargs="+", default=[0.1, 0.03, 0.01, 0.003, 0.001])
    t = sub.add_parser("transform-noise", help="toys without mjj dependence: the transform's own widening")
    t.add_argument("--n-background", type=int, default=30000)
    t.add_argument("--n-test", type=int, default=400000)
    t.add_argument("--train-fraction", type=float, default=0.8, help="of the toy's window events (a training fold)")
    t.add_argument("--fits", type=int, default=20)
    t.add_argument("--seed", type=int, default=0)
    for s in (w, t):
        s.add_argument("--decorrelation", default="auto")
        s.add_argument("--decorrelation-param", action="append", metavar="KEY=VALUE")
    a = p.parse_args(argv)
    {"window": cmd_window, "transform-noise": cmd_transform_noise}[a.cmd](a)


if __name__ == "__main__":
    main()
