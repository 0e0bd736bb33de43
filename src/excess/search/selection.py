"""Out-of-fold anomaly scores per window and the score cuts at fixed background efficiencies.

Folds: the window's events are split into ``n_folds`` folds, stratified by SR/SB. Fold ``k`` is
scored by a fresh copy of the method fitted on the other folds (one executor task per
window x fold), so no event is scored by a model that saw it.

Thresholds: for a background efficiency ``eps``, the threshold of fold ``k`` is the
``1 - eps`` quantile of the scores of fold ``k``'s *sideband* events: the cut keeps a fraction
``eps`` of the background estimate (the sidebands, from which the background is fitted) and
is never tuned on SR data. Per-fold thresholds make the cut insensitive to differences in score
scale between the fold models.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["build_method", "method_needs", "fold_ids", "fit_score_fold", "fold_thresholds", "select"]


def build_method(method: Any, params: dict | None = None, seed: int | None = None):
    """A fresh, unfitted estimator: ``make_method(name, **params)`` for a name, else a copy of the
    instance (``sklearn.base.clone`` when it is an estimator). ``seed`` overrides ``random_state``."""
    params = dict(params or {})
    if isinstance(method, str):
        from ..anomaly import make_method  # lazy: the anomaly package imports torch-based models lazily too

        est = make_method(method, **params)
    else:
        if params:
            raise ConfigError("method_params are only used with a method name, not with an instance")
        try:
            from sklearn.base import clone

            est = clone(method)
        except Exception:
            est = copy.deepcopy(method)
    if seed is not None:
        if hasattr(est, "get_params") and hasattr(est, "set_params"):
            try:
                if "random_state" in est.get_params(deep=False):
                    est.set_params(random_state=int(seed))
            except Exception:  # pragma: no cover - exotic estimators
                pass
        elif hasattr(est, "random_state"):
            est.random_state = int(seed)
    if not (hasattr(est, "fit") and hasattr(est, "score_samples")):
        raise ConfigError(f"method {type(est).__name__} does not follow the protocol (fit, score_samples)")
    return est


def method_needs(est) -> tuple[bool, bool]:
    """``(needs_labels, needs_background)`` declared by a method (class attributes of the anomaly API)."""
    return bool(getattr(est, "needs_labels", False)), bool(getattr(est, "needs_background", False))


def fold_ids(is_sr: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id per event, stratified so every fold holds ~1/k of the SR and of the SB."""
    fold = np.empty(is_sr.size, dtype=np.int64)
    for mask in (is_sr, ~is_sr):
        idx = np.nonzero(mask)[0]
        fold[idx[rng.permutation(idx.size)]] = np.arange(idx.size) % n_folds
    return fold


def fit_score_fold(method, params, seed, X_tr, m_tr, X_te, m_te, sr, fit_kw) -> dict:
    """One executor task: fit a fresh method on the training folds, score the held-out fold.

    Returns the scores and what the fitted method exposes about the signal (R-ANODE's
    ``w_``/``w_err_``), and the runtime.
    """
    t0 = time.perf_counter()
    est = build_method(method, params, seed)
    est.fit(X_tr, m_tr, sr=tuple(sr), **fit_kw)
    scores = np.asarray(est.score_samples(X_te, m_te), dtype=np.float64).reshape(-1)
    if scores.shape[0] != X_te.shape[0]:
        raise InputError(f"method returned {scores.shape[0]} scores for {X_te.shape[0]} events")
    extras = {}
    for name in ("w_", "w_err_"):
        v = getattr(est, name, None)
        if v is not None:
            try:
                extras[name] = float(v)
            except (TypeError, ValueError):
                pass
    return {"scores": scores, "extras": extras, "runtime_s": time.perf_counter() - t0}


def fold_thresholds(scores: np.ndarray, fold: np.ndarray, is_sb: np.ndarray, efficiency: float) -> np.ndarray:
    """Per-fold thresholds keeping a fraction ``efficiency`` of each fold's sideband events."""
    if not 0 < efficiency <= 1:
        raise ConfigError(f"efficiencies must be in (0, 1], got {efficiency}")
    n_folds = int(fold.max()) + 1
    thr = np.empty(n_folds)
    for k in range(n_folds):
        s = scores[(fold == k) & is_sb]
        if s.size == 0:
            raise InputError(f"fold {k} has no sideband events")
        thr[k] = -np.inf if efficiency >= 1 else np.quantile(s, 1.0 - efficiency, method="higher")
    return thr


def select(scores: np.ndarray, fold: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Events passing their fold's threshold (``score > threshold``; everything for efficiency 1)."""
    return scores > thresholds[fold]
