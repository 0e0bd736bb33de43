import numpy as np
import pytest
from scipy import stats as sps

from excess.errors import ConfigError, FitError
from excess.stats.dijet import sample_dijet
from excess.stats.fit import DijetFit, FunctionChoice, fit_background, fit_dijet

EDGES = np.arange(2600.0, 6001.0, 50.0)
SB = (EDGES[:-1] < 3300) | (EDGES[:-1] >= 3700)


def _hist(n, params, seed):
    m = sample_dijet(n, params, (EDGES[0], EDGES[-1]), random_state=seed)
    return np.histogram(m, EDGES)[0]


def test_fit_recovers_truth_within_errors():
    truth = (1.0, 10.0, 5.0)
    counts = _hist(60_000, truth, 0)
    fit = fit_dijet(EDGES, counts, n_params=3, fit_mask=SB)
    assert fit.converged and fit.function == "dijet3"
    err = np.sqrt(np.diag(fit.cov))
    # shape parameters p2, p3 within 4 sigma of the truth
    from excess.stats.dijet import from_canonical

    t_true = from_canonical((1.0, *truth[1:]), fit.pivot)
    assert np.all(np.abs(np.asarray(fit.theta)[1:] - t_true[1:]) < 4 * err[1:])
    # normalisation: fitted total over all bins matches the count
    assert abs(sum(fit.expected) - counts.sum()) < 4 * np.sqrt(counts.sum())
    # SR prediction and its uncertainty
    b, sb = fit.integral(3300, 3700)
    n_sr = counts[~SB].sum()
    assert 0 < sb < 0.05 * b
    assert abs(n_sr - b) < 4 * np.hypot(sb, np.sqrt(b))
    assert 0.001 < fit.p_value and 0.5 < fit.chi2_ndf < 2


def test_uncertainty_propagation_matches_toys():
    """The delta-method sigma of the SR prediction agrees with its spread over toys."""
    truth = (1.0, 10.0, 5.0)
    base = fit_dijet(EDGES, _hist(20_000, truth, 1), n_params=3, fit_mask=SB)
    rng = np.random.default_rng(2)
    exp = np.asarray(base.expected)
    preds, sigmas = [], []
    for _ in range(150):
        f = fit_dijet(EDGES, rng.poisson(exp), n_params=3, fit_mask=SB, pivot=base.pivot)
        b, s = f.integral(3300, 3700)
        preds.append(b)
        sigmas.append(s)
    ratio = np.std(preds) / np.mean(sigmas)
    assert 0.8 < ratio < 1.2


def test_four_parameter_uncertainty_on_a_curved_window():
    """The 4-parameter fit of a strongly curved spectrum (an mT window of the SVJ search: p4 ~ -14 over a factor
    2.4 in mass, where ln(1-x), ln x and ln^2 x are nearly collinear): the SR uncertainty matches the spread of
    the prediction over toys and does not depend on the start values (HESSE's numerical covariance did: 0.7x
    the spread on average, and some toys 2-10x off)."""
    from excess.stats.dijet import bin_integrals

    edges = np.arange(1600.0, 3801.0, 50.0)
    sb = (edges[:-1] < 2400) | (edges[:-1] >= 3000)
    exp = bin_integrals(edges, (-0.888, 114.1, -24.65, -13.77), 2700.0)
    rng = np.random.default_rng(5)
    preds, sigmas = [], []
    for _ in range(80):
        counts = rng.poisson(exp)
        f = fit_dijet(edges, counts, n_params=4, fit_mask=sb)
        b, s = f.integral(2400, 3000)
        preds.append(b)
        sigmas.append(s)
    truth = exp[~sb].sum()
    assert abs(np.mean(preds) - truth) < 3 * np.std(preds) / np.sqrt(len(preds))
    assert 0.8 < np.std(preds) / np.mean(sigmas) < 1.25
    assert np.std(sigmas) < 0.15 * np.mean(sigmas)
    f3 = fit_dijet(edges, counts, n_params=3, fit_mask=sb)
    other = fit_dijet(edges, counts, n_params=4, fit_mask=sb, start=np.r_[f3.theta, 0.0], pivot=f3.pivot)
    assert other.integral(2400, 3000)[1] == pytest.approx(f.integral(2400, 3000)[1], rel=0.02)


def test_function_choice():
    # data from f3: f4 chosen rarely; strongly curved data: f4 chosen
    counts3 = _hist(50_000, (1.0, 10.0, 5.0), 3)
    fit, choice = fit_background(EDGES, counts3, fit_mask=SB)
    assert choice.chosen == fit.function
    assert fit.function == "dijet3" and choice.p_value >= 0.05
    counts4 = _hist(200_000, (1.0, 8.0, 6.0, 1.5), 4)
    fit4, choice4 = fit_background(EDGES, counts4, fit_mask=SB)
    assert fit4.function == "dijet4" and choice4.p_value < 0.05
    fit4f, choice4f = fit_background(EDGES, counts4, fit_mask=SB, test="f-test")
    assert fit4f.function == "dijet4" and choice4f.test == "f-test"
    fixed, ch = fit_background(EDGES, counts4, fit_mask=SB, functions=(3,))
    assert fixed.function == "dijet3" and ch.test == "fixed"
    assert fixed.deviance > fit4.deviance + 3.84


def test_lrt_size_under_f3():
    """Fraction of f3 toys where the test picks f4 is about alpha (Wilks)."""
    rng = np.random.default_rng(5)
    base = fit_dijet(EDGES, _hist(30_000, (1.0, 10.0, 5.0), 5), n_params=3, fit_mask=SB)
    exp = np.asarray(base.expected)
    picks = [fit_background(EDGES, rng.poisson(exp), fit_mask=SB)[1].chosen == "dijet4" for _ in range(200)]
    frac = np.mean(picks)
    assert sps.binomtest(int(np.sum(picks)), 200, 0.05).pvalue > 0.001, frac


def test_roundtrip_dict():
    fit, choice = fit_background(EDGES, _hist(5000, (1.0, 10.0, 5.0), 6), fit_mask=SB)
    import json

    d = json.loads(json.dumps(fit.to_dict()))
    fit2 = DijetFit.from_dict(d)
    assert fit2 == fit
    assert FunctionChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice
    np.testing.assert_allclose(fit2.integral(3300, 3700), fit.integral(3300, 3700))


def test_errors():
    with pytest.raises(FitError, match="fewer than min_events"):
        fit_dijet(EDGES, np.zeros(EDGES.size - 1), fit_mask=SB)
    counts = np.zeros(EDGES.size - 1)
    counts[:2] = 50
    with pytest.raises(FitError, match="non-empty"):
        fit_dijet(EDGES, counts, fit_mask=SB)
    with pytest.raises(FitError):
        fit_background(EDGES, counts, fit_mask=SB)
    with pytest.raises(ConfigError):
        fit_background(EDGES, counts, test="chi2")
    from excess.errors import InputError

    with pytest.raises(InputError):
        fit_dijet(EDGES, np.ones(3))


# ---- the signal-plus-background fit over a whole window (background model "dijet_signal") ----
W_EDGES = np.arange(1800.0, 4001.0, 50.0)
W_SR = (2600.0, 3200.0)


def _window_counts(rng, n_bkg, n_sig=0, width=0.08):
    m = sample_dijet(n_bkg, (1.0, 10.0, 5.0), (W_EDGES[0], W_EDGES[-1]), random_state=rng)
    centre = 0.5 * sum(W_SR)
    sig = rng.normal(centre, width * centre, n_sig)
    return np.histogram(np.r_[m, sig], W_EDGES)[0], int(np.sum((sig >= W_EDGES[0]) & (sig < W_EDGES[-1])))


def test_dijet_signal_fit_recovers_the_injected_amplitude():
    from excess.stats.fit import DijetSignalFit, fit_dijet_signal

    rng = np.random.default_rng(11)
    fits, n_in = [], []
    for _ in range(30):
        counts, n = _window_counts(rng, 4000, 200)
        fits.append(fit_dijet_signal(W_EDGES, counts, W_SR, relative_width=0.08))
        n_in.append(n)
    s = np.array([f.s_hat for f in fits])
    err = np.array([f.s_err for f in fits])
    # unbiased within the spread of 30 fits, and the Hessian error describes that spread
    assert abs(np.mean(s - n_in)) < 3 * np.std(s) / np.sqrt(s.size), (np.mean(s), np.mean(n_in))
    assert 0.7 < np.std(s - n_in) / np.mean(err) < 1.4
    assert np.median([f.z for f in fits]) > 3
    f = fits[0]
    assert f.q0 == pytest.approx(f.z**2) and f.background_fit.function == "dijet4" and f.null_fit.fit_mask[0]
    # b_hat is the background component in the SR, n_sr what is observed there
    assert f.n_sr == pytest.approx(f.b_hat + f.s_hat * np.sum(np.asarray(f.template)[(W_EDGES[:-1] >= 2600) & (W_EDGES[1:] <= 3200)]), rel=0.1)
    import json

    assert DijetSignalFit.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_dijet_signal_q0_calibrated_on_background_only_toys():
    from excess.stats.fit import fit_dijet_signal

    rng = np.random.default_rng(12)
    z = np.array([fit_dijet_signal(W_EDGES, _window_counts(rng, 20_000)[0], W_SR, relative_width=0.08).z_signed
                  for _ in range(200)])
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2, (z.mean(), z.std())
    # one-sided tail fractions within binomial tolerance (p > 0.001) of the Gaussian ones
    for cut in (1.0, 2.0):
        k = int(np.sum(z > cut))
        assert sps.binomtest(k, z.size, sps.norm.sf(cut)).pvalue > 0.001, (cut, k)


def test_dijet_signal_bad_settings():
    from excess.errors import InputError
    from excess.stats.fit import fit_dijet_signal

    counts = _window_counts(np.random.default_rng(13), 3000)[0]
    for bad in (0.0, -0.1, 0.5, 2.0, "wide", None, float("nan")):
        with pytest.raises(ConfigError, match="signal_width"):
            fit_dijet_signal(W_EDGES, counts, W_SR, relative_width=bad)
    with pytest.raises(InputError, match="inside the window"):
        fit_dijet_signal(W_EDGES, counts, (1500.0, 2000.0), relative_width=0.08)
    with pytest.raises(FitError, match="sidebands"):
        fit_dijet_signal(W_EDGES, counts, W_SR, relative_width=0.08, min_events=10**6)
    with pytest.raises(ConfigError):
        fit_dijet_signal(W_EDGES, counts, W_SR, relative_width=0.08, functions=(5,))
