"""The mT peak width of the semi-visible-jet signal grid: what the mT search's signal template
(``excess.antelope.search.MT_SIGNAL_WIDTH``, background model ``"dijet_signal"``) is chosen from.

Per signal sample (preselected as the search reads it, :func:`excess.antelope.data.preselect`): the mode of mT (a
Gaussian KDE), the peak's FWHM / 2.355 over the mode, an unbinned Gaussian fit to the core (mode +- 0.6 FWHM,
truncation taken into account) as sigma / mu, and the quantile width (q84 - q16) / 2 / median (the whole
distribution, long low tail included). Prints one row per point and the medians over the points (all, and those with
r_inv <= 0.5, where mT has a peak).

Reproduce:  .venv/bin/python benchmarks/svj_mt_width.py data/svj/grid/svj_mz*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from excess.antelope.data import load_samples, preselect  # noqa: E402


def peak_widths(m: np.ndarray) -> dict:
    """Mode, FWHM / 2.355 / mode, core Gaussian sigma / mu and (q84 - q16) / 2 / median of one sample's mT."""
    kde = stats.gaussian_kde(m, bw_method=0.15)
    xs = np.linspace(np.quantile(m, 0.01), np.quantile(m, 0.999), 2000)
    dens = kde(xs)
    mode = float(xs[np.argmax(dens)])
    above = xs[dens >= dens.max() / 2]
    fwhm = float(above.max() - above.min())
    lo, hi = mode - 0.6 * fwhm, mode + 0.6 * fwhm
    core = m[(m > lo) & (m < hi)]

    def nll(p):
        mu, s = p
        if s <= 0:
            return 1e18
        z = stats.norm.cdf((hi - mu) / s) - stats.norm.cdf((lo - mu) / s)
        return -np.sum(stats.norm.logpdf(core, mu, s)) + core.size * np.log(z)

    mu, s = optimize.minimize(nll, [mode, fwhm / 2.355], method="Nelder-Mead").x
    q16, q50, q84 = np.quantile(m, [0.16, 0.5, 0.84])
    return {"mode": mode, "fwhm_rel": fwhm / 2.355 / mode, "core_mu": float(mu), "core_rel": float(s / mu),
            "quantile_rel": float((q84 - q16) / 2 / q50)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("signal", nargs="+", help="signal sample directories (one grid point each)")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'point':24s} {'n':>5s} {'mode':>6s} {'FWHM/2.355/mode':>16s} {'core sigma/mu':>14s} {'(q84-q16)/2/q50':>16s}")
    for path in args.signal:
        data, _ = preselect(load_samples([path]))
        ev = data.events
        m = ev["mT"].to_numpy(float)
        r = {"point": Path(path).name, "n": m.size, "r_inv": float(ev["r_inv"].iloc[0]), **peak_widths(m)}
        rows.append(r)
        print(f"{r['point']:24s} {r['n']:5d} {r['mode']:6.0f} {r['fwhm_rel']:16.3f} {r['core_rel']:14.3f} "
              f"{r['quantile_rel']:16.3f}", flush=True)
    for name, sel in (("all points", rows), ("r_inv <= 0.5", [r for r in rows if r["r_inv"] <= 0.5])):
        if sel:
            med = {k: float(np.median([r[k] for r in sel])) for k in ("fwhm_rel", "core_rel", "quantile_rel")}
            print(f"median over {len(sel)} ({name}): FWHM/2.355/mode {med['fwhm_rel']:.3f}, core sigma/mu "
                  f"{med['core_rel']:.3f}, (q84-q16)/2/q50 {med['quantile_rel']:.3f}")
    print("command: .venv/bin/python benchmarks/svj_mt_width.py " + " ".join(args.signal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
