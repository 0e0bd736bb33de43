"""Fixtures of the anomaly tests (toys in anomaly_toys.py)."""

import pytest
from anomaly_toys import make_toy


@pytest.fixture(scope="session")
def toy_signal():
    """A window with a strong signal (S/B ~ 25 % in the SR)."""
    return make_toy(n_bkg=4000, n_sig=250, seed=1)


@pytest.fixture(scope="session")
def toy_background():
    """An independent background-only sample (the idealized reference)."""
    X, m, _ = make_toy(n_bkg=4000, n_sig=0, seed=2)
    return X, m
