"""Plots and ``report.html`` of an ANTELOPE evaluation run (ROC/SIC per signal point, AUC across the grid,
score distributions, mT spectra), with the house figure and HTML helpers."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..report.figures import color, pyplot, save_figure
from .evaluate import MODEL_LABELS, MODELS, EvaluationResult, auc_table

__all__ = ["write_evaluation_plots", "write_evaluation_report", "plot_mt_spectra"]

_SHOWN = ("pfn", "antelope", "hl_ae")


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")


def plot_auc_grid(res: EvaluationResult, path) -> Path:
    """AUC (mean, error bar: std over seeds) per signal point and model."""
    plt = pyplot(None)
    summ = res.summary()
    pts = list(summ["pfn"].keys())
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(pts) + 3), 5))
    x = np.arange(len(pts))
    for i, m in enumerate(_SHOWN):
        mean = [summ[m][p]["auc_mean"] for p in pts]
        std = [summ[m][p]["auc_std"] for p in pts]
        ax.errorbar(x + (i - 1) * 0.12, mean, yerr=std, fmt="os^"[i], color=color(i), label=MODEL_LABELS[m], capsize=3)
    ax.axhline(0.5, color="gray", ls=":")
    ax.set_xticks(x, pts, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("ROC AUC (QCD vs signal point)")
    ax.set_title(f"PFN trained on one point; ANTELOPE and AE on QCD only ({len(res.settings['seeds'])} seeds)",
                 fontsize=10)
    ax.legend(fontsize=9)
    return save_figure(fig, path)


def plot_score_distributions(res: EvaluationResult, path, max_points: int = 6) -> Path:
    plt = pyplot(None)
    fig, axes = plt.subplots(1, len(_SHOWN), figsize=(5.2 * len(_SHOWN), 4.5))
    for ax, m in zip(axes, _SHOWN):
        sc = res.scores[m]
        allv = np.concatenate(list(sc.values()))
        lo, hi = np.quantile(allv, [0.001, 0.999])
        bins = np.linspace(lo, hi, 50)
        ax.hist(sc["QCD"], bins, density=True, histtype="stepfilled", color="0.8", label="QCD (test)")
        for i, pl in enumerate([k for k in sc if k != "QCD"][:max_points]):
            ax.hist(sc[pl], bins, density=True, histtype="step", color=color(i), label=pl)
        ax.set_yscale("log")
        ax.set_xlabel(f"{MODEL_LABELS[m]} score")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_mt_spectra(events, path, *, max_points: int = 8) -> Path:
    """mT of QCD and of each signal point (normalised)."""
    from .data import point_label, point_mask, signal_points

    plt = pyplot(None)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    mt = events["mT"].to_numpy(dtype=float)
    bins = np.linspace(np.quantile(mt, 0.001), np.quantile(mt, 0.999), 60)
    q = events["label"].to_numpy() == 0
    if q.any():
        ax.hist(mt[q], bins, density=True, histtype="stepfilled", color="0.8", label="QCD")
    for i, p in enumerate(signal_points(events)[:max_points]):
        ax.hist(mt[point_mask(events, p)], bins, density=True, histtype="step", color=color(i), label=point_label(p))
    ax.set_yscale("log")
    ax.set_xlabel("$m_T$ [GeV]")
    ax.set_ylabel("normalised")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_evaluation_plots(res: EvaluationResult, events, plot_dir) -> dict[str, str]:
    """All plots of an evaluation into ``plot_dir``; returns ``{file name: caption}``."""
    from ..report.sic import plot_roc_sic

    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    caps = {plot_auc_grid(res, plot_dir / "auc_grid.png").name:
            "ROC AUC per signal point (mean ± std over seeds): the PFN was trained on one point, ANTELOPE's VAE "
            "and the high-level autoencoder on QCD only: model independence, measured."}
    caps[plot_score_distributions(res, plot_dir / "score_distributions.png").name] = (
        "Score distributions (first seed) of held-out QCD and the signal points.")
    caps[plot_mt_spectra(events, plot_dir / "mt_spectra.png").name] = "mT of QCD and of each signal point."
    nb = res.scores["pfn"]["QCD"].size
    for pl in [k for k in res.scores["pfn"] if k != "QCD"]:
        curves = {}
        for m in _SHOWN:
            s = res.scores[m][pl]
            curves[MODEL_LABELS[m]] = (np.r_[np.zeros(nb), np.ones(s.size)], np.r_[res.scores[m]["QCD"], s])
        p = plot_roc_sic(curves, plot_dir / f"roc_sic_{_safe(pl)}.png", title=f"QCD vs {pl} (first seed)")
        caps[p.name] = f"ROC and SIC, QCD vs {pl} (first seed)."
    return caps


def write_evaluation_report(run_dir, metrics: dict, captions: dict) -> Path:
    from ..report.html import figure_gallery, fmt, page_head, pre_section, write_page

    run_dir = Path(run_dir)
    summ = metrics["summary"]
    pts = list(summ["pfn"].keys())
    head = "".join(f"<th>{html.escape(MODEL_LABELS[m])}</th>" for m in MODELS)
    rows = []
    for p in pts:
        cells = "".join(f"<td>{fmt(summ[m][p]['auc_mean'], 3)} ± {fmt(summ[m][p]['auc_std'], 3)}<br>"
                        f"<small>SIC {fmt(summ[m][p]['max_sic_mean'], 1)}</small></td>" for m in MODELS)
        rows.append(f"<tr><td class='l'>{html.escape(p)}</td>{cells}</tr>")
    t = metrics["timing"]
    timing = "".join(f"<tr><td class='l'>{k}</td><td>{fmt(np.mean(v['cpu_s']), 1)}</td><td>{fmt(np.mean(v['wall_s']), 1)}"
                     f"</td></tr>" for k, v in t.items())
    parts = page_head(f"ANTELOPE evaluation: {run_dir.name}", "ANTELOPE evaluation",
                      f"PFN trained on <b>{html.escape(str(metrics['train_point']))}</b> (m_Z', r_inv[, m_dark]); "
                      f"{len(metrics['settings']['seeds'])} seeds; counts {html.escape(str(metrics['counts']))}")
    parts.append("<h2>AUC across the signal grid (mean ± std over seeds; max SIC below)</h2><table><tr>"
                 "<th class='l'>signal point</th>" + head + "</tr>" + "".join(rows) + "</table>")
    parts.append("<h2>Training time per seed (mean)</h2><table><tr><th class='l'>model</th><th>CPU s</th>"
                 "<th>wall s</th></tr>" + timing + "</table>")
    plots = [run_dir / "plots" / n for n in captions]
    parts.append(figure_gallery(plots, captions))
    parts.append(pre_section("AUC table (text)", auc_table(metrics)))
    parts.append(pre_section("Settings", metrics.get("settings")))
    parts.append(pre_section("Provenance", metrics.get("provenance")))
    return write_page(run_dir, parts)
