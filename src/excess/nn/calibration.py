"""Probability calibration of a binary classifier's scores, shared by the taggers.

:class:`ScoreCalibrator` is a monotone map from a raw probability to a calibrated one, fitted on held-out
rows (never the rows the classifier was trained on) with scikit-learn:

``"sigmoid"`` (Platt scaling)
    ``p_cal = sigmoid(a * logit(p) + b)`` by :class:`sklearn.linear_model.LogisticRegression` (no penalty).
    Strictly increasing (``a > 0`` is enforced), so every rank-based figure (ROC, efficiency at fixed
    fake rate) of the calibrated score equals the raw score's.
``"isotonic"``
    :class:`sklearn.isotonic.IsotonicRegression` on ``logit(p)``. Corrects any monotone distortion. A bare
    isotonic fit is a step function, and its ties moved a 5 % fake-rate threshold by a whole step (in
    ``benchmarks/electron_calibration.py`` before this tie-break, notrt_nocalo 0.5-1 GeV: 67 -> 39 %); so the
    steps are broken by the raw score: ``(1 - 1e-6) * iso(p) + 1e-6 * p``, strictly increasing, at most 1e-6
    from the isotonic value.

By default the calibration rows are class-balanced (:func:`~excess.nn.classifiers.balanced_weights`), so the
calibrated value is P(class 1 | inputs) for equal class priors; :func:`prior_shift` moves it to another prior
(Bayes' rule on the odds). :func:`reliability` gives the binned reliability table and the expected
calibration error (ECE). The fitted map is saved as tensors (:meth:`ScoreCalibrator.get_state`).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["ScoreCalibrator", "CALIBRATIONS", "prior_shift", "reliability", "logit"]

CALIBRATIONS = ("sigmoid", "isotonic")
log = logging.getLogger(__name__)
_EPS = 1e-12
_TIE = 1e-6  # weight of the raw score that breaks the isotonic steps' ties


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def prior_shift(p, prior: float, base: float = 0.5) -> np.ndarray:
    """Probability ``p`` valid at class-1 prior ``base`` turned into the one at prior ``prior``."""
    if not 0.0 < float(prior) < 1.0:
        raise ConfigError(f"prior must lie strictly between 0 and 1, got {prior!r}")
    z = logit(p) + logit(prior) - logit(base)
    return 1.0 / (1.0 + np.exp(-z))


def reliability(y, p, *, n_bins: int = 10, sample_weight=None) -> dict:
    """Reliability table in equal-width bins of ``p``: mean predicted vs observed class-1 fraction.

    Returns ``{"edges", "mean_predicted", "observed", "weight", "ece"}``; ``ece`` is the weight-averaged
    |observed - mean predicted| over the non-empty bins.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if y.shape != p.shape or w.shape != p.shape or y.size == 0:
        raise InputError(f"reliability: y, p and weights need one equal, non-zero length, got {y.shape}, "
                         f"{p.shape}, {w.shape}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    wsum = np.bincount(idx, w, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mp = np.bincount(idx, w * p, n_bins) / wsum
        ob = np.bincount(idx, w * y, n_bins) / wsum
    ok = wsum > 0
    ece = float(np.sum(wsum[ok] * np.abs(ob[ok] - mp[ok])) / wsum.sum())
    return {"edges": edges.tolist(), "mean_predicted": mp.tolist(), "observed": ob.tolist(),
            "weight": wsum.tolist(), "ece": ece}


class ScoreCalibrator:
    """Monotone raw-probability -> calibrated-probability map (see the module docstring).

    ``fit(p, y, sample_weight=None)`` on held-out rows; ``balance=True`` weights the two classes equally
    (the calibrated value then refers to equal priors). ``predict(p)`` maps new raw probabilities.
    """

    def __init__(self, method: str = "sigmoid", *, balance: bool = True):
        if method not in CALIBRATIONS:
            raise ConfigError(f"calibration must be one of {', '.join(CALIBRATIONS)} (or None), got {method!r}")
        self.method = method
        self.balance = balance

    def fit(self, p, y, sample_weight=None):
        from .classifiers import balanced_weights

        z, y = logit(p), np.asarray(y).astype(int)
        if z.shape != y.shape or set(np.unique(y).tolist()) != {0, 1}:
            raise InputError(f"calibration rows need both classes and one score per label, got {z.shape} scores, "
                             f"labels {np.unique(y).tolist()}")
        w = (balanced_weights(y, sample_weight) if self.balance
             else np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, float))
        if self.method == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=np.inf).fit(z[:, None], y, sample_weight=w)
            a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
            if a <= 0:  # the raw score does not rank on these rows: keep the map increasing (ranks unchanged)
                log.warning("Platt calibration slope %.3g <= 0 on %d rows; clamped to 1e-6", a, y.size)
                a = 1e-6
            self.x_, self.y_ = np.array([a]), np.array([b])
        else:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y, sample_weight=w)
            self.x_, self.y_ = np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)
        self.n_rows_ = int(y.size)
        return self

    def predict(self, p) -> np.ndarray:
        if not hasattr(self, "x_"):
            raise InputError("ScoreCalibrator is not fitted")
        z = logit(p)
        if self.method == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.x_[0] * z + self.y_[0])))
        return (1.0 - _TIE) * np.interp(z, self.x_, self.y_) + _TIE * np.clip(np.asarray(p, dtype=float), 0.0, 1.0)

    def get_state(self) -> tuple[dict, dict]:
        import torch

        return ({"x": torch.from_numpy(self.x_.copy()), "y": torch.from_numpy(self.y_.copy())},
                {"method": self.method, "balance": self.balance, "n_rows": self.n_rows_})

    @classmethod
    def from_state(cls, tensors: dict, meta: dict) -> ScoreCalibrator:
        c = cls(meta["method"], balance=bool(meta.get("balance", True)))
        c.x_ = tensors["x"].numpy().astype(float)
        c.y_ = tensors["y"].numpy().astype(float)
        c.n_rows_ = int(meta.get("n_rows", 0))
        return c
