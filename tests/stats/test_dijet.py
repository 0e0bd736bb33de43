import numpy as np
import pytest

from excess.errors import ConfigError, InputError
from excess.stats.dijet import (
    SQRT_S,
    bin_integrals,
    dijet_function,
    evaluate_pivoted,
    from_canonical,
    sample_dijet,
    to_canonical,
)


def test_formula_matches_definition():
    m = np.array([2500.0, 3500.0, 5000.0])
    x = m / SQRT_S
    p = (2.0, 9.0, 4.5)
    np.testing.assert_allclose(dijet_function(m, p), 2.0 * (1 - x) ** 9.0 * x ** (-4.5))
    p4 = (2.0, 9.0, 4.5, 0.3)
    np.testing.assert_allclose(dijet_function(m, p4), 2.0 * (1 - x) ** 9.0 * x ** (-4.5 - 0.3 * np.log(x)))


@pytest.mark.parametrize("params", [(1.0, 10.0, 5.0), (3e4, 7.5, 6.0, -0.2), (0.5, 12.0, 3.0, 0.4)])
@pytest.mark.parametrize("pivot", [2800.0, 3500.0, 4600.0])
def test_pivoted_roundtrip(params, pivot):
    theta = from_canonical(params, pivot)
    np.testing.assert_allclose(to_canonical(theta, pivot), params, rtol=1e-10)
    m = np.linspace(2600, 6000, 7)
    np.testing.assert_allclose(evaluate_pivoted(m, theta, pivot), dijet_function(m, params), rtol=1e-10)


def test_bin_integrals_match_quad():
    from scipy.integrate import quad

    p = (5.0, 10.0, 5.0, 0.1)
    theta = from_canonical(p, 3500)
    edges = np.array([2600.0, 2700.0, 3300.0, 5000.0])
    got = bin_integrals(edges, theta, 3500)
    want = [quad(lambda v: dijet_function(v, p), a, b)[0] for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # 1700-GeV bin still 2e-6


def test_sampling_follows_the_function():
    p = (1.0, 10.0, 5.0)
    m = sample_dijet(40_000, p, (2600, 5000), random_state=3)
    assert m.min() >= 2600 and m.max() <= 5000
    edges = np.linspace(2600, 5000, 13)
    counts, _ = np.histogram(m, edges)
    exp = bin_integrals(edges, from_canonical(p, 3500), 3500)
    exp *= m.size / exp.sum()
    chi2 = np.sum((counts - exp) ** 2 / exp)
    assert chi2 < 40  # 12 bins


def test_bad_inputs():
    with pytest.raises(ConfigError):
        dijet_function([3000.0], (1.0, 2.0))
    with pytest.raises(InputError):
        dijet_function([14_000.0], (1.0, 2.0, 3.0))
    with pytest.raises(ConfigError):
        from_canonical((-1.0, 2.0, 3.0), 3500)
