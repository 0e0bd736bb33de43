"""The protocol shared by every anomaly method, input validation and out-of-fold scoring.

A method is a scikit-learn-style estimator::

    method = make_method("cathode", random_state=0)
    method.fit(X, m, sr=(3300.0, 3700.0))     # X (n, d) features, m (n,) resonant feature in GeV
    score = method.score_samples(X_test, m_test)  # (n,), higher = more anomalous, always finite

Events with ``lo <= m < hi`` are the signal region (SR); the other events passed to ``fit`` are the
sidebands (SB) of the window. Methods that need labels (``supervised``) take ``y=``; methods that need a
true background sample (``idealized``) take ``X_background=``/``m_background=``.

:func:`cross_val_scores` gives every event an out-of-fold score: it is scored by a clone of the method
that was fitted on the other folds (folds stratified by SR/SB), so no event is scored by a model that
saw it. This is what a bump hunt needs: the selection must not be tuned on the events it selects.
"""

from __future__ import annotations

import copy
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone

from .._util import check_random_state, get_logger, spawn_seeds
from ..errors import ConfigError, FitError, InputError, NotFittedError

__all__ = [
    "AnomalyMethod",
    "WindowData",
    "check_features",
    "check_sr",
    "check_window",
    "in_sr",
    "cross_val_scores",
    "stratified_folds",
    "fresh_estimator",
    "FoldJob",
    "FoldGroupJob",
    "FoldScores",
    "run_fold",
    "run_fold_group",
    "run_fold_task",
    "fold_tasks",
]

log = get_logger(__name__)


def check_sr(sr) -> tuple[float, float]:
    """Validate a signal-region interval ``(lo, hi)`` in GeV."""
    try:
        lo, hi = (float(v) for v in sr)
    except (TypeError, ValueError):
        raise ConfigError(f"sr must be an interval (lo, hi) in GeV, got {sr!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"sr must satisfy finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def in_sr(m: np.ndarray, sr) -> np.ndarray:
    """Boolean mask of signal-region events, ``lo <= m < hi``."""
    lo, hi = sr
    return (m >= lo) & (m < hi)


def check_features(X, m=None, *, name: str = "X", n_features: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a feature matrix (and resonant feature): 2-d, finite, matching lengths.

    Returns float64 copies-or-views. Raises :class:`~excess.errors.InputError` naming the problem.
    """
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a numeric array: {exc}") from None
    if X.ndim == 1:
        raise InputError(f"{name} must be 2-d (n_events, n_features), got 1-d of length {X.shape[0]}; "
                         "use X.reshape(-1, 1) for a single feature")
    if X.ndim != 2:
        raise InputError(f"{name} must be 2-d (n_events, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise InputError(f"{name} has no events")
    if n_features is not None and X.shape[1] != n_features:
        raise InputError(f"{name} has {X.shape[1]} features, the method was fitted with {n_features}")
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.nonzero(bad.any(axis=1))[0]
        cols = np.nonzero(bad.any(axis=0))[0]
        raise InputError(
            f"{name} has {rows.size} rows with NaN/inf values (first rows {rows[:5].tolist()}, "
            f"columns {cols.tolist()}); drop or impute them first"
        )
    if m is not None:
        try:
            m = np.asarray(m, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"m for {name} must be numeric: {exc}") from None
        if m.ndim != 1:
            raise InputError(f"m must be 1-d (n_events,), got shape {m.shape}")
        if m.shape[0] != X.shape[0]:
            raise InputError(f"mismatched lengths: {name} has {X.shape[0]} events, m has {m.shape[0]}")
        bad_m = ~np.isfinite(m)
        if bad_m.any():
            raise InputError(f"m has {int(bad_m.sum())} NaN/inf values (first rows {np.nonzero(bad_m)[0][:5].tolist()})")
    return X, m


@dataclass
class WindowData:
    """Validated inputs of one fit: the window's events split into SR and SB."""

    X: np.ndarray
    m: np.ndarray
    sr: tuple[float, float]
    is_sr: np.ndarray
    y: np.ndarray | None = None
    X_background: np.ndarray | None = None
    m_background: np.ndarray | None = None

    @property
    def X_sr(self) -> np.ndarray:
        return self.X[self.is_sr]

    @property
    def m_sr(self) -> np.ndarray:
        return self.m[self.is_sr]

    @property
    def X_sb(self) -> np.ndarray:
        return self.X[~self.is_sr]

    @property
    def m_sb(self) -> np.ndarray:
        return self.m[~self.is_sr]

    @property
    def n_sr(self) -> int:
        return int(self.is_sr.sum())

    @property
    def n_sb(self) -> int:
        return int((~self.is_sr).sum())


def check_window(
    X,
    m,
    *,
    sr,
    y=None,
    X_background=None,
    m_background=None,
    min_sr: int = 1,
    min_sb: int = 0,
    needs_labels: bool = False,
    needs_background: bool = False,
    method: str = "method",
) -> WindowData:
    """Validate the inputs of :meth:`AnomalyMethod.fit` and split them into SR / SB."""
    sr = check_sr(sr)
    X, m = check_features(X, m)
    const = np.nonzero(np.ptp(X, axis=0) == 0)[0]
    if const.size:
        raise InputError(
            f"X has constant columns {const.tolist()} (value(s) {X[0, const].tolist()}): "
            "they carry no information and break the preprocessing; drop them"
        )
    is_sr = in_sr(m, sr)
    n_sr, n_sb = int(is_sr.sum()), int((~is_sr).sum())
    if n_sr < min_sr:
        raise InputError(
            f"{method}: too few signal-region events: {n_sr} with {sr[0]:g} <= m < {sr[1]:g} GeV, need >= {min_sr}"
        )
    if n_sb < min_sb:
        raise InputError(f"{method}: too few sideband events: {n_sb} outside the SR {sr}, need >= {min_sb}")
    if needs_labels:
        if y is None:
            raise ConfigError(f"{method} needs truth labels: pass y= (1 signal, 0 background)")
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise InputError(f"mismatched lengths: X has {X.shape[0]} events, y has shape {y.shape}")
        if not np.all(np.isin(y, (0, 1))):
            raise InputError(f"y must contain only 0 (background) and 1 (signal), got {np.unique(y)[:10].tolist()}")
        y = y.astype(np.int8)
    elif y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise InputError(f"mismatched lengths: X has {X.shape[0]} events, y has shape {y.shape}")
    if needs_background:
        if X_background is None or m_background is None:
            raise ConfigError(
                f"{method} needs a true background sample: pass X_background= and m_background= "
                "(available in simulation only)"
            )
        X_background, m_background = check_features(X_background, m_background, name="X_background")
        if X_background.shape[1] != X.shape[1]:
            raise InputError(f"X_background has {X_background.shape[1]} features, X has {X.shape[1]}")
    return WindowData(X, m, sr, is_sr, y, X_background, m_background)


class AnomalyMethod(BaseEstimator):
    """Base class of the anomaly methods (a scikit-learn estimator with one shared protocol).

    Subclasses implement ``_fit(data: WindowData, rng)`` and ``_score(X, m) -> ndarray``, and may set:

    ``name``               registry name
    ``needs_labels``       fit requires ``y``
    ``needs_background``   fit requires ``X_background``/``m_background``
    ``min_sr``/``min_sb``  minimal event counts for a fit
    ``FAST_PARAMS``        tiny hyperparameters for tests and smoke runs (``make_method(name, fast=True)``)
    """

    name: ClassVar[str] = "base"
    needs_labels: ClassVar[bool] = False
    needs_background: ClassVar[bool] = False
    uses_sb: ClassVar[bool] = False
    min_sr: ClassVar[int] = 20
    min_sb: ClassVar[int] = 0
    FAST_PARAMS: ClassVar[dict[str, Any]] = {}

    # -- public protocol -------------------------------------------------------------------------
    def fit(self, X, m, *, sr, y=None, X_background=None, m_background=None):
        """Fit on the window's events; ``sr=(lo, hi)`` in GeV. Returns ``self``."""
        data = check_window(
            X, m, sr=sr, y=y, X_background=X_background, m_background=m_background,
            min_sr=self.min_sr, min_sb=self.min_sb if self._requires_sb() else 0,
            needs_labels=self.needs_labels, needs_background=self.needs_background, method=self.name,
        )
        rng = check_random_state(getattr(self, "random_state", None))
        self.sr_ = data.sr
        self.n_features_in_ = data.X.shape[1]
        self.n_sr_, self.n_sb_ = data.n_sr, data.n_sb
        self._fit(data, rng)
        self.is_fitted_ = True
        return self

    def score_samples(self, X, m) -> np.ndarray:
        """Anomaly score of each event, higher = more anomalous; always finite."""
        self._check_fitted()
        X, m = check_features(X, m, n_features=self.n_features_in_)
        s = np.asarray(self._score(X, m), dtype=np.float64).reshape(-1)
        if s.shape[0] != X.shape[0]:  # pragma: no cover - programming error
            raise FitError(f"{self.name}: produced {s.shape[0]} scores for {X.shape[0]} events")
        bad = ~np.isfinite(s)
        if bad.any():
            raise FitError(
                f"{self.name}: {int(bad.sum())} of {s.size} scores are not finite (training diverged?); "
                "refusing to return NaN scores"
            )
        return s

    def _requires_sb(self) -> bool:
        """Whether fit needs sideband events (False e.g. when a saved background flow is given)."""
        return self.uses_sb

    # -- a stage shared by several folds (the density methods' sideband flow) -----------------------
    def fold_groups(self, n_folds: int, n_sb: int | None = None) -> list[tuple[int, ...]] | None:
        """Groups of folds that share one fitted stage (:meth:`fit_shared`), or ``None``: every fold
        fits everything itself (the default). ``n_sb``: the window's sideband events, where known.
        See :func:`run_fold_group` for the out-of-fold rule."""
        return None

    def fit_shared(self, X, m, *, sr):  # pragma: no cover - only methods with fold_groups implement it
        """Fit the shared stage on the events of the folds *outside* a group; returns it."""
        raise NotImplementedError

    def set_shared(self, shared) -> None:  # pragma: no cover
        """Use ``shared`` (from :meth:`fit_shared`) in the next ``fit`` instead of fitting that stage."""
        raise NotImplementedError

    @classmethod
    def fast_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Tiny hyperparameters for tests / smoke runs, given the user's explicit ``params``."""
        return dict(cls.FAST_PARAMS)

    # -- hooks -----------------------------------------------------------------------------------
    def _fit(self, data: WindowData, rng: np.random.Generator) -> None:  # pragma: no cover
        raise NotImplementedError

    def _score(self, X: np.ndarray, m: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not getattr(self, "is_fitted_", False):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, m, sr=...) first")

    def __sklearn_is_fitted__(self) -> bool:
        return bool(getattr(self, "is_fitted_", False))


# ---------------------------------------------------------------------------------------------
# out-of-fold scoring
# ---------------------------------------------------------------------------------------------
def stratified_folds(is_sr: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id per event, stratified by region so every fold holds ~1/k of the SR and of the SB."""
    fold = np.empty(is_sr.size, dtype=np.int64)
    for mask in (is_sr, ~is_sr):
        idx = np.nonzero(mask)[0]
        perm = rng.permutation(idx.size)
        fold[idx[perm]] = np.arange(idx.size) % n_folds
    return fold


def fresh_estimator(method, seed: int | None = None):
    """An unfitted copy of ``method`` (``sklearn.base.clone`` for estimators, a deep copy for other
    objects following the protocol) whose ``random_state``, if it has one, is ``seed``."""
    if hasattr(method, "get_params") and hasattr(method, "set_params"):
        est = clone(method)
        if seed is not None and "random_state" in est.get_params(deep=False):
            est.set_params(random_state=int(seed))
        return est
    est = copy.deepcopy(method)
    if seed is not None and hasattr(est, "random_state"):
        est.random_state = int(seed)
    return est


@dataclass(frozen=True)
class FoldJob:
    """One fold of out-of-fold scoring, an executor task: fit a fresh copy of ``method`` (seeded with
    ``seed``) on the training folds, score the held-out fold (``X_test``, ``m_test``)."""

    method: Any
    seed: int | None
    X_train: np.ndarray
    m_train: np.ndarray
    X_test: np.ndarray
    m_test: np.ndarray
    sr: tuple[float, float]
    fit_kw: dict = field(default_factory=dict)
    shared: Any = None  # a stage fitted by method.fit_shared on events of other folds (run_fold_group)


@dataclass(frozen=True)
class FoldGroupJob:
    """Folds ``todo`` (a subset of ``group``) of one window, sharing one stage: an executor task.

    The shared stage (e.g. the sideband flow of CATHODE / R-ANODE / ANODE) is fitted by
    ``method.fit_shared`` on the events of the folds *outside* ``group`` (seeded with ``shared_seed``);
    then fold ``k`` of ``todo`` is fitted on the folds ``!= k`` with that stage and scores fold ``k``
    (seeded with ``seeds[i]``). Neither the shared stage nor the fold's own model has seen fold ``k``.
    ``fit_kw`` is passed to every fold's fit (a per-event ``y`` is split along with ``X``).
    """

    method: Any
    X: np.ndarray
    m: np.ndarray
    fold: np.ndarray
    group: tuple[int, ...]
    todo: tuple[int, ...]
    seeds: tuple
    shared_seed: int
    sr: tuple[float, float]
    fit_kw: dict = field(default_factory=dict)

    def training_mask(self) -> np.ndarray:
        """The events the shared stage is fitted on: those of the folds outside ``group``."""
        return ~np.isin(self.fold, self.group)


@dataclass(frozen=True)
class FoldScores:
    """Scores of a held-out fold, the signal fraction the fitted method estimated (R-ANODE's
    ``signal_fraction_``/``signal_fraction_err_``; None for other methods) and the fit + score time."""

    scores: np.ndarray
    signal_fraction: float | None = None
    signal_fraction_err: float | None = None
    runtime_s: float = 0.0


def run_fold(job: FoldJob) -> FoldScores:
    """Run one :class:`FoldJob` (top level, so executors can pickle it)."""
    t0 = time.perf_counter()
    est = fresh_estimator(job.method, job.seed)
    if job.shared is not None:
        est.set_shared(job.shared)
    est.fit(job.X_train, job.m_train, sr=tuple(job.sr), **job.fit_kw)
    scores = np.asarray(est.score_samples(job.X_test, job.m_test), dtype=np.float64).reshape(-1)
    if scores.shape[0] != job.X_test.shape[0]:
        raise InputError(f"method returned {scores.shape[0]} scores for {job.X_test.shape[0]} events")
    w, w_err = (_as_float(getattr(est, name, None)) for name in ("signal_fraction_", "signal_fraction_err_"))
    return FoldScores(scores, w, w_err, time.perf_counter() - t0)


def run_fold_group(job: FoldGroupJob) -> list[FoldScores]:
    """Run one :class:`FoldGroupJob`: fit the shared stage once, then each fold of ``job.todo``.

    Returns one :class:`FoldScores` per fold of ``todo`` (in that order); each fold's ``runtime_s``
    includes its share of the shared stage's time.
    """
    t0 = time.perf_counter()
    if not set(job.todo) <= set(job.group):
        raise ConfigError(f"folds {job.todo} are not all in the group {job.group}")
    out = job.training_mask()
    shared = fresh_estimator(job.method, job.shared_seed).fit_shared(job.X[out], job.m[out], sr=tuple(job.sr))
    t_shared = (time.perf_counter() - t0) / max(1, len(job.todo))
    y = job.fit_kw.get("y")
    results = []
    for k, seed in zip(job.todo, job.seeds):
        tr, te = job.fold != k, job.fold == k
        kw = dict(job.fit_kw)
        if y is not None:
            kw["y"] = np.asarray(y)[tr]
        r = run_fold(FoldJob(job.method, seed, job.X[tr], job.m[tr], job.X[te], job.m[te], job.sr, kw, shared))
        results.append(FoldScores(r.scores, r.signal_fraction, r.signal_fraction_err, r.runtime_s + t_shared))
    return results


def run_fold_task(job) -> list[FoldScores]:
    """An executor task of out-of-fold scoring: a :class:`FoldJob` (one result) or a
    :class:`FoldGroupJob` (one result per fold of its ``todo``)."""
    return run_fold_group(job) if isinstance(job, FoldGroupJob) else [run_fold(job)]


def fold_tasks(method, X, m, fold, seeds, sr, fit_kw: dict, todo=None) -> list[tuple[tuple[int, ...], Any]]:
    """The executor tasks scoring the folds ``todo`` (default all) of one window: ``(folds, job)`` pairs.

    A method whose :meth:`AnomalyMethod.fold_groups` gives groups gets one :class:`FoldGroupJob` per
    group with folds to do (its shared seed is drawn from the group's first fold seed, so the folds'
    own seeds are those of per-fold scoring); any other method one :class:`FoldJob` per fold.
    """
    n_folds = len(seeds)
    todo = list(range(n_folds)) if todo is None else list(todo)
    groups_of = getattr(method, "fold_groups", None)
    groups = groups_of(n_folds, n_sb=int((~in_sr(m, sr)).sum())) if callable(groups_of) else None
    y = fit_kw.get("y")
    if groups is None:
        tasks = []
        for k in todo:
            tr, te = fold != k, fold == k
            kw = dict(fit_kw)
            if y is not None:
                kw["y"] = np.asarray(y)[tr]
            tasks.append(((k,), FoldJob(method, seeds[k], X[tr], m[tr], X[te], m[te], sr, kw)))
        return tasks
    tasks = []
    for g in groups:
        ks = tuple(k for k in g if k in todo)
        if ks:
            shared_seed = int(np.random.default_rng([int(seeds[g[0]]), 0x5EED]).integers(2**31 - 1))
            tasks.append((ks, FoldGroupJob(method, X, m, fold, tuple(g), ks, tuple(seeds[k] for k in ks),
                                           shared_seed, tuple(sr), dict(fit_kw))))
    return tasks


def _as_float(v) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def cross_val_scores(
    method: AnomalyMethod,
    X,
    m,
    *,
    sr,
    n_folds: int = 5,
    random_state=None,
    executor=None,
    **fit_kw,
) -> np.ndarray:
    """Out-of-fold anomaly scores for every event passed (SR and SB).

    The events are split into ``n_folds`` folds, stratified by SR/SB; fold ``k`` is scored by a clone of
    ``method`` fitted on the other folds, so no event is scored by a model that saw it. Per-event
    arrays in ``fit_kw`` (``y``) are split along with ``X``; a separate background sample
    (``X_background``/``m_background``) is passed whole to every fold. Folds run on ``executor``
    (see :func:`excess.executor.get_executor`) when given, else serially. Each clone gets its own seed
    drawn from ``random_state`` (if the method has a ``random_state`` parameter, it is overridden).

    A method whose :meth:`~AnomalyMethod.fold_groups` groups the folds (the density methods'
    ``flow_groups``) fits its shared stage once per group, on the events of the folds outside the group,
    and each fold of the group with it (:func:`run_fold_group`): still no model scoring an event saw it.
    """
    if not isinstance(method, AnomalyMethod):
        raise ConfigError(f"method must be an AnomalyMethod (see make_method), got {type(method).__name__}")
    if not isinstance(n_folds, numbers.Integral) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    unknown = set(fit_kw) - {"y", "X_background", "m_background"}
    if unknown:
        raise ConfigError(f"unknown fit arguments {sorted(unknown)}; allowed: y, X_background, m_background")
    sr = check_sr(sr)
    X, m = check_features(X, m)
    is_sr = in_sr(m, sr)
    n_sr, n_sb = int(is_sr.sum()), int((~is_sr).sum())
    # each training split holds (k-1)/k of the events: it must satisfy the method's minimum
    need_sr = int(np.ceil(method.min_sr * n_folds / (n_folds - 1)))
    if n_sr < max(need_sr, n_folds):
        raise InputError(
            f"{method.name}: too few SR events for {n_folds} folds: {n_sr} in {sr}, need >= {max(need_sr, n_folds)}"
        )
    if method._requires_sb():
        need_sb = int(np.ceil(method.min_sb * n_folds / (n_folds - 1)))
        if n_sb < max(need_sb, n_folds):
            raise InputError(
                f"{method.name}: too few SB events for {n_folds} folds: {n_sb} outside {sr}, "
                f"need >= {max(need_sb, n_folds)}"
            )
    y = fit_kw.get("y")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise InputError(f"mismatched lengths: X has {X.shape[0]} events, y has shape {y.shape}")

    rng = check_random_state(random_state)
    fold = stratified_folds(is_sr, n_folds, rng)
    seeds = spawn_seeds(rng, n_folds)
    tasks = fold_tasks(method, X, m, fold, seeds, sr, fit_kw)
    if executor is None:
        results = [run_fold_task(job) for _, job in tasks]
    else:
        results = executor.map(run_fold_task, [(job,) for _, job in tasks])
    scores = np.empty(X.shape[0], dtype=np.float64)
    for (ks, _), rs in zip(tasks, results):
        for k, r in zip(ks, rs):
            scores[fold == k] = r.scores
    return scores
