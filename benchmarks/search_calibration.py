"""Calibration of the search on background-only pseudo-experiments (synthetic events, no sculpting by construction).

For each pseudo-experiment: draw N background events (``excess.search.synthetic.toy_events``), run the scan
on the LHCO window (3300-3700 GeV, 500 GeV sidebands) with a cut at ``--eff``, record the local p-values.
Prints the KS test of the signed p-values against uniform, the fraction with p < 0.05 and the spread of
Z_signed, for
  * a fixed selection (``FeatureScorer``: low tau21; no training)  -> tests cut + sideband fit + test;
  * a learned CWoLa-like selection (``GaussianSRvsSB``)             -> shows the widening of the null
    distribution by learned selections, and the permutation null toys that calibrate it (``--null``).

Reproduce (numbers in the report):
    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/search_calibration.py --pseudo 400 --events 12000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats as sps

from excess.data.schema import STANDARD_FEATURES
from excess.search import run_scan
from excess.search.synthetic import FeatureScorer, GaussianSRvsSB, toy_events
from excess.stats.windows import LHCO_SR, Window

FEATURES = STANDARD_FEATURES


def run(method, n_pseudo, n_events, eff, seed, null_toys=0, plot=None):
    rng = np.random.default_rng(seed)
    ps, p1, zs, pn = [], [], [], []
    t0 = time.perf_counter()
    for i in range(n_pseudo):
        ev = toy_events(n_events, 0, random_state=rng)
        r = run_scan(ev, method=method, features=FEATURES, windows=[Window.around(LHCO_SR)], efficiencies=(eff,),
                     n_folds=2, n_workers=1, random_state=i, global_toys=0, null_toys=null_toys, show_progress=False)
        t = r.windows[0].tests[0]
        if not t.ok:
            continue
        ps.append(t.significance.p_signed)
        p1.append(t.significance.p_value)
        zs.append(t.significance.z_signed)
        if null_toys:
            pn.append(t.p_null)
    ps, p1, zs = map(np.asarray, (ps, p1, zs))
    ks = sps.kstest(ps, "uniform")
    name = type(method).__name__
    print(f"{name:16s} pseudo-experiments={ps.size} events={n_events} eff={eff}: KS p(signed p-values)={ks.pvalue:.3g}  "
          f"frac(p<0.05)={np.mean(p1 < 0.05):.3f}  mean Z_signed={zs.mean():+.3f}  std Z_signed={zs.std(ddof=1):.3f}  "
          f"max Z={zs.max():.2f}  [{time.perf_counter() - t0:.0f} s]")
    if null_toys:
        pn = np.asarray(pn)
        for a in (0.05, 0.1, 0.25):
            print(f"{'':16s} permutation p_null ({null_toys} null toys each): frac(p_null <= {a}) = {np.mean(pn <= a + 1e-9):.3f}")
    if plot:
        from excess.report.search_plots import plot_pvalue_calibration

        plot_pvalue_calibration(ps, plot, title=f"{name}, eff {eff}:")
    return ks.pvalue


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pseudo", type=int, default=400)
    ap.add_argument("--events", type=int, default=12_000)
    ap.add_argument("--eff", type=float, default=0.2)
    ap.add_argument("--null", type=int, default=0, help="permutation null toys per pseudo-experiment (learned scorer)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--plots", default=None, help="directory for calibration PNGs")
    a = ap.parse_args()
    from pathlib import Path

    pl = Path(a.plots) if a.plots else None
    run(FeatureScorer(weights=[0, 0, -1, -1]), a.pseudo, a.events, a.eff, a.seed,
        plot=pl / "calibration_fixed.png" if pl else None)
    run(GaussianSRvsSB(), a.pseudo, a.events, a.eff, a.seed + 1, null_toys=0,
        plot=pl / "calibration_learned.png" if pl else None)
    if a.null:
        run(GaussianSRvsSB(), max(a.pseudo // 4, 20), a.events, a.eff, a.seed + 2, null_toys=a.null)


if __name__ == "__main__":
    main()
