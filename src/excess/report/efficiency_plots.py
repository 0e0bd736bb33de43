"""Plots of the efficiency background model (:mod:`excess.stats.efficiency`): the sculpting diagnostic
(selected / inclusive vs mjj with the efficiency fit) and the selected spectrum with its prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import pyplot, resonant_label, save_figure

__all__ = ["plot_efficiency_ratio", "draw_efficiency_background"]


def draw_efficiency_background(ax, axp, cut, window, title: str, *, legend: bool = False,
                               resonant: str = "mjj") -> None:
    """Selected mjj histogram, the predicted background (inclusive fit x efficiency) and pulls."""
    bg = cut.background
    e = np.asarray(bg.edges)
    cen = 0.5 * (e[1:] + e[:-1])
    cnt = np.asarray(bg.counts)
    mu = np.asarray(bg.expected)
    mask = np.asarray(bg.efficiency_fit.fit_mask)
    ax.errorbar(cen, cnt, yerr=np.sqrt(np.maximum(cnt, 1)), fmt="o", ms=3, color="k", label="selected events")
    ax.stairs(mu, e, color="C0", label="inclusive fit x efficiency")
    for a in (ax, axp):
        a.axvspan(window.sr_lo, window.sr_hi, color="C1", alpha=0.15)
    ax.set_yscale("log")
    sig = cut.significance
    ef = bg.efficiency_fit
    txt = (f"eff fit: deg {ef.degree}, p = {ef.p_value:.2g}, z_slope = {ef.z_slope:.1f}\n"
           f"SR: n = {sig.n_obs:.0f}, b = {sig.b_hat:.1f} ± {sig.sigma_b:.1f}\nZ_local = {sig.z:.2f}")
    ax.text(0.97, 0.97, txt, transform=ax.transAxes, ha="right", va="top", fontsize=9)
    ax.set_title(title, fontsize=11)
    with np.errstate(divide="ignore", invalid="ignore"):
        pulls = np.where(mu > 0, (cnt - mu) / np.sqrt(mu), 0.0)
    axp.bar(cen, pulls, width=np.diff(e), color=np.where(mask, "C0", "C1"), alpha=0.8)
    axp.axhline(0, color="k", lw=0.8)
    axp.set_ylim(-4, 4)
    axp.set_xlabel(resonant_label(resonant))
    if legend:
        ax.set_ylabel("events / bin")
        axp.set_ylabel("pull")
        ax.legend(fontsize=9, loc="lower left")


def plot_efficiency_ratio(window_result, path, *, resonant: str = "mjj") -> Path:
    """One panel per cut: ``selected / inclusive`` per mjj bin with binomial errors, the fitted
    efficiency and its 1-sigma band (sidebands fitted, SR shaded and interpolated)."""
    plt = pyplot()
    cuts = [t for t in window_result.tests if getattr(t, "background", None) is not None]
    n = max(len(cuts), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4.0), squeeze=False)
    w = window_result.window
    for j, c in enumerate(cuts):
        ax = axes[0, j]
        ef = c.background.efficiency_fit
        e = np.asarray(ef.edges)
        cen = 0.5 * (e[1:] + e[:-1])
        r, err = ef.ratio()
        mask = np.asarray(ef.fit_mask)
        ax.errorbar(cen[mask], r[mask], yerr=err[mask], fmt="o", ms=3, color="k", label="sidebands")
        ax.errorbar(cen[~mask], r[~mask], yerr=err[~mask], fmt="o", ms=3, color="C1", label="SR")
        xs = np.linspace(e[0], e[-1], 200)
        eps, s = ef.efficiency_band(xs)
        ax.plot(xs, eps, color="C0", label=f"logit poly deg {ef.degree}")
        ax.fill_between(xs, eps - s, eps + s, color="C0", alpha=0.25)
        ax.axvspan(w.sr_lo, w.sr_hi, color="C1", alpha=0.12)
        ax.set_title(f"eff {c.efficiency:g}: z_slope {ef.z_slope:.1f}, p_flat {ef.p_flat:.2g}", fontsize=10)
        ax.set_xlabel(resonant_label(resonant))
        if j == 0:
            ax.set_ylabel("selected / inclusive")
            ax.legend(fontsize=8)
    fig.suptitle(f"{w.label}: selection efficiency vs {resonant}", fontsize=12)
    return save_figure(fig, path)
