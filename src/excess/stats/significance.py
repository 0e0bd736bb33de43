"""Local and global significance of an excess in a signal region (SR).

Statistical model of one SR (a counting experiment):

``L(s, b) = Pois(n | s + b) * Gauss(b_hat | b, sigma_b)``

``b_hat`` is the background predicted in the SR by the sideband fit and ``sigma_b`` its
uncertainty from the fit covariance (:meth:`excess.stats.fit.DijetFit.integral`): the fit's
knowledge of the background enters as a constrained nuisance parameter. The discovery test
statistic is the profile likelihood ratio (Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554)

``q0 = -2 ln [L(0, b_hathat) / L(s_hat, b_hat)]`` for ``s_hat = n - b_hat > 0``, else ``0``,

with the conditional estimate ``b_hathat`` in closed form (root of a quadratic). Asymptotically
``Z = sqrt(q0)``, ``p = 1 - Phi(Z)`` (one-sided; ``p = 0.5`` for a deficit). The *signed*
significance ``Z_signed = sign(n - b_hat) sqrt(q0_unrestricted)`` is continuous and its
``p_signed = 1 - Phi(Z_signed)`` is uniform under the background-only hypothesis: it is what
calibration checks use.

Cross-checks with pseudo-experiments:

* :func:`local_significance` with ``method="toys"``: toys of the counting model (auxiliary
  ``b_hat`` and ``n`` drawn at the conditional fit ``b_hathat``), q0 recomputed per toy;
* :func:`pseudo_experiment_z`: background-only toys of the whole binned spectrum (nested
  across selections), each refitted in the sidebands exactly like the data: this tests the
  fit + extrapolation too, and gives the look-elsewhere correction.

Global significance (:func:`global_significance`): the fraction of background-only
pseudo-experiments of the *whole scan* whose largest local Z reaches the observed largest
local Z; the Sidak bound ``1 - (1 - p_min)^N_tests`` (trials factor for independent tests,
conservative for correlated ones) is reported alongside.

Example
-------
>>> from excess.stats.significance import local_significance
>>> r = local_significance(1100, 1000.0, 10.0)
>>> round(r.z, 2)
2.96
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from .._util import check_random_state
from ..errors import ConfigError, FitError, InputError

__all__ = [
    "p_to_z",
    "z_to_p",
    "q0_counting",
    "LocalSignificance",
    "local_significance",
    "GlobalSignificance",
    "global_significance",
    "sidak",
    "toy_p_value",
    "pseudo_experiment_z",
]


def z_to_p(z):
    """One-sided p-value of a Gaussian significance: ``1 - Phi(z)``."""
    return sps.norm.sf(z)


def p_to_z(p):
    """Gaussian significance of a one-sided p-value: ``Phi^-1(1 - p)``."""
    return sps.norm.isf(p)


def toy_p_value(observed: float, toys) -> float:
    """Pseudo-experiment p-value ``(k + 1) / (n + 1)``: ``k`` of the ``n`` toy statistics reach
    ``observed`` (within 1e-12); NaN entries (failed toys) are dropped. Never 0: with ``k = 0`` it is
    the bound ``1 / (n + 1)``."""
    t = np.asarray(toys, dtype=float)
    t = t[~np.isnan(t)]
    if t.size == 0:
        raise InputError("a toy p-value needs at least one pseudo-experiment that did not fail")
    k = int(np.sum(t >= observed - 1e-12))
    return (k + 1) / (t.size + 1)


def _profiled_b(n, b_hat, sigma_b):
    """Conditional MLE of b at s = 0: root of ``b^2 + (sigma^2 - b_hat) b - n sigma^2 = 0``."""
    s2 = sigma_b**2
    big_b = s2 - b_hat
    disc = np.sqrt(big_b**2 + 4.0 * n * s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # numerically stable root for either sign of big_b
        root = np.where(big_b > 0, 2.0 * n * s2 / (big_b + disc), 0.5 * (-big_b + disc))
    root = np.where(s2 == 0, b_hat, root)
    return np.maximum(root, 0.0)


def q0_counting(n, b_hat, sigma_b, *, one_sided: bool = True):
    """Discovery test statistic q0 of the constrained counting model (vectorised).

    Returns ``(q0, b_hathat)``. With ``one_sided=False`` the statistic is not set to zero for
    deficits (it is then the two-sided likelihood ratio used for the signed significance).
    """
    n = np.asarray(n, dtype=float)
    b_hat = np.asarray(b_hat, dtype=float)
    sigma_b = np.asarray(sigma_b, dtype=float)
    if np.any(n < 0) or np.any(sigma_b < 0):
        raise InputError("counts and sigma_b must be non-negative")
    b = _profiled_b(n, b_hat, sigma_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        lterm = np.where(n > 0, n * np.log(n / b), 0.0)
        cons = np.where(sigma_b > 0, (b - b_hat) ** 2 / np.where(sigma_b > 0, sigma_b, 1.0) ** 2, 0.0)
    q0 = 2.0 * (lterm - n + b) + cons
    q0 = np.maximum(np.where(np.isfinite(q0), q0, np.inf), 0.0)
    if one_sided:
        q0 = np.where(n > b_hat, q0, 0.0)
    return q0, b


@dataclass(frozen=True)
class LocalSignificance:
    """Local significance of one SR.

    ``z``/``p_value`` are the one-sided discovery values of ``method`` (asymptotic or toys);
    ``z_asymptotic``/``p_asymptotic`` are always the asymptotic ones; ``z_signed``/``p_signed``
    the continuous signed version (uniform p under background only).
    """

    n_obs: float
    b_hat: float
    sigma_b: float
    s_hat: float
    b_profiled: float
    q0: float
    z: float
    p_value: float
    z_asymptotic: float
    p_asymptotic: float
    z_signed: float
    p_signed: float
    method: str = "asymptotic"
    n_toys: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LocalSignificance:
        d = dict(d)
        for k, v in d.items():
            if k not in ("method", "n_toys") and v is not None and isinstance(v, str):
                d[k] = float(v)
        return cls(**d)


def local_significance(
    n_obs: float,
    b_hat: float,
    sigma_b: float,
    *,
    method: str = "asymptotic",
    n_toys: int = 10_000,
    random_state=None,
) -> LocalSignificance:
    """Local significance of ``n_obs`` events over a background ``b_hat +- sigma_b``.

    Parameters
    ----------
    method : ``"asymptotic"`` (Wilks/Chernoff: ``Z = sqrt(q0)``) or ``"toys"``
        (``n_toys`` pseudo-experiments of the counting model; p = (k + 1) / (n_toys + 1)).
    """
    if method not in ("asymptotic", "toys"):
        raise ConfigError(f"method must be 'asymptotic' or 'toys', got {method!r}")
    if not (np.isfinite(b_hat) and b_hat > 0):
        raise FitError(f"background prediction must be positive and finite, got {b_hat}")
    if not (np.isfinite(sigma_b) and sigma_b >= 0):
        raise FitError(f"background uncertainty must be finite and >= 0, got {sigma_b}")
    if n_obs < 0:
        raise InputError(f"n_obs must be >= 0, got {n_obs}")
    q0, b = q0_counting(n_obs, b_hat, sigma_b)
    q0u, _ = q0_counting(n_obs, b_hat, sigma_b, one_sided=False)
    q0, b, q0u = float(q0), float(b), float(q0u)
    z_as = float(np.sqrt(q0))
    p_as = float(z_to_p(z_as)) if q0 > 0 else 0.5
    z_signed = float(np.sign(n_obs - b_hat) * np.sqrt(q0u))
    z, p, nt = z_as, p_as, 0
    if method == "toys":
        if n_toys < 1:
            raise ConfigError(f"n_toys must be >= 1, got {n_toys}")
        rng = check_random_state(random_state)
        aux = rng.normal(b, sigma_b, size=n_toys)
        n_toy = rng.poisson(b, size=n_toys)
        aux = np.maximum(aux, 1e-12)
        q_toy, _ = q0_counting(n_toy, aux, np.full(n_toys, sigma_b))
        p = float(toy_p_value(q0, q_toy)) if q0 > 0 else 0.5
        z = float(max(p_to_z(p), 0.0))
        nt = int(n_toys)
    return LocalSignificance(
        n_obs=float(n_obs), b_hat=float(b_hat), sigma_b=float(sigma_b), s_hat=float(max(n_obs - b_hat, 0.0)),
        b_profiled=b, q0=q0, z=z, p_value=p, z_asymptotic=z_as, p_asymptotic=p_as,
        z_signed=z_signed, p_signed=float(z_to_p(z_signed)), method=method, n_toys=nt,
    )


def sidak(p_min: float, n_tests: int) -> float:
    """Trials-factor bound ``1 - (1 - p_min)^N`` (exact for independent tests)."""
    return float(-np.expm1(n_tests * np.log1p(-min(max(p_min, 0.0), 1.0 - 1e-300))))


@dataclass(frozen=True)
class GlobalSignificance:
    """Look-elsewhere-corrected significance of the most significant test of a scan.

    ``p_global`` is ``(k + 1) / (n_toys + 1)`` with ``k`` toys reaching ``max_local_z``
    (so it cannot go below ``1 / (n_toys + 1)``: ``z_global`` is then a lower bound, flagged
    by ``z_global_is_limit``); ``p_trials`` is the Sidak bound.
    """

    max_local_z: float
    p_local_min: float
    n_tests: int
    method: str
    n_toys: int
    n_toys_failed: int
    p_global: float
    z_global: float
    z_global_is_limit: bool
    p_trials: float
    z_trials: float
    toy_max_z: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GlobalSignificance:
        d = dict(d)
        d["toy_max_z"] = tuple(d.get("toy_max_z", ()))
        return cls(**d)


def global_significance(max_local_z: float, n_tests: int, toy_max_z=None, *, n_toys_failed: int = 0) -> GlobalSignificance:
    """Global significance from the largest local Z of the scan and the toys' largest local Zs.

    ``toy_max_z``: per background-only pseudo-experiment of the whole scan, the largest local Z
    (NaN entries = toys whose fits all failed, dropped). Without toys only the trials bound is given.
    """
    if n_tests < 1:
        raise InputError("a scan needs at least one test for a global significance")
    z_obs = float(max(max_local_z, 0.0))
    p_min = float(z_to_p(z_obs)) if z_obs > 0 else 0.5
    p_tr = sidak(p_min, n_tests)
    z_tr = float(max(p_to_z(p_tr), 0.0))
    if toy_max_z is None or len(toy_max_z) == 0:
        return GlobalSignificance(z_obs, p_min, int(n_tests), "trials", 0, int(n_toys_failed), p_tr, z_tr,
                                  False, p_tr, z_tr, ())
    t = np.asarray(toy_max_z, dtype=float)
    t = t[np.isfinite(t)]
    if t.size == 0:
        raise FitError("all global pseudo-experiments failed")
    p = toy_p_value(z_obs, t)
    return GlobalSignificance(
        z_obs, p_min, int(n_tests), "toys", int(t.size), int(n_toys_failed), float(p),
        float(max(p_to_z(p), 0.0)), p == 1 / (t.size + 1), p_tr, z_tr, tuple(np.round(t, 6).tolist()),
    )


def pseudo_experiment_z(
    edges,
    expected,
    fit_mask,
    sr: tuple[float, float],
    *,
    n_toys: int,
    random_state=None,
    nested: bool = True,
    fit_kw: dict | None = None,
    signal_width: float | None = None,
) -> np.ndarray:
    """Background-only pseudo-experiments of binned spectra, refitted like the data.

    Parameters
    ----------
    edges : bin edges (shared by all selections)
    expected : (n_sel, n_bins) background expectation of each selection (e.g. the sideband fit
        extrapolated over all bins)
    fit_mask : bins used in the fit (sidebands); ``sr`` must be a union of the other bins
    nested : selections are nested cuts (tighter ones a subset of looser ones): toys are built
        from Poisson increments so their correlation is kept. Otherwise independent.
    fit_kw : passed to :func:`excess.stats.fit.fit_background`
    signal_width : refit each toy with the signal-plus-background fit over the whole window
        (:func:`excess.stats.fit.fit_dijet_signal`, this relative template width; background model
        ``"dijet_signal"``) instead of the sideband fit; ``expected`` is then its background-only fit

    Returns
    -------
    (n_toys, n_sel) array of local one-sided Z; NaN where a toy's fit failed.
    """
    from .fit import check_signal_width, fit_background, fit_dijet_signal

    rng = check_random_state(random_state)
    edges = np.asarray(edges, dtype=float)
    expected = np.atleast_2d(np.asarray(expected, dtype=float))
    mask = np.asarray(fit_mask, dtype=bool)
    if expected.shape[1] != edges.size - 1 or mask.shape != (edges.size - 1,):
        raise InputError("expected and fit_mask must have one entry per bin")
    if np.any(~np.isfinite(expected)) or np.any(expected < 0):
        raise InputError("expected counts must be finite and non-negative")
    lo, hi = sr
    sr_bins = (edges[:-1] >= lo - 1e-9) & (edges[1:] <= hi + 1e-9)
    n_sel = expected.shape[0]
    order = np.argsort(expected.sum(axis=1)) if nested else np.arange(n_sel)  # tightest first
    out = np.full((int(n_toys), n_sel), np.nan)
    fit_kw = dict(fit_kw or {})
    if signal_width is not None:
        signal_width = check_signal_width(signal_width)
    for t in range(int(n_toys)):
        prev = None
        prev_exp = None
        for j in order:
            if nested and prev is not None:
                counts = prev + rng.poisson(np.maximum(expected[j] - prev_exp, 0.0))
            else:
                counts = rng.poisson(expected[j])
            prev, prev_exp = counts, np.maximum(expected[j], prev_exp if prev_exp is not None else 0.0)
            try:
                if signal_width is not None:
                    out[t, j] = fit_dijet_signal(edges, counts, (lo, hi), relative_width=signal_width, **fit_kw).z
                    continue
                fit, _ = fit_background(edges, counts, fit_mask=mask, **fit_kw)
                b, sb = fit.integral(lo, hi)
                q0, _ = q0_counting(counts[sr_bins].sum(), b, sb)
                out[t, j] = float(np.sqrt(q0))
            except (FitError, InputError):
                pass
    return out


def profiled_signal_significance(fit) -> LocalSignificance:
    """A signal-plus-background fit's ``q0`` in the shape of a counting-experiment result (``method`` = its
    ``kind``): :class:`excess.stats.efficiency.SignalFit` and :class:`excess.stats.fit.DijetSignalFit`."""
    z = fit.z
    p = float(z_to_p(z)) if fit.q0 > 0 else 0.5
    return LocalSignificance(n_obs=fit.n_sr, b_hat=fit.b_hat, sigma_b=fit.sigma_b, s_hat=max(fit.s_hat, 0.0),
                             b_profiled=float("nan"), q0=fit.q0, z=z, p_value=p, z_asymptotic=z, p_asymptotic=p,
                             z_signed=fit.z_signed, p_signed=float(z_to_p(fit.z_signed)), method=fit.kind)
