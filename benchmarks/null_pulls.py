"""Background-only pulls of the efficiency background model, with the truth (issue 22).

Each pseudo-experiment is the scan's set-up of ``sensitivity.py null`` for one window (30k toy events, jet
masses ~ mjj, the decorrelation given (``none``: a strongly sculpting selection), the Gaussian SR-vs-SB
scorer, 2 folds, per-fold sideband
thresholds at eff 0.1 / 0.01 / 0.001) plus an independent 600k-event background sample scored by the same
fold models and thresholds: it gives the *true* SR background of each selection, ``b_true``, so the pull
``(selected - b_hat)`` splits into the binomial noise ``(selected - b_true) / sqrt(b_true)`` and the
estimate's error ``(b_hat - b_true) / sigma_b``. Every selection is also fitted with each efficiency
degree 0..3, so rules combining them can be compared on the same selections (``rules`` mode)::

    # 300 toys of the SR 3500-3900 window (WIN=0: 3100-3500, 1: the LHCO SR 3300-3700, 2: 3500-3900)
    WIN=2 python benchmarks/null_pulls.py 0 300 none auto gauss pulls_w2.json
    # each rule's signed Z (mean/std, max), (b_hat - b_true)/sigma_b and sigma_b/sqrt(b_true): lrt (one degree
    # 0-2 by likelihood-ratio tests, the default `auto`), fixedD, auto1 (lrt from degree 1), aic (degrees 0-2
    # Akaike-averaged, spread in sigma_b), aic12 (degrees 1-2 averaged: `efficiency_degree: average`)
    python benchmarks/null_pulls.py rules pulls_w2.json

Positional arguments: first toy, number of toys, decorrelation, efficiency degree, scorer (gauss or
fixed), output JSON.
"""
import sys
if len(sys.argv) > 1 and sys.argv[1] == "rules":
    print("#", "python benchmarks/null_pulls.py", " ".join(sys.argv[1:]))
    sys.argv = sys.argv[1:]
    import json, sys
    import numpy as np
    from scipy import stats as sps
    rows = []
    for f in sys.argv[1:]:
        for r in json.load(open(f)):
            r["file"] = f; rows.append(r)
    
    def auto(per, alpha=0.05, dmin=0, dmax=2):
        best = dmin
        for d in range(dmin + 1, dmax + 1):
            if per[str(d)] is None: break
            if sps.chi2.sf(max(per[str(best)][2] - per[str(d)][2], 0), d - best) < alpha:
                best = d
        return best
    
    def rule(r, name):
        per = r["per"]
        if name.startswith("fixed"):
            d = int(name[-1]); b, s = per[str(d)][:2]; return b, s
        if name == "lrt":
            d = auto(per); return per[str(d)][:2]
        if name == "auto1":
            d = auto(per, dmin=1); return per[str(d)][:2]
        if name in ("aic", "aic12"):  # the library's Akaike average (efficiency_degree: average is aic12)
            ds = [d for d in ((1, 2) if name == "aic12" else (0, 1, 2)) if per[str(d)] is not None]
            _, bb, ss = akaike_average(ds, [per[str(d)][2] for d in ds], [per[str(d)][0] for d in ds],
                                       [per[str(d)][1] for d in ds])
            return bb, ss
        raise KeyError(name)
    
    from excess.stats.efficiency import akaike_average
    from excess.stats.significance import local_significance
    names = ["lrt", "fixed1", "fixed2", "auto1", "aic", "aic12"]
    keys = sorted({(r["file"], r["eps"]) for r in rows})
    print(f"{'rule':8s} " + " | ".join(f"{k[0][-9:-5]} {k[1]:g}" for k in keys))
    for name in names:
        cells = []
        allz = []
        for k in keys:
            g = [r for r in rows if (r["file"], r["eps"]) == k]
            z, est, rel = [], [], []
            for r in g:
                b, s = rule(r, name)
                z.append(local_significance(r["n"], b, s).z_signed)
                est.append((b - r["b_true"]) / s); rel.append(s / np.sqrt(r["b_true"]))
            z = np.array(z); allz += list(z)
            cells.append(f"z {z.mean():+.2f}/{z.std():.2f} mx{z.max():.1f} est {np.mean(est):+.2f}/{np.std(est):.2f} s/sb {np.median(rel):.2f}")
        allz = np.array(allz)
        print(f"{name:8s} " + " | ".join(cells) + f" || all std {allz.std():.2f} KS {sps.kstest(sps.norm.sf(allz), 'uniform').pvalue:.2g} >3: {np.sum(allz>3)}/{allz.size}")
    sys.exit(0)

import json, time
import numpy as np
from excess.search.synthetic import GaussianSRvsSB, toy_events
from excess.search.scan import _decorrelated
from excess.anomaly.base import stratified_folds, fresh_estimator
from excess.search.selection import fold_thresholds, select
from excess.stats.efficiency import efficiency_background
from excess.stats.sideband import background_estimate
from excess.stats.windows import LHCO_SR, Window
from excess._util import spawn_seeds

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
start, n = int(sys.argv[1]), int(sys.argv[2])
decor = sys.argv[3] if len(sys.argv) > 3 else "auto"
degree = sys.argv[4] if len(sys.argv) > 4 else "auto"
degree = degree if degree in ("auto", "average") else int(degree)
scorer = sys.argv[5] if len(sys.argv) > 5 else "gauss"
out_path = sys.argv[6] if len(sys.argv) > 6 else None
print("#", "python benchmarks/null_pulls.py", " ".join(sys.argv[1:]), flush=True)
EFFS = (0.1, 0.01, 0.001)
import os
WINS = [Window.around((3100.0, 3500.0), 450.0), Window.around(LHCO_SR), Window.around((3500.0, 3900.0))]
w = WINS[int(os.environ.get("WIN", "1"))]
bkg = background_estimate("efficiency", degree=degree)
rows = []
t0 = time.process_time()
for i in range(start, start + n):
    rng = np.random.default_rng(10_000 + i)
    ev = toy_events(30_000, 0, mass_correlation=1.0, random_state=rng)
    big = toy_events(600_000, 0, mass_correlation=1.0, random_state=rng)
    m_all = ev["mjj"].to_numpy(); inw = (m_all >= w.sb_lo) & (m_all < w.sb_hi)
    X, m = ev[FEATURES].to_numpy(float)[inw], m_all[inw]
    mb_all = big["mjj"].to_numpy(); inwb = (mb_all >= w.sb_lo) & (mb_all < w.sb_hi)
    Xb, mb = big[FEATURES].to_numpy(float)[inwb], mb_all[inwb]
    _, in_sr, in_sb = w.masks(m)
    _, bin_sr, bin_sb = w.masks(mb)
    wrng = np.random.default_rng(i)
    fold = stratified_folds(in_sr, 2, wrng)
    seeds = spawn_seeds(wrng, 2)
    if scorer == "gauss":
        proto = GaussianSRvsSB()
        _, proto = _decorrelated(proto, proto, decor, FEATURES, None) if decor != "none" else (None, proto)
    scores = np.empty(m.size); sb_scores = []
    for k in range(2):
        if scorer == "fixed":
            s_te = X[fold == k] @ np.array([0.0, 0.0, -1.0, -1.0]); s_b = Xb @ np.array([0.0, 0.0, -1.0, -1.0])
        else:
            est = fresh_estimator(proto, seeds[k])
            est.fit(X[fold != k], m[fold != k], sr=w.sr)
            s_te = est.score_samples(X[fold == k], m[fold == k]); s_b = est.score_samples(Xb, mb)
        scores[fold == k] = s_te; sb_scores.append(s_b)
    model = bkg.bind(m, w)
    edges = w.edges()
    h_all = np.histogram(mb, edges)[0]  # the big sample's inclusive histogram: the same for every fold and cut
    for eps in EFFS:
        thr = fold_thresholds(scores, fold, in_sb, eps)
        sel = select(scores, fold, thr)
        t = model(m[sel], w)
        if not t.ok:
            continue
        # truth: per fold, SR efficiency of that fold's model/threshold on the big sample
        b_true = 0.0; eff_curve = np.zeros(len(edges) - 1); eff_sb = 0.0
        for k in range(2):
            pb = sb_scores[k] >= thr[k]
            e_sr = pb[bin_sr].mean(); e_sb = pb[bin_sb].mean()
            b_true += (in_sr & (fold == k)).sum() * e_sr
            eff_sb += e_sb / 2
            h_sel = np.histogram(mb[pb], edges)[0]
            eff_curve += h_sel / np.maximum(h_all, 1) / 2
        bg = t.background
        counts = np.histogram(m[sel], edges)[0]
        per = {}
        for d in (0, 1, 2, 3):
            try:
                e = efficiency_background(edges, counts, model.inclusive.counts, w.sr, fit_mask=w.sideband_bins(), degree=d,
                                          inclusive_fit=model.inclusive.fit, min_selected=20)
                per[d] = (e.b_hat, e.sigma_b, e.efficiency_fit.deviance, e.efficiency_fit.ndf)
            except Exception as exc:
                per[d] = None
        rows.append(dict(toy=i, eps=eps, n=t.n_sr, b_hat=bg.b_hat, sigma_b=bg.sigma_b, b_true=b_true,
                         degree=bg.efficiency_fit.degree, z_slope=bg.efficiency_fit.z_slope,
                         z_signed=t.significance.z_signed, eff_sb_true=eff_sb,
                         eff_curve=eff_curve.tolist(), per=per))
    print(i, time.process_time() - t0, flush=True) if i % 10 == 0 else None

if out_path:
    json.dump(rows, open(out_path, "w"))
import pandas as pd
df = pd.DataFrame(rows)
df["pull"] = (df.n - df.b_hat) / np.sqrt(df.b_hat + df.sigma_b**2)
df["noise"] = (df.n - df.b_true) / np.sqrt(df.b_true)
df["est"] = (df.b_hat - df.b_true) / df.sigma_b
df["sculpt"] = df.b_true / df.b_hat
for eps, g in df.groupby("eps"):
    print(f"eps {eps}: n={len(g)} pull mean {g.pull.mean():+.2f} std {g.pull.std():.2f} max {g.pull.max():.2f} | "
          f"noise std {g.noise.std():.2f} | est(b_hat-b_true)/sigma_b mean {g.est.mean():+.2f} std {g.est.std():.2f} | "
          f"z_signed std {g.z_signed.std():.2f} | degree counts {g.degree.value_counts().to_dict()} | slope mean {g.z_slope.mean():.2f} std {g.z_slope.std():.2f}")
    for d, gd in g.groupby("degree"):
        print(f"    degree {d}: n={len(gd)} est mean {gd.est.mean():+.2f} std {gd.est.std():.2f}; pull std {gd.pull.std():.2f}")
print("cpu", time.process_time() - t0)
