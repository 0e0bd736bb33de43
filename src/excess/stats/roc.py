"""ROC curves and the significance improvement characteristic (SIC).

Every formula lives here once:

* ``TPR`` (signal efficiency) and ``FPR`` (background efficiency) of a cut ``score >= t``;
* ``SIC = TPR / sqrt(FPR)``, the factor by which a cut multiplies ``S / sqrt(B)``;
* the statistical cutoff: a working point is only trusted where the number of test background
  events surviving the cut, ``N_bkg * FPR``, has a relative Poisson error ``<= max_rel_err``,
  i.e. ``FPR >= 1 / (N_bkg * max_rel_err**2)`` (LHCO convention ``max_rel_err = 0.2``).

Example
-------
>>> import numpy as np
>>> from excess.stats.roc import max_sic
>>> rng = np.random.default_rng(0)
>>> y = np.r_[np.zeros(10_000), np.ones(1_000)]
>>> s = rng.normal(size=y.size) + 2 * y
>>> 2 < max_sic(y, s) < 10
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["SICCurve", "roc_curve", "roc_auc", "fpr_cutoff", "sic_curve", "max_sic", "sic_at_fpr", "rejection_at"]


def _check_labels_scores(y, s) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    s = np.asarray(s, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise InputError(f"labels and scores must be 1-d, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise InputError(f"labels and scores have different lengths: {y.size} vs {s.size}")
    if not np.all(np.isfinite(s)):
        raise InputError(f"{int(np.sum(~np.isfinite(s)))} scores are NaN or infinite")
    uniq = np.unique(y)
    if not np.all(np.isin(uniq, (0, 1))):
        raise InputError(f"labels must be 0 (background) or 1 (signal), got values {uniq[:10].tolist()}")
    if uniq.size < 2:
        raise InputError("ROC/SIC need both signal (1) and background (0) events in the labels")
    return y.astype(bool), s


def roc_curve(y, s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(fpr, tpr, thresholds)`` for cuts ``s >= threshold`` (thresholds decreasing).

    Every distinct score is a working point (no points dropped), starting at ``fpr = tpr = 0``.
    """
    y, s = _check_labels_scores(y, s)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # last index of each run of equal scores
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    thresholds = np.r_[np.inf, s_sorted[distinct]]
    return fpr, tpr, thresholds


def roc_auc(y, s) -> float:
    """Area under the ROC curve (probability that a signal event outscores a background event)."""
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def fpr_cutoff(n_bkg: int, max_rel_err: float = 0.2) -> float:
    """Smallest trusted FPR: ``1 / (n_bkg * max_rel_err**2)`` (relative error of the surviving background)."""
    if n_bkg <= 0:
        raise InputError(f"need at least one background event, got n_bkg={n_bkg}")
    if not (max_rel_err > 0):
        raise InputError(f"max_rel_err must be > 0, got {max_rel_err}")
    return 1.0 / (n_bkg * max_rel_err**2)


@dataclass(frozen=True)
class SICCurve:
    """A SIC curve: ``sic = tpr / sqrt(fpr)`` at every working point with ``fpr > 0``.

    ``valid`` marks the points with ``fpr >= fpr_min`` (the statistical cutoff); :attr:`max_sic`
    is taken over those only. Unpacks as ``tpr, fpr, sic, fpr_min = curve``.
    """

    tpr: np.ndarray
    fpr: np.ndarray
    sic: np.ndarray
    fpr_min: float
    max_rel_err: float
    n_bkg: int
    n_sig: int

    def __iter__(self):
        return iter((self.tpr, self.fpr, self.sic, self.fpr_min))

    @property
    def valid(self) -> np.ndarray:
        return self.fpr >= self.fpr_min

    @property
    def max_sic(self) -> float:
        v = self.valid
        return float(np.max(self.sic[v])) if np.any(v) else float("nan")

    @property
    def argmax(self) -> int:
        """Index of the maximum SIC among the valid points."""
        idx = np.nonzero(self.valid)[0]
        return int(idx[np.argmax(self.sic[idx])])

    @property
    def cutoff_label(self) -> str:
        return (
            f"FPR >= 1/(N_bkg x {self.max_rel_err:g}^2) = {self.fpr_min:.2e}  "
            f"(N_bkg = {self.n_bkg}, N_sig = {self.n_sig})"
        )

    def to_dict(self) -> dict:
        return {
            "max_sic": self.max_sic,
            "fpr_min": self.fpr_min,
            "max_rel_err": self.max_rel_err,
            "n_bkg": self.n_bkg,
            "n_sig": self.n_sig,
        }


def sic_curve(y, s, *, max_rel_err: float = 0.2) -> SICCurve:
    """SIC curve with the statistical cutoff ``fpr_min = 1 / (N_bkg * max_rel_err**2)``."""
    fpr, tpr, _ = roc_curve(y, s)
    y = np.asarray(y).astype(bool)
    n_bkg, n_sig = int(np.sum(~y)), int(np.sum(y))
    keep = fpr > 0
    fpr, tpr = fpr[keep], tpr[keep]
    sic = tpr / np.sqrt(fpr)
    return SICCurve(tpr, fpr, sic, fpr_cutoff(n_bkg, max_rel_err), float(max_rel_err), n_bkg, n_sig)


def max_sic(y, s, *, max_rel_err: float = 0.2) -> float:
    """Maximum SIC over working points with ``FPR >= 1 / (N_bkg * max_rel_err**2)``."""
    return sic_curve(y, s, max_rel_err=max_rel_err).max_sic


def sic_at_fpr(y, s, fpr) -> float | np.ndarray:
    """SIC at fixed background efficiency(ies) ``fpr`` (TPR linearly interpolated along the ROC)."""
    f = np.asarray(fpr, dtype=float)
    if np.any(~(f > 0) | (f > 1)):
        raise InputError(f"fpr must be in (0, 1], got {fpr!r}")
    fprs, tprs, _ = roc_curve(y, s)
    tpr = np.interp(f, fprs, tprs)
    out = tpr / np.sqrt(f)
    return float(out) if out.ndim == 0 else out


def rejection_at(y, s, efficiency: float) -> float:
    """Background rejection ``1 / FPR`` at signal efficiency ``efficiency`` (linear interpolation of the ROC)."""
    if not 0 < efficiency <= 1:
        raise ConfigError(f"efficiency must be in (0, 1], got {efficiency}")
    fpr, tpr, _ = roc_curve(y, s)
    f = float(np.interp(efficiency, tpr, fpr))
    return float("inf") if f <= 0 else 1.0 / f
