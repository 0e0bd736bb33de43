"""Track samples for the electron tagger: particle gun, Pythia backgrounds and higgsinos (small, seeded)."""

import numpy as np
import pytest

from excess.data.electrons import (
    ORIGINS,
    TrackSampleSettings,
    generate_tracks,
    higgsino_slha,
    read_tracks,
    resimulate_tracks,
)
from excess.data.tracks import TrackDetector
from excess.data.tracks import CATEGORIES
from excess.errors import ConfigError, InputError


def test_gun_sample_is_seeded_resumable_and_flat(tmp_path):
    s = generate_tracks(tmp_path / "gun", 2000, process="gun", seed=5, chunk_size=1000)
    assert s.n_chunks == 2 and s.n_chunks_skipped == 0
    t, ev = read_tracks(tmp_path / "gun")
    assert len(t) == 2000 and (t["label"] == 1).all() and set(t["origin"]) == {"prompt"}
    assert 0.5 <= t["true_pt"].min() and t["true_pt"].max() <= 5.0 and t["true_eta"].abs().max() <= 2.5
    assert set(t["category"]) <= set(CATEGORIES)
    again = generate_tracks(tmp_path / "gun", 2000, process="gun", seed=5, chunk_size=1000)
    assert again.n_chunks_skipped == 2
    t2, _ = read_tracks(tmp_path / "gun")
    assert t.equals(t2)
    with pytest.raises(InputError, match="other settings"):
        generate_tracks(tmp_path / "gun", 2000, process="gun", seed=6, chunk_size=1000)


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="unknown process"):
        TrackSampleSettings(process="zprime")
    with pytest.raises(ConfigError, match="unknown track-sample setting"):
        TrackSampleSettings.from_dict({"process": "gun", "ptmin": 1})
    with pytest.raises(ConfigError, match="m_chi20 > m_chi10"):
        TrackSampleSettings(process="higgsino", m_chi20=100, m_chi10=150)
    with pytest.raises(ConfigError, match="pileup_mu"):
        TrackSampleSettings(pileup_mu=-1)
    assert TrackSampleSettings(pileup_mu=33.7).detector().pileup_mu == 33.7
    slha = higgsino_slha(153, 150)
    assert "1000023  -153.0000" in slha and "1.0   3   1000022   11   -11" in slha


@pytest.fixture(scope="module")
def higgsino(higgsino_dir):
    return read_tracks(higgsino_dir)


def test_higgsino_sample_has_soft_prompt_electrons_and_events(higgsino):
    t, ev = higgsino
    assert len(ev) == 40 and (ev["weight_fb"] > 0).all() and ev["met_phi"].abs().max() <= np.pi
    prompt = t[t["label"] == 1]
    assert len(prompt) > 10
    assert (np.abs(prompt["pid"]) == 11).all()
    assert set(t["origin"]) <= set(ORIGINS) and "hadron" in set(t["origin"])
    assert t["event_id"].isin(ev["event_id"]).all()
    # pions are the bulk of the background tracks; conversions show up as displaced electrons
    conv = t[t["origin"] == "conversion"]
    if len(conv):
        assert (np.abs(conv["pid"]) == 11).all() and np.median(np.abs(conv["d0"])) > 0.2
    assert (t["ptcone30"] >= 0).all()


def test_gun_and_pythia_tracks_share_the_vertex_convention(tmp_path, higgsino):
    # a tagger must not tell the samples apart by a convention: prompt tracks sit at the primary vertex
    generate_tracks(tmp_path / "g", 500, process="gun", seed=2, chunk_size=500)
    g, _ = read_tracks(tmp_path / "g")
    t, _ = higgsino
    pions = t[(t["origin"] == "hadron") & (t["d0"].abs() < 0.1)]
    assert np.std(g["z0sintheta"]) < 3 * np.std(pions["z0sintheta"]) + 0.05


def test_a_stored_sample_is_resimulated_from_its_truth(higgsino):
    t, _ = higgsino
    same = resimulate_tracks(t, random_state=4)
    again = resimulate_tracks(t, random_state=4)
    assert len(same) == len(t) and same.equals(again)
    assert (same["origin"] == t["origin"]).all() and (same["true_pt"] == t["true_pt"]).all()
    # the default detector of the sample reproduces its features statistically (the seeds differ)
    assert abs(same["reco"].mean() - t["reco"].mean()) < 0.03
    # pile-up widens E/p (without the cluster threshold, which would change which tracks have a cluster)
    quiet = resimulate_tracks(t, TrackDetector(calo_cluster_et_min_gev=0.0), random_state=4)
    busy = resimulate_tracks(t, TrackDetector(pileup_mu=60.0, calo_cluster_et_min_gev=0.0), random_state=4)
    sd = [np.nanstd(x.loc[x["label"] == 0, "e_over_p"]) for x in (quiet, busy)]
    assert sd[1] > sd[0]
    with pytest.raises(InputError, match="truth column"):
        resimulate_tracks(t.drop(columns=["r_prod"]))


def test_event_weights_are_normalised_over_chunks(tmp_path, higgsino_dir):
    import shutil

    _, one = read_tracks(higgsino_dir)
    two = tmp_path / "two"
    shutil.copytree(higgsino_dir, two)
    for kind in ("chunk", "events"):  # the same chunk twice: twice the events, the same cross-section
        shutil.copy(two / f"{kind}-00000.h5", two / f"{kind}-00001.h5")
    _, both = read_tracks(two)
    assert len(both) == 2 * len(one)
    assert both["weight_fb"].sum() == pytest.approx(one["weight_fb"].sum(), rel=1e-12)
    (two / "chunk-00001.h5").unlink()  # an unfinished chunk (events written, tracks not yet) is ignored
    _, again = read_tracks(two)
    assert len(again) == len(one) and again["weight_fb"].sum() == pytest.approx(one["weight_fb"].sum())
