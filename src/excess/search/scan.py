"""The search: windows x folds of anomaly scores, cuts, sideband fits, local and global significance.

:func:`run_scan` is the library entry point (the ``excess search`` command wraps it)::

    from excess.search import run_scan
    result = run_scan(events, method="cwola", efficiencies=(0.1, 0.01, 0.001), n_folds=5,
                      random_state=0, resume_dir="runs/search1")
    print(result.summary())

Procedure, per window (see :mod:`excess.stats.windows`):

1. out-of-fold anomaly scores of every event of the window: one
   :class:`~excess.anomaly.base.FoldJob` per window x fold, independent executor tasks (local
   processes, or Dask when a scheduler ``address`` / ``distributed.Client`` is given);
2. for each efficiency, a per-fold threshold keeping that fraction of the sideband events
   (:mod:`excess.search.selection`);
3. the sideband test of the selected events (:func:`excess.stats.sideband.sideband_test`) with the
   ``background_model``: by default (``"efficiency"``) the window's inclusive mjj spectrum fitted in
   the sidebands with the 3- or 4-parameter dijet function (once per window) times the selection
   efficiency fitted in the sidebands (:mod:`excess.stats.efficiency`); ``"sideband"`` fits the
   selected spectrum alone; ``"signal_fit"`` fits the efficiency model over the whole window with a
   Gaussian signal template; ``"dijet_signal"`` fits the selected spectrum's dijet function over the whole
   window with that template. The SR prediction with its uncertainty from the fits' covariances, the
   local significance from the profile likelihood ratio with the prediction as a constrained nuisance;
4. characterisation (resonance mass, mX / mY peaks, R-ANODE's signal fraction)
   (:mod:`excess.search.analysis`).

Then the global significance: background-only pseudo-experiments of every window's selected
spectra (nested across efficiencies, independent across windows, which is conservative),
refitted like the data; the largest local Z of each pseudo-scan gives the look-elsewhere
correction. The same toys give a toy-based local p-value for each cut (``p_toys``); permutation
pseudo-windows give ``p_null`` (:mod:`excess.search.toys`).

Sensitivity at the frontier (issue 22): ``decorrelation`` (default ``"auto"``: the conditional
copula transform, quantile map of degree 2 in mjj then a conditional whitening, for SR-vs-SB
classifiers such as CWoLa, none for the conditional-density methods; :mod:`excess.search.decorrelation`) keeps the cut from sculpting mjj, and the efficiency
background model stays honest when some sculpting remains and keeps its precision at tight cuts.
The default grid of efficiencies reaches 1e-4; a cut with fewer than ``min_selected`` selected
sideband events has no result, and the global toys cover every cut that has one.

Results are saved per window (atomically) under ``resume_dir`` (:class:`~excess.search.store.ResumeStore`);
a rerun with the same settings skips finished windows and folds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util import check_random_state, get_logger, progress, spawn_seeds, to_jsonable
from ..anomaly.base import FoldScores, fold_tasks, run_fold_task, stratified_folds
from ..data.schema import STANDARD_FEATURES
from ..errors import ConfigError, InputError
from ..stats.sideband import SidebandFit, background_estimate
from ..stats.windows import Window, default_data_range, sliding_windows, validate_windows
from .analysis import analyse_window, precheck_window, window_seed
from .decorrelation import Decorrelated, make_transform, resolve_decorrelation
from .results import ScanResult, WindowResult
from .selection import build_method, method_needs
from .store import ResumeStore
from .toys import attach_null, permutation_global, with_global_toys

__all__ = ["run_scan", "DEFAULT_EFFICIENCIES", "DEFAULT_FEATURES"]

log = get_logger(__name__)

DEFAULT_EFFICIENCIES = (0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4)
DEFAULT_FEATURES = STANDARD_FEATURES


# ----------------------------------------------------------------------------------------------
# checks of the inputs
# ----------------------------------------------------------------------------------------------
def _check_events(events: pd.DataFrame, features: Sequence[str], resonant: str = "mjj") -> None:
    if not isinstance(events, pd.DataFrame):
        raise InputError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    if resonant != "mjj" and resonant in features:  # (mjj as a feature: refused by the config, as before)
        raise ConfigError(f"{resonant!r} is the resonant feature the windows cut on; it cannot be a feature")
    missing = [c for c in (resonant, *features) if c not in events.columns]
    if missing:
        raise InputError(f"events lack columns {missing}; have {list(events.columns)[:20]}")
    if len(events) == 0:
        raise InputError("no events")
    bad = ~np.isfinite(events[[resonant, *features]].to_numpy(dtype=float))
    if bad.any():
        raise InputError(f"{int(bad.any(axis=1).sum())} events have NaN/inf in {resonant} or the features; drop them first")


def _check_efficiencies(efficiencies) -> tuple[float, ...]:
    effs = tuple(sorted({float(e) for e in efficiencies}, reverse=True))
    if not effs:
        raise ConfigError("need at least one efficiency")
    for e in effs:
        if not 0 < e <= 1:
            raise ConfigError(f"efficiencies must be in (0, 1], got {e}")
    return effs


def _check_method_inputs(events, background_events, features, needs_labels: bool, needs_background: bool,
                         resonant: str = "mjj") -> None:
    if needs_labels:
        if "label" not in events.columns:
            raise ConfigError("the method needs truth labels, but events have no 'label' column")
        if not np.isin(events["label"].to_numpy(), (0, 1)).all():
            raise InputError("the method needs labels 0/1 for every event; some are unknown (-1)")
    if needs_background:
        if background_events is None:
            raise ConfigError("the method needs a separate background sample: pass background_events=")
        _check_events(background_events, features, resonant)


def _check_counts(n_folds, global_toys: int, null_toys: int) -> None:
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if global_toys < 0 or null_toys < 0:
        raise ConfigError(f"global_toys and null_toys must be >= 0, got {global_toys}, {null_toys}")


def _decorrelated(method, proto, decorrelation: str, features: list[str], params: dict | None):
    """``(kind, method)``: the decorrelation ``"auto"`` resolves to for the method, and the method
    wrapped in it (:class:`~excess.search.decorrelation.Decorrelated`; unchanged for ``"none"``)."""
    kind = resolve_decorrelation(decorrelation, method if isinstance(method, str) else proto)
    if kind == "none":
        return kind, proto
    params = dict(params or {})
    wrapper = {k: params.pop(k) for k in ("fit_on", "heldout_fraction") if k in params}
    make_transform(kind, features, params)  # fail early on a bad transform
    d = Decorrelated(proto, transform=kind, features=tuple(features), transform_params=params or None, **wrapper)
    d.resolved_fit_on()  # a bad fit_on fails now
    return kind, d


def _resolve_windows(windows, m_all: np.ndarray, window_options: dict | None) -> list[Window]:
    """The windows given (checked against the data), or the default sliding windows over the data range."""
    if windows is None:
        wo = dict(window_options or {})
        bw = float(wo.get("bin_width", 50.0))
        windows = sliding_windows(data_range=default_data_range(m_all, bin_width=bw), **wo)
    return validate_windows(windows, m_all)


def _base_seed(random_state) -> int:
    """The one seed of the scan: ``random_state`` itself when it is an int, else drawn from it."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(check_random_state(random_state).integers(0, 2**31 - 1))


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(to_jsonable(payload), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _method_description(method, params) -> dict:
    if isinstance(method, str):
        return {"name": method, "params": to_jsonable(params or {})}
    return {"name": getattr(method, "name", type(method).__name__), "instance": repr(method)}


# ----------------------------------------------------------------------------------------------
# the units of work: a window (or one of its permutation pseudo-windows) x folds
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Table:
    """The scanned arrays of the event table (and of the background sample, for methods needing one)."""

    X: np.ndarray
    m: np.ndarray
    labels: np.ndarray | None
    jets: dict
    X_background: np.ndarray | None = None
    m_background: np.ndarray | None = None

    @classmethod
    def of(cls, events: pd.DataFrame, features: list[str], background_events: pd.DataFrame | None,
           resonant: str = "mjj") -> _Table:
        bg = background_events
        return cls(
            X=events[features].to_numpy(dtype=np.float64), m=events[resonant].to_numpy(dtype=float),
            labels=events["label"].to_numpy() if "label" in events.columns else None,
            jets={c: events[c].to_numpy(dtype=float) for c in ("mj1", "mj2") if c in events.columns},
            X_background=None if bg is None else bg[features].to_numpy(np.float64),
            m_background=None if bg is None else bg[resonant].to_numpy(dtype=float),
        )

    def background_in(self, w: Window) -> dict:
        """``fit`` keywords of a method needing a background sample: its events in the window's fit range."""
        if self.m_background is None:
            return {}
        mask = (self.m_background >= w.sb_lo) & (self.m_background < w.sb_hi)
        return {"X_background": self.X_background[mask], "m_background": self.m_background[mask]}


@dataclass
class _Unit:
    """The out-of-fold scoring of one window (``null is None``) or of its permutation pseudo-window
    ``null`` (``m`` permuted among the window's events); ``folds[k]`` fills in as fold k finishes."""

    window: Window
    key: str
    null: int | None
    idx: np.ndarray
    m: np.ndarray
    fold: np.ndarray
    fold_seeds: list
    seed: int
    fingerprint: str
    folds: list[FoldScores | None] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return all(f is not None for f in self.folds)

    def scores(self) -> np.ndarray:
        s = np.full(self.idx.size, np.nan)
        for k, f in enumerate(self.folds):
            s[self.fold == k] = f.scores
        return s

    def jobs(self, method, table: _Table, fit_kw: dict, needs_labels: bool) -> list[tuple[tuple[int, ...], Any]]:
        """The executor tasks still to run: ``(folds, job)``, a FoldJob per fold, or a FoldGroupJob per
        group of folds sharing a stage (the density methods' sideband flow; :func:`~excess.anomaly.base.fold_tasks`)."""
        todo = [k for k, f in enumerate(self.folds) if f is None]
        if not todo:
            return []
        kw = dict(fit_kw)
        if needs_labels:
            kw["y"] = table.labels[self.idx].astype(np.int8)
        return fold_tasks(method, table.X[self.idx], self.m, self.fold, self.fold_seeds, self.window.sr, kw, todo)


def _units(w: Window, m_all: np.ndarray, n_folds: int, null_toys: int, seed: int, fp: str, store) -> list[_Unit]:
    """The window and its ``null_toys`` pseudo-windows, with the folds found in ``store`` filled in."""
    in_win, _, _ = w.masks(m_all)
    idx = np.nonzero(in_win)[0]
    wrng = np.random.default_rng(seed)
    m_win = m_all[idx]
    units = []
    for t in [None, *range(null_toys)]:
        m = m_win if t is None else m_win[wrng.permutation(m_win.size)]
        fold = stratified_folds(w.masks(m)[1], n_folds, wrng)
        key = w.key if t is None else f"{w.key}_null{t}"
        unit = _Unit(w, key, t, idx, m, fold, spawn_seeds(wrng, n_folds), seed, fp)
        unit.folds = [store.fold(key, k, fp) for k in range(n_folds)]
        units.append(unit)
    return units


@dataclass
class _Pending:
    """A window waiting for its real unit and its null pseudo-windows."""

    real: WindowResult | None = None
    null_z: list = field(default_factory=list)

    def complete(self) -> WindowResult | None:
        """The window's result (with p_null) once every part is in, else None."""
        if self.real is None or any(z is None for z in self.null_z):
            return None
        return attach_null(self.real, np.array(self.null_z, dtype=float)) if self.null_z else self.real


class _Collector:
    """Turns finished units into window results: analyses each unit, completes a window once its real
    unit and its null pseudo-windows are in, and saves it."""

    def __init__(self, store: ResumeStore, table: _Table, efficiencies, background: SidebandFit):
        self.store, self.table, self.efficiencies, self.background = store, table, efficiencies, background
        self.results: dict[str, WindowResult] = {}
        self.scores: dict[str, tuple] = {}
        self.pending: dict[str, _Pending] = {}

    def add_finished(self, res: WindowResult, idx_scores=None) -> None:
        self.results[res.window.key] = res
        if idx_scores is not None:
            self.scores[res.window.key] = idx_scores

    def expect(self, w: Window, null_toys: int) -> None:
        self.pending[w.key] = _Pending(null_z=[None] * null_toys)

    def finish(self, unit: _Unit) -> None:
        """Analyse a unit whose folds are all scored."""
        real, table = unit.null is None, self.table
        scores = unit.scores()
        res = analyse_window(
            unit.window, unit.m, scores, unit.fold, efficiencies=self.efficiencies, background=self.background,
            jets={c: v[unit.idx] for c, v in table.jets.items()} if real else None,
            labels=table.labels[unit.idx] if (real and table.labels is not None) else None,
            characterise_cuts=real, folds=unit.folds, seed=unit.seed,
            runtime_s=sum(f.runtime_s for f in unit.folds), fingerprint=unit.fingerprint,
        )
        unit.folds = []  # free the fold scores (the unit is finished)
        p = self.pending[unit.window.key]
        if real:
            p.real = res
            self.scores[unit.window.key] = (unit.idx, scores.astype(np.float32))
            self.store.save_window_scores(unit.window, unit.idx, scores.astype(np.float32), unit.fingerprint)
        else:
            p.null_z[unit.null] = [t.z for t in res.tests]
        complete = p.complete()
        if complete is not None:
            self.results[unit.window.key] = complete
            self.store.save_window(complete)

    def result(self, w: Window, n_events: int) -> WindowResult:
        """The window's result with the out-of-fold score of every event of the table (NaN outside it)."""
        res, idx_scores = self.results[w.key], self.scores.get(w.key)
        if idx_scores is None:
            return res
        full = np.full(n_events, np.nan, dtype=np.float32)
        full[idx_scores[0]] = idx_scores[1]
        return dataclasses.replace(res, scores=full)


# ----------------------------------------------------------------------------------------------
# the scan
# ----------------------------------------------------------------------------------------------
def run_scan(
    events: pd.DataFrame,
    *,
    method: Any = "cwola",
    method_params: dict | None = None,
    windows: Sequence | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    n_folds: int = 5,
    executor=None,
    address: Any = None,
    n_workers: int | None = None,
    random_state: None | int | np.random.Generator = None,
    resume_dir: str | os.PathLike | None = None,
    background_events: pd.DataFrame | None = None,
    global_toys: int = 200,
    null_toys: int = 0,
    fit_functions: Sequence[int] = (3, 4),
    function_test: str = "lrt",
    alpha: float = 0.05,
    min_selected: int = 20,
    min_sideband_events: int = 100,
    window_options: dict | None = None,
    show_progress: bool = True,
    decorrelation: str = "auto",
    decorrelation_params: dict | None = None,
    background_model: str = "efficiency",
    efficiency_degree: int | str = "auto",
    signal_width: float = 0.04,
    resonant: str = "mjj",
) -> ScanResult:
    """Scan SR/SB windows in mjj with an anomaly method and return local and global significances.

    Parameters
    ----------
    events : event table (columns ``mjj``, ``features``; ``mj1``/``mj2`` for the jet-mass
        characterisation; ``label`` for SIC, never used by data-driven methods)
    method : a name of :func:`excess.anomaly.make_method` (with ``method_params``) or an unfitted
        instance following the protocol (``fit(X, m, *, sr, ...)``, ``score_samples(X, m)``)
    windows : list of :class:`~excess.stats.windows.Window`, ``(sr_lo, sr_hi)`` (500 GeV sidebands),
        ``(sr_lo, sr_hi, sb_lo, sb_hi)`` or dicts; default :func:`sliding_windows` over
        :func:`default_data_range` (``window_options`` are passed to it: width, step, sideband_width,
        anchor, bin_width); the LHCO SR 3300-3700 GeV is one of the defaults
    efficiencies : background (sideband) efficiencies of the score cuts (default down to 1e-4; cuts with
        fewer than ``min_selected`` selected sideband events have no result)
    n_folds : k of the out-of-fold scoring (>= 2)
    executor / address / n_workers : an :class:`excess.executor.Executor`; or a Dask scheduler
        address or ``distributed.Client``; or the number of local worker processes (default: all cores)
    random_state : one seed for everything (folds, method seeds, pseudo-experiments)
    resume_dir : per-window results (JSON) and fold scores (npz) are saved here atomically;
        a rerun with identical settings skips what is finished
    background_events : a separate background-only sample, for methods that need one (``idealized``)
    global_toys : background-only pseudo-experiments of the selected spectra (refitted) for the
        global significance and the per-cut ``p_toys`` (0: only the Sidak trials bound)
    null_toys : pseudo-experiments of the *whole procedure* (scores retrained) with mjj permuted
        among each window's events, which makes the features independent of mjj (the background-only
        hypothesis of a resonant search whose features are mjj-independent in the background). They
        give ``p_null`` per cut and, when > 0, the global significance (``method="permutation"``).
        They calibrate what the fit toys cannot: a learned selection amplifies SR fluctuations and
        out-of-fold models of different folds select correlated fluctuations, which widens the
        null distribution of Z (measured: see ``benchmarks/search_calibration.py``). Costs
        ``null_toys`` times the training.
    fit_functions, function_test, alpha : the dijet functions and the f3-vs-f4 test
    min_selected : fewer selected sideband events flag the cut as ``no_result``
    min_sideband_events : fewer events in either sideband (before cuts) flag the window as ``no_result``
    decorrelation : ``"auto"`` (default), ``"quantile"``, ``"ratio"``, ``"copula"``, ``"flow"`` or ``"none"``: the features'
        decorrelation from mjj before the method sees them (:mod:`excess.search.decorrelation`;
        ``decorrelation_params`` go to the transform, except ``fit_on`` and ``heldout_fraction``, which
        say which training events fit it: :class:`~excess.search.decorrelation.Decorrelated`)
    background_model : ``"efficiency"`` (default: inclusive dijet fit x sideband efficiency fit,
        :mod:`excess.stats.efficiency`) or ``"sideband"`` (dijet fit of the selected events)
        or ``"profile"`` (the SR counted, the efficiency profiled from the sidebands, the signal's leakage into
        them modelled by the Gaussian template of ``signal_width``)
        or ``"signal_fit"`` (the efficiency model fitted over the whole window together with a Gaussian
        signal template of width ``signal_width`` x the SR centre; q0 from the fit)
        or ``"dijet_signal"`` (the selected spectrum's dijet function fitted over the whole window together
        with that template, amplitude >= 0; q0 the profile likelihood ratio; for broad signals such as
        semi-visible jets in mT)
        (:class:`~excess.stats.sideband.BackgroundEstimate` implementations of :mod:`excess.stats.sideband`)
    efficiency_degree : degree of the logit-polynomial efficiency fit in ln mjj, ``"auto"`` (default: 0, 1 or 2
        by likelihood-ratio tests in the sidebands; :func:`excess.stats.efficiency.choose_degree`) or
        ``"average"`` (efficiency model: the fits of degree 1 and 2 averaged with Akaike weights, their
        spread added to the uncertainty; :func:`excess.stats.efficiency.efficiency_background`)
    resonant : the column the windows cut on (default ``"mjj"``; e.g. ``"mT"`` for a transverse-mass bump hunt);
        the dijet-type fits, windows and characterisation then act on it

    Returns
    -------
    ScanResult
    """
    t_start = time.perf_counter()
    features = list(features)
    _check_events(events, features, resonant)
    effs = _check_efficiencies(efficiencies)
    _check_counts(n_folds, global_toys, null_toys)
    background = background_estimate(background_model, functions=tuple(fit_functions), test=function_test,
                                     alpha=alpha, min_events=min_selected, degree=efficiency_degree,
                                     signal_width=signal_width)
    m_all = events[resonant].to_numpy(dtype=float)
    windows = _resolve_windows(windows, m_all, window_options)
    base_seed = _base_seed(random_state)

    # method: check it can be built and what it needs, in this process
    proto = build_method(method, method_params)
    if callable(getattr(proto, "fold_groups", None)):
        proto.fold_groups(int(n_folds))  # a bad flow_groups fails now, before any work
    needs_labels, needs_background = method_needs(proto)
    decor, proto = _decorrelated(method, proto, decorrelation, features, decorrelation_params)
    _check_method_inputs(events, background_events, features, needs_labels, needs_background, resonant)
    table = _Table.of(events, features, background_events if needs_background else None, resonant)
    settings = {
        "method": _method_description(method, method_params),
        "decorrelation": {"kind": decor, "params": to_jsonable(decorrelation_params or {})},
        "features": features, "efficiencies": list(effs), "n_folds": int(n_folds), "base_seed": base_seed,
        "fit": {**background.settings(), "characterise": True},
        "min_sideband_events": int(min_sideband_events), "null_toys": int(null_toys),
        "data": {"n": int(len(events)), "mjj_sum": float(np.round(m_all.sum(), 3)),
                 "x_sum": float(np.round(table.X.sum(), 3))},
    }
    if resonant != "mjj":  # the default leaves the settings (and the fingerprints of earlier runs) unchanged
        settings["resonant"] = resonant
    store = ResumeStore(resume_dir)

    # per window: reuse a finished result, flag what cannot be analysed, else plan its units
    collector = _Collector(store, table, effs, background)
    units: list[_Unit] = []
    for w in windows:
        fp = _fingerprint({**settings, "window": w.to_dict()})
        done = store.window(w, fp)
        if done is not None:
            collector.add_finished(done, store.window_scores(w))
            log.info("resume: %s done", w.label)
            continue
        seed = window_seed(base_seed, w)
        reason = precheck_window(w, m_all, n_folds, min_sideband_events)
        if reason:
            collector.add_finished(WindowResult(window=w, status="no_result", reason=reason, seed=seed, fingerprint=fp))
            continue
        collector.expect(w, null_toys)
        units += _units(w, m_all, n_folds, null_toys, seed, fp, store)

    own_executor = executor is None
    if own_executor:
        from ..executor import get_executor

        executor = get_executor(n_workers=n_workers, address=address)
    try:
        _score_units(units, proto, table, needs_labels, executor, collector, store, show_progress)
        window_results = tuple(collector.result(w, len(events)) for w in windows)
        window_results, gsig = with_global_toys(window_results, global_toys, base_seed, background, executor, store)
        if null_toys:
            gsig = permutation_global(window_results, gsig)
    finally:
        if own_executor:
            executor.close()

    result = ScanResult(windows=window_results, global_significance=gsig, config=to_jsonable(settings),
                        n_events=int(len(events)), runtime_s=float(time.perf_counter() - t_start))
    store.save_scan(result)
    return result


def _score_units(units: list[_Unit], method, table: _Table, needs_labels: bool, executor, collector: _Collector,
                 store: ResumeStore, show_progress: bool) -> None:
    """Run the fold jobs of every unit on ``executor``; hand each unit to ``collector`` once all its folds are in."""
    fit_kw = {u.window.key: table.background_in(u.window) for u in units if u.null is None}
    jobs = [(u, ks, job) for u in units for ks, job in u.jobs(method, table, fit_kw[u.window.key], needs_labels)]
    for u in units:
        if u.done:
            collector.finish(u)
    if not jobs:
        return
    bar = progress(total=sum(len(ks) for _, ks, _ in jobs), desc="search folds", disable=None if show_progress else True)
    try:
        for i, outs in executor.map_unordered(run_fold_task, [(job,) for _, _, job in jobs]):
            u, ks, _ = jobs[i]
            for k, out in zip(ks, outs):
                u.folds[k] = out
                store.save_fold(u.key, k, out, u.fingerprint)
                bar.update(1)
            if u.done:
                collector.finish(u)
    finally:
        bar.close()
