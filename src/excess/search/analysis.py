"""One window, once its out-of-fold scores exist: cuts, background tests, characterisation, SIC.

:func:`analyse_window` turns the scores of a window's events into a :class:`WindowResult`: for each
background efficiency a per-fold score cut (:mod:`excess.search.selection`), the background test
of the selected events (by default the dijet sideband fit, :func:`excess.stats.sideband.sideband_test`;
any :class:`~excess.stats.sideband.BackgroundEstimate` can stand in, e.g. the efficiency model,
bound once per window to its inclusive fit), the characterisation of the
excess, the SIC where truth labels exist, and the signal fraction a method estimated (R-ANODE).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from .._util import get_logger
from ..errors import ExcessError
from ..stats.sideband import BackgroundEstimate, SidebandFit
from ..stats.windows import Window
from .characterise import characterise
from .results import STATUS_OK, CutResult, WindowResult
from .selection import fold_thresholds, select

__all__ = ["analyse_window", "precheck_window", "window_seed"]

log = get_logger(__name__)


def window_seed(base: int, window: Window) -> int:
    """Deterministic per-window seed (stable across reruns and window lists)."""
    ss = np.random.SeedSequence([int(base), zlib.crc32(window.key.encode())])
    return int(ss.generate_state(1)[0] % (2**31 - 1))


def precheck_window(window: Window, m_all: np.ndarray, n_folds: int, min_sideband_events: int) -> str:
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


def _cut(efficiency, selected, m, window, background, thresholds, jets) -> CutResult:
    """The background test of one selection; characterised when ``jets`` is not None."""
    test = background(m[selected], window)
    ch = None
    if test.ok and jets is not None:
        _, in_sr, _ = window.masks(m)
        sel_sr, sel_sb = selected & in_sr, selected & ~in_sr
        jets_sr = {k: v[sel_sr] for k, v in jets.items()} if jets else None
        jets_sb = {k: v[sel_sb] for k, v in jets.items()} if jets else None
        ch = characterise(test.prediction, window.sr, test.b_hat, jets_sr, jets_sb)
    return CutResult.from_test(efficiency, thresholds, test, ch)


def _sic(labels, scores, in_sr, label: str) -> tuple[float | None, dict | None]:
    """Max SIC and a thinned SIC curve of the SR events, where both truth classes are present."""
    y = np.asarray(labels)[in_sr]
    keep = (y == 0) | (y == 1)
    if not (keep.any() and np.unique(y[keep]).size == 2):
        return None, None
    from ..stats.roc import sic_curve

    try:
        c = sic_curve(y[keep].astype(int), scores[in_sr][keep])
    except ExcessError as exc:  # degenerate labels or scores
        log.info("no SIC for %s: %s", label, exc)
        return None, None
    valid = np.asarray(c.valid)
    idx = np.unique(np.linspace(0, c.tpr.size - 1, 200).astype(int))
    return float(c.max_sic), {"tpr": c.tpr[idx].tolist(), "fpr": c.fpr[idx].tolist(), "sic": c.sic[idx].tolist(),
                              "valid": valid[idx].tolist(), "fpr_min": float(c.fpr_min), "n_bkg": int(c.n_bkg),
                              "n_sig": int(c.n_sig)}


def _signal_fraction(folds) -> tuple[float | None, float | None]:
    """Mean of the folds' signal-fraction estimates; folds share most training events, so their errors
    are not independent: the mean error is quoted (the spread when the method gives none)."""
    ws = [f.signal_fraction for f in folds if f is not None and f.signal_fraction is not None]
    we = [f.signal_fraction_err for f in folds if f is not None and f.signal_fraction_err is not None]
    if not ws:
        return None, None
    w_err = float(np.mean(we)) if we else float(np.std(ws, ddof=1)) if len(ws) > 1 else None
    return float(np.mean(ws)), w_err


def analyse_window(window: Window, m, scores, fold, *, efficiencies: Sequence[float], jets=None, labels=None,
                   background: BackgroundEstimate | None = None, characterise_cuts: bool = True,
                   folds: Sequence = (), seed=None, runtime_s=0.0, fingerprint="") -> WindowResult:
    """Cuts, background tests, significance and characterisation of one window from out-of-fold scores.

    ``m``, ``scores``, ``fold`` (fold id), ``jets`` (dict of arrays, e.g. ``mj1``/``mj2``) and
    ``labels`` are per event *of the window*. ``background``: the background estimate of a selection
    (default :class:`~excess.stats.sideband.SidebandFit`). ``folds``: the folds'
    :class:`~excess.anomaly.base.FoldScores` (for the signal fraction some methods estimate).
    """
    background = background if background is not None else SidebandFit()
    m = np.asarray(m, float)
    # the uncut spectrum is tested with the dijet sideband fit (an efficiency of 1 has no efficiency to fit)
    uncut = background.sideband() if isinstance(background, SidebandFit) else background
    if hasattr(background, "bind"):  # what the window's selections share (the inclusive fit), computed once
        background = background.bind(m, window)
    scores = np.asarray(scores, float)
    _, in_sr, in_sb = window.masks(m)
    n_folds = int(fold.max()) + 1
    jets = (jets or {}) if characterise_cuts else None
    tests = []
    for eps in efficiencies:
        thr = fold_thresholds(scores, fold, in_sb, eps)
        tests.append(_cut(eps, select(scores, fold, thr), m, window, background, thr, jets))
    baseline = _cut(1.0, np.ones(m.size, bool), m, window, uncut, [-np.inf] * n_folds, None)
    max_sic, sic = _sic(labels, scores, in_sr, window.label) if labels is not None else (None, None)
    w, w_err = _signal_fraction(folds)
    any_ok = any(t.ok for t in tests)
    status = STATUS_OK if any_ok else "no_result"
    reason = "" if any_ok else "; ".join(sorted({f"eff {t.efficiency:g}: {t.reason}" for t in tests}))
    return WindowResult(window=window, status=status, reason=reason, n_events=int(m.size), n_sr=int(in_sr.sum()),
                        n_sb=int(in_sb.sum()), seed=seed, n_folds=n_folds, tests=tuple(tests), baseline=baseline,
                        max_sic=max_sic, sic=sic, signal_fraction=w, signal_fraction_err=w_err,
                        runtime_s=float(runtime_s), fingerprint=fingerprint)
