import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from excess.errors import ConfigError, FitError, InputError
from excess.stats.dijet import bin_integrals, from_canonical
from excess.stats.fit import fit_background
from excess.stats.significance import (
    GlobalSignificance,
    LocalSignificance,
    global_significance,
    local_significance,
    p_to_z,
    pseudo_experiment_z,
    q0_counting,
    sidak,
    z_to_p,
)

EDGES = np.arange(2600.0, 5001.0, 50.0)
SB = (EDGES[:-1] < 3300) | (EDGES[:-1] >= 3700)
SR = (3300.0, 3700.0)


def _truth(n_total, params=(1.0, 10.0, 5.0)):
    exp = bin_integrals(EDGES, from_canonical(params, 3500), 3500)
    return exp * n_total / exp.sum()


@pytest.mark.parametrize("n,b,s", [(1100, 1000.0, 10.0), (130, 100.0, 25.0), (3, 0.5, 0.4), (0, 2.0, 1.0)])
def test_closed_form_profile_matches_numeric(n, b, s):
    def nll(bb, mu):
        return -(sps.poisson.logpmf(n, mu + bb) + sps.norm.logpdf(b, bb, s))

    cond = optimize.minimize_scalar(lambda bb: nll(bb, 0.0), bounds=(1e-9, b + 20 * s + 10 * np.sqrt(n + 1)), method="bounded",
                                    options={"xatol": 1e-10})
    q0, bprof = q0_counting(n, b, s, one_sided=False)
    np.testing.assert_allclose(bprof, cond.x, rtol=1e-5, atol=1e-6)
    best = nll(b, max(n - b, -b + 1e-12)) if n > 0 else nll(b, -b + 1e-300)
    if n > 0:
        np.testing.assert_allclose(q0, 2 * (cond.fun - best), rtol=1e-5, atol=1e-7)


def test_limits_and_conventions():
    # sigma_b = 0: pure Poisson likelihood ratio
    r = local_significance(20, 10.0, 0.0)
    assert r.z == pytest.approx(np.sqrt(2 * (20 * np.log(2) - 10)))
    # deficit: one-sided q0 = 0, p = 0.5, signed Z negative
    d = local_significance(900, 1000.0, 10.0)
    assert d.q0 == 0 and d.p_value == 0.5 and d.z_signed < -2.5
    # larger background uncertainty lowers Z
    assert local_significance(1100, 1000.0, 30.0).z < local_significance(1100, 1000.0, 10.0).z
    assert p_to_z(z_to_p(2.5)) == pytest.approx(2.5)
    assert sidak(0.01, 1) == pytest.approx(0.01) and sidak(0.01, 10) == pytest.approx(1 - 0.99**10)


def test_toys_agree_with_asymptotic_at_large_counts():
    a = local_significance(1100, 1000.0, 10.0)
    t = local_significance(1100, 1000.0, 10.0, method="toys", n_toys=40_000, random_state=0)
    assert t.method == "toys" and t.n_toys == 40_000
    assert abs(t.z - a.z) < 0.15
    assert t.z_asymptotic == a.z


def test_bad_input():
    with pytest.raises(FitError):
        local_significance(10, 0.0, 1.0)
    with pytest.raises(FitError):
        local_significance(10, 5.0, np.nan)
    with pytest.raises(InputError):
        local_significance(-1, 5.0, 1.0)
    with pytest.raises(ConfigError):
        local_significance(10, 5.0, 1.0, method="bayes")
    with pytest.raises(InputError):
        global_significance(3.0, 0)


def _sb_fit_test(counts):
    fit, _ = fit_background(EDGES, counts, fit_mask=SB)
    b, sb = fit.integral(*SR)
    sr_bins = ~SB
    return local_significance(counts[sr_bins].sum(), b, sb)


def test_background_only_p_values_are_uniform():
    """Calibration of the whole fit + test: background-only toys give uniform p-values (KS)."""
    rng = np.random.default_rng(11)
    exp = _truth(20_000)
    res = [_sb_fit_test(rng.poisson(exp)) for _ in range(300)]
    p_signed = np.array([r.p_signed for r in res])
    ks = sps.kstest(p_signed, "uniform")
    assert ks.pvalue > 0.01, ks
    p = np.array([r.p_value for r in res])
    # one-sided convention: about half the toys are deficits with p = 0.5
    assert 0.35 < np.mean(p == 0.5) < 0.65
    assert np.mean(p < 0.05) < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)
    assert max(r.z for r in res) < 4


def test_injected_bump_is_significant():
    rng = np.random.default_rng(12)
    exp = _truth(20_000)
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    sig = 500 * np.diff(sps.norm.cdf(EDGES, 3500, 80))
    r = _sb_fit_test(rng.poisson(exp + sig))
    assert r.z > 3, r
    assert r.s_hat == pytest.approx(r.n_obs - r.b_hat)
    assert np.sum(sig[(centres > 3300) & (centres < 3700)]) > 0.9 * sig.sum()


def test_pseudo_experiments_and_global():
    exp = _truth(20_000)
    # three nested selections: 100 %, 30 %, 10 % of the background
    expected = np.stack([exp, 0.3 * exp, 0.1 * exp])
    z = pseudo_experiment_z(EDGES, expected, SB, SR, n_toys=60, random_state=3)
    assert z.shape == (60, 3)
    assert np.isfinite(z).mean() > 0.95
    assert np.nanmean(z == 0) > 0.3  # deficits
    # nested selections are correlated: tightest vs middle
    zs = np.where(np.isfinite(z), z, 0)
    assert np.corrcoef(zs[:, 1] > 0, zs[:, 2] > 0)[0, 1] > 0.2
    maxz = np.nanmax(z, axis=1)
    g = global_significance(2.0, 3, maxz)
    assert isinstance(g, GlobalSignificance) and g.method == "toys" and g.n_toys == 60
    assert g.z_global < 2.0 and g.p_global > g.p_local_min
    assert g.p_trials >= g.p_local_min
    g2 = global_significance(10.0, 3, maxz)
    assert g2.z_global_is_limit and g2.p_global == pytest.approx(1 / 61)
    gt = global_significance(3.0, 30)
    assert gt.method == "trials" and gt.z_global < 3.0
    assert GlobalSignificance.from_dict(g.to_dict()) == g
    loc = local_significance(1100, 1000.0, 10.0)
    assert LocalSignificance.from_dict(loc.to_dict()) == loc
