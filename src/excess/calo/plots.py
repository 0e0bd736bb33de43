"""Evaluation plots (matplotlib, Agg backend, no LaTeX): feature histograms and training history."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._util import atomic_path

__all__ = ["plot_feature_histograms", "plot_history", "FEATURE_GROUPS"]

FEATURE_GROUPS = ("overview", "E_layer", "EC_r", "width_r", "EC_eta", "EC_phi", "width_eta", "width_phi", "sparsity")
_LABELS = {
    "E_ratio": "E_tot / E_inc", "voxel_energy": "log10(voxel energy / MeV)", "E_layer": "log10(E_layer / MeV)",
    "EC_r": "centre of energy in r [mm]", "width_r": "width in r [mm]", "EC_eta": "centre of energy in eta [mm]",
    "EC_phi": "centre of energy in phi [mm]", "width_eta": "width in eta [mm]", "width_phi": "width in phi [mm]",
    "sparsity": "fraction of empty voxels",
}


def _group(name: str) -> str:
    if name in ("E_ratio", "voxel_energy"):
        return "overview"
    return name.rsplit("_", 1)[0]


def _savefig(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return path


def plot_feature_histograms(histograms, outdir, *, labels=("reference", "generated")) -> list[Path]:
    """One PNG per feature group (``overview``, ``E_layer``, ``EC_r``, ...), one panel per layer,
    separation power in each panel's title. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    groups: dict[str, list] = {}
    for h in histograms:
        groups.setdefault(_group(h.name), []).append(h)
    paths = []
    for g, hs in groups.items():
        n = len(hs)
        ncol = min(5, n)
        nrow = math.ceil(n / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
        for ax, h in zip(axes.ravel(), hs):
            centres = 0.5 * (h.edges[1:] + h.edges[:-1])
            for counts, lab, style in ((h.reference, labels[0], dict(color="0.3", lw=1.5)), (h.generated, labels[1], dict(color="C1", lw=1.2))):
                p = counts / max(counts.sum(), 1)
                ax.step(centres, p, where="mid", label=lab, **style)
            ax.set_title(f"{h.name}  S={h.separation:.3f}", fontsize=8)
            ax.set_xlabel(_LABELS.get(_group(h.name) if g != "overview" else h.name, h.name), fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        axes.ravel()[0].legend(fontsize=7)
        fig.tight_layout()
        paths.append(_savefig(fig, outdir / f"hist_{g}.png"))
        plt.close(fig)
    return paths


def plot_history(history: list[dict], path) -> Path:
    """Training (and, where recorded, validation) loss and E_tot/E_inc chi2 per epoch."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ep = np.array([h["epoch"] for h in history])
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    a.plot(ep, [h["loss"] for h in history], marker=".", label="training")
    if any("val_loss" in h for h in history):
        a.plot(ep, [h.get("val_loss", np.nan) for h in history], marker=".", label="validation")
        a.legend(frameon=False)
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    b.semilogy(ep, [max(h["chi2_etot"], 1e-6) for h in history], marker=".")
    b.set_xlabel("epoch")
    b.set_ylabel("chi2/bin of E_tot/E_inc")
    fig.tight_layout()
    out = _savefig(fig, Path(path))
    plt.close(fig)
    return out
