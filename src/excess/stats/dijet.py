"""The dijet fit functions of the LHC resonance searches (the only place they are written).

With ``x = mjj / sqrt(s)`` (``sqrt(s) = 13 TeV``):

* 3 parameters: ``f3(mjj) = p1 (1 - x)^p2 x^(-p3)``
* 4 parameters: ``f4(mjj) = p1 (1 - x)^p2 x^(-p3 - p4 ln x)``

``f`` is a density in events per GeV of ``mjj``. ``log f`` is *linear* in
``(ln p1, p2, p3, p4)``: fits use that (linear least-squares start values, analytic
gradients) through a pivoted parameterisation that is well conditioned,

``ln f = a + p2 ln[(1-x)/(1-x0)] - q3 ln(x/x0) - p4 ln(x/x0)^2``,  ``x0 = pivot / sqrt(s)``,

which is the same family (``p4`` unchanged, ``p3 = q3 - 2 p4 ln x0``, ``ln p1`` absorbs the
rest). :func:`to_canonical` / :func:`from_canonical` convert between the two.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputError

__all__ = [
    "SQRT_S",
    "DIJET_FUNCTIONS",
    "dijet_function",
    "log_design_matrix",
    "to_canonical",
    "from_canonical",
    "evaluate_pivoted",
    "exp_linear",
    "bin_integrals",
    "sample_dijet",
]

SQRT_S = 13_000.0
"""Centre-of-mass energy in GeV (LHC Run 2)."""

DIJET_FUNCTIONS = {"dijet3": 3, "dijet4": 4}
"""Names of the fit functions and their numbers of parameters."""

_N_GAUSS = 5
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_N_GAUSS)
MAX_EXP = 700.0
"""Exponents are clipped to ``[-MAX_EXP, MAX_EXP]`` before ``exp`` (no overflow for absurd parameters)."""


def _check_n_params(n_params: int) -> int:
    if int(n_params) not in (3, 4):
        raise ConfigError(f"dijet functions have 3 or 4 parameters, got {n_params}")
    return int(n_params)


def _x(mjj, sqrt_s: float) -> np.ndarray:
    x = np.asarray(mjj, dtype=float) / float(sqrt_s)
    if np.any((x <= 0) | (x >= 1)):
        raise InputError(f"mjj must lie in (0, sqrt(s) = {sqrt_s:g} GeV) for the dijet functions")
    return x


def dijet_function(mjj, params, *, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Canonical 3- or 4-parameter dijet function ``p1 (1-x)^p2 x^(-p3 - p4 ln x)``.

    Parameters
    ----------
    mjj : array_like
        Dijet invariant mass in GeV.
    params : sequence of 3 or 4 floats
        ``(p1, p2, p3)`` or ``(p1, p2, p3, p4)``.
    """
    params = np.asarray(params, dtype=float)
    n = _check_n_params(params.size)
    x = _x(mjj, sqrt_s)
    lx = np.log(x)
    expo = -params[2] - (params[3] * lx if n == 4 else 0.0)
    return params[0] * (1.0 - x) ** params[1] * x**expo


def log_design_matrix(mjj, n_params: int, pivot: float, *, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Matrix ``A`` with ``ln f(mjj) = A @ theta`` in the pivoted parameterisation."""
    n = _check_n_params(n_params)
    x = _x(mjj, sqrt_s)
    x0 = float(pivot) / float(sqrt_s)
    if not 0.0 < x0 < 1.0:
        raise ConfigError(f"pivot must lie in (0, sqrt(s)), got {pivot}")
    lr = np.log(x / x0)
    cols = [np.ones_like(x), np.log((1.0 - x) / (1.0 - x0)), -lr]
    if n == 4:
        cols.append(-(lr**2))
    return np.stack(cols, axis=-1)


def to_canonical(theta, pivot: float, *, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Pivoted parameters ``(a, p2, q3[, p4])`` -> canonical ``(p1, p2, p3[, p4])``."""
    theta = np.asarray(theta, dtype=float)
    n = _check_n_params(theta.size)
    x0 = float(pivot) / float(sqrt_s)
    l0 = np.log(x0)
    a, p2, q3 = theta[:3]
    p4 = theta[3] if n == 4 else 0.0
    p3 = q3 - 2.0 * p4 * l0
    log_p1 = a - p2 * np.log1p(-x0) + q3 * l0 - p4 * l0**2
    with np.errstate(over="ignore"):  # p1 = inf only for absurd parameters; the fit uses theta
        p1 = np.exp(log_p1)
    out = [p1, p2, p3] + ([p4] if n == 4 else [])
    return np.array(out, dtype=float)


def from_canonical(params, pivot: float, *, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Canonical ``(p1, p2, p3[, p4])`` -> pivoted ``(a, p2, q3[, p4])`` (``p1 > 0``)."""
    params = np.asarray(params, dtype=float)
    n = _check_n_params(params.size)
    if params[0] <= 0:
        raise ConfigError("p1 must be positive")
    x0 = float(pivot) / float(sqrt_s)
    l0 = np.log(x0)
    p1, p2, p3 = params[:3]
    p4 = params[3] if n == 4 else 0.0
    q3 = p3 + 2.0 * p4 * l0
    a = np.log(p1) + p2 * np.log1p(-x0) - q3 * l0 + p4 * l0**2
    return np.array([a, p2, q3] + ([p4] if n == 4 else []), dtype=float)


def exp_linear(a, theta) -> np.ndarray:
    """``exp(A @ theta)`` with the exponent clipped to ``+-MAX_EXP``: the density from a design matrix
    of :func:`log_design_matrix` (``ln f`` is linear in the pivoted parameters)."""
    return np.exp(np.clip(np.asarray(a) @ np.asarray(theta), -MAX_EXP, MAX_EXP))


def evaluate_pivoted(mjj, theta, pivot: float, *, sqrt_s: float = SQRT_S) -> np.ndarray:
    """The dijet density at ``mjj`` from pivoted parameters."""
    theta = np.asarray(theta, dtype=float)
    return exp_linear(log_design_matrix(mjj, theta.size, pivot, sqrt_s=sqrt_s), theta)


def quadrature_nodes(edges) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (n_bins, k) and weights (n_bins, k) integrating over each bin."""
    edges = np.asarray(edges, dtype=float)
    lo, hi = edges[:-1, None], edges[1:, None]
    half = 0.5 * (hi - lo)
    nodes = 0.5 * (hi + lo) + half * _GL_X[None, :]
    weights = half * _GL_W[None, :]
    return nodes, weights


def bin_integrals(edges, theta, pivot: float, *, sqrt_s: float = SQRT_S) -> np.ndarray:
    """Expected counts per bin: the density integrated over each bin (5-point Gauss-Legendre)."""
    nodes, weights = quadrature_nodes(edges)
    return (evaluate_pivoted(nodes, theta, pivot, sqrt_s=sqrt_s) * weights).sum(axis=1)


def sample_dijet(n: int, params, mjj_range: tuple[float, float], *, sqrt_s: float = SQRT_S, random_state=None):
    """Draw ``n`` mjj values from the canonical dijet function restricted to ``mjj_range``.

    Inverse-CDF sampling on a fine grid (for tests, benchmarks and pseudo-data);
    ``p1`` only sets the normalisation and is irrelevant here.
    """
    from .._util import check_random_state

    rng = check_random_state(random_state)
    lo, hi = map(float, mjj_range)
    if not lo < hi:
        raise ConfigError(f"mjj_range must be increasing, got {mjj_range}")
    grid = np.linspace(lo, hi, 20_001)
    dens = dijet_function(grid, params, sqrt_s=sqrt_s)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.interp(rng.random(int(n)), cdf, grid)
