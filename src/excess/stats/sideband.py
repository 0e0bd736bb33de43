"""The sideband test of one selection: background fitted in the sidebands, predicted in the signal
region, compared with what is observed there.

:func:`sideband_test` is the standard background estimate of a bump hunt, used by the scan
(:mod:`excess.search`) and by the background-only check (:mod:`excess.benchmarks`):

1. the selected events' ``m`` histogram over the window (``window.edges()``; weighted if ``weights``);
2. a binned Poisson fit of the sideband bins with the 3- or 4-parameter dijet function
   (:func:`excess.stats.fit.fit_background`, f3 vs f4 by ``test``);
3. the SR prediction ``b_hat +- sigma_b`` from the fit and its covariance;
4. the local significance of the observed SR count against it
   (:func:`excess.stats.significance.local_significance`).

The answer is a :class:`SidebandTest` (frozen, ``to_dict()``) that says ``status`` and ``reason``
when there is no trustworthy number. Another background estimate (e.g. one for selections that
sculpt ``m``) plugs in beside it by following :class:`BackgroundEstimate`: a callable
``(m, window, *, weights=None) -> SidebandTest``; :class:`SidebandFit` is the dijet fit with its
options bound, in that form.

Example
-------
>>> from excess.stats.dijet import sample_dijet
>>> from excess.stats.sideband import sideband_test
>>> from excess.stats.windows import Window
>>> m = sample_dijet(20_000, (1, 10, 5), (2800, 4200), random_state=1)
>>> t = sideband_test(m, Window.around((3300, 3700)))
>>> t.ok and abs(t.z_signed) < 4
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import FitError
from .fit import DijetFit, FunctionChoice, fit_background
from .significance import LocalSignificance, local_significance
from .windows import Window

__all__ = ["STATUS_OK", "POOR_FIT_P", "SidebandTest", "BackgroundEstimate", "sideband_test", "SidebandFit"]

STATUS_OK = "ok"
POOR_FIT_P = 0.01
"""A sideband fit with a goodness-of-fit p-value below this is flagged with a warning."""


@dataclass(frozen=True)
class SidebandTest:
    """Observed vs predicted background in the SR of one selection.

    ``status``: ``"ok"``, ``"no_result"`` (too few selected sideband events) or ``"fit_failed"``,
    with the ``reason``. ``n_sr``/``n_sb``: selected events in the SR / sidebands (sums of weights
    when weighted). ``fit``/``choice``: the sideband fit and the f3-vs-f4 choice. ``significance``:
    the local significance of ``n_sr`` over the prediction (``b_hat``, ``sigma_b`` inside it).
    """

    status: str
    reason: str = ""
    n_sr: float = 0
    n_sb: float = 0
    fit: DijetFit | None = None
    choice: FunctionChoice | None = None
    significance: LocalSignificance | None = None
    warnings: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    b_hat = property(lambda self: self._of_significance("b_hat"), doc="Predicted SR background (NaN without a result).")
    sigma_b = property(lambda self: self._of_significance("sigma_b"), doc="Uncertainty of ``b_hat``.")
    z = property(lambda self: self._of_significance("z"), doc="Local one-sided Z (NaN without a result).")
    z_signed = property(lambda self: self._of_significance("z_signed"), doc="Signed local Z.")
    p_value = property(lambda self: self._of_significance("p_value"), doc="Local one-sided p-value.")

    def _of_significance(self, name: str) -> float:
        return getattr(self.significance, name) if self.ok else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("fit", "choice", "significance"):
            d[k] = None if d[k] is None else d[k].to_dict()
        d.update(b_hat=self.b_hat, sigma_b=self.sigma_b, z=self.z, z_signed=self.z_signed, p_value=self.p_value)
        return d


class BackgroundEstimate(Protocol):
    """What the search needs of a background estimate: the test of one selection in one window."""

    def __call__(self, m: np.ndarray, window: Window, *, weights: np.ndarray | None = None) -> SidebandTest: ...


def sideband_test(
    m,
    window: Window,
    *,
    weights=None,
    functions: tuple[int, ...] = (3, 4),
    test: str = "lrt",
    alpha: float = 0.05,
    min_events: int = 20,
) -> SidebandTest:
    """Fit the selected events' ``m`` spectrum in the sidebands of ``window`` and test its SR.

    Parameters
    ----------
    m : resonant feature (GeV) of the selected events (events outside the window are ignored)
    window : the SR and sidebands, and the binning (:class:`~excess.stats.windows.Window`)
    weights : optional per-event weights (the histogram and the counts are sums of weights)
    functions, test, alpha : the dijet functions and the f3-vs-f4 test (:func:`~excess.stats.fit.fit_background`)
    min_events : fewer selected sideband events give ``status="no_result"``
    """
    m = np.asarray(m, dtype=float)
    _, in_sr, in_sb = window.masks(m)
    if weights is None:
        n_sr, n_sb = int(in_sr.sum()), int(in_sb.sum())
    else:
        weights = np.asarray(weights, dtype=float)
        n_sr, n_sb = float(weights[in_sr].sum()), float(weights[in_sb].sum())
    if n_sb < min_events:
        return SidebandTest("no_result", f"too few selected sideband events: {n_sb} < {min_events}", n_sr, n_sb)
    counts = np.histogram(m, window.edges(), weights=weights)[0]
    try:
        fit, choice = fit_background(window.edges(), counts, fit_mask=window.sideband_bins(), functions=functions,
                                     test=test, alpha=alpha, min_events=min_events)
        b_hat, sigma_b = fit.integral(*window.sr)
        sig = local_significance(n_sr, b_hat, sigma_b)
    except FitError as exc:
        return SidebandTest("fit_failed", str(exc), n_sr, n_sb)
    warnings = []
    if fit.p_value < POOR_FIT_P:
        warnings.append(
            f"poor sideband fit: p = {fit.p_value:.2g} (chi2/ndf = {fit.chi2_ndf:.2f}); the background model may be "
            "inadequate or the cut sculpts mjj"
        )
    if sigma_b > 0.5 * b_hat:
        warnings.append(f"background prediction very uncertain: {b_hat:.3g} +- {sigma_b:.2g}")
    if n_sr < 10 or b_hat < 10:
        warnings.append(f"few SR events (n = {n_sr}, b = {b_hat:.3g}): asymptotic Z approximate, see p_toys")
    return SidebandTest(STATUS_OK, "", n_sr, n_sb, fit, choice, sig, tuple(warnings))


@dataclass(frozen=True)
class SidebandFit:
    """:func:`sideband_test` with its options bound: the search's default :class:`BackgroundEstimate`."""

    functions: tuple[int, ...] = (3, 4)
    test: str = "lrt"
    alpha: float = 0.05
    min_events: int = 20

    def __call__(self, m, window: Window, *, weights=None) -> SidebandTest:
        return sideband_test(m, window, weights=weights, **self.fit_kw())

    def fit_kw(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`sideband_test` (and of ``fit_background``)."""
        return {"functions": tuple(self.functions), "test": self.test, "alpha": self.alpha,
                "min_events": int(self.min_events)}
