"""ROC and SIC plots with the statistical cutoff stated on the plot (matplotlib Agg, no LaTeX)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .figures import color, pyplot, save_figure

__all__ = ["plot_roc_sic", "plot_max_sic_summary"]


_MARKERS = "osD^vP*Xh<>"


def plot_roc_sic(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    *,
    max_rel_err: float = 0.2,
    title: str | None = None,
    hep_style: bool = False,
) -> Path:
    """Two panels: ROC (background rejection 1/FPR vs TPR) and SIC vs TPR for ``{label: (y, score)}``.

    Points below the cutoff ``FPR >= 1/(N_bkg * max_rel_err^2)`` are drawn dashed; the cutoff and
    each curve's max SIC are written on the plot.
    """
    from ..stats.roc import sic_curve

    plt = pyplot("atlas" if hep_style else None)
    fig, (ax_roc, ax_sic) = plt.subplots(1, 2, figsize=(13, 5.5))
    cut_text = None
    for i, (label, (y, s)) in enumerate(curves.items()):
        c = sic_curve(y, s, max_rel_err=max_rel_err)
        v = c.valid
        (line,) = ax_roc.plot(c.tpr[v], 1 / c.fpr[v], label=label, color=color(i))
        ax_roc.plot(c.tpr[~v], 1 / c.fpr[~v], ls="--", color=line.get_color(), alpha=0.5)
        ax_sic.plot(c.tpr[v], c.sic[v], color=line.get_color(), label=f"{label} (max {c.max_sic:.2f})")
        ax_sic.plot(c.tpr[~v], c.sic[~v], ls="--", color=line.get_color(), alpha=0.5)
        cut_text = c.cutoff_label
    tt = np.linspace(1e-3, 1, 200)
    ax_roc.plot(tt, 1 / tt, color="gray", ls=":", label="random")
    ax_sic.plot(tt, np.sqrt(tt), color="gray", ls=":", label="random")
    ax_roc.set_yscale("log")
    ax_roc.set_xlabel("signal efficiency (TPR)")
    ax_roc.set_ylabel("background rejection 1/FPR")
    ax_sic.set_xlabel("signal efficiency (TPR)")
    ax_sic.set_ylabel("SIC = TPR / sqrt(FPR)")
    for ax in (ax_roc, ax_sic):
        ax.set_xlim(0, 1)
        ax.legend(fontsize=9, loc="best")
    if cut_text:
        fig.text(0.5, 0.005, f"solid: {cut_text}; dashed: below the cutoff", ha="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path, rect=(0, 0.03, 1, 1))


def plot_max_sic_summary(
    table: Sequence[Mapping],
    path: str | os.PathLike,
    *,
    x_key: str = "s_over_b",
    group_key: str = "method",
    note: str | None = None,
    title: str | None = None,
    hep_style: bool = False,
) -> Path:
    """Max SIC (mean with min-max band over seeds) vs ``x_key`` (e.g. S/B), one line per method.

    ``table`` rows need ``group_key``, ``x_key``, ``max_sic_mean``, ``max_sic_min``, ``max_sic_max``.
    """
    plt = pyplot("atlas" if hep_style else None)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    groups: dict[str, list] = {}
    for r in table:
        groups.setdefault(r[group_key], []).append(r)
    for i, (g, rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: r[x_key])
        x = np.array([r[x_key] for r in rows]) * (100 if x_key == "s_over_b" else 1)
        mean = np.array([r["max_sic_mean"] for r in rows])
        lo = np.array([r["max_sic_min"] for r in rows])
        hi = np.array([r["max_sic_max"] for r in rows])
        (line,) = ax.plot(x, mean, marker=_MARKERS[i % len(_MARKERS)], color=color(i), label=g)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
    ax.axhline(1.0, color="gray", ls=":", lw=1)
    if x_key == "s_over_b":
        ax.set_xscale("log")
    ax.set_xlabel("S/B in the SR [%]" if x_key == "s_over_b" else x_key)
    ax.set_ylabel("max SIC (mean; band: min-max over seeds)")
    ax.legend(fontsize=9, ncol=2)
    if note:
        fig.text(0.5, 0.005, note, ha="center", fontsize=8, wrap=True)
    if title:
        ax.set_title(title, fontsize=11)
    return save_figure(fig, path, rect=(0, 0.04, 1, 1))
