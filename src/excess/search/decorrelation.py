"""Decorrelate the features from mjj before a method learns from them, so a cut does not sculpt mjj.

A classifier of SR vs SB events (CWoLa) learns *anything* that differs between SR and SB: a signal,
but also every feature whose background distribution drifts with mjj (jet masses grow with the jet
pT, so with mjj). A cut on such a score keeps more background at some masses than at others: the
selected spectrum is no longer a smoothly falling dijet spectrum, and the sideband fit mis-predicts
the SR (issue 22: the fit over-predicted the SR by 40 % and absorbed the signal).

:class:`ConditionalQuantileTransform` removes the mjj dependence of each feature's distribution:
it learns the conditional quantiles ``q_p(m)`` of every feature (equal-count mass bins, the quantile
levels' values fitted as a polynomial in ``m``, linear by default: a smooth model that a localised
signal cannot bend), and maps ``x -> z`` by piecewise-linear interpolation between the
points ``(q_p(m), Phi^-1(p))``. At every mass the background's ``z`` is then about standard normal.
The map is strictly increasing in ``x`` at fixed ``m`` (the order of events, hence a signal's
clustering, is kept) and continues linearly beyond the outermost quantiles, so the tails, where a
signal at 1e-4 efficiency lives, keep their order instead of being clamped.

``"ratio"`` (:class:`MassRatioTransform`) divides mass-like features by mjj: the physics-motivated
option (jet mass ~ pT R for QCD), without any fit.

:class:`Decorrelated` wraps any anomaly method: it fits the transform on the training events and
the method on the transformed features (anomaly protocol, scikit-learn style). It only sees the
events the method sees, so out-of-fold scoring stays out-of-fold.

Why the whole training window and not only its sidebands (``fit_on``): a transform fitted on the
sidebands alone is exact there and *extrapolated* in the SR, so its estimation noise makes the SR
training events differ from the SB ones; a SR-vs-SB classifier learns that difference, and on
independent events it correlates with mjj: the decorrelation itself sculpted (background-only
toys without any mjj correlation: efficiency slope / error +1.31 on average with ``"sidebands"``,
+0.16 with ``"window"``; ``tests/search/test_sensitivity.py``). A linear-in-mjj quantile model
cannot follow a narrow signal, so fitting it on the SR too does not remove the signal.

``"copula"`` (:class:`ConditionalCopulaTransform`) decorrelates *jointly*, cheaply: after the quantile
map (each feature standard normal at every mass) it models the conditional mean and correlation matrix
of the mapped features as degree-1 / degree-2 polynomials in the standardised ``ln m`` (weighted least
squares with :func:`mass_weights`, so every mjj counts alike), projects ``C(m)`` to a valid
correlation matrix (eigenvalues clipped, unit diagonal), whitens with its Cholesky factor,
``z' = L(m)^-1 (z - mu(m))``, and re-maps each whitened feature with a second quantile map. A Gaussian
copula whose correlations drift with mjj (the failure of ``"quantile"``) is removed; numpy only,
deterministic, milliseconds. It is fitted on the wrapper's events (``fit_on``, default ``"window"``,
as ``"quantile"``). Which events fit the mean and correlation polynomials is a trade-off, measured
(README, "Joint decorrelation"; joint-drift toys, gaussian-full scorer, 20 background-only scans):

* ``moments_on="all"`` (default): every fit event, SR included. Background only: efficiency slope /
  error 0.39 +- 0.98, signed local Z at eff 0.1 of std 1.26 (KS p 0.73), max local Z 2.32. Cost: a
  degree-2 fit that sees the SR follows a signal's *correlations* there (about 0.6 of a change
  localised in the SR's 29 % of a window flat in mjj; measured 0.9 at S/B 0.34), which lowers a
  correlation-aware scorer's signal efficiency at tight cuts (in-sample, eff 1e-3, S/B 4 %: 0.40 / 0.43
  vs 0.54 / 0.62 with ``"quantile"`` on toys without drift). The signal's separation from the
  background (its position) is kept: the whitening is linear at a given mass.
* ``moments_on="sidebands"``: the sideband events only, interpolated across the SR: the signal cannot
  bend the fit (0.01 of the change followed; signal efficiency 0.52 / 0.56), but the interpolation
  error is the SR's alone and common to the classifier's training and scored events, so it is learned
  and becomes a fake SR excess or deficit: signed local Z std 1.79, max local Z 4.17 in 20 scans
  (without a drift to interpolate: std 1.09, max 2.80).

With signal (S/sqrt(B) = 2, 100k-event toys with the drift, two seeds) the scan's best local Z in the SR
was 15.4 / 20.4 with ``"all"``, 15.9 / 20.7 with ``"sidebands"``, 3.6 / 2.7 with ``"quantile"`` (whose
scorer learns the drift instead of the signal).

``corr_degree=1`` cannot follow the toy's drift (``rho ~ tanh``: sculpting diagnostic 2-5 sigma left on
16k-event toys, 18 with ``"quantile"``).

``"flow"`` (:class:`ConditionalFlowTransform`) decorrelates *jointly*: after the per-feature quantile
map, a conditional MAF ``p(z | m)`` (fitted with weights that make its events flat in mjj) maps the
features to its base-space coordinates, which for the background are standard normal and
independent of mjj together, so a drift of the features' *correlations* with mjj (which a
per-feature map leaves and a SR-vs-SB classifier learns) is removed too (toy:
``toy_events(joint_drift=r)``; ``tests/search/test_joint_decorrelation.py``). It is an option, not a
default, because its background-only calibration is not established: a flexible model conditioned
on mjj can follow structure localised in mjj (a signal, or fluctuations, of the events it is fitted
on), and any error of the transform that differs between SR and SB is learned by the classifier from
its training events and shared by the scored events, i.e. it becomes an SR excess (a lost branch of
this work saw fake excesses up to global Z 4.8 in 4 background-only scans with the flow fitted on the
classifier's own training events, and a loss of signal: max SIC 5.2 vs 12.4). ``fit_on="heldout"``
(:class:`Decorrelated`) fits the flow on part of the training *sideband* events only, which the
classifier then does not see: no SR event (hence no signal) shapes the transform, and the
classifier's training events and the scored events are alike to it; what is left is the flow's
interpolation across the SR, expected (not yet shown) to be smooth in mjj for a small tanh network, so
that the efficiency background model absorbs it. Use it with ``decorrelation_params={"fit_on": "heldout"}``.
Measured so far (README): a well-trained flow removes the toy's correlation drift; a small one trained
on ~1.5k held-out sideband events per fold did not (the scan's slope stayed at 16.4 sigma, 17.9 with
``"quantile"``); the background-only calibration is not measured yet.

Defaults per method (:func:`default_decorrelation`):

* ``cwola`` (and any method with ``trains_sr_vs_sb = True``): ``"copula"`` (:data:`SR_VS_SB_DEFAULT`;
  quantile stage of degree 2 in mjj): a SR-vs-SB classifier learns mjj correlations by construction,
  and on the generated QCD sample (README, "Residual sculpting") a quantile map *linear* in mjj left a
  curved dependence (the SR, in the middle of the window, differs from both sidebands: out-of-fold
  SR-vs-SB AUC 0.5028 / 0.5030, 2.2 / 2.3 sigma, efficiency slope 2.4-3.2 sigma, the SR background
  mis-predicted by up to 22 %) that the degree-2 copula removes (AUC 0.5019 / 0.5011, slope <= 1.4
  sigma, the efficiency fit flat so the prediction twice as precise; :func:`excess.search.sculpting.sculpting_check`);
* ``cathode``, ``anode``, ``ranode``: ``"none"``: they model ``p(x | m)`` conditionally, so the
  background's mjj dependence is divided out already (issue 22: CATHODE's selection stayed falling);
* ``supervised``, ``idealized``: ``"none"``: trained on SR events only against a true
  background/signal label, they are references, not searches;
* ``autoencoder``, ``vae``: ``"none"`` (they are trained on all window events; switch it on with
  ``decorrelation="quantile"`` if the efficiency diagnostic shows a slope).

Whatever remains is handled by the efficiency background model (:mod:`excess.stats.efficiency`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sps
from sklearn.base import BaseEstimator

from ..anomaly.base import fresh_estimator
from ..errors import ConfigError, InputError, NonFiniteError, NotFittedError

__all__ = [
    "DECORRELATIONS",
    "ConditionalQuantileTransform",
    "ConditionalFlowTransform",
    "ConditionalCopulaTransform",
    "mass_weights",
    "MassRatioTransform",
    "Decorrelated",
    "default_decorrelation",
    "make_transform",
    "resolve_decorrelation",
]

DECORRELATIONS = ("none", "quantile", "ratio", "flow", "copula", "auto")
FIT_ON = ("auto", "window", "sidebands", "heldout")
#: what ``fit_on="auto"`` means per transform (:class:`Decorrelated`)
DEFAULT_FIT_ON = {"quantile": "window", "ratio": "window", "flow": "window", "copula": "window"}
_SR_VS_SB_METHODS = ("cwola",)
#: what ``"auto"`` gives a SR-vs-SB classifier (CWoLa): the copula whitening after a quantile map of degree 2
SR_VS_SB_DEFAULT = "copula"
MASS_LIKE = ("mj1", "mj2", "delta_mj", "jet1_m", "jet2_m")


def _check_xm(X, m, what: str, feature_names=None, *, n_features: int | None = None, positive_m: bool = False,
              x_name: str = "X"):
    """The one input check of the decorrelation transforms: ``X`` (n, d) features, ``m`` (n,) masses (mjj).

    Returns both as float arrays (``X`` may be ``None``: then only ``m`` is checked). ``what`` starts every
    message (e.g. ``"copula decorrelation (transform)"``); ``feature_names`` (or a DataFrame's columns) name
    the bad feature next to its column index; ``n_features``: the number of columns the transform was fitted
    with; ``positive_m``: ``m`` must be > 0 (the transform takes ``ln m`` or divides by it); ``x_name``: what
    ``X`` is called (``"U"``, ``"Z"`` for an inverse transform's scores).

    Raises :class:`~excess.errors.InputError` for a wrong ndim, a wrong number of features or mismatched
    lengths, and :class:`~excess.errors.NonFiniteError` (an ``InputError``) for NaN or infinite values,
    naming whether ``X`` or ``m`` holds them, the first bad row, the feature and the value.
    """
    if feature_names is None and X is not None and hasattr(X, "columns"):
        feature_names = [str(c) for c in X.columns]
    try:
        m = np.asarray(m, dtype=float)
        X = None if X is None else np.asarray(X, dtype=float)
    except (TypeError, ValueError) as e:
        raise InputError(f"{what}: {x_name} and m must be numeric arrays ({e})") from None
    if m.ndim != 1:
        raise InputError(f"{what}: m (mjj) must be 1-d (n,), got shape {m.shape}")
    if X is not None:
        d = "d" if n_features is None else str(int(n_features))
        if X.ndim != 2:
            raise InputError(f"{what}: {x_name} must be (n, {d}) and m (n,), got {x_name} of shape {X.shape}")
        if n_features is not None and X.shape[1] != int(n_features):
            raise InputError(f"{what}: {x_name} must be (n, {d}) and m (n,) (the transform was fitted with {d} "
                             f"features), got {x_name} of shape {X.shape}")
        if X.shape[0] != m.shape[0]:
            raise InputError(f"{what}: {x_name} must be (n, {d}) and m (n,) with the same n, got {x_name} of shape "
                             f"{X.shape} and m of shape {m.shape}")
        bad = ~np.isfinite(X)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            names = list(feature_names) if feature_names is not None else []
            label = f"feature column {j}" + (f" ({names[j]})" if len(names) == X.shape[1] else "")
            per_col = bad.sum(axis=0)
            counts = {(names[c] if len(names) == X.shape[1] else f"column {c}"): int(per_col[c])
                      for c in np.nonzero(per_col)[0]}
            raise NonFiniteError(f"{what}: {x_name} has {int(bad.sum())} NaN or infinite feature values (first: row {i}, "
                                 f"{label}, value {X[i, j]})", counts=counts, n_rows=int(bad.any(axis=1).sum()))
    bad_m = ~np.isfinite(m)
    if bad_m.any():
        i = int(np.argmax(bad_m))
        raise NonFiniteError(f"{what}: m (mjj) has {int(bad_m.sum())} NaN or infinite values (first: row {i}, "
                             f"value {m[i]})", counts={"m": int(bad_m.sum())}, n_rows=int(bad_m.sum()))
    if positive_m and (m <= 0).any():
        i = int(np.argmax(m <= 0))
        raise InputError(f"{what}: m (mjj) must be > 0, row {i} has {m[i]}")
    return X, m


class ConditionalQuantileTransform(BaseEstimator):
    """Per-feature transform ``x -> Phi^-1(F(x | m))`` with ``F`` learned in mass bins of the given events.

    Parameters
    ----------
    n_mass_bins : equal-count mass bins of the fit events (e.g. the sidebands) in which quantiles are taken
        (fewer when a bin would hold fewer than 20 events)
    n_levels : quantile levels, equally spaced in Gaussian ``z`` between ``+-z_max``
    z_max : outermost level (``Phi(z_max)``; lowered automatically when a bin holds too few events to
        estimate it: at least 10 events beyond the outermost quantile in each bin)
    degree : polynomial degree in ``m`` of each quantile level's curve (1: linear in m; the SR is
        interpolated between the two sidebands)

    ``fit(X, m, sr=None)``: ``sr`` is ignored (every transform accepts it: :class:`Decorrelated` passes it).
    """

    def __init__(self, n_mass_bins: int = 10, n_levels: int = 21, z_max: float = 3.0, degree: int = 1):
        self.n_mass_bins = n_mass_bins
        self.n_levels = n_levels
        self.z_max = z_max
        self.degree = degree

    def fit(self, X, m, sr=None):
        """Fit the quantile curves on ``X`` (n, d) at masses ``m`` (n,); ``sr`` is ignored."""
        X, m = _check_xm(X, m, "quantile decorrelation (fit)")
        nb, deg = int(self.n_mass_bins), int(self.degree)
        if nb < deg + 1 or nb < 2:
            raise ConfigError(f"n_mass_bins ({nb}) must exceed degree ({deg}) and be >= 2")
        if int(self.n_levels) < 3:
            raise ConfigError(f"n_levels must be >= 3, got {self.n_levels}")
        nb = min(nb, X.shape[0] // 20)  # small samples: fewer, fuller mass bins
        if nb < max(deg + 1, 2):
            raise InputError(f"conditional quantile transform: {X.shape[0]} sideband events; need >= 20 per mass bin "
                             f"and {max(deg + 1, 2)} bins")
        per_bin = X.shape[0] // nb
        z_cap = float(sps.norm.isf(10.0 / per_bin))
        z_max = min(float(self.z_max), max(z_cap, 0.5))
        self.levels_ = np.linspace(-z_max, z_max, int(self.n_levels))
        p = sps.norm.cdf(self.levels_)
        order = np.argsort(m, kind="stable")
        bins = np.array_split(order, nb)
        m_c = np.array([m[b].mean() for b in bins])
        self.m_centre_ = float(np.mean(m))
        self.m_scale_ = float(max(np.std(m), 1e-9))
        u = (m_c - self.m_centre_) / self.m_scale_
        q = np.stack([np.quantile(X[b], p, axis=0) for b in bins])  # (nb, levels, d)
        V = np.vander(u, deg + 1, increasing=True)  # (nb, deg+1)
        coef, *_ = np.linalg.lstsq(V, q.reshape(nb, -1), rcond=None)
        self.coef_ = coef.reshape(deg + 1, p.size, X.shape[1])
        self.u_knots_ = (float(u.min()), float(u.max()))  # beyond the outermost bin centres: the tangent line
        # the smallest gap between adjacent levels the curves may show: a tenth of the gaps measured in the bins
        # (where fitted curves would cross, the map would otherwise have a near-vertical segment, and events
        # beyond an end level would be extrapolated to |z| ~ 1e7)
        self.min_gap_ = 0.1 * np.median(np.diff(q, axis=1), axis=0)  # (levels - 1, d)
        self.n_features_in_ = X.shape[1]
        self.m_range_ = (float(m.min()), float(m.max()))
        return self

    def quantiles(self, m) -> np.ndarray:
        """Quantile curves at masses ``m``: (n, levels, d), strictly increasing along levels."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("ConditionalQuantileTransform is not fitted")
        _, m = _check_xm(None, m, "quantile decorrelation (quantiles)")
        u = (m - self.m_centre_) / self.m_scale_
        k = self.coef_.shape[0]
        knots = getattr(self, "u_knots_", None)
        if k > 2 and knots is not None:  # a curve of degree >= 2 continues as its tangent beyond the fitted bins
            ue = np.clip(u, *knots)
            V = np.vander(ue, k, increasing=True)
            dV = np.zeros_like(V)
            dV[:, 1:] = V[:, :-1] * np.arange(1, k)
            q = np.einsum("nk,kld->nld", V, self.coef_) + (u - ue)[:, None, None] * np.einsum("nk,kld->nld", dV, self.coef_)
        else:
            V = np.vander(u, k, increasing=True)
            q = np.einsum("nk,kld->nld", V, self.coef_)
        min_gap = getattr(self, "min_gap_", None)
        if min_gap is None:  # fitted before the rearrangement existed
            q = np.maximum.accumulate(q, axis=1)
        else:  # crossing curves rearranged (sorted), adjacent levels at least min_gap apart
            q = np.sort(q, axis=1)
            gaps = np.maximum(np.diff(q, axis=1), min_gap[None])
            q = np.concatenate([q[:, :1], q[:, :1] + np.cumsum(gaps, axis=1)], axis=1)
        # strictly increasing: ties (discrete features) get a tiny spread
        spread = 1e-9 * (1.0 + np.abs(q).max(axis=1, keepdims=True))
        return q + spread * np.arange(q.shape[1])[None, :, None]

    def transform(self, X, m) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError("ConditionalQuantileTransform is not fitted")
        X, m = _check_xm(X, m, "quantile decorrelation (transform)", n_features=self.n_features_in_)
        q = self.quantiles(m)  # (n, L, d)
        z = self.levels_
        out = np.empty_like(X)
        L = z.size
        for j in range(X.shape[1]):
            qj = q[:, :, j]
            x = X[:, j]
            i = np.clip(np.sum(qj <= x[:, None], axis=1) - 1, 0, L - 2)  # segment index (extrapolate at ends)
            r = np.arange(x.size)
            q0, q1 = qj[r, i], qj[r, i + 1]
            out[:, j] = z[i] + (x - q0) * (z[i + 1] - z[i]) / (q1 - q0)
        return out

    def inverse_transform(self, Z, m) -> np.ndarray:
        """Features of normal scores ``Z`` at masses ``m``: the piecewise-linear map of :meth:`transform`
        inverted segment by segment (extrapolated at the ends, as it was built)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("ConditionalQuantileTransform is not fitted")
        Z, m = _check_xm(Z, m, "quantile decorrelation (inverse_transform)", n_features=self.n_features_in_, x_name="Z")
        q = self.quantiles(m)  # (n, L, d)
        zl = self.levels_
        L = zl.size
        out = np.empty_like(Z)
        r = np.arange(Z.shape[0])
        for j in range(Z.shape[1]):
            i = np.clip(np.searchsorted(zl, Z[:, j], side="right") - 1, 0, L - 2)
            q0, q1 = q[r, i, j], q[r, i + 1, j]
            out[:, j] = q0 + (Z[:, j] - zl[i]) * (q1 - q0) / (zl[i + 1] - zl[i])
        return out


def mass_weights(m, n_bins: int = 20, max_weight: float = 50.0) -> np.ndarray:
    """Weights (mean 1) that make the events ``m`` flat in ``m``: the inverse of the event density in
    ``n_bins`` equal-width bins (capped at ``max_weight`` times the smallest), so a fit by weighted
    likelihood learns the high-mass tail as well as the abundant low masses."""
    m = np.asarray(m, float)
    if m.ndim != 1 or not m.size:
        raise InputError(f"mass_weights needs a non-empty 1-d array of masses, got shape {m.shape}")
    lo, hi = float(m.min()), float(m.max())
    if hi <= lo:
        return np.ones(m.size)
    edges = np.linspace(lo, hi, int(n_bins) + 1)
    counts = np.histogram(m, edges)[0].astype(float)
    i = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, counts.size - 1)
    w = 1.0 / counts[i]
    w = np.minimum(w, max_weight * w.min())
    return w / w.mean()


class ConditionalFlowTransform(BaseEstimator):
    """Joint decorrelation: ``x -> u`` with ``u`` the base-space (standard normal) coordinates of a
    conditional normalizing flow ``p(x | m)``, so that the background's ``u`` is independent of ``m``
    *jointly* (correlations included), not only feature by feature.

    Two stages: the per-feature :class:`ConditionalQuantileTransform` (smooth in ``m``: it removes the
    marginal drifts), then a conditional MAF (:class:`~excess.nn.flows.ConditionalFlow`, context ``m``)
    fitted by weighted likelihood with :func:`mass_weights` (the fit events flat in ``m``); ``u`` is
    :meth:`~excess.nn.flows.ConditionalFlow.to_base` of the quantile-mapped features. The map is
    invertible at every ``m`` (:meth:`inverse_transform`).

    Parameters
    ----------
    n_mass_bins, degree : of the quantile stage
    transforms, hidden, epochs, batch_size, lr, patience, weight_decay, activation : the flow's
        (small and smooth by default: a flexible conditional flow can follow fluctuations localised in
        ``m``, and its errors then differ between SR and SB)
    weight_by_mass : fit with :func:`mass_weights` (default True)
    random_state, device : the flow's seed and device

    ``fit(X, m, sample_weight=None, sr=None)``: ``sr`` is ignored (every transform accepts it:
    :class:`Decorrelated` passes it).
    """

    def __init__(self, n_mass_bins: int = 10, degree: int = 1, transforms: int = 2, hidden=(32, 32),
                 epochs: int = 50, batch_size: int = 256, lr: float = 3e-3, patience: int = 8,
                 weight_decay: float = 1e-4, activation: str = "tanh", weight_by_mass: bool = True,
                 random_state=None, device: str = "auto"):
        self.n_mass_bins = n_mass_bins
        self.degree = degree
        self.transforms = transforms
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.weight_decay = weight_decay
        self.activation = activation
        self.weight_by_mass = weight_by_mass
        self.random_state = random_state
        self.device = device

    def fit(self, X, m, sample_weight=None, sr=None):
        """Fit the quantile stage and the flow on ``X`` (n, d) at masses ``m`` (n,); ``sr`` is ignored."""
        from ..nn.flows import ConditionalFlow

        X, m = _check_xm(X, m, "flow decorrelation (fit)")
        w = np.ones(m.size)
        if sample_weight is not None:
            w = np.asarray(sample_weight, float)
            if w.shape != m.shape:
                raise InputError(f"sample_weight must be ({m.size},), got shape {w.shape}")
        if self.weight_by_mass:
            w = w * mass_weights(m)
        self.quantile_ = ConditionalQuantileTransform(n_mass_bins=self.n_mass_bins, degree=self.degree).fit(X, m)
        Z = self.quantile_.transform(X, m)
        self.flow_ = ConditionalFlow(
            kind="maf", transforms=self.transforms, hidden=tuple(self.hidden), preprocessing="standard",
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, patience=self.patience,
            weight_decay=self.weight_decay, activation=self.activation, random_state=self.random_state,
            device=self.device,
        ).fit(Z, m, sample_weight=w)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X, m) -> np.ndarray:
        if not hasattr(self, "flow_"):
            raise NotFittedError("ConditionalFlowTransform is not fitted")
        X, m = _check_xm(X, m, "flow decorrelation (transform)", n_features=self.n_features_in_)
        return self.flow_.to_base(self.quantile_.transform(X, m), m)

    def inverse_transform(self, U, m) -> np.ndarray:
        """Features of base coordinates ``U`` at masses ``m`` (the flow, then the quantile stage, inverted)."""
        if not hasattr(self, "flow_"):
            raise NotFittedError("ConditionalFlowTransform is not fitted")
        U, m = _check_xm(U, m, "flow decorrelation (inverse_transform)", n_features=self.n_features_in_, x_name="U")
        return self.quantile_.inverse_transform(self.flow_.from_base(U, m), m)


def _poly(u, degree: int) -> np.ndarray:
    return np.vander(np.asarray(u, float), int(degree) + 1, increasing=True)


class ConditionalCopulaTransform(BaseEstimator):
    """Joint decorrelation, cheap and smooth: a conditional Gaussian-copula whitening.

    Three stages, all fitted on the same events (numpy only, deterministic, no seed):

    1. the per-feature :class:`ConditionalQuantileTransform` ``x -> z`` (each feature standard normal
       at every mass);
    2. the conditional mean ``mu(m)`` and correlation ``C(m)`` of ``z``: every element a polynomial of
       degree ``mean_degree`` / ``corr_degree`` in ``u`` (the standardised ``ln m``), fitted by weighted
       least squares on ``z_i`` and on the products ``r_i r_j`` of the residuals ``r = z - mu(m)``
       (winsorised at ``+-clip``) with :func:`mass_weights` (every mjj weighted alike). At a mass, the
       fitted second moments are symmetrised, normalised to a correlation matrix, its eigenvalues
       clipped at ``eig_min`` and its diagonal renormalised to 1, and ``z' = L(m)^-1 (z - mu(m))``
       with ``L`` its Cholesky factor (so ``z'_1`` is ``z_1``, and ``z'_k`` is ``z_k`` with its linear
       dependence on ``z_1 .. z_{k-1}`` at that mass removed: at fixed ``m`` every ``z'_k`` is
       increasing in ``z_k``);
    3. optionally (``remap``, default True) a second per-feature quantile map of ``z'`` (when the
       copula is not exactly Gaussian, the whitened features' marginals can drift a little with mjj).

    ``L(m)^-1`` is evaluated on a grid of ``n_grid`` masses across the fit events' range and linearly
    interpolated (constant beyond the range). Low order on purpose (a smooth model in mjj); but with
    events flat in mjj a SR holding a fraction ``f`` of the window moves a degree-1 fit at the SR by about
    ``f`` times a change localised there (``f`` = 0.29 for the 400-GeV SR in a 1400-GeV window) and a
    degree-2 fit by about 0.6: see ``moments_on`` and the module docstring.

    Parameters
    ----------
    n_mass_bins, degree : of the quantile stage(s) (``degree`` 2 by default, a quadratic in mjj: on the
        generated QCD the quantiles curve across a window and a straight line left a SR-vs-SB
        difference that a classifier learned; module docstring)
    corr_degree : polynomial degree in ``u`` of each correlation element (default 1)
    mean_degree : of the conditional mean of ``z`` (``None``: no mean term)
    clip : winsorisation of ``z`` for the moment fits
    eig_min : smallest eigenvalue kept in ``C(m)`` (before the diagonal is renormalised)
    weight_by_mass : fit the moments with :func:`mass_weights` (default True)
    remap : the final per-feature quantile map (default True)
    n_grid : masses at which ``L(m)^-1`` is computed
    moments_on : ``"all"`` (default): the mean and correlation polynomials are fitted on every fit event;
        ``"sidebands"``: only on those outside ``sr`` (``fit(X, m, sr=...)``; :class:`Decorrelated` passes
        it), interpolated across the SR: a signal's correlations in the SR cannot bend them, but their
        interpolation error is the SR's alone, and a SR-vs-SB classifier learns it (module docstring)
    """

    def __init__(self, n_mass_bins: int = 10, degree: int = 2, corr_degree: int = 2, mean_degree: int | None = 1,
                 clip: float = 4.0, eig_min: float = 0.05, weight_by_mass: bool = True, remap: bool = True,
                 n_grid: int = 129, moments_on: str = "all"):
        self.n_mass_bins = n_mass_bins
        self.degree = degree
        self.corr_degree = corr_degree
        self.mean_degree = mean_degree
        self.clip = clip
        self.eig_min = eig_min
        self.weight_by_mass = weight_by_mass
        self.remap = remap
        self.n_grid = n_grid
        self.moments_on = moments_on

    def _validate(self, X, m, what: str, x_name: str = "X"):
        if what != "fit" and not hasattr(self, "winv_"):
            raise NotFittedError("ConditionalCopulaTransform is not fitted")
        return _check_xm(X, m, f"copula decorrelation ({what})", n_features=None if what == "fit" else self.n_features_in_,
                         positive_m=True, x_name=x_name)

    def _u(self, m):
        return (np.log(m) - self.u_centre_) / self.u_scale_

    def fit(self, X, m, sr=None):
        X, m = self._validate(X, m, "fit")
        if self.moments_on not in ("all", "sidebands"):
            raise ConfigError(f"moments_on must be 'all' or 'sidebands', got {self.moments_on!r}")
        self.moments_on_ = self.moments_on
        use = np.ones(m.size, bool)
        if self.moments_on_ == "sidebands":
            if sr is None:
                raise ConfigError("moments_on='sidebands' needs the signal region: fit(X, m, sr=(lo, hi))")
            use = (m < float(sr[0])) | (m >= float(sr[1]))
            if use.sum() < 2 * (int(self.corr_degree) + 1) or not (m < float(sr[0])).any() or not (m >= float(sr[1])).any():
                raise InputError(f"copula decorrelation: the moments are fitted on the sidebands of {tuple(sr)}, "
                                 f"which need events on both sides ({int((m < float(sr[0])).sum())} below, "
                                 f"{int((m >= float(sr[1])).sum())} above)")
        kd, km = int(self.corr_degree), self.mean_degree
        if kd < 0 or (km is not None and int(km) < 0):
            raise ConfigError(f"corr_degree and mean_degree must be >= 0, got {self.corr_degree}, {self.mean_degree}")
        if not 0 < float(self.eig_min) < 1:
            raise ConfigError(f"eig_min must be in (0, 1), got {self.eig_min}")
        if float(self.clip) <= 0 or int(self.n_grid) < 2:
            raise ConfigError(f"clip must be > 0 and n_grid >= 2, got {self.clip}, {self.n_grid}")
        d = X.shape[1]
        self.quantile_ = ConditionalQuantileTransform(n_mass_bins=self.n_mass_bins, degree=self.degree).fit(X, m)
        Z = np.clip(self.quantile_.transform(X, m), -float(self.clip), float(self.clip))
        lm = np.log(m)
        self.u_centre_, self.u_scale_ = float(lm.mean()), float(max(lm.std(), 1e-12))
        u = self._u(m)
        if use.sum() < 2 * (max(kd, km or 0) + 1) * d:
            raise InputError(f"copula decorrelation: {int(use.sum())} events are too few for {d} features at degree {kd}")
        w = mass_weights(m) if self.weight_by_mass else np.ones(m.size)
        sw = np.sqrt(w * use)

        def wls(V, Y):  # weighted least squares, coefficients (k+1, ...)
            coef, *_ = np.linalg.lstsq(V * sw[:, None], Y * sw[:, None], rcond=None)
            return coef

        if km is None:
            self.mean_coef_ = np.zeros((1, d))
        else:
            self.mean_coef_ = wls(_poly(u, km), Z)
        R = Z - _poly(u, self.mean_coef_.shape[0] - 1) @ self.mean_coef_
        iu = np.triu_indices(d)
        self.moment_coef_ = wls(_poly(u, kd), R[:, iu[0]] * R[:, iu[1]])  # (kd+1, d(d+1)/2)
        self.u_range_ = (float(u.min()), float(u.max()))
        self.grid_ = np.linspace(*self.u_range_, int(self.n_grid)) if u.max() > u.min() else np.array([u.min()] * 2)
        self.n_features_in_ = d
        self.winv_ = np.linalg.inv(np.linalg.cholesky(self.correlation(u=self.grid_)))  # (G, d, d) lower
        self.remap_ = None
        if self.remap:
            self.remap_ = ConditionalQuantileTransform(n_mass_bins=self.n_mass_bins, degree=self.degree).fit(
                self._whiten(self.quantile_.transform(X, m), m), m)
        return self

    def correlation(self, m=None, *, u=None) -> np.ndarray:
        """The modelled correlation matrices ``C`` of the quantile-mapped features at masses ``m``
        (or at standardised ``u``): (n, d, d), symmetric, unit diagonal, eigenvalues >= ~``eig_min``."""
        if not hasattr(self, "moment_coef_"):
            raise NotFittedError("ConditionalCopulaTransform is not fitted")
        if u is None:
            u = self._u(np.asarray(m, float))
        u = np.clip(np.atleast_1d(np.asarray(u, float)), *self.u_range_)
        d = self.n_features_in_
        iu = np.triu_indices(d)
        S = np.zeros((u.size, d, d))
        S[:, iu[0], iu[1]] = _poly(u, self.moment_coef_.shape[0] - 1) @ self.moment_coef_
        S = np.triu(S) + np.swapaxes(np.triu(S, 1), 1, 2)  # symmetric
        dg = np.maximum(np.diagonal(S, axis1=1, axis2=2), 1e-3)
        C = S / np.sqrt(dg[:, :, None] * dg[:, None, :])
        C[:, np.arange(d), np.arange(d)] = 1.0
        ev, V = np.linalg.eigh(C)
        C = np.einsum("nij,nj,nkj->nik", V, np.maximum(ev, float(self.eig_min)), V)
        dg = np.sqrt(np.diagonal(C, axis1=1, axis2=2))
        C = C / (dg[:, :, None] * dg[:, None, :])
        return 0.5 * (C + np.swapaxes(C, 1, 2))

    def _mean(self, m):
        u = np.clip(self._u(m), *self.u_range_)
        return _poly(u, self.mean_coef_.shape[0] - 1) @ self.mean_coef_

    def _winv_at(self, m):
        """``L(m)^-1`` element by element, linearly interpolated on the grid: (d, d) list of (n,) arrays."""
        u = self._u(m)
        d = self.n_features_in_
        return [[np.interp(u, self.grid_, self.winv_[:, i, j]) if j <= i else None for j in range(d)] for i in range(d)]

    def _whiten(self, Z, m):
        R = Z - self._mean(m)
        W = self._winv_at(m)
        out = np.zeros_like(R)
        for i in range(R.shape[1]):
            for j in range(i + 1):
                out[:, i] += W[i][j] * R[:, j]
        return out

    def transform(self, X, m) -> np.ndarray:
        X, m = self._validate(X, m, "transform")
        Zw = self._whiten(self.quantile_.transform(X, m), m)
        return Zw if self.remap_ is None else self.remap_.transform(Zw, m)

    def inverse_transform(self, U, m) -> np.ndarray:
        """Features of whitened scores ``U`` at masses ``m`` (each stage inverted: remap, the triangular
        whitening by forward substitution with the same interpolated ``L(m)^-1``, the quantile map)."""
        U, m = self._validate(U, m, "inverse_transform", x_name="U")
        Zw = U if self.remap_ is None else self.remap_.inverse_transform(U, m)
        W = self._winv_at(m)
        R = np.zeros_like(Zw)
        for i in range(Zw.shape[1]):
            acc = Zw[:, i].copy()
            for j in range(i):
                acc -= W[i][j] * R[:, j]
            R[:, i] = acc / W[i][i]
        return self.quantile_.inverse_transform(R + self._mean(m), m)


class MassRatioTransform(BaseEstimator):
    """Divide the mass-like columns (``columns``: indices) by ``m`` (TeV-free ratios); others pass through.

    Nothing is fitted: ``fit(X, m, sr=None)`` records the number of features (``sr`` is ignored; every
    transform accepts it: :class:`Decorrelated` passes it)."""

    def __init__(self, columns=()):
        self.columns = columns

    def fit(self, X, m, sr=None):
        X, m = _check_xm(X, m, "ratio decorrelation (fit)", positive_m=True)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X, m) -> np.ndarray:
        X, m = _check_xm(X, m, "ratio decorrelation (transform)", n_features=getattr(self, "n_features_in_", None),
                         positive_m=True)
        X = X.copy()
        for c in self.columns:
            X[:, int(c)] = X[:, int(c)] / m
        return X


def make_transform(kind: str, features=(), params: dict | None = None):
    """A fresh transform for ``kind`` (``"quantile"``, ``"ratio"``, ``"flow"``, ``"copula"``); ``features`` names the columns."""
    params = dict(params or {})
    params.pop("fit_on", None)  # the wrapper's option (Decorrelated), not the transform's
    try:
        if kind == "quantile":
            return ConditionalQuantileTransform(**params)
        if kind == "flow":
            return ConditionalFlowTransform(**params)
        if kind == "copula":
            return ConditionalCopulaTransform(**params)
    except TypeError as e:
        raise ConfigError(f"decorrelation {kind!r}: bad parameter ({e})") from None
    if kind == "ratio":
        cols = [i for i, f in enumerate(features) if f in MASS_LIKE]
        if not cols:
            raise ConfigError(f"decorrelation 'ratio' needs a mass-like feature ({', '.join(MASS_LIKE)}); features are {list(features)}")
        return MassRatioTransform(columns=tuple(cols))
    raise ConfigError(f"unknown decorrelation {kind!r}; choose one of {', '.join(DECORRELATIONS)}")


def default_decorrelation(method: Any) -> str:
    """The decorrelation ``"auto"`` resolves to for a method name or instance (see the module docstring)."""
    if isinstance(method, str):
        return SR_VS_SB_DEFAULT if method in _SR_VS_SB_METHODS else "none"
    if getattr(method, "trains_sr_vs_sb", False) or getattr(method, "name", None) in _SR_VS_SB_METHODS:
        return SR_VS_SB_DEFAULT
    return "none"


def resolve_decorrelation(decorrelation: str, method: Any) -> str:
    if decorrelation not in DECORRELATIONS:
        raise ConfigError(f"unknown decorrelation {decorrelation!r}; choose one of {', '.join(DECORRELATIONS)}")
    return default_decorrelation(method) if decorrelation == "auto" else decorrelation


class Decorrelated(BaseEstimator):
    """An anomaly method trained and applied on decorrelated features.

    ``fit(X, m, *, sr, ...)`` fits ``transform`` (``"quantile"``, ``"ratio"``, ``"flow"`` or ``"copula"``) on
    some of the training events (``transform.fit(X, m, sr=sr)``: every transform accepts ``sr``), then a fresh
    copy of ``method`` on the transformed features; ``score_samples(X, m)`` scores transformed features.
    Bad input (NaN or infinite values, wrong shapes) raises one :class:`~excess.errors.InputError` that names
    ``X`` or ``m``, the first bad row, the value and the feature (by its name in ``features``).
    ``fit_on`` says which events fit the transform:

    * ``"window"``: all training events (the method's own training events);
    * ``"sidebands"``: the training events in the sidebands (a signal in the SR cannot be learned);
    * ``"heldout"``: a random ``heldout_fraction`` of the training *sideband* events, which the method
      then does not see (it trains on the SR events and the other sideband events): neither the
      method's training events nor the scored ones were seen by the transform, and no SR event was;
    * ``"auto"`` (default): ``"window"`` for every transform (see the module docstring for ``"flow"``).

    A separate background sample (``X_background``, idealized AD) is transformed too. ``random_state``
    seeds the method, the transform (if it has a seed) and the held-out split.
    """

    def __init__(self, method=None, transform: str = "quantile", features=(), transform_params: dict | None = None,
                 fit_on: str = "auto", heldout_fraction: float = 0.5, random_state=None):
        self.method = method
        self.transform = transform
        self.fit_on = fit_on
        self.heldout_fraction = heldout_fraction
        self.features = features
        self.transform_params = transform_params
        self.random_state = random_state

    def resolved_fit_on(self) -> str:
        if self.fit_on not in FIT_ON:
            raise ConfigError(f"fit_on must be one of {', '.join(FIT_ON)}, got {self.fit_on!r}")
        return DEFAULT_FIT_ON.get(self.transform, "window") if self.fit_on == "auto" else self.fit_on

    @property
    def name(self) -> str:
        return f"{getattr(self.method, 'name', type(self.method).__name__)}+{self.transform}"

    @property
    def needs_labels(self) -> bool:
        return bool(getattr(self.method, "needs_labels", False))

    @property
    def needs_background(self) -> bool:
        return bool(getattr(self.method, "needs_background", False))

    def _names(self):
        return list(self.features) if self.features else None

    def fit(self, X, m, *, sr, **fit_kw):
        X, m = _check_xm(X, m, "decorrelation (fit)", self._names())
        lo, hi = map(float, sr)
        fit_on = self.resolved_fit_on()
        if not 0 < float(self.heldout_fraction) < 1:
            raise ConfigError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        rng = np.random.default_rng(self.random_state)
        seed = t_seed = None
        if self.random_state is not None:  # the method's seed first: the same as before the transform had one
            seed, t_seed = int(rng.integers(2**31 - 1)), int(rng.integers(2**31 - 1))
        is_sb = (m < lo) | (m >= hi)
        train = np.ones(m.size, bool)  # the method's training events
        if fit_on == "window":
            use = np.ones(m.size, bool)
        elif fit_on == "sidebands":
            use = is_sb
        else:  # heldout: a random part of the sideband events fits the transform, the method never sees it
            use = is_sb & (rng.random(m.size) < float(self.heldout_fraction))
            train = ~use
        tr = make_transform(self.transform, self.features, self.transform_params)
        if t_seed is not None and "random_state" in tr.get_params(deep=False) and tr.random_state is None:
            tr.set_params(random_state=t_seed)
        self.transform_ = tr.fit(X[use], m[use], sr=(lo, hi))  # every transform takes sr (most ignore it)
        self.n_transform_events_ = int(use.sum())
        est = fresh_estimator(self.method, seed)
        kw = dict(fit_kw)
        if kw.get("X_background") is not None:
            kw["X_background"] = self.transform_.transform(kw["X_background"], kw["m_background"])
        if kw.get("y") is not None and not train.all():
            kw["y"] = np.asarray(kw["y"])[train]
        self.method_ = est.fit(self.transform_.transform(X[train], m[train]), m[train], sr=(lo, hi), **kw)
        for name in ("signal_fraction_", "signal_fraction_err_"):  # R-ANODE's estimate, read by run_fold
            if hasattr(self.method_, name):
                setattr(self, name, getattr(self.method_, name))
        return self

    def score_samples(self, X, m) -> np.ndarray:
        if not hasattr(self, "method_"):
            raise NotFittedError("Decorrelated is not fitted")
        X, m = _check_xm(X, m, "decorrelation (score_samples)", self._names())
        return self.method_.score_samples(self.transform_.transform(X, m), m)
