import numpy as np
import pandas as pd
import pytest

from excess.data.tracks import simulate_tracks


def toy_tracks(n=3000, seed=0):
    """Electron-gun and pion tracks through the detector model (no Pythia): a labelled track table."""
    rng = np.random.default_rng(seed)
    pid = np.where(rng.random(n) < 0.4, 11, 211) * rng.choice([-1, 1], n)
    t = simulate_tracks(rng.uniform(0.5, 5, n), rng.uniform(-2.5, 2.5, n), rng.uniform(-3, 3, n), pid,
                        random_state=seed + 1)
    t = t[t["reco"]].reset_index(drop=True)
    t["category"] = t["category"].astype(str)
    t["label"] = (np.abs(t["pid"]) == 11).astype(np.int8)
    t["origin"] = np.where(t["label"] == 1, "prompt", "hadron")
    return t


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
