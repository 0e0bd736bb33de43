"""Characterisation of an excess: resonance mass and the masses of the selected jets.

* Resonance mass: the excess-weighted mean of the SR bin centres, weights ``max(n - mu, 0)``
  (``mu`` from the sideband fit), and its RMS.
* Jet masses (mX from the heavier jet ``mj2``, mY from the lighter ``mj1``): sideband
  subtraction. The selected SR events' jet-mass histogram minus the selected SB events'
  histogram scaled to the fitted SR background; the peak of the (lightly smoothed) difference,
  refined by the excess-weighted centroid of the bins around it.
"""

from __future__ import annotations

import numpy as np

from ..stats.fit import DijetFit
from .results import Characterisation

__all__ = ["resonance_mass", "subtracted_peak", "characterise"]

JET_MASS_EDGES = np.arange(0.0, 1000.0 + 1e-9, 20.0)


def resonance_mass(fit: DijetFit, sr: tuple[float, float]) -> tuple[float, float | None, float | None]:
    """``(n_excess, m_res, m_res_rms)`` from the SR bins of a sideband fit."""
    e = np.asarray(fit.edges)
    c = 0.5 * (e[1:] + e[:-1])
    in_sr = (c >= sr[0]) & (c < sr[1])
    exc = (np.asarray(fit.counts) - np.asarray(fit.expected))[in_sr]
    n_exc = float(exc.sum())
    w = np.clip(exc, 0, None)
    if w.sum() <= 0:
        return n_exc, None, None
    m = float(np.sum(w * c[in_sr]) / w.sum())
    rms = float(np.sqrt(np.sum(w * (c[in_sr] - m) ** 2) / w.sum()))
    return n_exc, m, rms


def subtracted_peak(values_sr, values_sb, scale: float, edges=JET_MASS_EDGES) -> tuple[float | None, dict]:
    """Peak of ``hist(values_sr) - scale * hist(values_sb)``; returns ``(peak, histograms)``."""
    h_sr = np.histogram(values_sr, edges)[0].astype(float)
    h_sb = np.histogram(values_sb, edges)[0].astype(float) * scale
    diff = h_sr - h_sb
    hists = {"edges": np.asarray(edges).tolist(), "sr": h_sr.tolist(), "sb_scaled": h_sb.tolist()}
    if diff.sum() <= 0 or h_sr.sum() == 0:
        return None, hists
    smooth = np.convolve(diff, [0.25, 0.5, 0.25], mode="same")
    i = int(np.argmax(smooth))
    lo, hi = max(i - 2, 0), min(i + 3, diff.size)
    c = 0.5 * (np.asarray(edges)[1:] + np.asarray(edges)[:-1])
    w = np.clip(diff[lo:hi], 0, None)
    peak = float(np.sum(w * c[lo:hi]) / w.sum()) if w.sum() > 0 else float(c[i])
    return peak, hists


def characterise(fit: DijetFit, sr, b_hat: float, jets_sr: dict | None, jets_sb: dict | None) -> Characterisation:
    """Characterise one cut. ``jets_*`` map ``"mj1"``/``"mj2"`` to the selected events' jet masses."""
    n_exc, m_res, rms = resonance_mass(fit, sr)
    m_x = m_y = None
    hists: dict = {}
    if jets_sr is not None and jets_sb is not None:
        n_sb = len(next(iter(jets_sb.values()))) if jets_sb else 0
        scale = b_hat / n_sb if n_sb > 0 else 0.0
        if "mj2" in jets_sr:
            m_x, hists["mj2"] = subtracted_peak(jets_sr["mj2"], jets_sb["mj2"], scale)
        if "mj1" in jets_sr:
            m_y, hists["mj1"] = subtracted_peak(jets_sr["mj1"], jets_sb["mj1"], scale)
    return Characterisation(n_excess=n_exc, m_res=m_res, m_res_rms=rms, m_x=m_x, m_y=m_y, jet_mass_hists=hists)
