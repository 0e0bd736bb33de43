import pytest

from excess.data.generate import generate_dijet
from excess.data.io import read_events


@pytest.fixture(scope="session")
def signal_events(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "signal.h5"
    generate_dijet(out, 400, process="signal", seed=11, chunk_size=200, n_workers=1)
    return read_events(out)


@pytest.fixture(scope="session")
def qcd_events(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "qcd.h5"
    generate_dijet(out, 800, process="qcd", seed=21, chunk_size=400, n_workers=1)
    return read_events(out)
