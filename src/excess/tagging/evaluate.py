"""Evaluation of electron taggers: ROC per category, efficiency at a fixed fake rate in pT bins, SHAP.

* :func:`efficiency_at_fake_rate`: in every (category, pT bin) — and for all categories together — the
  score threshold that keeps ``fake_rate`` of the background tracks of that bin, and the electron
  efficiency at it with a Clopper-Pearson interval (:func:`clopper_pearson`).
* :func:`roc_summary`: ROC AUC per category and combined (:mod:`excess.stats.roc`).
* :func:`shap_importance`: mean |SHAP value| per feature and category (``shap``: KernelSHAP on a small
  sample for the networks, in probability units; exact TreeSHAP for the HGB baseline, in
  log-odds units averaged over the ensemble members).
* :func:`evaluate_taggers`: all of it for several taggers into a run directory (``metrics.json``,
  ``plots/*.png``, ``report.html``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import atomic_write_json, check_random_state, get_logger
from ..data.tracks import CATEGORIES
from ..errors import InputError
from ..report.figures import pyplot, save_figure

__all__ = ["PT_BINS", "clopper_pearson", "BinEfficiency", "efficiency_at_fake_rate", "roc_summary",
           "shap_importance", "evaluate_taggers"]

log = get_logger(__name__)

#: the study's pT bins [GeV]
PT_BINS = (0.5, 1.0, 2.0, 3.0, 5.0)


def clopper_pearson(k, n, cl: float = 0.6827) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial interval of ``k`` successes in ``n`` trials at confidence ``cl``."""
    from scipy.stats import beta

    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise InputError("need 0 <= k <= n for a binomial interval")
    a = (1.0 - cl) / 2.0
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    lo = np.where(n > 0, lo, np.nan)
    hi = np.where(n > 0, hi, np.nan)
    return lo, hi


@dataclass(frozen=True)
class BinEfficiency:
    """Electron efficiency at a fixed fake rate in one (category, pT bin)."""

    category: str
    pt_lo: float
    pt_hi: float
    n_electrons: int
    n_others: int
    threshold: float
    fake_rate: float
    efficiency: float
    eff_lo: float
    eff_hi: float

    def to_dict(self) -> dict:
        return asdict(self)


def efficiency_at_fake_rate(y, score, pt, category=None, *, fake_rate: float = 0.05,
                            pt_bins=PT_BINS, min_others: int = 20) -> list[BinEfficiency]:
    """Efficiency at the threshold giving ``fake_rate`` per pT bin, per category and ``"combined"``.

    Bins with fewer than ``min_others`` background tracks or no electrons get NaN efficiencies.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=float)
    pt = np.asarray(pt, dtype=float)
    if not (0 < fake_rate < 1):
        raise InputError(f"fake_rate must be in (0, 1), got {fake_rate}")
    if not (y.shape == s.shape == pt.shape):
        raise InputError(f"labels, scores and pT differ in length: {y.size}, {s.size}, {pt.size}")
    cats = np.full(y.size, "combined", dtype=object) if category is None else np.asarray(category).astype(str)
    groups = (["combined"] if category is None else [c for c in CATEGORIES if (cats == c).any()] + ["combined"])
    out = []
    for g in groups:
        in_g = np.ones(y.size, bool) if g == "combined" else (cats == g)
        for lo, hi in zip(pt_bins[:-1], pt_bins[1:]):
            m = in_g & (pt >= lo) & (pt < hi)
            sig, bkg = s[m & y], s[m & ~y]
            if bkg.size < min_others or sig.size == 0:
                out.append(BinEfficiency(g, lo, hi, int(sig.size), int(bkg.size), np.nan, np.nan, np.nan,
                                         np.nan, np.nan))
                continue
            thr = float(np.quantile(bkg, 1.0 - fake_rate, method="higher"))
            k = int((sig > thr).sum())
            e_lo, e_hi = clopper_pearson(k, sig.size)
            out.append(BinEfficiency(g, lo, hi, int(sig.size), int(bkg.size), thr, float((bkg > thr).mean()),
                                     k / sig.size, float(e_lo), float(e_hi)))
    return out


def roc_summary(y, score, category) -> dict:
    """ROC AUC and counts per category and combined."""
    from ..stats.roc import roc_auc

    y = np.asarray(y).astype(int)
    s = np.asarray(score, dtype=float)
    cats = np.asarray(category).astype(str)
    out = {}
    for g in list(CATEGORIES) + ["combined"]:
        m = np.ones(y.size, bool) if g == "combined" else cats == g
        n1, n0 = int(y[m].sum()), int((y[m] == 0).sum())
        out[g] = {"auc": roc_auc(y[m], s[m]) if n1 and n0 else None, "n_electrons": n1, "n_others": n0}
    return out


def shap_importance(tagger, tracks: pd.DataFrame, *, n_explain: int = 200, n_background: int = 50,
                    random_state=None) -> dict:
    """Mean |SHAP value| of each input of each member (KernelSHAP for networks, TreeSHAP for trees).

    Returns ``{group: {"features": [...], "mean_abs_shap": [...], "n": n_explained}}``; groups are the
    categories (``"all"`` for the inclusive tagger; ``"<category>:pt<i>"`` under pT-binned training). Network
    values are in calibrated probability when the tagger calibrates; tree values in the raw log-odds.
    """
    import shap

    rng = check_random_state(random_state)
    out = {}
    for group in tagger.members_:
        rows = tagger._rows(tracks, group)  # the member's category (and pT bin)
        if rows.sum() < 10:
            continue
        sub = tracks[rows] if not rows.all() else tracks
        X = tagger._matrix(sub, group)
        bg = X[rng.choice(len(X), min(n_background, len(X)), replace=False)]
        ex = X[rng.choice(len(X), min(n_explain, len(X)), replace=False)]

        member = tagger.members_[group]
        if hasattr(member, "members_") and not hasattr(member, "states_"):
            # boosted trees: exact TreeSHAP of each member's log-odds, averaged (the mean log-odds is linear)
            vals = np.mean([np.asarray(shap.TreeExplainer(t).shap_values(ex)).reshape(len(ex), -1)
                            for t in member.members_], axis=0)
            units = "log-odds"
        else:
            def f(m, g=group):
                return tagger.member_predict(g, m)

            # KernelSHAP with a small background sample (the permutation explainer's numba JIT costs ~10 s
            # per process; KernelSHAP needs none)
            explainer = shap.KernelExplainer(f, bg, seed=int(rng.integers(2**31 - 1)))
            vals = np.asarray(explainer.shap_values(ex, nsamples=10 * X.shape[1] + 100, silent=True))
            vals = vals.reshape(len(ex), -1)
            units = "probability"
        out[group] = {"features": list(tagger.features_[group]), "units": units,
                      "mean_abs_shap": np.abs(vals).mean(axis=0).tolist(), "n": int(len(ex))}
    return out


# ------------------------------------------------------------------------------------------------
# plots


def plot_roc(y, score, category, path, *, title=""):
    from ..stats.roc import roc_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    y = np.asarray(y).astype(int)
    cats = np.asarray(category).astype(str)
    for g in list(CATEGORIES) + ["combined"]:
        m = np.ones(y.size, bool) if g == "combined" else cats == g
        if y[m].sum() == 0 or (y[m] == 0).sum() == 0:
            continue
        fpr, tpr, _ = roc_curve(y[m], np.asarray(score)[m])
        ax.plot(tpr, np.where(fpr > 0, fpr, np.nan), label=g, lw=2 if g == "combined" else 1.3)
    ax.set_yscale("log")
    ax.set_xlabel("electron efficiency")
    ax.set_ylabel("fake rate (other tracks)")
    ax.axhline(0.05, color="grey", ls=":", lw=1)
    ax.legend(fontsize=11)
    ax.set_title(title, fontsize=13)
    return save_figure(fig, path)


def plot_efficiency(effs: list[dict], path, *, title="", key="category"):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    groups = list(dict.fromkeys(e[key] for e in effs))
    for i, g in enumerate(groups):
        rows = [e for e in effs if e[key] == g]
        x = np.array([0.5 * (e["pt_lo"] + e["pt_hi"]) for e in rows]) + 0.04 * (i - len(groups) / 2)
        xe = np.array([0.5 * (e["pt_hi"] - e["pt_lo"]) for e in rows])
        y = np.array([e["efficiency"] for e in rows], dtype=float)
        lo = y - np.array([e["eff_lo"] for e in rows], dtype=float)
        hi = np.array([e["eff_hi"] for e in rows], dtype=float) - y
        ax.errorbar(x, y, xerr=xe, yerr=[lo, hi], fmt="o", label=g, capsize=2)
    ax.set_xlabel("electron pT [GeV]")
    ax.set_ylabel("efficiency at fixed fake rate")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=10)
    ax.set_title(title, fontsize=13)
    return save_figure(fig, path)


def plot_shap(imp: dict, path, *, title=""):
    plt = pyplot()
    order = np.argsort(imp["mean_abs_shap"])
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(order) + 1.5))
    ax.barh(np.array(imp["features"])[order], np.array(imp["mean_abs_shap"])[order])
    ax.set_xlabel(f"mean |SHAP value| ({imp.get('units', 'probability')})")
    ax.set_title(title, fontsize=13)
    ax.tick_params(axis="y", labelsize=10)
    ax.minorticks_off()  # minor ticks on a categorical axis only cost drawing time
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------


def evaluate_taggers(taggers: dict, tracks: pd.DataFrame, out_dir: str | Path, *, fake_rate: float = 0.05,
                     pt_bins=PT_BINS, shap: bool = True, n_shap: int = 200, random_state=None,
                     extra_metrics: dict | None = None, config: dict | None = None) -> dict:
    """Evaluate ``{name: fitted ElectronTagger}`` on a labelled track table; write a run directory.

    Efficiencies are binned in the true pT when the table has ``true_pt`` (simulation), else in ``pt``.
    Returns the metrics dictionary (also written to ``metrics.json``) and writes ``report.html``.
    """
    from .electrons import check_tracks
    from .report import write_tagging_report

    t0 = time.perf_counter()
    check_tracks(tracks, source="evaluation tracks", require_label=True)
    if not taggers:
        raise InputError("no tagger to evaluate")
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    rng = check_random_state(random_state)
    y = tracks["label"].to_numpy().astype(int)
    if y.min() == y.max():
        raise InputError("the evaluation tracks need both electrons (label 1) and other tracks (label 0)")
    pt_col = "true_pt" if "true_pt" in tracks.columns else "pt"
    pt = tracks[pt_col].to_numpy(dtype=float)
    cats = tracks["category"].astype(str).to_numpy()
    metrics = {"kind": "electron-tagging", "n_tracks": int(len(tracks)), "n_electrons": int(y.sum()),
               "fake_rate": fake_rate, "pt_bins": list(pt_bins), "pt_column": pt_col,
               "category_fractions_electrons": {c: float((cats[y == 1] == c).mean()) for c in CATEGORIES},
               "category_fractions_others": {c: float((cats[y == 0] == c).mean()) for c in CATEGORIES},
               "models": {}, "plot_captions": {}}
    if "origin" in tracks.columns:
        metrics["origins"] = tracks["origin"].astype(str).value_counts().to_dict()
    combined = []
    for name, tagger in taggers.items():
        score = tagger.decision_function(tracks)
        effs = [e.to_dict() for e in efficiency_at_fake_rate(y, score, pt, cats, fake_rate=fake_rate, pt_bins=pt_bins)]
        m = {"roc": roc_summary(y, score, cats), "efficiency": effs}
        p = plot_roc(y, score, cats, plots / f"roc_{name}.png", title=f"{name}: ROC by category")
        metrics["plot_captions"][p.name] = f"{name}: fake rate vs electron efficiency per category"
        p = plot_efficiency(effs, plots / f"efficiency_{name}.png",
                            title=f"{name}: efficiency at {fake_rate:.0%} fake rate")
        metrics["plot_captions"][p.name] = (f"{name}: electron efficiency at {fake_rate:.0%} fake rate per {pt_col} "
                                            "bin and category (Clopper-Pearson 68 % intervals)")
        combined += [{**e, "model": name} for e in effs if e["category"] == "combined"]
        if shap:
            try:
                imp = shap_importance(tagger, tracks, n_explain=n_shap, random_state=rng)
            except Exception as exc:  # explanations are diagnostics: report, do not fail the evaluation
                log.warning("SHAP for %s failed: %s", name, exc)
                imp = {"error": str(exc)}
            m["shap"] = imp
            for group, v in imp.items():
                if isinstance(v, dict) and "features" in v:
                    p = plot_shap(v, plots / f"shap_{name}_{group}.png", title=f"{name}, {group}: SHAP importance")
                    metrics["plot_captions"][p.name] = f"{name}: mean |SHAP| per input, category {group}"
        metrics["models"][name] = m
    if len(taggers) > 1:
        p = plot_efficiency(combined, plots / "compare_models.png", key="model",
                            title=f"all categories: efficiency at {fake_rate:.0%} fake rate")
        metrics["plot_captions"][p.name] = "models compared: efficiency at fixed fake rate, all categories"
    if extra_metrics:
        metrics.update(extra_metrics)
    metrics["runtime_s"] = time.perf_counter() - t0
    atomic_write_json(out_dir / "metrics.json", metrics)
    if config is not None:
        atomic_write_json(out_dir / "config.json", config)
    write_tagging_report(out_dir)
    return metrics
