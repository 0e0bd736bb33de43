"""Fixtures of the ANTELOPE tests: synthetic samples in the read_svj contract (svj_toys.py)."""

import pytest
from svj_toys import make_svj, read_sample

POINTS = ((2000.0, 0.3, 20.0), (3000.0, 0.5, 20.0))


@pytest.fixture(scope="session")
def svj_small():
    return make_svj(n_bkg=300, points=POINTS, n_sig=150, seed=1)


@pytest.fixture
def fake_reader(monkeypatch):
    """``excess.antelope.data`` reads the tests' npz files instead of calling excess.data.svj."""
    import excess.antelope.data as d

    monkeypatch.setattr(d, "_read_svj", read_sample)
    return read_sample
