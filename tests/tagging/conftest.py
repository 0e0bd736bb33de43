import pytest

from excess.data.tracks import toy_track_table


def toy_tracks(n=3000, seed=0):
    """Electron-gun and pion tracks through the detector model (no Pythia): a labelled track table."""
    return toy_track_table(n, seed)


@pytest.fixture(scope="session")
def toy():
    return toy_tracks(4000, seed=0), toy_tracks(2000, seed=10)


@pytest.fixture(scope="session")
def higgsino_dir(tmp_path_factory):
    """40 higgsino events (153/150 GeV) through Pythia and the detector model."""
    from excess.data.electrons import generate_tracks

    out = tmp_path_factory.mktemp("hig") / "h"
    generate_tracks(out, 40, process="higgsino", seed=7, chunk_size=40)
    return out
