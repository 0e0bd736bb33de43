"""Background of a selection from its efficiency: ``b(m) = f_incl(m) * eps(m)``.

A cut on an anomaly score keeps a small fraction of the events. Fitting the *selected* events'
mjj spectrum in the sidebands with the dijet function (:func:`excess.stats.fit.fit_background`)
assumes the cut leaves a smoothly falling spectrum. A classifier that learned features correlated
with mjj breaks that (it *sculpts* the spectrum), and at tight cuts the few selected sideband
events leave a 3-parameter extrapolation very uncertain. The efficiency model avoids both:

* the **inclusive** spectrum (every event of the window, before the cut) is high-statistics and
  unsculpted: it is fitted in the sidebands with the dijet function (``f_incl``);
* the **selection efficiency** ``eps(m) = selected / inclusive`` is fitted in the sidebands as a
  low-order polynomial in ``logit(eps)`` of ``ln mjj`` (jet masses scale like the jet pT, so a
  sculpting cut's efficiency is close to a power of mjj; linear in ``m`` instead biased the SR
  prediction by +0.2 sigma in a toy where the cut variable scales like ``mjj``), with the binomial likelihood of the
  selected counts given the inclusive counts (a logistic-regression GLM, solved by Newton's method);
* the SR background is ``b = integral over the SR of f_incl(m) eps(m) dm`` and its uncertainty
  adds the two fits' covariances (delta method). The binomial likelihood is conditional on the
  inclusive counts, so the two estimates are independent.

A flat ``eps(m)`` (``degree=0``) is the statement "the cut does not sculpt"; ``degree=1`` absorbs a
residual linear sculpting in logit space; higher degrees extrapolate badly across the SR.
``degree="auto"`` (the scan's default) keeps the slope only when the sidebands ask for it
(:func:`choose_degree`, a likelihood-ratio test like the f3-vs-f4 choice): with a decorrelated
selection it is usually flat, and the SR prediction is then about twice as precise at tight cuts.
``degree="average"`` instead *averages* the fits of degree 1 and 2 with Akaike weights and adds their
spread to the uncertainty (:func:`efficiency_background`; Buckland, Burnham & Augustin 1997): a
curvature the sidebands only hint at is neither ignored nor over-trusted, and a slope is always fitted
(:data:`AUTO_MIN_DEGREE`). Picking *one* degree by likelihood-ratio tests and quoting that fit's error
is not calibrated when the selection really sculpts: background-only scans of a learned selection
*without* decorrelation, whose efficiency had a true slope of 2.7-15 sigma in the sidebands, picked the
flat fit when the sidebands happened to hide it and then under-predicted the SR by 3-5 of its quoted
sigma (fake excesses up to 4-5 sigma in 200-300 toys per window); ``"average"`` removed that tail at
about 7-16 % less local Z. It is not the default: with the default decorrelation (where the selections
sculpt far less and the flat fit's precision is worth most at tight cuts) it did not remove the
remaining tail of 100 background-only toy scans, and on the generated 1M sample at S/sqrt(B) = 2 it
cost 10-12 % of CWoLa's local Z (README, "Sensitivity at the frontier").
:attr:`EfficiencyFit.z_slope` and :attr:`EfficiencyFit.p_flat` measure how far from flat the
selection is: the sculpting diagnostic.

Background-only pseudo-experiments of this model (:func:`efficiency_pseudo_experiment_z`) draw the
inclusive spectrum (Poisson) and the nested selections (binomial thinning), and refit both, like
the data: they give the look-elsewhere correction of a scan that uses it.

Example
-------
>>> import numpy as np
>>> from excess.stats.efficiency import fit_efficiency
>>> edges = np.linspace(2800, 4200, 29)
>>> n_incl = np.full(28, 10_000)
>>> n_sel = np.random.default_rng(1).binomial(n_incl, 0.01)
>>> f = fit_efficiency(edges, n_sel, n_incl, degree=1)
>>> bool(abs(f.efficiency(3500.0) - 0.01) < 0.001)
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import stats as sps
from scipy.special import expit

from .._util import check_random_state
from ..errors import ConfigError, FitError, InputError
from .dijet import log_design_matrix, quadrature_nodes
from .fit import DijetFit, FunctionChoice, ProfiledSignalFit, fit_background, signal_template
from .significance import LocalSignificance, q0_counting, z_to_p

__all__ = [
    "EfficiencyFit",
    "EfficiencyBackground",
    "fit_efficiency",
    "efficiency_background",
    "efficiency_pseudo_experiment_z",
    "choose_degree",
    "akaike_average",
    "SignalFit",
    "signal_template",
    "fit_signal",
    "signal_fit_pseudo_experiment_z",
]

_MAX_DEGREE = 3


def _design(m, degree: int, centre: float, scale: float) -> np.ndarray:
    u = np.log(np.asarray(m, dtype=float) / centre) / scale
    return np.stack([u**j for j in range(degree + 1)], axis=-1)


def _binomial_deviance(k, n, eps) -> float:
    """``-2 ln L`` of binomial counts relative to the saturated model (0 ln 0 = 0)."""
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    eps = np.clip(np.asarray(eps, float), 1e-300, 1 - 1e-16)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(k > 0, k * np.log(k / (n * eps)), 0.0)
        t2 = np.where(n - k > 0, (n - k) * np.log((n - k) / (n * (1 - eps))), 0.0)
    return float(2.0 * np.sum(t1 + t2))


def _tup2(a) -> tuple:
    return tuple(map(tuple, np.asarray(a, float).tolist()))


@dataclass(frozen=True)
class EfficiencyFit:
    """Binomial fit of ``logit eps(m) = sum_j theta_j u^j``, ``u = ln(m / centre) / scale``.

    ``n_selected``/``n_inclusive`` per bin of ``edges`` (all bins; only ``fit_mask`` bins fitted).
    ``deviance``/``ndf``/``p_value``: goodness of fit; ``z_slope``: the linear coefficient over its
    error (0 for ``degree=0``); ``p_flat``: p-value of "eps is constant" (likelihood ratio against
    this fit, chi2 with ``degree`` dof; for ``degree=0`` both come from an auxiliary degree-1 fit, so the
    sculpting diagnostic is measured whatever degree the prediction uses).
    """

    degree: int
    theta: tuple
    cov: tuple
    centre: float
    scale: float
    edges: tuple
    n_selected: tuple
    n_inclusive: tuple
    fit_mask: tuple
    deviance: float
    ndf: int
    p_value: float
    z_slope: float
    p_flat: float

    def efficiency(self, m) -> np.ndarray:
        """Fitted efficiency at mass ``m`` (GeV)."""
        return expit(_design(m, self.degree, self.centre, self.scale) @ np.asarray(self.theta))

    def efficiency_band(self, m) -> tuple[np.ndarray, np.ndarray]:
        """``(eps, sigma_eps)`` at ``m`` from the fit covariance (delta method)."""
        a = _design(m, self.degree, self.centre, self.scale)
        eps = expit(a @ np.asarray(self.theta))
        var = np.einsum("...i,ij,...j->...", a, np.asarray(self.cov), a)
        return eps, eps * (1 - eps) * np.sqrt(np.maximum(var, 0.0))

    def ratio(self) -> tuple[np.ndarray, np.ndarray]:
        """Observed ``selected / inclusive`` per bin and its binomial error (NaN for empty bins)."""
        k = np.asarray(self.n_selected, float)
        n = np.asarray(self.n_inclusive, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(n > 0, k / n, np.nan)
            # error from the fitted efficiency where the bin has none selected (avoids zero errors)
            e_fit = self.efficiency(0.5 * (np.asarray(self.edges)[1:] + np.asarray(self.edges)[:-1]))
            err = np.where(n > 0, np.sqrt(np.maximum(r, e_fit) * (1 - np.maximum(r, e_fit)) / n), np.nan)
        return r, err

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EfficiencyFit:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("theta", "edges", "n_selected", "n_inclusive", "fit_mask"):
            kw[k] = tuple(kw[k])
        kw["cov"] = _tup2(kw["cov"])
        for k in ("deviance", "p_value", "z_slope", "p_flat"):
            kw[k] = float("nan") if kw[k] is None else float(kw[k])
        return cls(**kw)


def _newton_logistic(a, k, n, *, max_iter: int = 100, tol: float = 1e-10):
    """MLE of the binomial GLM with logit link: ``(theta, cov)``; raises FitError if it diverges."""
    p = a.shape[1]
    tot_k, tot_n = k.sum(), n.sum()
    p0 = np.clip(tot_k / tot_n, 1e-12, 1 - 1e-12)
    theta = np.zeros(p)
    theta[0] = np.log(p0 / (1 - p0))
    for _ in range(max_iter):
        eps = expit(a @ theta)
        w = n * eps * (1 - eps)
        grad = a.T @ (k - n * eps)
        hess = (a * w[:, None]).T @ a
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:
            raise FitError(f"efficiency fit: singular information matrix ({exc})") from None
        # damped step: never move the linear predictor by more than 2 units at once
        big = np.max(np.abs(a @ step)) if a.size else 0.0
        if big > 2.0:
            step *= 2.0 / big
        theta = theta + step
        if np.max(np.abs(step)) < tol:
            break
    else:
        raise FitError("efficiency fit did not converge (the selected counts may be all zero on one side)")
    eps = expit(a @ theta)
    hess = (a * (n * eps * (1 - eps))[:, None]).T @ a
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError as exc:
        raise FitError(f"efficiency fit: no covariance ({exc})") from None
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(cov))):
        raise FitError("efficiency fit: non-finite parameters")
    return theta, cov


def fit_efficiency(edges, n_selected, n_inclusive, *, fit_mask=None, degree: int = 1, min_selected: int = 1,
                   centre: float | None = None, scale: float | None = None) -> EfficiencyFit:
    """Fit ``eps(m) = selected / inclusive`` in the ``fit_mask`` bins (binomial likelihood, logit polynomial).

    Parameters
    ----------
    edges : bin edges in mjj (GeV)
    n_selected, n_inclusive : counts per bin after and before the cut (``n_selected <= n_inclusive``)
    fit_mask : bins to fit (the sidebands); default all
    degree : polynomial degree in ``logit(eps)`` (0: flat, 1: linear in ln m)
    min_selected : fewer selected events in the fitted bins raise :class:`FitError`
    centre, scale : the mass variable ``u = ln(m / centre) / scale`` (default: the geometric centre of the
        edges and half the log-width, so ``u`` runs from -1 to 1)
    """
    edges = np.asarray(edges, float)
    k = np.asarray(n_selected, float)
    n = np.asarray(n_inclusive, float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InputError("edges must be a 1-d increasing array with at least 2 entries")
    if k.shape != (edges.size - 1,) or n.shape != k.shape:
        raise InputError(f"n_selected and n_inclusive need {edges.size - 1} entries (one per bin), got {k.shape}, {n.shape}")
    if np.any(k < 0) or np.any(k > n) or not (np.all(np.isfinite(k)) and np.all(np.isfinite(n))):
        raise InputError("counts must be finite with 0 <= n_selected <= n_inclusive in every bin")
    if not 0 <= int(degree) <= _MAX_DEGREE:
        raise ConfigError(f"efficiency degree must be 0..{_MAX_DEGREE}, got {degree}")
    degree = int(degree)
    mask = np.ones(k.size, bool) if fit_mask is None else np.asarray(fit_mask, bool)
    if mask.shape != k.shape:
        raise InputError("fit_mask must have one entry per bin")
    fit_bins = mask & (n > 0)
    if fit_bins.sum() <= degree + 1:
        raise FitError(f"{int(fit_bins.sum())} non-empty fit bins for an efficiency polynomial of degree {degree}")
    if k[fit_bins].sum() < max(min_selected, 1):
        raise FitError(f"{k[fit_bins].sum():.0f} selected events in the fit range, fewer than {max(min_selected, 1)}")
    if k[fit_bins].sum() >= n[fit_bins].sum():
        raise FitError("every event is selected: no efficiency to fit")
    centre = float(np.sqrt(edges[0] * edges[-1])) if centre is None else float(centre)
    scale = float(0.5 * np.log(edges[-1] / edges[0])) if scale is None else float(scale)
    cen = 0.5 * (edges[1:] + edges[:-1])
    a = _design(cen[fit_bins], degree, centre, scale)
    theta, cov = _newton_logistic(a, k[fit_bins], n[fit_bins])
    dev = _binomial_deviance(k[fit_bins], n[fit_bins], expit(a @ theta))
    ndf = int(fit_bins.sum()) - (degree + 1)
    if degree >= 1:
        z_slope = float(theta[1] / np.sqrt(cov[1, 1]))
        p0 = k[fit_bins].sum() / n[fit_bins].sum()
        dev0 = _binomial_deviance(k[fit_bins], n[fit_bins], np.full(int(fit_bins.sum()), p0))
        p_flat = float(sps.chi2.sf(max(dev0 - dev, 0.0), degree))
    else:  # the diagnostic always measures a slope, whatever degree the prediction uses
        try:
            a1 = _design(cen[fit_bins], 1, centre, scale)
            th1, cov1 = _newton_logistic(a1, k[fit_bins], n[fit_bins])
            z_slope = float(th1[1] / np.sqrt(cov1[1, 1]))
            dev1 = _binomial_deviance(k[fit_bins], n[fit_bins], expit(a1 @ th1))
            p_flat = float(sps.chi2.sf(max(dev - dev1, 0.0), 1))
        except FitError:
            z_slope, p_flat = float("nan"), float("nan")
    return EfficiencyFit(
        degree=degree, theta=tuple(theta.tolist()), cov=_tup2(cov), centre=centre, scale=scale,
        edges=tuple(edges.tolist()), n_selected=tuple(k.tolist()), n_inclusive=tuple(n.tolist()),
        fit_mask=tuple(bool(b) for b in mask), deviance=dev, ndf=ndf,
        p_value=float(sps.chi2.sf(dev, ndf)) if ndf > 0 else float("nan"), z_slope=z_slope, p_flat=p_flat,
    )


AUTO_MAX_DEGREE = 2
"""Highest degree ``"average"`` averages over (and ``"auto"``, :func:`choose_degree`, may choose): 2, because a SR-vs-SB
classifier that learned a smooth mjj dependence of the features selects events typical of the *middle* of the window, so its efficiency
curves down on both sides of the SR (on generated QCD a degree <= 1 then under-predicted the SR by
3 % at eff 0.1, a fake 2.5-3 sigma); a quadratic through both sidebands interpolates that curvature."""


AUTO_MIN_DEGREE = 1
"""Lowest degree ``"average"`` averages over: 1. The flat fit (degree 0) is the most precise, but letting
the sidebands decide whether it is allowed is not safe: a true slope of 1-2 sigma in the sidebands is
missed often enough that the flat fit's weight biases the SR prediction (toys with a 1.7 sigma slope:
mean pull +0.2, 5 % of the signed Z above 2 instead of 2.3 %, with degrees 0-2 averaged; +0.07 and
no excess tail with degrees 1-2). Pass ``degree=0`` when the selection is known not to sculpt."""


def choose_degree(edges, n_selected, n_inclusive, *, fit_mask=None, max_degree: int = AUTO_MAX_DEGREE,
                  alpha: float = 0.05, min_selected: int = 1) -> int:
    """The degree ``d <= max_degree`` of the efficiency fit: starting flat, a higher degree replaces the
    current one when it improves the sideband fit significantly (likelihood ratio ``chi2(d - d_current)``
    at size ``alpha``, as the f3-vs-f4 dijet choice). Every higher degree is tested against the current
    one, so a curvature without a slope (an efficiency peaked between the sidebands) is found too.

    A flat efficiency (``d = 0``) has one parameter: its SR prediction is the most precise (at tight cuts
    about twice as precise as ``d = 1``); a slope or a curvature is kept only when the sidebands show one.
    The chosen fit's error ignores the choice, which makes it over-confident when a true slope or
    curvature is about as large as its error; the efficiency model's ``degree="average"`` averages the
    degrees instead (:func:`efficiency_background`).
    """
    best = fit_efficiency(edges, n_selected, n_inclusive, fit_mask=fit_mask, degree=0, min_selected=min_selected)
    for d in range(1, int(max_degree) + 1):
        try:
            nxt = fit_efficiency(edges, n_selected, n_inclusive, fit_mask=fit_mask, degree=d, min_selected=min_selected)
        except FitError:
            break
        if sps.chi2.sf(max(best.deviance - nxt.deviance, 0.0), d - best.degree) < alpha:
            best = nxt
    return best.degree


def _resolve_degree(degree, edges, k, n, mask, min_selected) -> int:
    if degree == "auto":
        return choose_degree(edges, k, n, fit_mask=mask, min_selected=min_selected)
    if isinstance(degree, str):
        raise ConfigError(f"efficiency degree must be an integer or 'auto' ('average': the efficiency model only), "
                          f"got {degree!r}")
    return int(degree)


@dataclass(frozen=True)
class EfficiencyBackground:
    """The SR background of one selection from the inclusive fit times the efficiency fit.

    ``edges``/``counts``/``expected``: the selected events' histogram and its predicted background in
    every bin (so :func:`excess.search.characterise.resonance_mass` and the plots can use it like a
    :class:`~excess.stats.fit.DijetFit`). ``b_hat +- sigma_b`` in the SR, with the two contributions.
    ``degree_weights``: with ``degree="average"``, the Akaike weight of each degree ``0..AUTO_MAX_DEGREE`` (0 for 0)
    in the averaged prediction (``efficiency_fit`` is then the fit of the largest weight, for the
    diagnostics); empty for a fixed degree.
    """

    model: str
    sr: tuple
    edges: tuple
    counts: tuple
    expected: tuple
    b_hat: float
    sigma_b: float
    sigma_b_inclusive: float
    sigma_b_efficiency: float
    efficiency_fit: EfficiencyFit
    inclusive_fit: DijetFit
    inclusive_choice: FunctionChoice | None = None
    degree_weights: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["efficiency_fit"] = self.efficiency_fit.to_dict()
        d["inclusive_fit"] = self.inclusive_fit.to_dict()
        d["inclusive_choice"] = None if self.inclusive_choice is None else self.inclusive_choice.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EfficiencyBackground:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("sr", "edges", "counts", "expected", "degree_weights"):
            if k in kw:
                kw[k] = tuple(kw[k])
        kw["efficiency_fit"] = EfficiencyFit.from_dict(kw["efficiency_fit"])
        kw["inclusive_fit"] = DijetFit.from_dict(kw["inclusive_fit"])
        if kw.get("inclusive_choice") is not None:
            kw["inclusive_choice"] = FunctionChoice.from_dict(kw["inclusive_choice"])
        return cls(**kw)


def _product_integrals(incl: DijetFit, eff: EfficiencyFit, lo: float, hi: float, max_step: float = 25.0):
    """``integral f_incl eps`` over [lo, hi] with its gradients w.r.t. both fits' parameters."""
    n_sub = max(1, int(np.ceil((hi - lo) / max_step)))
    nodes, weights = quadrature_nodes(np.linspace(lo, hi, n_sub + 1))
    x, w = nodes.ravel(), weights.ravel()
    a_incl = log_design_matrix(x, incl.n_params, incl.pivot, sqrt_s=incl.sqrt_s)
    f = incl.density(x) * w
    a_eff = _design(x, eff.degree, eff.centre, eff.scale)
    eps = eff.efficiency(x)
    value = float(np.sum(f * eps))
    g_incl = (f * eps) @ a_incl
    g_eff = (f * eps * (1 - eps)) @ a_eff
    return value, g_incl, g_eff


def efficiency_background(edges, n_selected, n_inclusive, sr: tuple[float, float], *, fit_mask=None,
                          degree: int | str = 1, inclusive_fit: DijetFit | None = None,
                          inclusive_choice: FunctionChoice | None = None, fit_kw: dict | None = None,
                          min_selected: int = 1, inclusive: str = "observed") -> EfficiencyBackground:
    """Predict the selected background in ``sr`` as inclusive spectrum x fitted efficiency.

    ``inclusive="observed"`` (default): ``b = sum over the SR bins of N_i eps(m_i)`` with the *observed*
    inclusive counts ``N_i``. Given the inclusive counts, the selected ones are binomial, so this is
    the exact conditional prediction and its only uncertainty is the efficiency fit's. ``"fit"``:
    ``b = integral over the SR of f_incl(m) eps(m)`` with the inclusive dijet fit ``f_incl``; it adds
    the fit's uncertainty, and it misses the Poisson fluctuation of the observed inclusive SR count,
    which the selected SR count follows (a pull variance ``1 + eps`` instead of 1 under the null).
    ``inclusive_fit`` (a sideband fit of ``n_inclusive``) may be passed to share it between the cuts
    of one window; otherwise it is fitted here with :func:`fit_background` (``fit_kw``); it is kept
    for the diagnostics in either case.

    ``degree="average"``: the predictions of the degrees ``AUTO_MIN_DEGREE..AUTO_MAX_DEGREE`` (those whose fit exists)
    averaged with Akaike weights ``w_d ~ exp(-(deviance_d + 2 (d + 1)) / 2)``, with the model-averaged
    uncertainty ``sigma_b = sum_d w_d sqrt(sigma_d^2 + (b_d - b_hat)^2)`` (Buckland et al. 1997): the
    spread between the degrees the sidebands allow is part of the error, so choosing among them does
    not make the prediction over-confident.
    """
    if degree == "average":
        return _averaged_background(edges, n_selected, n_inclusive, sr, fit_mask=fit_mask, inclusive_fit=inclusive_fit,
                                    inclusive_choice=inclusive_choice, fit_kw=fit_kw, min_selected=min_selected,
                                    inclusive=inclusive)
    edges = np.asarray(edges, float)
    n_inclusive = np.asarray(n_inclusive, float)
    n_selected = np.asarray(n_selected, float)
    if fit_mask is None:
        raise InputError("efficiency_background needs fit_mask (the sideband bins)")
    if inclusive not in ("observed", "fit"):
        raise ConfigError(f"inclusive must be 'observed' or 'fit', got {inclusive!r}")
    mask = np.asarray(fit_mask, bool)
    lo, hi = map(float, sr)
    if inclusive_fit is None:
        inclusive_fit, inclusive_choice = fit_background(edges, n_inclusive, fit_mask=mask, **(fit_kw or {}))
    degree = _resolve_degree(degree, edges, n_selected, n_inclusive, mask, min_selected)
    eff = fit_efficiency(edges, n_selected, n_inclusive, fit_mask=mask, degree=degree, min_selected=min_selected)
    if inclusive == "observed":
        cen = 0.5 * (edges[1:] + edges[:-1])
        sr_bins = (edges[:-1] >= lo - 1e-9) & (edges[1:] <= hi + 1e-9)
        if not sr_bins.any():
            raise InputError(f"no bin of the edges lies inside the SR {lo:g}-{hi:g}")
        eps_c = eff.efficiency(cen)
        expected = n_inclusive * eps_c
        b = float(expected[sr_bins].sum())
        g_eff = (n_inclusive * eps_c * (1 - eps_c))[sr_bins] @ _design(cen[sr_bins], eff.degree, eff.centre, eff.scale)
        var_incl = 0.0
    else:
        b, g_incl, g_eff = _product_integrals(inclusive_fit, eff, lo, hi)
        var_incl = float(g_incl @ np.asarray(inclusive_fit.cov) @ g_incl)
        nodes, weights = quadrature_nodes(edges)
        expected = (inclusive_fit.density(nodes) * eff.efficiency(nodes) * weights).sum(axis=1)
    var_eff = float(g_eff @ np.asarray(eff.cov) @ g_eff)
    return EfficiencyBackground(
        model="efficiency", sr=(lo, hi), edges=tuple(edges.tolist()), counts=tuple(n_selected.tolist()),
        expected=tuple(expected.tolist()), b_hat=b, sigma_b=float(np.sqrt(max(var_incl, 0) + max(var_eff, 0))),
        sigma_b_inclusive=float(np.sqrt(max(var_incl, 0))), sigma_b_efficiency=float(np.sqrt(max(var_eff, 0))),
        efficiency_fit=eff, inclusive_fit=inclusive_fit, inclusive_choice=inclusive_choice,
    )


def akaike_average(degrees, deviances, b, sigma) -> tuple[np.ndarray, float, float]:
    """Akaike weights of efficiency fits of the given ``degrees`` (``d + 1`` parameters each) from their
    ``deviances``, and the model-averaged SR prediction ``b_hat`` with its uncertainty
    ``sum_d w_d sqrt(sigma_d^2 + (b_d - b_hat)^2)`` (Buckland et al. 1997): ``(weights, b_hat, sigma_b)``."""
    aic = np.asarray(deviances, float) + 2.0 * (np.asarray(degrees, float) + 1)
    w = np.exp(-0.5 * (aic - aic.min()))
    w /= w.sum()
    b, sigma = np.asarray(b, float), np.asarray(sigma, float)
    b_hat = float(w @ b)
    return w, b_hat, float(w @ np.sqrt(sigma**2 + (b - b_hat) ** 2))


def _averaged_background(edges, n_selected, n_inclusive, sr, *, fit_mask, inclusive_fit, inclusive_choice, fit_kw,
                         min_selected, inclusive) -> EfficiencyBackground:
    """``degree="average"`` of :func:`efficiency_background`: the Akaike-weighted average over the degrees."""
    if fit_mask is None:
        raise InputError("efficiency_background needs fit_mask (the sideband bins)")
    if inclusive_fit is None:
        inclusive_fit, inclusive_choice = fit_background(np.asarray(edges, float), np.asarray(n_inclusive, float),
                                                         fit_mask=np.asarray(fit_mask, bool), **(fit_kw or {}))
    fits: dict[int, EfficiencyBackground] = {}
    for d in range(AUTO_MIN_DEGREE, AUTO_MAX_DEGREE + 1):
        try:
            fits[d] = efficiency_background(edges, n_selected, n_inclusive, sr, fit_mask=fit_mask, degree=d,
                                            inclusive_fit=inclusive_fit, inclusive_choice=inclusive_choice,
                                            min_selected=min_selected, inclusive=inclusive)
        except FitError:
            if d == AUTO_MIN_DEGREE:
                raise
            break  # too few bins or events for a higher degree: the lower ones are averaged
    ds = sorted(fits)
    w, b_hat, sigma_b = akaike_average(ds, [fits[d].efficiency_fit.deviance for d in ds],
                                       [fits[d].b_hat for d in ds], [fits[d].sigma_b for d in ds])
    sig_incl = float(w @ np.array([fits[d].sigma_b_inclusive for d in ds]))
    expected = w @ np.array([fits[d].expected for d in ds])
    top = fits[ds[int(np.argmax(w))]]
    weights = np.zeros(AUTO_MAX_DEGREE + 1)
    weights[ds] = w
    return dataclasses.replace(
        top, expected=tuple(expected.tolist()), b_hat=b_hat, sigma_b=sigma_b, sigma_b_inclusive=sig_incl,
        sigma_b_efficiency=float(np.sqrt(max(sigma_b**2 - sig_incl**2, 0.0))), degree_weights=tuple(weights.tolist()),
    )


def _nested_selections(rng, n_inclusive, efficiencies):
    """One toy's nested selections of ``n_inclusive``: ``(j, k_j)`` per selection, loosest first, each
    thinned binomially from the previous one (a tighter cut is a subset of a looser one)."""
    nb = n_inclusive.size
    prev, prev_eff = n_inclusive, np.ones(nb)
    for j in np.argsort(-efficiencies.sum(axis=1)):
        ratio = np.clip(np.divide(efficiencies[j], prev_eff, out=np.zeros(nb), where=prev_eff > 0), 0.0, 1.0)
        k = rng.binomial(prev, ratio)
        prev, prev_eff = k, efficiencies[j]
        yield j, k


def efficiency_pseudo_experiment_z(edges, inclusive_expected, efficiencies, fit_mask, sr: tuple[float, float], *,
                                   n_toys: int, degree: int | str = 1, random_state=None, fit_kw: dict | None = None,
                                   min_selected: int = 1) -> np.ndarray:
    """Background-only pseudo-experiments of the efficiency model, refitted like the data.

    Parameters
    ----------
    inclusive_expected : (n_bins,) expected inclusive counts (e.g. the inclusive fit's expectation)
    efficiencies : (n_sel, n_bins) background efficiency of each selection per bin (e.g. the fitted
        ``eps`` at the bin centres); the selections are nested (a tighter cut is a subset of a looser
        one), so each toy thins the inclusive counts binomially, loosest cut first
    fit_mask : sideband bins; ``sr`` a union of the others

    Returns
    -------
    (n_toys, n_sel) local one-sided Z; NaN where a toy's fit failed.
    """
    rng = check_random_state(random_state)
    edges = np.asarray(edges, float)
    mu = np.asarray(inclusive_expected, float)
    eff = np.atleast_2d(np.asarray(efficiencies, float))
    mask = np.asarray(fit_mask, bool)
    nb = edges.size - 1
    if mu.shape != (nb,) or eff.shape[1] != nb or mask.shape != (nb,):
        raise InputError("inclusive_expected, efficiencies and fit_mask need one entry per bin")
    if np.any(~np.isfinite(eff)) or np.any((eff < 0) | (eff > 1)) or np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise InputError("efficiencies must lie in [0, 1] and expected counts be finite and >= 0")
    lo, hi = map(float, sr)
    sr_bins = (edges[:-1] >= lo - 1e-9) & (edges[1:] <= hi + 1e-9)
    out = np.full((int(n_toys), eff.shape[0]), np.nan)
    fit_kw = dict(fit_kw or {})
    for t in range(int(n_toys)):
        n_incl = rng.poisson(mu)
        try:
            incl_fit, _ = fit_background(edges, n_incl, fit_mask=mask, **fit_kw)
        except (FitError, InputError):
            continue
        for j, k in _nested_selections(rng, n_incl, eff):
            try:
                bg = efficiency_background(edges, k, n_incl, (lo, hi), fit_mask=mask, degree=degree,
                                           inclusive_fit=incl_fit, min_selected=min_selected)
                q0, _ = q0_counting(k[sr_bins].sum(), bg.b_hat, bg.sigma_b)
                out[t, j] = float(np.sqrt(q0))
            except (FitError, InputError):
                pass
    return out


# ----------------------------------------------------------------------------------------------
# signal-plus-background fit over the whole window
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignalFit(ProfiledSignalFit):
    """Fit of the selected counts in *every* bin of the window (SR and sidebands):

    ``k_i ~ Binomial(N_i, eps(m_i) + s T_i / N_i)``, ``N_i`` the inclusive counts, ``eps`` the
    logit polynomial of :class:`EfficiencyFit` and ``T_i`` a Gaussian signal template of width
    ``width`` centred on the SR (fraction of the signal in bin ``i``). ``q0`` compares the best fit
    with the fit at ``s = 0``: the signal's tails in the sidebands are modelled instead of raising the
    fitted efficiency there (the efficiency-only model over-predicts the SR when a strong selection
    keeps signal events just outside it). ``b_hat``/``sigma_b``: the background in the SR at the best fit.
    """

    null_fit: EfficiencyFit
    theta: tuple
    expected_background: tuple
    template: tuple
    kind: ClassVar[str] = "signal_fit"  # the local significance's method

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["null_fit"] = self.null_fit.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignalFit:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["null_fit"] = EfficiencyFit.from_dict(kw["null_fit"])
        for k in ("theta", "expected_background", "template"):
            kw[k] = tuple(kw[k])
        return cls(**kw)


def fit_signal(edges, n_selected, n_inclusive, sr: tuple[float, float], *, degree: int | str = 1,
               relative_width: float = 0.04, min_selected: int = 1, count_sr: bool = False) -> SignalFit:
    """Signal-plus-background fit of the selected counts over the whole window (see :class:`SignalFit`).

    ``relative_width``: the signal template's Gaussian width over the SR centre (the dijet mass
    resolution; 4 % ~ 140 GeV at 3.5 TeV, the LHCO R&D signal's core).

    ``count_sr=True`` (background model ``"profile"``): the SR bins are merged into one count, so the
    template's *shape inside the SR* plays no role; it only says which fraction of the signal leaks
    into each sideband bin. The test is then the counting experiment of the SR with the efficiency
    profiled from the sidebands (a binomial likelihood conditional on the observed inclusive counts:
    no inclusive dijet fit and no uncertainty of it), with the leaking signal modelled instead of
    raising the fitted efficiency. ``count_sr=False`` (``"signal_fit"``): every SR bin is fitted.
    """
    from iminuit import Minuit

    edges = np.asarray(edges, float)
    k = np.asarray(n_selected, float)
    n = np.asarray(n_inclusive, float)
    lo, hi = map(float, sr)
    cen = 0.5 * (edges[1:] + edges[:-1])
    in_sr = (cen >= lo) & (cen < hi)
    degree = _resolve_degree(degree, edges, k, n, ~in_sr, min_selected)  # chosen in the sidebands
    sb_fit = fit_efficiency(edges, k, n, fit_mask=~in_sr, degree=degree, min_selected=min_selected)
    centre = 0.5 * (lo + hi)
    width = float(relative_width) * centre
    if not width > 0:
        raise ConfigError(f"relative_width must be > 0, got {relative_width}")
    tmpl_all = signal_template(edges, centre, width)
    use = n > 0
    # groups of bins with one binomial count each: every bin, or every sideband bin and the SR as one
    if count_sr:
        sb_idx = np.nonzero(use & ~in_sr)[0]
        groups = np.zeros((sb_idx.size + 1, k.size))
        groups[np.arange(sb_idx.size), sb_idx] = 1.0
        groups[-1, use & in_sr] = 1.0
    else:
        groups = np.eye(k.size)[use]
    kg, ng, tg = groups @ k, groups @ n, groups @ tmpl_all
    a = _design(cen, degree, sb_fit.centre, sb_fit.scale)

    def dev(theta, s):
        p = (groups @ (n * expit(a @ theta)) + s * tg) / ng
        if np.any(p <= 0) or np.any(p >= 1):
            return 1e12
        return _binomial_deviance(kg, ng, p)

    def minimise(fcn, start):
        m = Minuit(fcn, start)
        m.errordef = Minuit.LEAST_SQUARES
        m.print_level = 0
        m.migrad(ncall=5000)
        return m

    th0 = np.asarray(sb_fit.theta)
    null_m = minimise(lambda par: dev(np.asarray(par), 0.0), th0)
    theta_null = np.asarray(null_m.values) if null_m.valid else th0
    dev_null = dev(theta_null, 0.0)
    s0 = max(float(k[in_sr].sum() - (n * sb_fit.efficiency(cen))[in_sr].sum()), 0.0)
    m = minimise(lambda par: dev(np.asarray(par[:-1]), par[-1]), np.r_[th0, s0])
    if not m.valid:
        m = minimise(lambda par: dev(np.asarray(par[:-1]), par[-1]), np.r_[theta_null, 0.0])
    if not m.valid:
        raise FitError(f"signal-plus-background fit did not converge (edm={m.fmin.edm:.3g})")
    m.hesse()
    par = np.asarray(m.values)
    cov = np.asarray(m.covariance)
    dev_best = min(m.fval, dev_null)
    q_signed = max(dev_null - dev_best, 0.0) * (1.0 if par[-1] >= 0 else -1.0)
    q0 = max(q_signed, 0.0)
    eps_all = expit(a @ par[:-1])
    bkg = n * eps_all
    # background in the SR at the best fit and its error (delta method in theta, s profiled)
    a_sr = a[in_sr]
    g = (n[in_sr] * eps_all[in_sr] * (1 - eps_all[in_sr])) @ a_sr
    var_b = float(g @ cov[:-1, :-1] @ g)
    null = dataclasses.replace(sb_fit, theta=tuple(theta_null.tolist()))
    return SignalFit(
        s_hat=float(par[-1]), s_err=float(np.sqrt(max(cov[-1, -1], 0.0))), q0=float(q0), q0_signed=float(q_signed),
        b_hat=float(bkg[in_sr].sum()), sigma_b=float(np.sqrt(max(var_b, 0.0))), n_sr=float(k[in_sr].sum()),
        centre=centre, width=width, null_fit=null, theta=tuple(par[:-1].tolist()),
        expected_background=tuple(bkg.tolist()), template=tuple(tmpl_all.tolist()),
    )


def signal_fit_pseudo_experiment_z(edges, n_inclusive, efficiencies, sr: tuple[float, float], *, n_toys: int,
                                   degree: int | str = 1, relative_width: float = 0.04, random_state=None,
                                   min_selected: int = 1, count_sr: bool = False) -> np.ndarray:
    """Background-only toys of the signal-plus-background fit: nested binomial thinning of the
    observed inclusive counts with the background-only efficiencies, refitted. ``(n_toys, n_sel)`` Z."""
    rng = check_random_state(random_state)
    n_incl = np.asarray(n_inclusive).astype(np.int64)
    eff = np.atleast_2d(np.asarray(efficiencies, float))
    out = np.full((int(n_toys), eff.shape[0]), np.nan)
    for t in range(int(n_toys)):
        for j, k in _nested_selections(rng, n_incl, eff):
            try:
                out[t, j] = fit_signal(edges, k, n_incl, sr, degree=degree, relative_width=relative_width,
                                       min_selected=min_selected, count_sr=count_sr).z
            except (FitError, InputError):
                pass
    return out
