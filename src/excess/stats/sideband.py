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
when there is no trustworthy number. A background estimate plugs into the search by following
:class:`BackgroundEstimate`: a callable ``(m, window, *, weights=None) -> SidebandTest``, optionally
with ``bind(m_window, window)`` that precomputes what every selection of one window shares.

The background models (``model=``), one code path (counts, minimum events, warnings):

* ``"sideband"`` (:class:`SidebandFit`): the dijet fit of the selected events, steps 1-4 above;
* ``"efficiency"`` (:class:`EfficiencyModel`): the window's *inclusive* spectrum fitted in the
  sidebands (once per window, :class:`InclusiveFit`) times the selection efficiency fitted in the
  sidebands (:func:`excess.stats.efficiency.efficiency_background`): honest when the cut sculpts
  ``m``, precise at tight cuts (issue 22);
* ``"profile"`` (:class:`SignalFitModel` with ``model="profile"``): the counting experiment of the SR
  with the selection efficiency profiled from the sidebands, conditional on the *observed* inclusive
  counts (no inclusive-fit uncertainty), the signal's leakage into the sidebands modelled by a
  Gaussian template (:func:`excess.stats.efficiency.fit_signal` with ``count_sr=True``);
* ``"signal_fit"`` (:class:`SignalFitModel`): the efficiency model fitted over the whole window with a
  Gaussian signal template (:func:`excess.stats.efficiency.fit_signal`); ``q0`` from that fit;
* ``"dijet_signal"`` (:class:`DijetSignalModel`): the selected spectrum's dijet function fitted over the
  whole window (SR and sidebands) plus a Gaussian signal template of width ``signal_width`` x the SR
  centre centred on the SR, amplitude ``s >= 0`` (:func:`excess.stats.fit.fit_dijet_signal`); ``q0`` the
  profile likelihood ratio of ``s = 0``, local Z ``sqrt(q0)``; ``b_hat``/``sigma_b`` the background
  component in the SR. For a broad signal that leaks into the sidebands (the sideband-only fit absorbs
  the leakage and extrapolates the rest imprecisely into the SR); the mT search's default.

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

from ..errors import ConfigError, FitError, InputError
from .efficiency import EfficiencyBackground, SignalFit, efficiency_background, fit_signal
from .fit import DijetFit, DijetSignalFit, FunctionChoice, check_signal_width, fit_background, fit_dijet_signal
from .significance import LocalSignificance, local_significance, profiled_signal_significance
from .windows import Window

__all__ = ["STATUS_OK", "POOR_FIT_P", "BACKGROUND_MODELS", "DEFAULT_BACKGROUND_MODEL", "SidebandTest", "BackgroundEstimate", "InclusiveFit",
           "sideband_test", "SidebandFit", "EfficiencyModel", "SignalFitModel", "DijetSignalModel", "background_estimate"]

STATUS_OK = "ok"
POOR_FIT_P = 0.01
"""A sideband fit with a goodness-of-fit p-value below this is flagged with a warning."""
BACKGROUND_MODELS = ("efficiency", "profile", "signal_fit", "sideband", "dijet_signal")
DEFAULT_BACKGROUND_MODEL = "efficiency"
"""The scan's default background model (``excess.search.run_scan``, ``scan.background_model``), also the
default of :func:`excess.benchmarks.background_only_check`, so both test a selection the same way."""


@dataclass(frozen=True)
class SidebandTest:
    """Observed vs predicted background in the SR of one selection.

    ``status``: ``"ok"``, ``"no_result"`` (too few selected sideband events) or ``"fit_failed"``,
    with the ``reason``. ``n_sr``/``n_sb``: selected events in the SR / sidebands (sums of weights
    when weighted). ``fit``/``choice``: the sideband fit and the f3-vs-f4 choice. ``significance``:
    the local significance of ``n_sr`` over the prediction (``b_hat``, ``sigma_b`` inside it).
    ``background``: the inclusive-fit x efficiency prediction (models ``"efficiency"`` and
    ``"signal_fit"``; then ``fit`` is None); ``signal_fit``: the signal-plus-background fit (model
    ``"dijet_signal"``: a :class:`~excess.stats.fit.DijetSignalFit`, and ``fit`` its background component).
    """

    status: str
    reason: str = ""
    n_sr: float = 0
    n_sb: float = 0
    fit: DijetFit | None = None
    choice: FunctionChoice | None = None
    significance: LocalSignificance | None = None
    warnings: tuple = ()
    background: EfficiencyBackground | None = None
    signal_fit: SignalFit | DijetSignalFit | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def prediction(self) -> DijetFit | EfficiencyBackground | None:
        """The binned prediction (``edges``, ``counts``, ``expected``): the fit or the efficiency model."""
        return self.fit if self.fit is not None else self.background

    b_hat = property(lambda self: self._of_significance("b_hat"), doc="Predicted SR background (NaN without a result).")
    sigma_b = property(lambda self: self._of_significance("sigma_b"), doc="Uncertainty of ``b_hat``.")
    z = property(lambda self: self._of_significance("z"), doc="Local one-sided Z (NaN without a result).")
    z_signed = property(lambda self: self._of_significance("z_signed"), doc="Signed local Z.")
    p_value = property(lambda self: self._of_significance("p_value"), doc="Local one-sided p-value.")

    def _of_significance(self, name: str) -> float:
        return getattr(self.significance, name) if self.ok else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("fit", "choice", "significance", "background", "signal_fit"):
            d[k] = None if d[k] is None else d[k].to_dict()
        d.update(b_hat=self.b_hat, sigma_b=self.sigma_b, z=self.z, z_signed=self.z_signed, p_value=self.p_value)
        return d


class BackgroundEstimate(Protocol):
    """What the search needs of a background estimate: the test of one selection in one window.

    An estimate may also have ``bind(m_window, window) -> BackgroundEstimate``: the estimate for the
    selections of one window (``m_window``: all its events), computing once what they share."""

    def __call__(self, m: np.ndarray, window: Window, *, weights: np.ndarray | None = None) -> SidebandTest: ...


@dataclass(frozen=True)
class InclusiveFit:
    """The sideband fit of a window's inclusive (uncut) spectrum, shared by its selections;
    ``error`` says why there is no ``fit``."""

    counts: np.ndarray
    fit: DijetFit | None = None
    choice: FunctionChoice | None = None
    error: str = ""

    @classmethod
    def of(cls, m, window: Window, *, functions: tuple[int, ...] = (3, 4), test: str = "lrt", alpha: float = 0.05,
           min_events: int = 20) -> InclusiveFit:
        counts = np.histogram(np.asarray(m, float), window.edges())[0]
        try:
            fit, choice = fit_background(window.edges(), counts, fit_mask=window.sideband_bins(), functions=functions,
                                         test=test, alpha=alpha, min_events=min_events)
        except FitError as exc:
            return cls(counts, error=str(exc))
        return cls(counts, fit, choice)


def sideband_test(
    m,
    window: Window,
    *,
    weights=None,
    functions: tuple[int, ...] = (3, 4),
    test: str = "lrt",
    alpha: float = 0.05,
    min_events: int = 20,
    model: str = "sideband",
    inclusive: InclusiveFit | None = None,
    degree: int | str = "auto",
    signal_width: float = 0.04,
) -> SidebandTest:
    """Predict the selected events' background in the SR of ``window`` from its sidebands and test the SR.

    Parameters
    ----------
    m : resonant feature (GeV) of the selected events (events outside the window are ignored)
    window : the SR and sidebands, and the binning (:class:`~excess.stats.windows.Window`)
    weights : optional per-event weights (the histogram and the counts are sums of weights; model
        ``"sideband"`` only)
    functions, test, alpha : the dijet functions and the f3-vs-f4 test (:func:`~excess.stats.fit.fit_background`)
    min_events : fewer selected sideband events give ``status="no_result"``
    model : ``"sideband"``, ``"efficiency"``, ``"profile"``, ``"signal_fit"`` or ``"dijet_signal"`` (module docstring)
    inclusive : the window's :class:`InclusiveFit` (models ``"efficiency"``/``"signal_fit"``)
    degree : the efficiency polynomial's degree in ln m, ``"auto"`` (one degree chosen by
        :func:`~excess.stats.efficiency.choose_degree`) or, for model ``"efficiency"``, ``"average"`` (the degrees
        1-2 averaged with Akaike weights, :func:`~excess.stats.efficiency.efficiency_background`)
    signal_width : ``"signal_fit"``, ``"profile"``, ``"dijet_signal"``: the signal template's width over the SR centre
    """
    if model not in BACKGROUND_MODELS:
        raise ConfigError(f"background model must be one of {BACKGROUND_MODELS}, got {model!r}")
    if model == "dijet_signal" and weights is not None:
        raise InputError("background model 'dijet_signal' (a Poisson fit of counts) needs unweighted events")
    if model not in ("sideband", "dijet_signal") and (inclusive is None or weights is not None):
        raise InputError(f"background model {model!r} needs the window's inclusive fit and unweighted events")
    if model in ("signal_fit", "profile", "dijet_signal"):
        signal_width = check_signal_width(signal_width)
    m = np.asarray(m, dtype=float)
    _, in_sr, in_sb = window.masks(m)
    if weights is None:
        n_sr, n_sb = int(in_sr.sum()), int(in_sb.sum())
    else:
        weights = np.asarray(weights, dtype=float)
        n_sr, n_sb = float(weights[in_sr].sum()), float(weights[in_sb].sum())
    if n_sb < min_events:
        return SidebandTest("no_result", f"too few selected sideband events: {n_sb} < {min_events}", n_sr, n_sb)
    edges, mask = window.edges(), window.sideband_bins()
    counts = np.histogram(m, edges, weights=weights)[0]
    fit = choice = bg = sfit = None
    try:
        if model == "sideband":
            fit, choice = fit_background(edges, counts, fit_mask=mask, functions=functions, test=test, alpha=alpha,
                                         min_events=min_events)
            b_hat, sigma_b = fit.integral(*window.sr)
        elif model == "dijet_signal":
            sfit = fit_dijet_signal(edges, counts, window.sr, relative_width=signal_width, functions=functions,
                                    test=test, alpha=alpha, min_events=min_events)
            fit, b_hat, sigma_b = sfit.background_fit, sfit.b_hat, sfit.sigma_b
        else:
            if inclusive.fit is None:
                raise FitError(f"inclusive sideband fit failed: {inclusive.error}")
            bg = efficiency_background(edges, counts, inclusive.counts, window.sr, fit_mask=mask, degree=degree,
                                       inclusive_fit=inclusive.fit, inclusive_choice=inclusive.choice,
                                       min_selected=min_events)
            b_hat, sigma_b = bg.b_hat, bg.sigma_b
        if model in ("signal_fit", "profile"):
            sfit = fit_signal(edges, counts, inclusive.counts, window.sr, degree=degree, relative_width=signal_width,
                              min_selected=min_events, count_sr=model == "profile")
            sig = profiled_signal_significance(sfit)
            b_hat, sigma_b = sfit.b_hat, sfit.sigma_b
        elif model == "dijet_signal":
            sig = profiled_signal_significance(sfit)
        else:
            sig = local_significance(n_sr, b_hat, sigma_b)
    except FitError as exc:
        return SidebandTest("fit_failed", str(exc), n_sr, n_sb)
    warnings = _fit_warnings(fit, bg) + _prediction_warnings(n_sr, b_hat, sigma_b)
    return SidebandTest(STATUS_OK, "", n_sr, n_sb, fit, choice, sig, tuple(warnings), bg, sfit)


def _fit_warnings(fit: DijetFit | None, bg: EfficiencyBackground | None) -> list[str]:
    """Goodness of the fit that predicts the background (and, for the efficiency model, the sculpting)."""
    if bg is None:
        if fit.p_value < POOR_FIT_P:
            return [f"poor sideband fit: p = {fit.p_value:.2g} (chi2/ndf = {fit.chi2_ndf:.2f}); the background model "
                    "may be inadequate or the cut sculpts mjj"]
        return []
    ef, out = bg.efficiency_fit, []
    if ef.ndf > 0 and ef.p_value < POOR_FIT_P:
        out.append(f"poor sideband efficiency fit: p = {ef.p_value:.2g} (deviance {ef.deviance:.1f}/{ef.ndf})")
    if ef.p_flat < POOR_FIT_P:
        out.append(f"the cut sculpts mjj: efficiency slope {ef.z_slope:.1f} sigma (p_flat = {ef.p_flat:.2g}); "
                   "absorbed by the efficiency model, but check the decorrelation")
    return out


def _prediction_warnings(n_sr, b_hat: float, sigma_b: float) -> list[str]:
    out = []
    if sigma_b > 0.5 * b_hat:
        out.append(f"background prediction very uncertain: {b_hat:.3g} +- {sigma_b:.2g}")
    if n_sr < 10 or b_hat < 10:
        out.append(f"few SR events (n = {n_sr}, b = {b_hat:.3g}): asymptotic Z approximate, see p_toys")
    return out


@dataclass(frozen=True)
class SidebandFit:
    """:func:`sideband_test` with its options bound: the dijet fit of the selected events (``model="sideband"``)."""

    functions: tuple[int, ...] = (3, 4)
    test: str = "lrt"
    alpha: float = 0.05
    min_events: int = 20

    model = "sideband"

    def __call__(self, m, window: Window, *, weights=None) -> SidebandTest:
        return sideband_test(m, window, weights=weights, **self.fit_kw(), **self.model_kw())

    def bind(self, m_window, window: Window) -> SidebandFit:
        """The estimate for the selections of ``window`` (nothing to share for the sideband fit)."""
        return self

    def sideband(self) -> SidebandFit:
        """The dijet sideband fit with the same options (the test of the uncut spectrum)."""
        return SidebandFit(**self.fit_kw())

    def fit_kw(self) -> dict[str, Any]:
        """The dijet-fit options as keyword arguments of :func:`sideband_test` (and of ``fit_background``)."""
        return {"functions": tuple(self.functions), "test": self.test, "alpha": self.alpha,
                "min_events": int(self.min_events)}

    def model_kw(self) -> dict[str, Any]:
        """The background model and its options, as keyword arguments of :func:`sideband_test`."""
        return {"model": self.model}

    def settings(self) -> dict[str, Any]:
        """Everything that determines the estimate (for fingerprints and the saved configuration)."""
        return {**self.fit_kw(), "model": self.model}


@dataclass(frozen=True)
class EfficiencyModel(SidebandFit):
    """Inclusive dijet fit x sideband efficiency fit (``model="efficiency"``); :meth:`bind` fits the
    window's inclusive spectrum once for all its selections."""

    degree: int | str = "auto"
    inclusive: InclusiveFit | None = dataclasses.field(default=None, repr=False, compare=False)

    model = "efficiency"

    def bind(self, m_window, window: Window) -> EfficiencyModel:
        return dataclasses.replace(self, inclusive=InclusiveFit.of(m_window, window, **self.fit_kw()))

    def model_kw(self) -> dict[str, Any]:
        if self.inclusive is None:
            raise InputError(f"the {self.model!r} background model is bound to a window first: .bind(m_window, window)")
        return {"model": self.model, "inclusive": self.inclusive, "degree": self.degree}

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "degree": self.degree}


@dataclass(frozen=True)
class SignalFitModel(EfficiencyModel):
    """The efficiency model fitted over the whole window with a Gaussian signal template of width
    ``signal_width`` x the SR centre (``model="signal_fit"``)."""

    signal_width: float = 0.04
    kind: str = "signal_fit"

    @property
    def model(self) -> str:
        return self.kind

    def model_kw(self) -> dict[str, Any]:
        return {**super().model_kw(), "signal_width": float(self.signal_width)}

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "signal_width": float(self.signal_width)}


@dataclass(frozen=True)
class DijetSignalModel(SidebandFit):
    """The selected spectrum's dijet function fitted over the whole window plus a Gaussian signal template of
    width ``signal_width`` x the SR centre (``model="dijet_signal"``; :func:`excess.stats.fit.fit_dijet_signal`)."""

    signal_width: float = 0.08

    model = "dijet_signal"

    def __post_init__(self):
        check_signal_width(self.signal_width)

    def sideband(self) -> DijetSignalModel:
        """The test of the uncut spectrum: this model too (the signal leaks into its sidebands as into a cut's)."""
        return self

    def model_kw(self) -> dict[str, Any]:
        return {"model": self.model, "signal_width": float(self.signal_width)}

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "signal_width": float(self.signal_width)}


def background_estimate(model: str = "sideband", *, functions: tuple[int, ...] = (3, 4), test: str = "lrt",
                        alpha: float = 0.05, min_events: int = 20, degree: int | str = "auto",
                        signal_width: float = 0.04) -> SidebandFit:
    """The :class:`BackgroundEstimate` of a background model name, its options checked."""
    if model not in BACKGROUND_MODELS:
        raise ConfigError(f"background_model must be one of {BACKGROUND_MODELS}, got {model!r}")
    if test not in ("lrt", "f-test"):
        raise ConfigError(f"function_test must be 'lrt' or 'f-test', got {test!r}")
    if not functions or any(int(f) not in (3, 4) for f in functions):
        raise ConfigError(f"fit_functions must be a subset of (3, 4), got {functions}")
    if degree == "average" and model != "efficiency":
        raise ConfigError(f"efficiency_degree 'average' is for background_model 'efficiency', not {model!r}")
    if degree not in ("auto", "average") and (isinstance(degree, str) or not 0 <= int(degree) <= 3):
        raise ConfigError(f"efficiency_degree must be 0..3, 'auto' or 'average', got {degree!r}")
    signal_width = check_signal_width(signal_width)
    fit_kw = {"functions": tuple(int(f) for f in functions), "test": test, "alpha": float(alpha),
              "min_events": int(min_events)}
    degree = degree if degree in ("auto", "average") else int(degree)
    if model == "sideband":
        return SidebandFit(**fit_kw)
    if model == "efficiency":
        return EfficiencyModel(**fit_kw, degree=degree)
    if model == "dijet_signal":
        return DijetSignalModel(**fit_kw, signal_width=signal_width)
    return SignalFitModel(**fit_kw, degree=degree, signal_width=float(signal_width), kind=model)
