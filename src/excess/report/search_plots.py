"""Plots of a search (PNG): mjj before/after each cut with the sideband fit and pulls,
significance vs window, jet masses of the selected events, SIC, and p-value calibration.

Every function takes result objects of :mod:`excess.search` and a path, writes the PNG
atomically and returns the path. matplotlib is imported lazily with the Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .figures import pyplot, resonant_label, save_figure

__all__ = ["plot_window_fits", "plot_significance_scan", "plot_jet_masses", "plot_sic", "plot_pvalue_calibration",
           "plot_scan", "write_scan_plots"]


def plot_window_fits(window_result, path, *, resonant: str = "mjj") -> Path:
    """One column per cut (no cut first): mjj of the selected events, the sideband fit
    extrapolated into the shaded SR, and the pulls ``(n - mu)/sqrt(mu)``."""
    plt = pyplot()
    cuts = ([window_result.baseline] if window_result.baseline is not None else []) + list(window_result.tests)
    cuts = [c for c in cuts if c is not None]
    n = max(len(cuts), 1)
    fig, axes = plt.subplots(2, n, figsize=(5.5 * n, 6.5), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    w = window_result.window
    for j, c in enumerate(cuts):
        ax, axp = axes[0, j], axes[1, j]
        title = "no cut" if c.efficiency >= 1 else f"eff {c.efficiency:g}"
        if c.fit is None and getattr(c, "background", None) is not None:
            from .efficiency_plots import draw_efficiency_background

            draw_efficiency_background(ax, axp, c, w, title, legend=j == 0, resonant=resonant)
            continue
        if c.fit is None:
            ax.text(0.5, 0.5, f"{c.status}\n{c.reason[:80]}", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9, wrap=True)
            ax.set_title(title, fontsize=11)
            continue
        e = np.asarray(c.fit.edges)
        cen = 0.5 * (e[1:] + e[:-1])
        cnt = np.asarray(c.fit.counts)
        mu = np.asarray(c.fit.expected)
        ax.errorbar(cen, cnt, yerr=np.sqrt(np.maximum(cnt, 1)), fmt="o", ms=3, color="k", label="selected events")
        xs = np.linspace(e[0], e[-1], 300)
        sfit = getattr(c, "signal_fit", None)
        whole = getattr(sfit, "kind", "") == "dijet_signal"  # the S+B fit over the whole window: its two components
        ax.plot(xs, c.fit.density(xs) * np.diff(e).mean(), color="C0",
                label=f"{c.fit.function} {'background (S+B fit)' if whole else 'sideband fit'}")
        if whole and sfit.s_hat > 0:
            ax.stairs(mu + sfit.s_hat * np.asarray(sfit.template), e, color="C3", label="background + signal")
        for a in (ax, axp):
            a.axvspan(w.sr_lo, w.sr_hi, color="C1", alpha=0.15)
        ax.set_yscale("log")
        sig = c.significance
        txt = (f"chi2/ndf = {c.fit.chi2:.1f}/{c.fit.ndf}, p = {c.fit.p_value:.2g}\n"
               f"SR: n = {sig.n_obs:.0f}, b = {sig.b_hat:.1f} ± {sig.sigma_b:.1f}\nZ_local = {sig.z:.2f}")
        ax.text(0.97, 0.97, txt, transform=ax.transAxes, ha="right", va="top", fontsize=9)
        ax.set_title(title, fontsize=11)
        pulls = (cnt - mu) / np.sqrt(mu)
        axp.bar(cen, pulls, width=np.diff(e), color=np.where(c.fit.fit_mask, "C0", "C1"), alpha=0.8)
        axp.axhline(0, color="k", lw=0.8)
        axp.set_ylim(-4, 4)
        axp.set_xlabel(resonant_label(resonant))
        if j == 0:
            ax.set_ylabel("events / bin")
            axp.set_ylabel("pull")
            ax.legend(fontsize=9, loc="lower left")
    fig.suptitle(f"{w.label} (sidebands {w.sb_lo:.0f}-{w.sb_hi:.0f} GeV)", fontsize=12)
    return save_figure(fig, path)


def plot_significance_scan(scan_result, path) -> Path:
    """Local Z vs SR centre, one line per efficiency; global significance in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    effs = scan_result.config.get("efficiencies", [])
    for i, eff in enumerate(effs):
        xs, zs = [], []
        for w in scan_result.windows:
            for t in w.tests:
                if abs(t.efficiency - eff) < 1e-12 and t.ok:
                    xs.append(w.window.centre)
                    zs.append(t.z)
        if xs:
            ax.plot(xs, zs, "o-", color=f"C{i}", label=f"eff {eff:g}")
    bad = [w.window.centre for w in scan_result.windows if not w.ok]
    if bad:
        ax.plot(bad, np.zeros(len(bad)), "x", color="gray", label="no result")
    for z in (3, 5):
        ax.axhline(z, color="gray", ls="--", lw=0.8)
    g = scan_result.global_significance
    if g is not None:
        ax.set_title(f"max local Z = {g.max_local_z:.2f}, global Z = {g.z_global:.2f}"
                     f"{' (lower bound)' if g.z_global_is_limit else ''} [{g.method}, {g.n_toys} toys]", fontsize=11)
    ax.set_xlabel("SR centre " + resonant_label(scan_result.config.get("resonant", "mjj")))
    ax.set_ylabel("local significance Z")
    ax.legend(fontsize=9)
    return save_figure(fig, path)


def plot_jet_masses(cut_result, path, *, title: str = "") -> Path:
    """Selected SR events' heavier/lighter jet masses with the scaled sideband expectation and the
    subtracted excess; mX / mY estimates marked."""
    plt = pyplot()
    ch = cut_result.characterisation
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, lab, est in ((axes[0], "mj2", "heavier jet mass $m_{J,2}$", None if ch is None else ch.m_x),
                              (axes[1], "mj1", "lighter jet mass $m_{J,1}$", None if ch is None else ch.m_y)):
        h = None if ch is None else ch.jet_mass_hists.get(key)
        if not h:
            ax.text(0.5, 0.5, "no characterisation", transform=ax.transAxes, ha="center")
            continue
        e = np.asarray(h["edges"])
        ax.stairs(h["sr"], e, label="SR selected", color="k")
        ax.stairs(h["sb_scaled"], e, label="SB selected, scaled", color="C0")
        ax.stairs(np.asarray(h["sr"]) - np.asarray(h["sb_scaled"]), e, label="difference", color="C3")
        if est is not None:
            ax.axvline(est, color="C3", ls="--", label=f"peak {est:.0f} GeV")
        ax.set_xlabel(f"{lab} [GeV]")
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path)


def plot_sic(scan_result, path) -> Path | None:
    """SIC vs signal efficiency in each window with labels (None if no window has labels)."""
    plt = pyplot()
    ws = [w for w in scan_result.windows if w.sic]
    if not ws:
        return None
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, w in enumerate(ws):
        s = w.sic
        tpr, sic, valid = np.asarray(s["tpr"]), np.asarray(s["sic"]), np.asarray(s["valid"], bool)
        ax.plot(tpr[valid], sic[valid], color=f"C{i % 10}", label=f"{w.window.label}: max {w.max_sic:.1f}")
    ax.set_xlabel("signal efficiency (TPR)")
    ax.set_ylabel("SIC = TPR / sqrt(FPR)")
    ax.set_title(f"SR events; FPR >= 1/(N_bkg 0.2^2) shown", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_pvalue_calibration(p_values, path, *, title: str = "") -> Path:
    """Histogram and empirical CDF of p-values against the uniform expectation, with the KS p-value."""
    from scipy import stats as sps

    plt = pyplot()
    p = np.sort(np.asarray(p_values, dtype=float))
    ks = sps.kstest(p, "uniform")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].hist(p, bins=20, range=(0, 1), histtype="step", color="k")
    axes[0].axhline(p.size / 20, color="C0", ls="--")
    axes[0].set_xlabel("p-value")
    axes[0].set_ylabel("pseudo-experiments")
    axes[1].plot(p, (np.arange(p.size) + 1) / p.size, color="k", label="empirical")
    axes[1].plot([0, 1], [0, 1], "C0--", label="uniform")
    axes[1].set_xlabel("p-value")
    axes[1].set_ylabel("CDF")
    axes[1].legend(fontsize=9)
    fig.suptitle(f"{title} N = {p.size}, KS p = {ks.pvalue:.3f}", fontsize=12)
    return save_figure(fig, path)


def plot_scan(scan_result, outdir: str | os.PathLike) -> list[Path]:
    """All plots of a scan into ``outdir``: significance, SIC, and for the most significant window
    its fits and jet masses (plus fits of every window)."""
    out = Path(outdir)
    resonant = scan_result.config.get("resonant", "mjj")
    paths = [plot_significance_scan(scan_result, out / "significance_scan.png")]
    p = plot_sic(scan_result, out / "sic.png")
    if p is not None:
        paths.append(p)
    for w in scan_result.windows:
        if w.tests or w.baseline is not None:
            paths.append(plot_window_fits(w, out / f"fits_{w.window.key}.png", resonant=resonant))
        if any(getattr(t, "background", None) is not None for t in w.tests):
            from .efficiency_plots import plot_efficiency_ratio

            paths.append(plot_efficiency_ratio(w, out / f"efficiency_{w.window.key}.png", resonant=resonant))
    best = scan_result.best
    if best is not None:
        w, t = best
        paths.append(plot_jet_masses(t, out / "jet_masses_best.png", title=f"{w.window.label}, eff {t.efficiency:g}"))
    return paths


def write_scan_plots(scan_result, events=None, plot_dir: str | os.PathLike = "plots") -> dict[str, str]:
    """Write all plots of a scan (see :func:`plot_scan`) and return ``{file name: caption}`` for the report.

    ``events`` is accepted for the workflow's signature and not needed: the results carry the histograms.
    """
    captions: dict[str, str] = {}
    r = scan_result.config.get("resonant", "mjj")
    for p in plot_scan(scan_result, plot_dir):
        name = p.name
        if name == "significance_scan.png":
            cap = "Local significance vs SR centre for each cut efficiency; title: largest local and global Z."
        elif name == "sic.png":
            cap = "SIC of the out-of-fold scores on labelled SR events, per window (statistically trusted range only)."
        elif name.startswith("efficiency_"):
            cap = (f"Sculpting diagnostic: selected / inclusive events vs {r} per cut (binomial errors) with the "
                   "efficiency fit in the sidebands (band: 1 sigma) interpolated into the shaded SR; flat = no sculpting. "
                   "z_slope: the fitted slope over its error; p_flat: p-value of a constant efficiency.")
        elif name == "jet_masses_best.png":
            cap = ("Most significant window: jet masses of the selected SR events, the scaled selected sideband "
                   "events and their difference; dashed: mX (heavier) / mY (lighter) estimates.")
        else:
            cap = (f"{r} of the events before and after each cut with the sideband dijet fit extrapolated into the "
                   "shaded SR; lower panels: pulls (sidebands blue, SR orange).")
        captions[name] = cap
    return captions
