"""Line finding on the sky (Via Machinae 2.0): a Hough transform of the top-ranked stars of a window.

A line ``rho = x cos(theta) + y sin(theta)`` in patch coordinates (x = phi, y = lam, deg) is scored by the number
``S`` of selected stars within ``width / 2`` of it; the expected number ``B`` is what the same number of stars
would put there if they followed the sky distribution of a reference sample (all stars of the signal region), so
edges, holes and density gradients of the patch do not fake lines. ``sigma_B`` is the binomial uncertainty of that
expectation from the finite reference sample. The significance is Via Machinae's

    sigma = (S - B) / sqrt(B + sigma_B^2 + 1)

(the ``+ 1`` keeps lines through nearly empty regions from scoring high). The grid has ``n_bins`` angles in
[0, pi) and ``n_bins`` offsets in [-extent, extent].

A stream is extended: with ``segment > 0``, a line holding more than ``max_clump`` (half) of its stars in one
``segment``-long piece (2 deg in the search) is a compact clump, not a stream, and the next best line is taken.
This keeps clumps from passing as lines, in particular the one a classifier makes where a smooth SR/SB gradient
across the patch (the solar reflex motion) peaks at the patch edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, InputError

__all__ = ["HoughLine", "line_significance", "hough_transform", "best_line", "distance_to_line", "clump_fraction"]


def line_significance(S, B, sigma_B):
    """Via Machinae's line significance (S - B) / sqrt(B + sigma_B^2 + 1)."""
    S, B, sigma_B = np.asarray(S, float), np.asarray(B, float), np.asarray(sigma_B, float)
    return (S - B) / np.sqrt(B + sigma_B**2 + 1.0)


@dataclass(frozen=True)
class HoughLine:
    """The most significant line of a Hough map."""

    theta: float  # rad, in [0, pi)
    rho: float  # deg
    S: int
    B: float
    sigma_B: float
    significance: float
    width: float
    clump_fraction: float = float("nan")  # largest share of its stars in one segment (see best_line)

    def to_dict(self) -> dict:
        return {"theta_deg": float(np.degrees(self.theta)), "rho": self.rho, "S": self.S, "B": self.B,
                "sigma_B": self.sigma_B, "significance": self.significance, "width": self.width,
                "clump_fraction": self.clump_fraction}


def distance_to_line(x, y, theta: float, rho: float) -> np.ndarray:
    """Perpendicular distance (deg) of points from the line (theta, rho)."""
    return np.abs(np.asarray(x) * np.cos(theta) + np.asarray(y) * np.sin(theta) - rho)


def _band_counts(x, y, thetas, rho_edges, k):
    """Counts of points in bands of ``k`` consecutive rho bins, for every theta: shape (n_theta, n_rho)."""
    rho = np.outer(np.cos(thetas), x) + np.outer(np.sin(thetas), y)  # (n_theta, n)
    n_rho = len(rho_edges) - 1
    idx = np.searchsorted(rho_edges, rho, side="right") - 1
    ok = (idx >= 0) & (idx < n_rho)
    row = np.broadcast_to(np.arange(len(thetas))[:, None], idx.shape)
    h = np.bincount((row * n_rho + idx)[ok], minlength=len(thetas) * n_rho).reshape(len(thetas), n_rho)
    c = np.concatenate([np.zeros((len(thetas), 1)), np.cumsum(h, axis=1)], axis=1)
    lo = np.clip(np.arange(n_rho) - k // 2, 0, n_rho)
    hi = np.clip(lo + k, 0, n_rho)
    return c[:, hi] - c[:, lo]


def hough_transform(x, y, x_ref, y_ref, *, extent: float, width: float = 1.0, n_bins: int = 100):
    """Significance map of lines through the selected stars ``(x, y)`` against the reference ``(x_ref, y_ref)``.

    Returns ``(thetas, rhos, S, B, sigma_B, significance)``; ``S``, ``B``... have shape (n_bins, n_bins).
    """
    x, y, x_ref, y_ref = (np.asarray(a, float) for a in (x, y, x_ref, y_ref))
    if not (extent > 0 and width > 0 and n_bins >= 4):
        raise ConfigError(f"hough: need extent > 0, width > 0, n_bins >= 4; got {extent}, {width}, {n_bins}")
    if len(x_ref) < 2:
        raise InputError(f"hough: the reference sample has {len(x_ref)} stars; need >= 2")
    thetas = np.linspace(0.0, np.pi, n_bins, endpoint=False)
    rho_edges = np.linspace(-extent, extent, n_bins + 1)
    rhos = 0.5 * (rho_edges[1:] + rho_edges[:-1])
    k = max(1, int(round(width / (rho_edges[1] - rho_edges[0]))))
    S = _band_counts(x, y, thetas, rho_edges, k)
    n_ref = len(x_ref)
    f = _band_counts(x_ref, y_ref, thetas, rho_edges, k) / n_ref
    B = len(x) * f
    sigma_B = len(x) * np.sqrt(f * (1 - f) / n_ref)
    return thetas, rhos, S, B, sigma_B, line_significance(S, B, sigma_B)


def clump_fraction(x, y, theta: float, rho: float, width: float, segment: float) -> float:
    """Largest share of a line's stars (within ``width / 2``) that fall in one ``segment``-long piece of it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    on = distance_to_line(x, y, theta, rho) <= width / 2
    if on.sum() == 0:
        return 1.0
    t = np.sort(-x[on] * np.sin(theta) + y[on] * np.cos(theta))
    counts = np.searchsorted(t, t + segment, side="right") - np.arange(len(t))
    return float(counts.max() / len(t))


def best_line(x, y, x_ref, y_ref, *, extent: float, width: float = 1.0, n_bins: int = 100,
              segment: float = 0.0, max_clump: float = 0.5) -> HoughLine:
    """The most significant line (see :func:`hough_transform`).

    With ``segment > 0``, lines that hold more than ``max_clump`` of their stars in one ``segment``-long piece
    are compact clumps, not streams, and are passed over.
    """
    thetas, rhos, S, B, sB, sig = hough_transform(x, y, x_ref, y_ref, extent=extent, width=width, n_bins=n_bins)
    order = np.argsort(-sig, axis=None, kind="stable")
    clump = float("nan")
    for flat in order[: 2000 if segment > 0 else 1]:
        i, j = np.unravel_index(int(flat), sig.shape)
        if segment <= 0:
            break
        clump = clump_fraction(x, y, thetas[i], rhos[j], width, segment)
        if clump <= max_clump or sig[i, j] <= 0:
            break
    else:  # every line examined is a clump
        return HoughLine(theta=0.0, rho=0.0, S=0, B=0.0, sigma_B=0.0, significance=0.0, width=float(width))
    return HoughLine(theta=float(thetas[i]), rho=float(rhos[j]), S=int(S[i, j]), B=float(B[i, j]),
                     sigma_B=float(sB[i, j]), significance=float(sig[i, j]), width=float(width),
                     clump_fraction=clump)
