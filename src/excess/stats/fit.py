"""Binned Poisson likelihood fits of the dijet functions, and the choice between them.

The fit minimises the Poisson deviance (``-2 ln L`` up to a constant, the "likelihood chi2" of
Baker & Cousins) over the bins selected by ``fit_mask`` (the sidebands), with ``iminuit``
(MIGRAD + HESSE, analytic gradient). The expected count of a bin is the dijet density
integrated over the bin (Gauss-Legendre), so wide or uneven bins are fine.

Function choice (documented test)
---------------------------------
The 3-parameter function is nested in the 4-parameter one (``p4 = 0``). :func:`fit_background`
fits both and keeps the 4-parameter function only if it improves the fit significantly:

* ``test="lrt"`` (default): likelihood-ratio test, ``t = D3 - D4 ~ chi2(1)`` under f3 (Wilks);
* ``test="f-test"``: ``F = (D3 - D4) / (D4 / (n - 4)) ~ F(1, n - 4)``, as in the ATLAS/CMS dijet
  searches;

with significance level ``alpha`` (0.05). If the 4-parameter fit fails, the 3-parameter one is
kept (and the reason recorded); if both fail, :class:`~excess.errors.FitError` is raised.

Goodness of fit
---------------
``deviance`` (asymptotically ``chi2(ndf)``, ``ndf = n_fit_bins - n_params``) gives
``p_value``; the Pearson ``chi2`` over the fit bins is reported too (``chi2_ndf``).

Example
-------
>>> import numpy as np
>>> from excess.stats.dijet import sample_dijet
>>> from excess.stats.fit import fit_background
>>> m = sample_dijet(20_000, (1, 10, 5), (2600, 5000), random_state=1)
>>> edges = np.arange(2600, 5001, 50.0)
>>> counts, _ = np.histogram(m, edges)
>>> fit, choice = fit_background(edges, counts)
>>> fit.converged and abs(fit.expected.sum() - counts.sum()) < 50
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from ..errors import ConfigError, FitError, InputError
from .dijet import SQRT_S, exp_linear, log_design_matrix, quadrature_nodes, to_canonical

EDM_TOLERANCE = 1e-4
"""A fit whose estimated distance to the minimum of the deviance (after the Newton polish) exceeds this failed."""

__all__ = ["EDM_TOLERANCE", "DijetFit", "FunctionChoice", "DijetSignalFit", "fit_dijet", "fit_background", "fit_dijet_signal",
           "check_signal_width", "poisson_deviance", "pearson_chi2"]


def poisson_deviance(counts, expected) -> float:
    """``2 sum(mu - n + n ln(n / mu))`` (``n ln(n/mu) = 0`` for ``n = 0``): ``-2 ln L`` ratio to the saturated model."""
    n = np.asarray(counts, dtype=float)
    mu = np.asarray(expected, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n > 0, n * np.log(n / mu), 0.0)
    return float(2.0 * np.sum(mu - n + term))


def pearson_chi2(counts, expected) -> float:
    """``sum((n - mu)^2 / mu)``."""
    n = np.asarray(counts, dtype=float)
    mu = np.asarray(expected, dtype=float)
    return float(np.sum((n - mu) ** 2 / mu))


def _tup(a) -> tuple:
    a = np.asarray(a)
    return tuple(map(tuple, a.tolist())) if a.ndim == 2 else tuple(a.tolist())


@dataclass(frozen=True)
class DijetFit:
    """Result of a binned Poisson fit of a dijet function.

    Attributes
    ----------
    function : ``"dijet3"`` or ``"dijet4"``
    theta, cov : pivoted parameters ``(a, p2, q3[, p4])`` and their covariance (from HESSE)
    params : canonical ``(p1, p2, p3[, p4])`` (``p1`` in events/GeV)
    edges, counts : the histogram (all bins, including those not fitted)
    fit_mask : bins used in the fit (the sidebands)
    expected : fitted expectation in every bin (an extrapolation outside ``fit_mask``)
    deviance, chi2, ndf, p_value : goodness of fit over the fitted bins (``p_value`` from the deviance)
    """

    function: str
    theta: tuple
    cov: tuple
    params: tuple
    pivot: float
    sqrt_s: float
    edges: tuple
    counts: tuple
    fit_mask: tuple
    expected: tuple
    deviance: float
    chi2: float
    ndf: int
    p_value: float
    converged: bool
    edm: float
    nfcn: int

    @property
    def n_params(self) -> int:
        return len(self.theta)

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf > 0 else float("nan")

    def density(self, mjj) -> np.ndarray:
        """Fitted density (events/GeV) at ``mjj``."""
        a = log_design_matrix(mjj, self.n_params, self.pivot, sqrt_s=self.sqrt_s)
        return exp_linear(a, self.theta)

    def integral(self, lo: float, hi: float, *, max_step: float = 25.0) -> tuple[float, float]:
        """Expected events in ``[lo, hi]`` and its uncertainty from the fit covariance (delta method).

        ``d(integral)/d(theta) = integral of f * A`` is exact here (``ln f`` is linear in ``theta``).
        """
        if not hi > lo:
            raise InputError(f"integration range must be increasing, got ({lo}, {hi})")
        n_sub = max(1, int(np.ceil((hi - lo) / max_step)))
        nodes, weights = quadrature_nodes(np.linspace(lo, hi, n_sub + 1))
        a = log_design_matrix(nodes.ravel(), self.n_params, self.pivot, sqrt_s=self.sqrt_s)
        f = exp_linear(a, self.theta) * weights.ravel()
        value = float(f.sum())
        grad = f @ a
        var = float(grad @ np.asarray(self.cov) @ grad)
        return value, float(np.sqrt(max(var, 0.0)))

    def pulls(self) -> np.ndarray:
        """``(n - mu) / sqrt(mu)`` per bin (all bins)."""
        mu = np.asarray(self.expected)
        return (np.asarray(self.counts) - mu) / np.sqrt(mu)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["n_params"] = self.n_params
        d["chi2_ndf"] = self.chi2_ndf
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DijetFit:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("theta", "params", "edges", "counts", "fit_mask", "expected"):
            kw[k] = tuple(kw[k])
        kw["cov"] = _tup(np.asarray(kw["cov"], dtype=float))
        for k in ("deviance", "chi2", "p_value", "edm"):
            kw[k] = float("nan") if kw[k] is None else float(kw[k])
        return cls(**kw)


@dataclass(frozen=True)
class FunctionChoice:
    """Outcome of the f3-vs-f4 test: which function, the statistic, its p-value and why."""

    chosen: str
    test: str
    alpha: float
    statistic: float
    p_value: float
    reason: str
    deviance: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FunctionChoice:
        d = dict(d)
        for k in ("statistic", "p_value"):
            d[k] = float("nan") if d[k] is None else float(d[k])
        return cls(**d)


def _check_hist(edges, counts, fit_mask):
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InputError("edges must be a 1-d increasing array with at least 2 entries")
    if counts.shape != (edges.size - 1,):
        raise InputError(f"counts must have len(edges) - 1 = {edges.size - 1} entries, got {counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise InputError("counts must be finite and non-negative")
    mask = np.ones(counts.size, bool) if fit_mask is None else np.asarray(fit_mask, dtype=bool)
    if mask.shape != counts.shape:
        raise InputError("fit_mask must have one entry per bin")
    return edges, counts, mask


def _start_values(centres, widths, counts, n_params, pivot, sqrt_s):
    """Weighted linear least squares of ln(n / width) (exact for the log-linear model)."""
    ok = counts > 0
    if ok.sum() < n_params:
        raise FitError(f"only {int(ok.sum())} non-empty fit bins for a {n_params}-parameter fit")
    a = log_design_matrix(centres[ok], n_params, pivot, sqrt_s=sqrt_s)
    y = np.log(counts[ok] / widths[ok])
    w = np.sqrt(counts[ok])
    theta, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    return theta


def _deviance_derivatives(theta, a_nodes, wflat, k, n_obs, template=None):
    """Deviance, its gradient and its exact Hessian in the pivoted parameters.

    ``mu_b = sum_nodes w exp(A theta)``, so ``d mu_b = sum f A`` and ``d2 mu_b = sum f A A^T`` exactly;
    ``D = 2 sum (mu - n + n ln(n/mu))`` gives ``dD = 2 sum (1 - n/mu) d mu`` and
    ``d2D = 2 sum [n/mu^2 d mu d mu^T + (1 - n/mu) d2 mu]``. With a signal ``template`` (fraction of the
    signal per bin) the last entry of ``theta`` is the signal amplitude ``s``: ``mu_b += s T_b`` (linear in
    ``s``, so ``d mu / d s = T`` and the second derivatives in ``s`` vanish). A ``mu_b <= 0`` gives an
    infinite deviance (the Newton steps then halve).
    """
    theta = np.asarray(theta, dtype=float)
    s = None
    if template is not None:
        theta, s = theta[:-1], float(theta[-1])
    f = exp_linear(a_nodes, theta) * wflat
    mu = f.reshape(-1, k).sum(axis=1)
    p = a_nodes.shape[1]
    g = (f[:, None] * a_nodes).reshape(-1, k, p).sum(axis=1)  # (n_bins, p) d mu / d theta
    h = np.einsum("i,ij,il->ijl", f, a_nodes, a_nodes).reshape(-1, k, p, p).sum(axis=1)
    if s is not None:
        mu = mu + s * template
        g = np.concatenate([g, np.asarray(template, float)[:, None]], axis=1)
        h = np.pad(h, ((0, 0), (0, 1), (0, 1)))
        if np.any(mu <= 0):
            return float("inf"), np.zeros(p + 1), np.eye(p + 1)
    r = 1.0 - n_obs / mu
    grad = 2.0 * (r @ g)
    hess = 2.0 * (np.einsum("b,bj,bl->jl", n_obs / mu**2, g, g) + np.einsum("b,bjl->jl", r, h))
    return poisson_deviance(n_obs, mu), grad, hess


def _polish(theta, a_nodes, wflat, k, n_obs, *, max_iter: int = 50, template=None):
    """Newton steps (with step halving) from MIGRAD's minimum, and the covariance ``2 H^-1`` from the exact
    Hessian ``H`` of the deviance (``-2 ln L``).

    Why not HESSE's: in the pivoted dijet parameterisation the columns ``ln(1-x)``, ``ln x``, ``ln^2 x`` are nearly
    collinear over a window of a factor ~2 in mass, and the numerical second derivatives then came out
    inconsistent (the same minimum gave a covariance, and an SR uncertainty, that differed by factors 2-10 with
    the start values; on smooth pseudo-data of an mT window 5 % of the 4-parameter fits understated the SR
    uncertainty ~2.5x, which made local Z > 3 in 1-5 % of background-only toys). Returns ``(theta, cov, edm)``,
    ``edm = g^T H^-1 g / 2`` the deviance still to gain (``cov`` None where the Hessian is not positive definite).
    ``template``: polish the signal-plus-background fit (the last entry of ``theta`` the signal amplitude), with
    Levenberg-Marquardt damped steps (:func:`_damped_newton`)."""
    if template is not None:
        theta, (dev, grad, hess) = _damped_newton(theta, lambda th: _deviance_derivatives(
            th, a_nodes, wflat, k, n_obs, template), max_iter=max_iter)
        return _covariance(theta, grad, hess)
    dev, grad, hess = _deviance_derivatives(theta, a_nodes, wflat, k, n_obs)
    for _ in range(max_iter):
        scale = np.sqrt(np.clip(np.diag(hess), 1e-300, None))
        try:
            step = -np.linalg.solve(hess / np.outer(scale, scale), grad / scale) / scale
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while t > 1e-6:
            cand = theta + t * step
            d2 = _deviance_derivatives(cand, a_nodes, wflat, k, n_obs)
            if np.isfinite(d2[0]) and d2[0] <= dev + 1e-12:
                break
            t *= 0.5
        else:
            break
        converged = dev - d2[0] < 1e-9
        theta, (dev, grad, hess) = cand, d2
        if converged:
            break
    return _covariance(theta, grad, hess)


def _damped_newton(theta, derivs, *, max_iter: int = 100):
    """Minimise a deviance by Newton steps, damped (Levenberg-Marquardt, on the diagonally scaled Hessian) where the
    Hessian is not positive definite or the full step does not descend: the signal-plus-background deviance is not
    convex far from its minimum (a broad template and the dijet shape trade off), where plain Newton steps
    can stall at a saddle. ``derivs(theta) -> (deviance, gradient, Hessian)``; returns ``(theta, derivs(theta))``."""
    cur = derivs(theta)
    for _ in range(max_iter):
        dev, grad, hess = cur
        scale = np.sqrt(np.clip(np.abs(np.diag(hess)), 1e-300, None))
        hs, gs = hess / np.outer(scale, scale), grad / scale
        moved = False
        for lam in (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4, 1e6):
            try:
                c = np.linalg.cholesky(hs + lam * np.eye(hs.shape[0]))
            except np.linalg.LinAlgError:
                continue
            step = -np.linalg.solve(c.T, np.linalg.solve(c, gs)) / scale
            t = 1.0
            while t > 1e-3:
                cand = theta + t * step
                new = derivs(cand)
                if np.isfinite(new[0]) and new[0] < dev:
                    moved = True
                    break
                t *= 0.5
            if moved:
                break
        if not moved:
            break
        converged = lam == 0.0 and dev - new[0] < 1e-9
        theta, cur = cand, new
        if converged:
            break
    return theta, cur


def _covariance(theta, grad, hess):
    """``(theta, cov, edm)`` from the deviance's gradient and Hessian (``cov`` None where not positive definite)."""
    scale = np.sqrt(np.clip(np.diag(hess), 1e-300, None))
    hs = hess / np.outer(scale, scale)
    try:
        np.linalg.cholesky(hs)
        cov = 2.0 * np.linalg.inv(hs) / np.outer(scale, scale)
    except np.linalg.LinAlgError:
        return theta, None, float("nan")
    if not np.all(np.isfinite(cov)):
        return theta, None, float("nan")
    return theta, 0.5 * (cov + cov.T), float(0.25 * grad @ cov @ grad)


def fit_dijet(
    edges,
    counts,
    *,
    n_params: int = 3,
    fit_mask=None,
    pivot: float | None = None,
    sqrt_s: float = SQRT_S,
    start=None,
    min_events: int = 10,
) -> DijetFit:
    """Fit one dijet function to a histogram with a binned Poisson likelihood.

    Parameters
    ----------
    edges, counts : histogram of mjj (GeV)
    n_params : 3 or 4
    fit_mask : bool per bin; only these bins enter the likelihood (default: all)
    pivot : reference mass of the pivoted parameterisation (default: the mean of the fitted bins' centres)
    start : pivoted start values (default: log-linear least squares)
    min_events : fewer events in the fitted bins raise :class:`FitError`

    Raises
    ------
    FitError
        too few events or non-empty bins, or MIGRAD did not converge (after a retry).
    """
    from iminuit import Minuit

    edges, counts, mask = _check_hist(edges, counts, fit_mask)
    n_fit = int(mask.sum())
    if counts[mask].sum() < min_events:
        raise FitError(f"{counts[mask].sum():.0f} events in the fit range, fewer than min_events={min_events}")
    if n_fit <= n_params:
        raise FitError(f"{n_fit} fit bins for {n_params} parameters: need more bins")
    centres = 0.5 * (edges[1:] + edges[:-1])
    widths = np.diff(edges)
    if pivot is None:
        pivot = float(np.mean(centres[mask]))
    nodes, weights = quadrature_nodes(edges)
    nodes_f, w_f = nodes[mask], weights[mask]
    k = nodes_f.shape[1]
    a_nodes = log_design_matrix(nodes_f.ravel(), n_params, pivot, sqrt_s=sqrt_s)  # (n_fit*k, p)
    n_obs = counts[mask]
    wflat = w_f.ravel()

    def _mu_and_f(theta):
        f = exp_linear(a_nodes, theta) * wflat
        return f.reshape(-1, k).sum(axis=1), f

    def fcn(theta):
        mu, _ = _mu_and_f(np.asarray(theta))
        return poisson_deviance(n_obs, mu)

    def grad(theta):
        mu, f = _mu_and_f(np.asarray(theta))
        r = np.repeat(2.0 * (1.0 - n_obs / mu), k)
        return (r * f) @ a_nodes

    theta0 = np.asarray(start, dtype=float) if start is not None else _start_values(
        centres[mask], widths[mask], n_obs, n_params, pivot, sqrt_s
    )
    if theta0.shape != (n_params,) or not np.all(np.isfinite(theta0)):
        raise FitError(f"bad start values {theta0}")

    m = None
    for strategy in (1, 2):
        m = Minuit(fcn, theta0, grad=grad)
        m.errordef = Minuit.LEAST_SQUARES  # the deviance is -2 ln L
        m.strategy = strategy
        m.print_level = 0
        try:
            m.migrad(ncall=20_000)
        except Exception as exc:  # pragma: no cover - iminuit raises rarely
            raise FitError(f"iminuit failed: {exc}") from exc
        if m.valid:
            break
        theta0 = np.asarray(m.values)
    # the exact Newton polish decides convergence and gives the covariance (HESSE's was unreliable, see _polish)
    theta, cov, edm = _polish(np.asarray(m.values, dtype=float), a_nodes, wflat, k, n_obs)
    if cov is None:
        raise FitError(f"dijet{n_params} fit has no valid covariance (the deviance's Hessian is not positive definite)")
    if not edm < EDM_TOLERANCE:
        raise FitError(f"dijet{n_params} fit did not converge (edm={edm:.3g}, MIGRAD nfcn={m.nfcn})")
    full_nodes, full_w = quadrature_nodes(edges)
    a_all = log_design_matrix(full_nodes.ravel(), n_params, pivot, sqrt_s=sqrt_s)
    expected = (exp_linear(a_all, theta) * full_w.ravel()).reshape(-1, k).sum(axis=1)
    dev = poisson_deviance(n_obs, expected[mask])
    ndf = n_fit - n_params
    return DijetFit(
        function=f"dijet{n_params}",
        theta=tuple(theta.tolist()),
        cov=_tup(cov),
        params=tuple(to_canonical(theta, pivot, sqrt_s=sqrt_s).tolist()),
        pivot=float(pivot),
        sqrt_s=float(sqrt_s),
        edges=tuple(edges.tolist()),
        counts=tuple(counts.tolist()),
        fit_mask=tuple(bool(b) for b in mask),
        expected=tuple(expected.tolist()),
        deviance=dev,
        chi2=pearson_chi2(n_obs, expected[mask]),
        ndf=int(ndf),
        p_value=float(sps.chi2.sf(dev, ndf)),
        converged=True,
        edm=float(edm),
        nfcn=int(m.nfcn),
    )


def fit_background(
    edges,
    counts,
    *,
    fit_mask=None,
    functions: tuple[int, ...] = (3, 4),
    test: str = "lrt",
    alpha: float = 0.05,
    pivot: float | None = None,
    sqrt_s: float = SQRT_S,
    min_events: int = 10,
) -> tuple[DijetFit, FunctionChoice]:
    """Fit f3 and f4 and keep f4 only if the test prefers it (see the module docstring).

    ``functions=(3,)`` or ``(4,)`` forces one function (the choice records ``test="fixed"``).
    """
    if test not in ("lrt", "f-test"):
        raise ConfigError(f"test must be 'lrt' or 'f-test', got {test!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    functions = tuple(sorted(set(int(f) for f in functions)))
    if not functions or any(f not in (3, 4) for f in functions):
        raise ConfigError(f"functions must be a subset of (3, 4), got {functions}")
    kw = dict(fit_mask=fit_mask, pivot=pivot, sqrt_s=sqrt_s, min_events=min_events)
    if len(functions) == 1:
        fit = fit_dijet(edges, counts, n_params=functions[0], **kw)
        return fit, FunctionChoice(fit.function, "fixed", alpha, float("nan"), float("nan"),
                                   "only one function requested", {fit.function: fit.deviance})
    err3 = None
    try:
        f3 = fit_dijet(edges, counts, n_params=3, **kw)
    except FitError as exc:
        f3, err3 = None, exc
    start4 = None if f3 is None else np.r_[np.asarray(f3.theta), 0.0]
    try:
        f4 = fit_dijet(edges, counts, n_params=4, start=start4, pivot=None if f3 is None else f3.pivot,
                       **{k: v for k, v in kw.items() if k != "pivot"})
    except FitError as exc:
        if f3 is None:
            raise FitError(f"both dijet fits failed: f3: {err3}; f4: {exc}") from exc
        return f3, FunctionChoice("dijet3", test, alpha, float("nan"), float("nan"),
                                  f"4-parameter fit failed ({exc})", {"dijet3": f3.deviance})
    if f3 is None:
        return f4, FunctionChoice("dijet4", test, alpha, float("nan"), float("nan"),
                                  f"3-parameter fit failed ({err3})", {"dijet4": f4.deviance})
    delta = max(f3.deviance - f4.deviance, 0.0)
    if test == "lrt":
        stat, p = delta, float(sps.chi2.sf(delta, 1))
    else:
        ndf4 = f4.ndf
        if ndf4 <= 0:
            stat, p = float("nan"), 1.0
        else:
            stat = delta / (f4.deviance / ndf4) if f4.deviance > 0 else float("inf")
            p = float(sps.f.sf(stat, 1, ndf4))
    devs = {"dijet3": f3.deviance, "dijet4": f4.deviance}
    if p < alpha:
        return f4, FunctionChoice("dijet4", test, alpha, float(stat), p, f"p = {p:.3g} < alpha = {alpha}", devs)
    return f3, FunctionChoice("dijet3", test, alpha, float(stat), p, f"p = {p:.3g} >= alpha = {alpha}", devs)


# ----------------------------------------------------------------------------------------------
# signal-plus-background fit of the dijet function over the whole window
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProfiledSignalFit:
    """What every signal-plus-background fit over a window reports (base of :class:`DijetSignalFit` and
    :class:`excess.stats.efficiency.SignalFit`; their local significance:
    :func:`excess.stats.significance.profiled_signal_significance`): the signal amplitude ``s_hat`` +- ``s_err``
    (events), the profile likelihood ratio ``q0`` of ``s = 0`` (one-sided) and ``q0_signed`` (with the sign of
    ``s_hat``), the background in the SR ``b_hat`` +- ``sigma_b``, the SR count ``n_sr``, and the Gaussian
    template's ``centre`` and ``width``."""

    s_hat: float
    s_err: float
    q0: float
    q0_signed: float
    b_hat: float
    sigma_b: float
    n_sr: float
    centre: float
    width: float

    @property
    def z(self) -> float:
        return float(np.sqrt(max(self.q0, 0.0)))

    @property
    def z_signed(self) -> float:
        return float(np.sign(self.q0_signed) * np.sqrt(abs(self.q0_signed)))


@dataclass(frozen=True)
class DijetSignalFit(ProfiledSignalFit):
    """The dijet function fitted over *every* bin of a window (SR and sidebands) plus a Gaussian signal
    template centred on the SR (:func:`fit_dijet_signal`).

    ``s_hat``/``s_err``: the signal amplitude (events) and its error; ``q0``: the profile likelihood ratio
    ``D(s=0) - D(s_hat)`` for ``s_hat >= 0`` (else 0), ``q0_signed`` the same with the sign of ``s_hat``;
    ``b_hat``/``sigma_b``: the background component in the SR at the best fit with ``s >= 0`` and its error
    (delta method with the full covariance, ``s`` profiled); ``null_fit``: the background-only fit over the
    window (what the pseudo-experiments are drawn from); ``background_fit``: the background component of the
    best fit (``expected`` in every bin; its ``deviance``/``ndf``/``p_value`` are those of the
    signal-plus-background fit); ``template``: the fraction of the signal in each bin.
    """

    null_fit: DijetFit
    background_fit: DijetFit
    template: tuple
    kind: str = "dijet_signal"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["null_fit"] = self.null_fit.to_dict()
        d["background_fit"] = self.background_fit.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DijetSignalFit:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["null_fit"] = DijetFit.from_dict(kw["null_fit"])
        kw["background_fit"] = DijetFit.from_dict(kw["background_fit"])
        kw["template"] = tuple(kw["template"])
        for k in ("s_hat", "s_err", "q0", "q0_signed", "b_hat", "sigma_b"):
            kw[k] = float("nan") if kw[k] is None else float(kw[k])
        return cls(**kw)


def signal_template(edges, centre: float, width: float) -> np.ndarray:
    """Fraction of a Gaussian (``centre``, ``width``) in each bin."""
    cdf = sps.norm.cdf((np.asarray(edges, float) - centre) / width)
    return np.diff(cdf)


def check_signal_width(relative_width) -> float:
    """``relative_width`` as a float in (0, 0.5), or :class:`~excess.errors.ConfigError` naming the value."""
    try:
        w = float(relative_width)
    except (TypeError, ValueError):
        raise ConfigError(f"signal_width must be a number in (0, 0.5), got {relative_width!r}") from None
    if not 0 < w < 0.5:
        raise ConfigError(f"signal_width (the signal template's Gaussian width over the SR centre) must be in "
                          f"(0, 0.5), got {relative_width!r}")
    return w


def fit_dijet_signal(
    edges,
    counts,
    sr: tuple[float, float],
    *,
    relative_width: float,
    functions: tuple[int, ...] = (4,),
    test: str = "lrt",
    alpha: float = 0.05,
    sqrt_s: float = SQRT_S,
    min_events: int = 10,
) -> DijetSignalFit:
    """Signal-plus-background fit of a window: dijet function + ``s`` x Gaussian template over every bin.

    The sideband-only fit extrapolates the background into the SR and absorbs the part of a broad signal that
    leaks into the sidebands; this fit uses the SR bins too and models that leakage with the template (a Gaussian
    of width ``relative_width`` x the SR centre, centred on the SR). The background function (``functions``,
    the f3-vs-f4 ``test`` as in :func:`fit_background`) is chosen on the background-only fit of the whole
    window; ``q0`` is the profile likelihood ratio of ``s = 0`` (one-sided, ``s >= 0``) and the local Z its
    square root (Wilks). Pseudo-experiments drawn from ``null_fit`` and refitted with this function calibrate it.

    Parameters
    ----------
    edges, counts : the window's histogram (SR and sidebands)
    sr : ``(lo, hi)``, a union of bins of ``edges``
    relative_width : the template's Gaussian width over the SR centre, in (0, 0.5)
    min_events : fewer events in the sideband bins (outside the SR) raise :class:`FitError`

    Raises
    ------
    ConfigError : bad ``relative_width``, ``functions``, ``test`` or ``alpha``
    InputError : bad histogram or an SR that is not inside the window
    FitError : too few events, or no fit converged
    """
    width_rel = check_signal_width(relative_width)
    edges, counts, _ = _check_hist(edges, counts, None)
    lo, hi = map(float, sr)
    if not (edges[0] < lo < hi < edges[-1]):
        raise InputError(f"SR {sr} must lie strictly inside the window {edges[0]:g}-{edges[-1]:g}")
    cen = 0.5 * (edges[1:] + edges[:-1])
    in_sr = (cen >= lo) & (cen < hi)
    n_sb = float(counts[~in_sr].sum())
    if n_sb < min_events:
        raise FitError(f"{n_sb:.0f} events in the sidebands, fewer than min_events={min_events}")
    null, _choice = fit_background(edges, counts, fit_mask=None, functions=functions, test=test, alpha=alpha,
                                   sqrt_s=sqrt_s, min_events=min_events)
    centre = 0.5 * (lo + hi)
    width = width_rel * centre
    template = signal_template(edges, centre, width)
    p = null.n_params
    nodes, weights = quadrature_nodes(edges)
    k = nodes.shape[1]
    a_nodes = log_design_matrix(nodes.ravel(), p, null.pivot, sqrt_s=sqrt_s)
    wflat = weights.ravel()
    theta0 = np.asarray(null.theta)
    b_null_sr = float(np.asarray(null.expected)[in_sr].sum())
    best = None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dev_null = _deviance_derivatives(theta0, a_nodes, wflat, k, counts)[0]
        for s0 in (max(float(counts[in_sr].sum()) - b_null_sr, 0.0) + 1.0, 0.0):
            par, cov, edm = _polish(np.r_[theta0, s0], a_nodes, wflat, k, counts, max_iter=100, template=template)
            if cov is None or not edm < EDM_TOLERANCE:
                continue
            dev = _deviance_derivatives(par, a_nodes, wflat, k, counts, template)[0]
            if best is None or dev < best[0]:
                best = (dev, par, cov)
    if best is None:
        raise FitError(f"signal-plus-background dijet{p} fit did not converge")
    dev_sb, par, cov = best
    q_signed = max(dev_null - dev_sb, 0.0) * (1.0 if par[-1] >= 0 else -1.0)
    s_hat, s_err = float(par[-1]), float(np.sqrt(max(cov[-1, -1], 0.0)))
    n_sr = float(counts[in_sr].sum())
    if s_hat > 0:  # the background component of the best fit, its covariance with s profiled
        theta, cov_t, dev_fit = par[:-1], cov[:-1, :-1], dev_sb
    else:  # s >= 0: the best fit is the background-only one
        theta, cov_t, dev_fit = theta0, np.asarray(null.cov), null.deviance
    expected = (exp_linear(a_nodes, theta) * wflat).reshape(-1, k).sum(axis=1)
    ndf = counts.size - p - (1 if s_hat > 0 else 0)
    bfit = dataclasses.replace(
        null, theta=tuple(np.asarray(theta).tolist()), cov=_tup(cov_t),
        params=tuple(to_canonical(np.asarray(theta), null.pivot, sqrt_s=sqrt_s).tolist()),
        expected=tuple(expected.tolist()), deviance=float(dev_fit),
        chi2=pearson_chi2(counts, expected + max(s_hat, 0.0) * template), ndf=int(ndf),
        p_value=float(sps.chi2.sf(dev_fit, ndf)) if ndf > 0 else float("nan"), edm=0.0)
    b_hat, sigma_b = bfit.integral(lo, hi)
    return DijetSignalFit(
        s_hat=s_hat, s_err=s_err, q0=float(max(q_signed, 0.0)), q0_signed=float(q_signed), b_hat=b_hat,
        sigma_b=sigma_b, n_sr=n_sr, centre=float(centre), width=float(width), null_fit=null, background_fit=bfit,
        template=tuple(template.tolist()))
