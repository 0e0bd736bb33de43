"""The sideband fit-and-test of one selection (stats.sideband) and the one toy p-value."""

import json

import numpy as np
import pytest

from excess._util import to_jsonable
from excess.errors import ConfigError, InputError
from excess.stats.dijet import sample_dijet
from excess.stats.sideband import (EfficiencyModel, InclusiveFit, SidebandFit, SidebandTest, SignalFitModel,
                                   background_estimate, sideband_test)
from excess.stats.significance import toy_p_value
from excess.stats.windows import Window

WINDOW = Window.around((3300.0, 3700.0))


@pytest.fixture(scope="module")
def background():
    return sample_dijet(30_000, (1.0, 10.0, 5.0), (WINDOW.sb_lo, WINDOW.sb_hi), random_state=3)


def test_background_only_no_bump_and_bump_found(background):
    t = sideband_test(background, WINDOW)
    assert isinstance(t, SidebandTest) and t.ok and t.reason == ""
    _, in_sr, in_sb = WINDOW.masks(background)
    assert t.n_sr == in_sr.sum() and t.n_sb == in_sb.sum()
    assert abs(t.b_hat - t.n_sr) < 4 * np.sqrt(t.n_sr) and abs(t.z_signed) < 4
    bump = np.r_[background, np.random.default_rng(0).normal(3500.0, 50.0, 900)]
    tb = sideband_test(bump, WINDOW)
    assert tb.z > 5 and tb.n_sr == t.n_sr + np.sum((bump[-900:] >= 3300) & (bump[-900:] < 3700))
    # the fit sees the sidebands only: the prediction barely moves with the SR bump
    assert abs(tb.b_hat - t.b_hat) < 3 * t.sigma_b + 1
    d = json.loads(json.dumps(to_jsonable(tb.to_dict())))
    assert d["status"] == "ok" and d["z"] == pytest.approx(tb.z) and d["fit"]["function"] in ("dijet3", "dijet4")


def test_weights_scale_counts(background):
    t1 = sideband_test(background, WINDOW)
    t2 = sideband_test(background, WINDOW, weights=np.full(background.size, 2.0))
    assert t2.ok and t2.n_sr == pytest.approx(2 * t1.n_sr) and t2.b_hat == pytest.approx(2 * t1.b_hat, rel=1e-3)


def test_no_result_and_bound_options(background):
    few = sideband_test(background[:30], WINDOW, min_events=50)
    assert few.status == "no_result" and "too few selected sideband events" in few.reason
    assert np.isnan(few.z) and np.isnan(few.b_hat)
    bound = SidebandFit(functions=(3,), min_events=20)
    assert bound(background, WINDOW).fit.function == "dijet3"
    assert bound.fit_kw() == {"functions": (3,), "test": "lrt", "alpha": 0.05, "min_events": 20}


def test_background_models_share_the_test(background):
    """The efficiency and signal-fit models are background estimates like the sideband fit: bound
    once per window to the inclusive fit, then one sideband_test per selection."""
    sel = background[np.random.default_rng(1).random(background.size) < 0.05]
    assert isinstance(background_estimate("efficiency"), EfficiencyModel)
    with pytest.raises(InputError, match="bind"):
        EfficiencyModel()(sel, WINDOW)
    with pytest.raises(ConfigError, match="background_model"):
        background_estimate("magic")
    eff = background_estimate("efficiency", degree=0).bind(background, WINDOW)
    assert isinstance(eff.inclusive, InclusiveFit) and eff.inclusive.fit is not None
    t = eff(sel, WINDOW)
    assert t.ok and t.fit is None and t.background is not None and t.prediction is t.background
    assert t.b_hat == pytest.approx(t.background.b_hat) and abs(t.z_signed) < 4
    assert t.to_dict()["background"]["efficiency_fit"]["degree"] == 0
    s = SignalFitModel().bind(background, WINDOW)(sel, WINDOW)
    assert s.ok and s.signal_fit is not None and s.significance.method == "signal_fit"
    # a failed inclusive fit is the selection's fit_failed, with the reason
    bad = EfficiencyModel(inclusive=InclusiveFit(np.zeros(WINDOW.edges().size - 1), error="no events"))
    assert bad(sel, WINDOW).status == "fit_failed" and "no events" in bad(sel, WINDOW).reason


def test_toy_p_value():
    toys = np.array([0.5, 1.0, 2.0, 3.0, np.nan])
    assert toy_p_value(2.0, toys) == pytest.approx((2 + 1) / (4 + 1))  # NaN = failed toy, dropped
    assert toy_p_value(10.0, toys) == pytest.approx(1 / 5)  # never 0: the bound 1 / (n + 1)
    assert toy_p_value(3.0 + 1e-13, toys) == pytest.approx(2 / 5)  # reaching within 1e-12 counts
    with pytest.raises(InputError):
        toy_p_value(1.0, [np.nan])


def test_dijet_signal_model(background):
    """"dijet_signal": the selected spectrum's dijet function + a Gaussian template fitted over the whole window;
    found where the sideband-only fit of a bump that leaks into the sidebands is not more significant."""
    from excess.stats.fit import DijetSignalFit
    from excess.stats.sideband import DijetSignalModel

    est = background_estimate("dijet_signal", functions=(4,), signal_width=0.03, min_events=20)
    assert isinstance(est, DijetSignalModel) and est.bind(background, WINDOW) is est and est.sideband() is est
    assert est.settings() == {"functions": (4,), "test": "lrt", "alpha": 0.05, "min_events": 20,
                              "model": "dijet_signal", "signal_width": 0.03}
    t = est(background, WINDOW)
    assert t.ok and isinstance(t.signal_fit, DijetSignalFit) and t.significance.method == "dijet_signal"
    assert t.fit is t.signal_fit.background_fit and abs(t.z_signed) < 3
    assert abs(t.b_hat - t.n_sr) < 4 * np.sqrt(t.n_sr)
    bump = np.r_[background, np.random.default_rng(0).normal(3500.0, 105.0, 700)]
    tb = est(bump, WINDOW)
    assert tb.z > 5 and tb.signal_fit.s_hat > 350
    assert tb.z >= sideband_test(bump, WINDOW, functions=(4,), min_events=20).z
    d = json.loads(json.dumps(to_jsonable(tb.to_dict())))
    assert d["signal_fit"]["kind"] == "dijet_signal" and d["z"] == pytest.approx(tb.z)


def test_dijet_signal_bad_settings(background):
    from excess.stats.sideband import DijetSignalModel

    for bad in (0, 0.5, -0.2, "x"):
        with pytest.raises(ConfigError, match="signal_width"):
            background_estimate("dijet_signal", signal_width=bad)
        with pytest.raises(ConfigError, match="signal_width"):
            DijetSignalModel(signal_width=bad)
        with pytest.raises(ConfigError, match="signal_width"):
            sideband_test(background, WINDOW, model="dijet_signal", signal_width=bad)
    with pytest.raises(InputError, match="unweighted"):
        sideband_test(background, WINDOW, model="dijet_signal", weights=np.ones(background.size))
