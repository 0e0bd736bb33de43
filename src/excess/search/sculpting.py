"""Is there anything left for a SR-vs-SB classifier to learn? A direct check of residual sculpting.

A cut on a classifier of SR vs SB events (CWoLa) sculpts the selected mjj spectrum exactly when the
background's features, after decorrelation, still differ between the SR and the sidebands. On events
known to be background (simulation, or data far from any expected signal) :func:`sculpting_check`
measures that directly, the way the scan would meet it:

1. the window's events are split into ``n_folds`` folds (stratified by SR / SB, as the scan does);
   for each fold the decorrelation is fitted and a SR-vs-SB classifier trained on the other folds
   (the scan's own :class:`~excess.search.decorrelation.Decorrelated` wrapper around the method, so
   ``fit_on`` and every transform option behave as in :func:`~excess.search.run_scan`), and the fold
   is scored;
2. **AUC** of the out-of-fold scores, SR vs SB: 0.5 when nothing is left to learn (its null standard
   deviation, ``sqrt((n_sr + n_sb + 1) / (12 n_sr n_sb))``, is given next to it); above 0.5 the
   decorrelated features still carry mjj information that a cut will turn into sculpting;
3. at each efficiency the scan's cut (per-fold sideband quantile, ``score >= threshold``) and its
   background prediction (default: the efficiency model, the selected/inclusive ratio fitted in the
   sidebands and applied to the SR's inclusive counts): ``ratio = n_sr / b_hat`` is 1 without
   sculpting; above 1 the background is under-predicted (a fake excess), below 1 over-predicted (a
   loss of sensitivity); ``z_signed`` is the scan's signed local significance of that cut.
   ``fold_z`` splits that comparison by test fold: each fold's selected SR count against its share of
   the prediction (``b_hat`` shared out by each fold's own sideband efficiency times its SR events),
   ``(n_k - b_k) / sqrt(b_k)`` (``fold_b``: the ``b_k``).
   The folds' test events are disjoint and each fold's selection was learned without them, so a
   fluctuation of the selected events scatters these around 0 independently, while sculpting (a
   SR-vs-SB difference of the *population* after the decorrelation, which every fold's classifier
   learns and every fold's test events carry) pushes them all the same way (``n_folds_up``); the
   shared error of ``b_hat`` moves them together by only ``sigma_b / sqrt(n_folds b_hat)`` each.

``subsets`` repeats step 2 with the classifier restricted to single features and pairs (the
decorrelation is still fitted on all features): which feature, or which pair's *joint* distribution,
carries the residual mjj dependence.

Everything is seeded by ``random_state``; the default classifier is one HGB model per fold (the
CWoLa default averages five), which is what "cheap" means here: ~20-45 s CPU for 265k window events.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .._util import spawn_seeds
from ..anomaly.base import fresh_estimator, stratified_folds
from ..errors import ConfigError, InputError
from ..stats.roc import roc_auc
from ..stats.sideband import DEFAULT_BACKGROUND_MODEL, background_estimate
from ..stats.windows import LHCO_SR, Window
from .selection import build_method, fold_thresholds, select

__all__ = ["SculptingCut", "SculptingCheck", "sculpting_check", "fold_pulls", "decorrelated_moments", "CHEAP_CWOLA"]

#: the classifier of the check: one HGB model per fold (CWoLa's default ensemble has five)
CHEAP_CWOLA = {"classifier_params": {"n_members": 1}}


@dataclass(frozen=True)
class SculptingCut:
    """One cut of the check: selected SR / SB events, the predicted SR background and their ratio."""

    efficiency: float
    status: str
    n_sr: int
    n_sb: int
    b_hat: float = float("nan")
    sigma_b: float = float("nan")
    z_signed: float = float("nan")
    z_slope: float = float("nan")
    fold_z: tuple = ()
    fold_b: tuple = ()

    @property
    def ratio(self) -> float:
        """Selected SR events over the predicted background: 1 without sculpting, > 1 a fake excess."""
        return self.n_sr / self.b_hat if self.b_hat > 0 else float("nan")

    @property
    def n_folds_up(self) -> int:
        """How many folds' selected SR counts lie above their share of the prediction (``fold_z > 0``)."""
        return int(sum(z > 0 for z in self.fold_z))


@dataclass(frozen=True)
class SculptingCheck:
    """The result of :func:`sculpting_check` (``to_dict`` for JSON, ``table`` for printing)."""

    window: str
    decorrelation: str
    decorrelation_params: dict
    n_sr: int
    n_sb: int
    auc: float
    cuts: tuple
    subset_auc: dict = field(default_factory=dict)
    cpu_s: float = 0.0

    @property
    def auc_null_std(self) -> float:
        """Standard deviation of the AUC without any SR/SB difference (Mann-Whitney)."""
        n1, n0 = self.n_sr, self.n_sb
        return float(np.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0)))

    @property
    def auc_z(self) -> float:
        return (self.auc - 0.5) / self.auc_null_std

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cuts"] = [{**asdict(c), "ratio": c.ratio, "n_folds_up": c.n_folds_up} for c in self.cuts]
        d.update(auc_null_std=self.auc_null_std, auc_z=self.auc_z)
        return d

    def table(self) -> str:
        p = "".join(f" {k}={v}" for k, v in self.decorrelation_params.items())
        lines = [f"{self.window}: decorrelation {self.decorrelation}{p}; {self.n_sr} SR / {self.n_sb} SB events; "
                 f"out-of-fold SR-vs-SB AUC {self.auc:.4f} ({self.auc_z:+.1f} sigma from 0.5; null std "
                 f"{self.auc_null_std:.4f}); {self.cpu_s:.0f}s CPU",
                 f"{'eff':>8} {'n_SR':>6} {'b_hat':>15} {'n_SR/b_hat':>10} {'z_signed':>8} {'slope/err':>9}  per-fold z"]
        for c in self.cuts:
            if c.status != "ok":
                lines.append(f"{c.efficiency:8.4g} {c.n_sr:6d} {c.status:>15}")
                continue
            lines.append(f"{c.efficiency:8.4g} {c.n_sr:6d} {f'{c.b_hat:.1f} +- {c.sigma_b:.1f}':>15} {c.ratio:10.3f} "
                         f"{c.z_signed:8.2f} {c.z_slope:9.1f}  " + " ".join(f"{z:+.1f}" for z in c.fold_z))
        if self.subset_auc:
            lines.append("AUC (sigma from 0.5) with the classifier on a subset of the decorrelated features:")
            s = self.auc_null_std
            lines += [f"  {name}: {a:.4f} ({(a - 0.5) / s:+.1f})" for name, a in self.subset_auc.items()]
        return "\n".join(lines)


def _subsets(subsets, names: list[str]) -> list[tuple[str, ...]]:
    if subsets is None:
        return []
    if subsets == "singles+pairs":
        return [(n,) for n in names] + list(itertools.combinations(names, 2))
    out = []
    for sub in subsets:
        sub = (sub,) if isinstance(sub, str) else tuple(sub)
        bad = [f for f in sub if f not in names]
        if bad:
            raise ConfigError(f"sculpting_check subsets: unknown feature(s) {bad}; features are {names}")
        out.append(sub)
    return out


def fold_pulls(sel, fold, in_sr, b_hat: float) -> tuple:
    """Per test fold, ``((n_k - b_k) / sqrt(b_k), ...)`` and ``(b_k, ...)``: a selection's SR count in fold ``k``
    against the prediction ``b_hat`` shared out by each fold's own selected sideband events per sideband
    event times its SR events (folds whose cut keeps more, e.g. at tied scores, expect more). ``sel``,
    ``in_sr``: boolean masks, ``fold``: each event's fold (the window's events); the shares add up to
    ``b_hat``. See the module docstring (``fold_z``)."""
    k = int(fold.max()) + 1
    n_sr = np.bincount(fold[in_sr], minlength=k).astype(float)
    n_sb = np.bincount(fold[~in_sr], minlength=k).astype(float)
    sel_sb = np.bincount(fold[sel & ~in_sr], minlength=k).astype(float)
    n_sel = np.bincount(fold[sel & in_sr], minlength=k).astype(float)
    w = sel_sb / np.maximum(n_sb, 1.0) * n_sr
    b = b_hat * w / max(w.sum(), 1e-12)
    return tuple(float(z) for z in (n_sel - b) / np.sqrt(np.maximum(b, 1e-12))), tuple(float(x) for x in b)


def sculpting_check(
    X,
    m,
    window: Window | None = None,
    *,
    features: Sequence[str] | None = None,
    decorrelation: str = "quantile",
    decorrelation_params: dict | None = None,
    method: str = "cwola",
    method_params: dict | None = None,
    efficiencies: Sequence[float] = (0.1, 0.01, 0.001),
    n_folds: int = 5,
    subsets=None,
    background_model: str = DEFAULT_BACKGROUND_MODEL,
    min_selected: int = 20,
    random_state=None,
) -> SculptingCheck:
    """Residual sculpting of a decorrelation, measured with an out-of-fold SR-vs-SB classifier on
    background events (module docstring).

    Parameters
    ----------
    X : (n, d) features of *background* events (array or DataFrame; a DataFrame's columns name them)
    m : (n,) mjj in GeV (events outside the window are ignored)
    window : the SR and sidebands (default: the LHCO SR 3300-3700 GeV with the scan's 500 GeV sidebands)
    features : names of the columns (default: the DataFrame's columns, else ``x0, x1, ...``)
    decorrelation, decorrelation_params : as in :func:`~excess.search.run_scan` (``"none"``, ``"quantile"``,
        ``"copula"``, ``"flow"``, ``"ratio"``; ``"auto"`` is what the method gets by default; the params may
        hold ``fit_on`` and ``heldout_fraction``)
    method, method_params : the SR-vs-SB classifier (default CWoLa with one HGB model per fold,
        :data:`CHEAP_CWOLA`)
    efficiencies : sideband efficiencies of the cuts
    n_folds : folds (stratified by SR / SB, as the scan)
    subsets : ``None``, ``"singles+pairs"`` or a list of feature names / tuples: the AUC with the classifier
        trained on those decorrelated features only
    background_model : the scan's background model of the selection (default ``"efficiency"``)
    min_selected : fewer selected sideband events give no prediction at that cut
    random_state : seed (folds, transforms, classifiers)
    """
    from .scan import _decorrelated

    if hasattr(X, "columns"):
        features = list(features) if features is not None else [str(c) for c in X.columns]
    X = np.asarray(X, float)
    m = np.asarray(m, float)
    if X.ndim != 2 or m.ndim != 1 or X.shape[0] != m.shape[0]:
        raise InputError(f"sculpting_check: X must be (n, d) and m (n,), got {X.shape} and {m.shape}")
    names = list(features) if features is not None else [f"x{j}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise InputError(f"sculpting_check: {len(names)} feature names for {X.shape[1]} columns")
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    window = window if window is not None else Window.around(LHCO_SR)
    in_win, _, _ = window.masks(m)
    X, m = X[in_win], m[in_win]
    _, in_sr, in_sb = window.masks(m)
    if in_sr.sum() < 10 * n_folds or in_sb.sum() < 10 * n_folds:
        raise InputError(f"sculpting_check: {int(in_sr.sum())} SR and {int(in_sb.sum())} sideband events in "
                         f"{window.label}; need at least {10 * n_folds} of each")
    subs = _subsets(subsets, names)
    params = CHEAP_CWOLA if method_params is None else method_params
    proto = build_method(method, params)
    kind, wrapped = _decorrelated(method, proto, decorrelation, names, decorrelation_params)
    rng = np.random.default_rng(random_state)
    fold = stratified_folds(in_sr, n_folds, rng)
    seeds = spawn_seeds(rng, n_folds)
    c0 = time.process_time()
    scores = np.empty(m.size)
    sub_scores = {s: np.empty(m.size) for s in subs}
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        est = fresh_estimator(wrapped, seeds[k]).fit(X[tr], m[tr], sr=window.sr)
        scores[te] = est.score_samples(X[te], m[te])
        if subs:
            tf = getattr(est, "transform_", None)
            Ztr = X[tr] if tf is None else tf.transform(X[tr], m[tr])
            Zte = X[te] if tf is None else tf.transform(X[te], m[te])
            for j, s in enumerate(subs):
                cols = [names.index(f) for f in s]
                e = fresh_estimator(proto, seeds[k] + j + 1).fit(Ztr[:, cols], m[tr], sr=window.sr)
                sub_scores[s][te] = e.score_samples(Zte[:, cols], m[te])
    auc = roc_auc(in_sr, scores)
    est = background_estimate(background_model, min_events=min_selected)
    if hasattr(est, "bind"):
        est = est.bind(m, window)
    cuts = []
    for eps in efficiencies:
        sel = select(scores, fold, fold_thresholds(scores, fold, in_sb, float(eps)))
        t = est(m[sel], window)
        if not t.ok:
            cuts.append(SculptingCut(float(eps), t.status, int(t.n_sr), int(t.n_sb)))
            continue
        slope = t.background.efficiency_fit.z_slope if t.background is not None else float("nan")
        cuts.append(SculptingCut(float(eps), t.status, int(t.n_sr), int(t.n_sb), float(t.b_hat), float(t.sigma_b),
                                 float(t.z_signed), float(slope), *fold_pulls(sel, fold, in_sr, float(t.b_hat))))
    return SculptingCheck(
        window=window.label, decorrelation=kind, decorrelation_params=dict(decorrelation_params or {}),
        n_sr=int(in_sr.sum()), n_sb=int(in_sb.sum()), auc=auc, cuts=tuple(cuts),
        subset_auc={"+".join(s): roc_auc(in_sr, v) for s, v in sub_scores.items()},
        cpu_s=time.process_time() - c0,
    )


def decorrelated_moments(X, m, window: Window | None = None, *, features: Sequence[str] | None = None,
                         decorrelation: str = "quantile", decorrelation_params: dict | None = None,
                         bin_width: float = 200.0, tail: float = 2.5) -> dict:
    """Why a decorrelation leaves sculpting, without a classifier: the transform (``quantile``, ``copula``,
    ``flow`` or ``auto``, CWoLa's default: they map the background to standard normal scores at every mass) fitted once on the window's
    events, then per ``bin_width`` GeV mass bin the mean, standard deviation and the fractions beyond
    ``+-tail`` of each mapped feature, and the correlation of each pair. Flat across the bins (0, 1,
    ``Phi(-tail)``, a constant) when nothing drifts; a pattern that differs between the SR (the middle bins)
    and *both* sidebands is what a SR-vs-SB classifier learns and a smooth efficiency fit cannot absorb.

    Returns ``{"edges", "n", "mean", "std", "upper", "lower"}`` (feature -> per-bin list) and ``"corr"``
    (``"a|b"`` -> per-bin list), with ``"expected_tail"``.
    """
    from scipy import stats as sps

    from .decorrelation import make_transform

    if hasattr(X, "columns"):
        features = list(features) if features is not None else [str(c) for c in X.columns]
    X, m = np.asarray(X, float), np.asarray(m, float)
    if X.ndim != 2 or m.ndim != 1 or X.shape[0] != m.shape[0]:
        raise InputError(f"decorrelated_moments: X must be (n, d) and m (n,), got {X.shape} and {m.shape}")
    names = list(features) if features is not None else [f"x{j}" for j in range(X.shape[1])]
    from .decorrelation import resolve_decorrelation

    decorrelation = resolve_decorrelation(decorrelation, "cwola")  # "auto": the CWoLa default
    if decorrelation not in ("quantile", "copula", "flow"):
        raise ConfigError(f"decorrelated_moments needs a transform to normal scores (quantile, copula, flow), "
                          f"got {decorrelation!r}")
    window = window if window is not None else Window.around(LHCO_SR)
    in_win, _, _ = window.masks(m)
    X, m = X[in_win], m[in_win]
    params = {k: v for k, v in (decorrelation_params or {}).items() if k not in ("fit_on", "heldout_fraction")}
    Z = make_transform(decorrelation, names, params).fit(X, m, sr=window.sr).transform(X, m)
    edges = np.arange(window.sb_lo, window.sb_hi + 0.5 * bin_width, bin_width)
    b = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, edges.size - 2)
    groups = [Z[b == i] for i in range(edges.size - 1)]
    out = {"edges": edges.tolist(), "n": [len(g) for g in groups], "expected_tail": float(sps.norm.sf(tail))}
    for key, fn in (("mean", lambda z: z.mean(0)), ("std", lambda z: z.std(0)),
                    ("upper", lambda z: (z > tail).mean(0)), ("lower", lambda z: (z < -tail).mean(0))):
        vals = np.array([fn(g) for g in groups])  # (bins, d)
        out[key] = {f: vals[:, j].tolist() for j, f in enumerate(names)}
    out["corr"] = {f"{names[a]}|{names[c]}": [float(np.corrcoef(g[:, a], g[:, c])[0, 1]) for g in groups]
                   for a, c in itertools.combinations(range(len(names)), 2)}
    return out
