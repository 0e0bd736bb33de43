"""The search: windows x folds of anomaly scores, cuts, sideband fits, local and global significance.

:func:`run_scan` is the library entry point (the ``excess search`` command wraps it)::

    from excess.search import run_scan
    result = run_scan(events, method="cwola", efficiencies=(0.1, 0.01, 0.002), n_folds=5,
                      random_state=0, resume_dir="runs/search1")
    print(result.summary())

Procedure, per window (see :mod:`excess.stats.windows`):

1. out-of-fold anomaly scores of every event of the window (:mod:`excess.search.selection`);
   the window x fold fits are independent executor tasks (local processes, or Dask when a
   scheduler ``address`` / ``distributed.Client`` is given);
2. for each efficiency, a per-fold threshold keeping that fraction of the sideband events;
3. the mjj histogram of the selected events, a binned Poisson fit of the sidebands with the
   3- or 4-parameter dijet function (:func:`excess.stats.fit.fit_background`), the SR
   prediction with its uncertainty from the fit covariance;
4. local significance from the profile likelihood ratio with the prediction as a constrained
   nuisance (:func:`excess.stats.significance.local_significance`);
5. characterisation (resonance mass, mX / mY peaks, R-ANODE's signal fraction).

Then the global significance: background-only pseudo-experiments of every window's selected
spectra (nested across efficiencies, independent across windows, which is conservative),
refitted like the data; the largest local Z of each pseudo-scan gives the look-elsewhere
correction. The same toys give a toy-based local p-value for each cut (``p_toys``).

Sensitivity at the frontier (issue 22): ``decorrelation`` (default ``"auto"``: the conditional
quantile transform for SR-vs-SB classifiers such as CWoLa, none for the conditional-density
methods; :mod:`excess.search.decorrelation`) keeps the cut from sculpting mjj, and
``background_model="efficiency"`` (default) predicts the selected SR background as the inclusive
dijet fit times the selection efficiency fitted in the sidebands (:mod:`excess.stats.efficiency`),
which stays honest when some sculpting remains and keeps its precision at tight cuts;
``background_model="sideband"`` is the fit of the selected spectrum alone. The default grid of
efficiencies reaches 1e-4; a cut with fewer than ``min_selected`` selected sideband events has no
result, and the global toys cover every cut that has one.

Results are saved per window (atomically) under ``resume_dir``; a rerun with the same settings
skips finished windows and folds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util import atomic_path, atomic_write_json, check_random_state, get_logger, progress, to_jsonable
from ..errors import ConfigError, ExcessError, FitError, InputError
from ..stats.efficiency import (efficiency_background, efficiency_pseudo_experiment_z, fit_signal,
                                signal_fit_pseudo_experiment_z)
from ..stats.fit import fit_background
from ..stats.significance import (LocalSignificance, global_significance, local_significance, p_to_z,
                                  pseudo_experiment_z, z_to_p)
from ..stats.windows import Window, default_data_range, sliding_windows, validate_windows
from .characterise import characterise
from .results import STATUS_OK, CutResult, ScanResult, WindowResult
from .decorrelation import Decorrelated, make_transform, resolve_decorrelation
from .selection import build_method, fit_score_fold, fold_ids, fold_thresholds, method_needs, select

__all__ = ["run_scan", "analyse_window", "DEFAULT_EFFICIENCIES", "DEFAULT_FEATURES"]

log = get_logger(__name__)

DEFAULT_EFFICIENCIES = (0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4)
BACKGROUND_MODELS = ("efficiency", "signal_fit", "sideband")
DEFAULT_FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
_POOR_FIT_P = 0.01


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _check_events(events: pd.DataFrame, features: Sequence[str]) -> None:
    if not isinstance(events, pd.DataFrame):
        raise InputError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    missing = [c for c in ("mjj", *features) if c not in events.columns]
    if missing:
        raise InputError(f"events lack columns {missing}; have {list(events.columns)[:20]}")
    if len(events) == 0:
        raise InputError("no events")
    bad = ~np.isfinite(events[["mjj", *features]].to_numpy(dtype=float))
    if bad.any():
        raise InputError(f"{int(bad.any(axis=1).sum())} events have NaN/inf in mjj or the features; drop them first")


def _check_efficiencies(efficiencies) -> tuple[float, ...]:
    effs = tuple(sorted({float(e) for e in efficiencies}, reverse=True))
    if not effs:
        raise ConfigError("need at least one efficiency")
    for e in effs:
        if not 0 < e <= 1:
            raise ConfigError(f"efficiencies must be in (0, 1], got {e}")
    return effs


def _window_seed(base: int, window: Window) -> int:
    """Deterministic per-window seed (stable across reruns and window lists)."""
    ss = np.random.SeedSequence([int(base), zlib.crc32(window.key.encode())])
    return int(ss.generate_state(1)[0] % (2**31 - 1))


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(to_jsonable(payload), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _method_description(method, params) -> dict:
    if isinstance(method, str):
        return {"name": method, "params": to_jsonable(params or {})}
    return {"name": getattr(method, "name", type(method).__name__), "instance": repr(method)}


def _load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------
# one window, after its scores exist
# ----------------------------------------------------------------------------------------------
def _analyse_cut(efficiency, selected, m, in_sr, window, jets, fit_options, thresholds, inclusive=None) -> CutResult:
    edges = window.edges()
    mask = window.sideband_bins()
    sel_sr, sel_sb = selected & in_sr, selected & ~in_sr
    n_sr, n_sb = int(sel_sr.sum()), int(sel_sb.sum())
    base = dict(efficiency=float(efficiency), thresholds=tuple(np.asarray(thresholds, float).tolist()),
                n_selected_sr=n_sr, n_selected_sb=n_sb)
    min_sel = fit_options["min_selected"]
    if n_sb < min_sel:
        return CutResult(status="no_result", reason=f"too few selected sideband events: {n_sb} < {min_sel}", **base)
    counts = np.histogram(m[selected], edges)[0]
    bg = sfit = None
    model = fit_options.get("background_model", "sideband")
    try:
        if model in ("efficiency", "signal_fit"):
            if isinstance(inclusive, FitError) or inclusive is None:
                raise FitError(f"inclusive sideband fit failed: {inclusive}")
            incl_counts, incl_fit, incl_choice = inclusive
            bg = efficiency_background(edges, counts, incl_counts, window.sr, fit_mask=mask,
                                       degree=fit_options["efficiency_degree"], inclusive_fit=incl_fit,
                                       inclusive_choice=incl_choice, min_selected=min_sel)
            fit = choice = None
            b_hat, sigma_b = bg.b_hat, bg.sigma_b
            if model == "signal_fit":
                sfit = fit_signal(edges, counts, incl_counts, window.sr, degree=fit_options["efficiency_degree"],
                                  relative_width=fit_options["signal_width"], min_selected=min_sel)
                b_hat, sigma_b = sfit.b_hat, sfit.sigma_b
        else:
            fit, choice = fit_background(
                edges, counts, fit_mask=mask, functions=fit_options["functions"], test=fit_options["test"],
                alpha=fit_options["alpha"], min_events=min_sel,
            )
            b_hat, sigma_b = fit.integral(*window.sr)
        sig = local_significance(n_sr, b_hat, sigma_b) if sfit is None else _signal_fit_significance(sfit)
    except FitError as exc:
        return CutResult(status="fit_failed", reason=str(exc), **base)
    warnings = []
    if bg is not None:
        ef = bg.efficiency_fit
        if ef.ndf > 0 and ef.p_value < _POOR_FIT_P:
            warnings.append(f"poor sideband efficiency fit: p = {ef.p_value:.2g} (deviance {ef.deviance:.1f}/{ef.ndf})")
        if ef.p_flat < _POOR_FIT_P:
            warnings.append(f"the cut sculpts mjj: efficiency slope {ef.z_slope:.1f} sigma (p_flat = {ef.p_flat:.2g}); "
                            "absorbed by the efficiency model, but check the decorrelation")
    elif fit.p_value < _POOR_FIT_P:
        warnings.append(
            f"poor sideband fit: p = {fit.p_value:.2g} (chi2/ndf = {fit.chi2_ndf:.2f}); the background model may be "
            "inadequate or the cut sculpts mjj"
        )
    if sigma_b > 0.5 * b_hat:
        warnings.append(f"background prediction very uncertain: {b_hat:.3g} +- {sigma_b:.2g}")
    if n_sr < 10 or b_hat < 10:
        warnings.append(f"few SR events (n = {n_sr}, b = {b_hat:.3g}): asymptotic Z approximate, see p_toys")
    ch = None
    if fit_options["characterise"]:
        jets_sr = jets_sb = None
        if jets:
            jets_sr = {k: v[sel_sr] for k, v in jets.items()}
            jets_sb = {k: v[sel_sb] for k, v in jets.items()}
        ch = characterise(fit if bg is None else bg, window.sr, b_hat, jets_sr, jets_sb)
    return CutResult(status=STATUS_OK, fit=fit, choice=choice, significance=sig, characterisation=ch,
                     warnings=tuple(warnings), background=bg, signal_fit=sfit, **base)


def _signal_fit_significance(sf) -> LocalSignificance:
    """The signal-plus-background fit's q0 in the shape of a counting-experiment result."""
    z = sf.z
    p = float(z_to_p(z)) if sf.q0 > 0 else 0.5
    return LocalSignificance(n_obs=sf.n_sr, b_hat=sf.b_hat, sigma_b=sf.sigma_b, s_hat=max(sf.s_hat, 0.0),
                             b_profiled=float("nan"), q0=sf.q0, z=z, p_value=p, z_asymptotic=z, p_asymptotic=p,
                             z_signed=sf.z_signed, p_signed=float(z_to_p(sf.z_signed)), method="signal_fit")


def _inclusive_fit(m, window: Window, fo: dict):
    """(counts, fit, choice) of the window's inclusive spectrum in the sidebands, or the FitError."""
    counts = np.histogram(m, window.edges())[0]
    try:
        fit, choice = fit_background(window.edges(), counts, fit_mask=window.sideband_bins(), functions=fo["functions"],
                                     test=fo["test"], alpha=fo["alpha"], min_events=fo["min_selected"])
    except FitError as exc:
        return exc
    return counts, fit, choice


def analyse_window(window: Window, m, scores, fold, *, efficiencies, jets=None, labels=None,
                   fit_options=None, extras=None, seed=None, runtime_s=0.0, fingerprint="") -> WindowResult:
    """Cuts, fits, significance and characterisation of one window from out-of-fold scores.

    ``m``, ``scores``, ``fold``, ``jets`` (dict of arrays) and ``labels`` are per event *of the window*.
    """
    fo = _fit_options(fit_options)
    m = np.asarray(m, float)
    scores = np.asarray(scores, float)
    _, in_sr, in_sb = window.masks(m)
    inclusive = _inclusive_fit(m, window, fo) if fo["background_model"] in ("efficiency", "signal_fit") else None
    tests = []
    for eps in efficiencies:
        thr = fold_thresholds(scores, fold, in_sb, eps)
        tests.append(_analyse_cut(eps, select(scores, fold, thr), m, in_sr, window, jets, fo, thr, inclusive))
    baseline = _analyse_cut(1.0, np.ones(m.size, bool), m, in_sr, window, None,
                            {**fo, "characterise": False, "background_model": "sideband"},
                            [-np.inf] * (int(fold.max()) + 1))
    max_sic = sic = None
    if labels is not None:
        y = np.asarray(labels)[in_sr]
        keep = (y == 0) | (y == 1)
        if keep.any() and np.unique(y[keep]).size == 2:
            try:
                from ..stats.roc import sic_curve

                c = sic_curve(y[keep].astype(int), scores[in_sr][keep])
                max_sic = float(c.max_sic)
                valid = np.asarray(c.valid)
                idx = np.unique(np.linspace(0, c.tpr.size - 1, 200).astype(int))
                sic = {"tpr": c.tpr[idx].tolist(), "fpr": c.fpr[idx].tolist(), "sic": c.sic[idx].tolist(),
                       "valid": valid[idx].tolist(), "fpr_min": float(c.fpr_min), "n_bkg": int(c.n_bkg),
                       "n_sig": int(c.n_sig)}
            except (ImportError, ExcessError, AttributeError) as exc:  # roc module absent or degenerate labels
                log.info("no SIC for %s: %s", window.label, exc)
    w = w_err = None
    if extras:
        ws = [e["w_"] for e in extras if "w_" in e]
        we = [e["w_err_"] for e in extras if "w_err_" in e]
        if ws:
            w = float(np.mean(ws))
            # folds share most training events: their errors are not independent; quote the mean error
            w_err = float(np.mean(we)) if we else float(np.std(ws, ddof=1)) if len(ws) > 1 else None
    n_sr, n_sb = int(in_sr.sum()), int(in_sb.sum())
    any_ok = any(t.ok for t in tests)
    status = STATUS_OK if any_ok else "no_result"
    reason = "" if any_ok else "; ".join(sorted({f"eff {t.efficiency:g}: {t.reason}" for t in tests}))
    return WindowResult(window=window, status=status, reason=reason, n_events=int(m.size), n_sr=n_sr, n_sb=n_sb,
                        seed=seed, n_folds=int(fold.max()) + 1, tests=tuple(tests), baseline=baseline,
                        max_sic=max_sic, sic=sic, signal_fraction=w, signal_fraction_err=w_err,
                        runtime_s=float(runtime_s), fingerprint=fingerprint)


def _fit_options(fo: dict | None) -> dict:
    out = {"functions": (3, 4), "test": "lrt", "alpha": 0.05, "min_selected": 20, "characterise": True,
           "background_model": "efficiency", "efficiency_degree": "auto", "signal_width": 0.04}
    out.update(fo or {})
    return out


def _precheck_window(window: Window, m_all: np.ndarray, n_folds: int, min_sideband_events: int) -> str:
    """Reason why a window cannot be analysed, or '' if it can."""
    lo, hi = float(m_all.min()), float(m_all.max())
    if window.sb_lo < lo or window.sb_hi > hi:
        return (f"window {window.sb_lo:.0f}-{window.sb_hi:.0f} GeV extends beyond the data range {lo:.0f}-{hi:.0f} GeV "
                "(sidebands partly empty)")
    _, in_sr, _ = window.masks(m_all)
    n_lo = int(((m_all >= window.sb_lo) & (m_all < window.sr_lo)).sum())
    n_hi = int(((m_all >= window.sr_hi) & (m_all < window.sb_hi)).sum())
    if n_lo < min_sideband_events or n_hi < min_sideband_events:
        return f"empty sideband: {n_lo} events below and {n_hi} above the SR, need >= {min_sideband_events} each"
    if int(in_sr.sum()) < n_folds:
        return f"only {int(in_sr.sum())} SR events for {n_folds} folds"
    return ""


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
    efficiencies : background (sideband) efficiencies of the score cuts
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
    decorrelation : ``"auto"`` (default), ``"quantile"``, ``"ratio"`` or ``"none"``: the features'
        decorrelation from mjj before the method sees them (:mod:`excess.search.decorrelation`;
        ``decorrelation_params`` go to the transform)
    background_model : ``"efficiency"`` (default: inclusive dijet fit x sideband efficiency fit,
        :mod:`excess.stats.efficiency`) or ``"sideband"`` (dijet fit of the selected events)
        or ``"signal_fit"`` (the efficiency model fitted over the whole window together with a Gaussian
        signal template of width ``signal_width`` x the SR centre; q0 from the fit)
    efficiency_degree : degree of the logit-polynomial efficiency fit in ln mjj, or ``"auto"`` (default:
        0 or 1, by a likelihood-ratio test in the sidebands; :func:`excess.stats.efficiency.choose_degree`)

    Returns
    -------
    ScanResult
    """
    t_start = time.perf_counter()
    features = list(features)
    _check_events(events, features)
    effs = _check_efficiencies(efficiencies)
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if global_toys < 0 or null_toys < 0:
        raise ConfigError(f"global_toys and null_toys must be >= 0, got {global_toys}, {null_toys}")
    if background_model not in BACKGROUND_MODELS:
        raise ConfigError(f"background_model must be one of {BACKGROUND_MODELS}, got {background_model!r}")
    fit_options = _fit_options({"functions": tuple(fit_functions), "test": function_test, "alpha": alpha,
                                "min_selected": int(min_selected), "background_model": background_model,
                                "efficiency_degree": efficiency_degree if efficiency_degree == "auto" else int(efficiency_degree),
                                "signal_width": float(signal_width)})
    # validate the fit options once, loudly, before any expensive work
    if function_test not in ("lrt", "f-test"):
        raise ConfigError(f"function_test must be 'lrt' or 'f-test', got {function_test!r}")
    if any(int(f) not in (3, 4) for f in fit_functions) or not fit_functions:
        raise ConfigError(f"fit_functions must be a subset of (3, 4), got {fit_functions}")

    m_all = events["mjj"].to_numpy(dtype=float)
    if windows is None:
        wo = dict(window_options or {})
        bw = float(wo.get("bin_width", 50.0))
        windows = sliding_windows(data_range=default_data_range(m_all, bin_width=bw), **wo)
    windows = validate_windows(windows, m_all)

    rng = check_random_state(random_state)
    base_seed = int(rng.integers(0, 2**31 - 1)) if not isinstance(random_state, (int, np.integer)) else int(random_state)

    # method: check it can be built and what it needs, in this process
    proto = build_method(method, method_params)
    needs_labels, needs_background = method_needs(proto)
    method_desc = _method_description(method, method_params)
    decor = resolve_decorrelation(decorrelation, method if isinstance(method, str) else proto)
    if decor != "none":
        make_transform(decor, features, decorrelation_params)  # fail early on a bad transform
        method, method_params = Decorrelated(proto, transform=decor, features=tuple(features),
                                             transform_params=decorrelation_params), None
    has_labels = "label" in events.columns
    if needs_labels:
        if not has_labels:
            raise ConfigError("the method needs truth labels, but events have no 'label' column")
        if not np.isin(events["label"].to_numpy(), (0, 1)).all():
            raise InputError("the method needs labels 0/1 for every event; some are unknown (-1)")
    if needs_background:
        if background_events is None:
            raise ConfigError("the method needs a separate background sample: pass background_events=")
        _check_events(background_events, features)

    X_all = events[features].to_numpy(dtype=np.float64)
    jet_cols = [c for c in ("mj1", "mj2") if c in events.columns]
    labels_all = events["label"].to_numpy() if has_labels else None
    settings = {
        "method": method_desc, "decorrelation": {"kind": decor, "params": to_jsonable(decorrelation_params or {})},
        "features": features, "efficiencies": list(effs),
        "n_folds": int(n_folds), "base_seed": base_seed, "fit": {k: v for k, v in fit_options.items()},
        "min_sideband_events": int(min_sideband_events), "null_toys": int(null_toys),
        "data": {"n": int(len(events)), "mjj_sum": float(np.round(m_all.sum(), 3)),
                 "x_sum": float(np.round(X_all.sum(), 3))},
    }

    resume = Path(resume_dir) if resume_dir is not None else None
    if resume is not None:
        (resume / "windows").mkdir(parents=True, exist_ok=True)
        (resume / "folds").mkdir(parents=True, exist_ok=True)

    # ---- per-window preparation, resume ---------------------------------------------------------
    results: dict[str, WindowResult] = {}
    prepared: dict[str, dict] = {}
    pending: dict[str, dict] = {}
    window_scores: dict[str, tuple] = {}
    tasks, task_keys = [], []
    for w in windows:
        fp = _fingerprint({**settings, "window": w.to_dict()})
        if resume is not None:
            d = _load_json(resume / "windows" / f"{w.key}.json")
            if d is not None and d.get("fingerprint") == fp:
                results[w.key] = WindowResult.from_dict(d)
                sp = resume / "windows" / f"{w.key}.scores.npz"
                if sp.is_file():
                    with np.load(sp, allow_pickle=False) as z:
                        window_scores[w.key] = (z["idx"], z["scores"])
                log.info("resume: %s done", w.label)
                continue
        seed = _window_seed(base_seed, w)
        reason = _precheck_window(w, m_all, n_folds, min_sideband_events)
        if reason:
            results[w.key] = WindowResult(window=w, status="no_result", reason=reason, seed=seed, fingerprint=fp)
            continue
        in_win, in_sr, _ = w.masks(m_all)
        idx = np.nonzero(in_win)[0]
        wrng = np.random.default_rng(seed)
        X, m_win = X_all[idx], m_all[idx]
        fit_kw_all: dict = {}
        if needs_background:
            mb = background_events["mjj"].to_numpy(dtype=float)
            bmask = (mb >= w.sb_lo) & (mb < w.sb_hi)
            fit_kw_all = {"X_background": background_events[features].to_numpy(np.float64)[bmask], "m_background": mb[bmask]}
        pending[w.key] = {"null_z": [None] * null_toys}
        # the real window, then null_toys pseudo-windows with mjj permuted among the window's events
        for t in [None, *range(null_toys)]:
            m = m_win if t is None else m_win[wrng.permutation(m_win.size)]
            fold = fold_ids(w.masks(m)[1], n_folds, wrng)
            fold_seeds = [int(s) for s in wrng.integers(0, 2**31 - 1, size=n_folds)]
            pkey = w.key if t is None else f"{w.key}_null{t}"
            prepared[pkey] = {"window": w, "idx": idx, "m": m, "fold": fold, "seed": seed, "fp": fp, "null": t,
                              "parent": w.key, "scores": np.full(idx.size, np.nan), "extras": [None] * n_folds,
                              "done": [False] * n_folds, "fold_runtime": 0.0}
            for k in range(n_folds):
                fpath = None if resume is None else resume / "folds" / f"{pkey}_f{k}.npz"
                if fpath is not None and fpath.is_file():
                    with np.load(fpath, allow_pickle=False) as z:
                        if str(z["fingerprint"]) == fp:
                            prepared[pkey]["scores"][fold == k] = z["scores"]
                            prepared[pkey]["extras"][k] = json.loads(str(z["extras"]))
                            prepared[pkey]["done"][k] = True
                            continue
                tr, te = fold != k, fold == k
                kw = dict(fit_kw_all)
                if needs_labels:
                    kw["y"] = labels_all[idx][tr].astype(np.int8)
                tasks.append((method, method_params, fold_seeds[k], X[tr], m[tr], X[te], m[te], w.sr, kw))
                task_keys.append((pkey, k))

    # ---- run the fold tasks ---------------------------------------------------------------------
    own_executor = executor is None
    if own_executor:
        from ..executor import get_executor

        executor = get_executor(n_workers=n_workers, address=address)
    try:
        def _complete(parent: str) -> None:
            """Attach the null-toy p-values once the window and its pseudo-windows are done; save."""
            pend = pending[parent]
            if "real" not in pend or any(z is None for z in pend["null_z"]):
                return
            res = pend.pop("real")
            if null_toys:
                res = _attach_null(res, np.array(pend["null_z"], dtype=float))
            results[parent] = res
            if resume is not None:
                atomic_write_json(resume / "windows" / f"{res.window.key}.json", res.to_dict())

        def _finish(pkey: str) -> None:
            p = prepared[pkey]
            w, idx = p["window"], p["idx"]
            real = p["null"] is None
            jets = {c: events[c].to_numpy(dtype=float)[idx] for c in jet_cols} if real else {}
            res = analyse_window(
                w, p["m"], p["scores"], p["fold"], efficiencies=effs, jets=jets or None,
                labels=None if (labels_all is None or not real) else labels_all[idx],
                fit_options=fit_options if real else {**fit_options, "characterise": False},
                extras=[e for e in p["extras"] if e], seed=p["seed"], runtime_s=p["fold_runtime"],
                fingerprint=p["fp"],
            )
            if real:
                pending[p["parent"]]["real"] = res
                window_scores[w.key] = (idx, p["scores"].astype(np.float32))
                if resume is not None:
                    with atomic_path(resume / "windows" / f"{w.key}.scores.npz", suffix=".npz") as tmp:
                        np.savez(tmp, idx=idx, scores=p["scores"].astype(np.float32), fingerprint=p["fp"])
            else:
                pending[p["parent"]]["null_z"][p["null"]] = [t.z for t in res.tests]
            p["scores"] = None  # free memory
            _complete(p["parent"])

        for key, p in list(prepared.items()):
            if all(p["done"]):
                _finish(key)
        if tasks:
            bar = progress(total=len(tasks), desc="search folds", disable=None if show_progress else True)
            try:
                for i, out in executor.map_unordered(fit_score_fold, tasks):
                    key, k = task_keys[i]
                    p = prepared[key]
                    p["scores"][p["fold"] == k] = out["scores"]
                    p["extras"][k] = out["extras"]
                    p["done"][k] = True
                    p["fold_runtime"] += float(out["runtime_s"])
                    if resume is not None:
                        with atomic_path(resume / "folds" / f"{key}_f{k}.npz", suffix=".npz") as tmp:
                            np.savez(tmp, scores=out["scores"], extras=json.dumps(out["extras"]), fingerprint=p["fp"])
                    bar.update(1)
                    if all(p["done"]):
                        _finish(key)
            finally:
                bar.close()

        window_results = tuple(_with_scores(results[w.key], window_scores.get(w.key), len(events)) for w in windows)
        window_results, gsig = _global(window_results, global_toys, base_seed, fit_options, executor, resume)
        if null_toys:
            gsig = _global_null(window_results, null_toys, gsig)
    finally:
        if own_executor:
            executor.close()

    result = ScanResult(windows=window_results, global_significance=gsig, config=to_jsonable(settings),
                        n_events=int(len(events)), runtime_s=float(time.perf_counter() - t_start))
    if resume is not None:
        result.save(resume / "scan.json")
    return result


def _window_toy_task(edges, expected, mask, sr, n_toys, seed, fit_kw, efficiency=None, signal=None):
    """Executor task: background-only pseudo-experiments of one window's selected spectra.

    ``efficiency``: ``(inclusive_expected, eps per cut and bin, degree, min_selected)`` for the
    efficiency background model (then ``expected`` is unused)."""
    if signal is not None:
        n_incl, eps, degree, width, min_sel = signal
        return signal_fit_pseudo_experiment_z(edges, n_incl, eps, sr, n_toys=n_toys, degree=degree,
                                              relative_width=width, random_state=seed, min_selected=min_sel)
    if efficiency is not None:
        incl, eps, degree, min_sel = efficiency
        return efficiency_pseudo_experiment_z(edges, incl, eps, mask, sr, n_toys=n_toys, degree=degree,
                                              random_state=seed, fit_kw=fit_kw, min_selected=min_sel)
    return pseudo_experiment_z(edges, expected, mask, sr, n_toys=n_toys, random_state=seed, nested=True, fit_kw=fit_kw)


def _global(window_results, n_toys, base_seed, fit_options, executor, resume):
    """Global significance (pseudo-experiments through the executor) and per-cut toy p-values."""
    ok_pairs = [(w, t) for w in window_results for t in w.tests if t.ok]
    if not ok_pairs:
        log.warning("no window of the scan has a result")
        return window_results, None
    z_obs = max(t.z for _, t in ok_pairs)
    if n_toys == 0:
        return window_results, global_significance(z_obs, len(ok_pairs))
    fit_kw = {"functions": fit_options["functions"], "test": fit_options["test"], "alpha": fit_options["alpha"],
              "min_events": fit_options["min_selected"]}
    jobs, owners, cached = [], [], {}
    for w in window_results:
        ok = [t for t in w.tests if t.ok]
        if not ok:
            continue
        seed = _window_seed(base_seed + 1, w.window)
        path = None if resume is None else resume / "windows" / f"{w.window.key}.toys{n_toys}.npz"
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) == w.fingerprint:
                    cached[w.window.key] = z["z"]
                    continue
        eff_model = sig_model = None
        if ok[0].signal_fit is not None:
            e = w.window.edges()
            cen = 0.5 * (e[1:] + e[:-1])
            sig_model = (np.asarray(ok[0].background.efficiency_fit.n_inclusive),
                         np.stack([t.signal_fit.null_fit.efficiency(cen) for t in ok]), fit_options["efficiency_degree"],
                         fit_options["signal_width"], fit_options["min_selected"])
            expected = None
        elif ok[0].background is not None:
            bgs = [t.background for t in ok]
            e = w.window.edges()
            cen = 0.5 * (e[1:] + e[:-1])
            eff_model = (np.asarray(bgs[0].inclusive_fit.expected), np.stack([b.efficiency_fit.efficiency(cen) for b in bgs]),
                         fit_options["efficiency_degree"], fit_options["min_selected"])
            expected = None
        else:
            expected = np.stack([np.asarray(t.fit.expected) for t in ok])
        jobs.append((w.window.edges(), expected, w.window.sideband_bins(), w.window.sr, n_toys, seed, fit_kw, eff_model,
                     sig_model))
        owners.append(w)
    toy_z = dict(cached)
    if jobs:
        for i, z in executor.map_unordered(_window_toy_task, jobs):
            w = owners[i]
            toy_z[w.window.key] = z
            if resume is not None:
                with atomic_path(resume / "windows" / f"{w.window.key}.toys{n_toys}.npz", suffix=".npz") as tmp:
                    np.savez(tmp, z=z, fingerprint=w.fingerprint)
    all_z = np.full((n_toys, len(ok_pairs)), np.nan)
    col = 0
    new_windows = []
    for w in window_results:
        ok = [t for t in w.tests if t.ok]
        if not ok:
            new_windows.append(w)
            continue
        z = toy_z[w.window.key]
        all_z[:, col:col + len(ok)] = z
        col += len(ok)
        new_tests, j = [], 0
        for t in w.tests:
            if t.ok:
                zt = z[:, j]
                zt = zt[np.isfinite(zt)]
                j += 1
                if zt.size:
                    k = int(np.sum(zt >= t.z - 1e-12))
                    p = (k + 1) / (zt.size + 1) if t.z > 0 else 0.5
                    t = dataclasses.replace(t, p_toys=float(p), z_toys=float(max(p_to_z(p), 0.0)), n_toys=int(zt.size))
            new_tests.append(t)
        new_windows.append(dataclasses.replace(w, tests=tuple(new_tests)))
    with np.errstate(all="ignore"):
        finite = np.isfinite(all_z).any(axis=1)
        toy_max = np.where(finite, np.nanmax(np.where(np.isfinite(all_z), all_z, -np.inf), axis=1), np.nan)
    g = global_significance(z_obs, len(ok_pairs), toy_max[finite], n_toys_failed=int((~finite).sum()))
    return tuple(new_windows), g


def _attach_null(res: WindowResult, null_z: np.ndarray) -> WindowResult:
    """Per-cut p-values from the permutation pseudo-windows (``null_z``: (n_null, n_eff))."""
    tests = []
    for j, t in enumerate(res.tests):
        if t.ok:
            zall = null_z[:, j]
            z = zall[np.isfinite(zall)]
            if z.size:
                k = int(np.sum(z >= t.z - 1e-12))
                p = (k + 1) / (z.size + 1) if t.z > 0 else 0.5
                t = dataclasses.replace(t, p_null=float(p), z_null=float(max(p_to_z(p), 0.0)), n_null=int(z.size),
                                        null_z=tuple(np.round(zall, 6).tolist()))
        tests.append(t)
    return dataclasses.replace(res, tests=tuple(tests))


def _global_null(window_results, n_null: int, gsig):
    """Global significance from the permutation pseudo-scans: the largest Z over all cuts of all
    windows of pseudo-scan t (windows permuted independently: conservative)."""
    if gsig is None:
        return None
    cols = []
    for w in window_results:
        for t in w.tests:
            if t.ok and t.n_null:
                cols.append(np.asarray(t.null_z, dtype=float))
    if not cols:
        return gsig
    allz = np.stack(cols, axis=1)
    finite = np.isfinite(allz).any(axis=1)
    tmax = np.nanmax(np.where(np.isfinite(allz), allz, -np.inf), axis=1)[finite]
    g = global_significance(gsig.max_local_z, gsig.n_tests, tmax, n_toys_failed=int((~finite).sum()))
    return dataclasses.replace(g, method="permutation")


def _with_scores(res: WindowResult, idx_scores, n: int) -> WindowResult:
    if idx_scores is None:
        return res
    full = np.full(n, np.nan, dtype=np.float32)
    full[idx_scores[0]] = idx_scores[1]
    return dataclasses.replace(res, scores=full)
