"""Plots of a stream search: sky, proper motions and colour-magnitude of the selected stars; the window scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..._util import atomic_path

__all__ = ["plot_selected", "plot_scan"]


def _save(fig, path: Path) -> str:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def plot_selected(context: pd.DataFrame, selected: pd.DataFrame, plot_dir: Path, *, line=None, prefix: str = "",
                  title: str = "") -> dict[str, str]:
    """Sky (phi, lam), proper motion (mu_phi, mu_lam) and colour-magnitude plots of ``selected`` stars over the
    ``context`` stars (e.g. the window's SR). Stars with ``is_stream == 1`` (mocks) are ringed. Returns
    ``{file name: caption}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir = Path(plot_dir)
    truth = "is_stream" in selected and selected["is_stream"].astype(bool).any()
    panels = [("sky", "phi", "lam", r"$\phi$ [deg]", r"$\lambda$ [deg]"),
              ("pm", "mu_phi", "mu_lam", r"$\mu_\phi^*$ [mas/yr]", r"$\mu_\lambda$ [mas/yr]"),
              ("cmd", "bp_rp", "phot_g_mean_mag", "BP - RP", "G")]
    out = {}
    for name, xc, yc, xl, yl in panels:
        fig, ax = plt.subplots(figsize=(5.2, 4.6))
        ax.scatter(context[xc], context[yc], s=1, c="0.8", rasterized=True, label=f"all ({len(context):,})")
        ax.scatter(selected[xc], selected[yc], s=9, c="C3", label=f"selected ({len(selected)})")
        if truth:
            st = selected.loc[selected["is_stream"].astype(bool)]
            ax.scatter(st[xc], st[yc], s=40, facecolors="none", edgecolors="k", lw=0.7,
                       label=f"true stream ({len(st)})")
        if name == "sky" and line is not None:
            t = np.linspace(-20, 20, 2)
            th, rho = np.radians(line["theta_deg"]), line["rho"]
            x0, y0 = rho * np.cos(th), rho * np.sin(th)
            ax.plot(x0 - t * np.sin(th), y0 + t * np.cos(th), "C0--", lw=1, label=f"Hough line {line['significance']:.1f}σ")
            ax.set_xlim(context[xc].min() - 0.5, context[xc].max() + 0.5)
            ax.set_ylim(context[yc].min() - 0.5, context[yc].max() + 0.5)
        if name == "cmd":
            ax.invert_yaxis()
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="best")
        fname = f"{prefix}{name}.png"
        out[_save(fig, plot_dir / fname)] = {"sky": "Sky position (patch-centred)", "pm": "Proper motions",
                                            "cmd": "Colour-magnitude"}[name] + " of the selected stars" + (
            f" ({title})" if title else "")
    return out


def plot_scan(windows: list[dict], threshold: float, plot_dir: Path) -> dict[str, str]:
    """Best-line significance per SR window (window centre on the x axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [w for w in windows if w.get("line")]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if ok:
        c = [0.5 * (w["sr"][0] + w["sr"][1]) for w in ok]
        ax.plot(c, [w["line"]["significance"] for w in ok], "o-", ms=4)
    ax.axhline(threshold, color="C3", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlabel(r"SR centre in $\mu_\lambda$ [mas/yr]")
    ax.set_ylabel("best line significance")
    ax.legend(fontsize=8)
    return {_save(fig, Path(plot_dir) / "scan.png"): "Best Hough-line significance (S-B)/sqrt(B+σ_B²+1) per window"}
