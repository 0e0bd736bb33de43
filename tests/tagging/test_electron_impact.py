"""The mock higgsino signal region: Asimov significance and the track selection."""

import numpy as np
import pandas as pd
import pytest

from excess.errors import InputError
from excess.tagging.impact import (
    asimov_z,
    impact_study,
    select_events,
    tag_rates,
    tagger_thresholds,
    track_tag_rate,
)


def test_asimov_z():
    assert asimov_z(10.0, 100.0) == pytest.approx(0.98399, abs=1e-4)
    assert asimov_z(1e-3, 1e4) == pytest.approx(1e-3 / 100, rel=1e-3)  # s/sqrt(b) limit
    with pytest.raises(InputError):
        asimov_z(1.0, 0.0)


def _tables():
    ev = pd.DataFrame({"event_id": [1, 2, 3], "met": [300.0, 300.0, 150.0], "met_phi": [0.0, 0.0, 0.0],
                       "jet1_pt": [150.0, 150.0, 150.0], "n_electrons": [1, 1, 1], "e1_pt": [6.0, 6.0, 6.0],
                       "e1_eta": [0.0, 0.0, 0.0], "e1_phi": [0.5, 0.5, 0.5], "e1_charge": [-1.0, -1.0, -1.0],
                       "weight_fb": [1.0, 1.0, 1.0]})
    base = dict(reco=True, pt=2.0, eta=0.0, phi=0.0, charge=1, ptcone30=0.0, d0=0.01, z0sintheta=0.01, pid=-11)
    rows = [dict(base, event_id=1),                       # passes everything (dR 0.5, m ~ 1.7 GeV)
            dict(base, event_id=2, charge=-1),            # same charge as the electron
            dict(base, event_id=3)]                       # MET too low
    return pd.DataFrame(rows), ev


def test_select_events_applies_the_cuts():
    tr, ev = _tables()
    sel = select_events(tr, ev, delta_m=3.0, track_pass=np.array([True, True, True]), std_electron_eff=1.0, rng=0)
    assert sel["no_tagger"].tolist() == [1] and sel["tagger"].tolist() == [1]
    assert sel["threshold_4p5"].tolist() == []  # the track is below 4.5 GeV
    assert select_events(tr, ev, delta_m=1.0, std_electron_eff=1.0, rng=0)["no_tagger"].tolist() == []  # m > dm
    tr2 = tr.copy()
    tr2.loc[0, "ptcone30"] = 1.0  # not isolated
    assert select_events(tr2, ev, delta_m=3.0, std_electron_eff=1.0, rng=0)["no_tagger"].tolist() == []
    rej = select_events(tr, ev, delta_m=3.0, track_pass=np.array([False, True, True]), std_electron_eff=1.0, rng=0)
    assert rej["tagger"].tolist() == []
    with pytest.raises(InputError, match="met_phi"):
        select_events(tr, ev.drop(columns=["met_phi"]), delta_m=3.0)


class _ScoreTagger:
    """Stands in for a fitted tagger: the score is a column of the table."""

    def decision_function(self, X):
        return X["score"].to_numpy(float)


def test_tagger_threshold_uses_reconstructed_background_tracks_only():
    tr = pd.DataFrame({"label": 0, "reco": [True] * 100 + [False] * 100, "category": "trt_calo",
                       "score": np.r_[np.linspace(0, 1, 100), np.full(100, 10.0)]})
    thr = tagger_thresholds(_ScoreTagger(), tr, fake_rate=0.05)["trt_calo"]
    assert 0.9 < thr <= 1.0  # the 100 non-reconstructed tracks at score 10 would move it to 10


def test_tag_rates_with_fall_backs():
    n = 200
    tr = pd.DataFrame({"category": ["trt_calo"] * n + ["notrt_nocalo"] * 10, "pt": np.r_[np.full(n, 1.5), np.full(10, 0.7)],
                       "label": 0, "pid": 211, "reco": True})
    passed = np.r_[np.arange(n) < 20, np.ones(10, bool)]  # 10 % in trt_calo 1-2 GeV; 10/10 in a tiny cell
    rates = tag_rates(tr, passed, min_count=20)
    assert rates["cells"]["trt_calo|1|2"] == [20, 200]
    r = track_tag_rate(pd.DataFrame({"category": ["trt_calo", "notrt_nocalo", "trt_calo"], "pt": [1.2, 0.6, 4.0],
                                     "label": 0, "pid": 211}), rates)
    # the notrt_nocalo cell (10 tracks) and category (10) are too small: the class rate 30/210 is used;
    # trt_calo 3-5 GeV has no tracks: its category rate 20/200
    assert r == pytest.approx([0.1, 30 / 210, 0.1])
    with pytest.raises(InputError, match="shape"):
        tag_rates(tr, passed[:5])


def test_select_events_tag_probability_per_event():
    tr, ev = _tables()
    two = pd.concat([tr, tr.iloc[[0]].assign(pt=1.5)], ignore_index=True)  # event 1: two selected tracks
    sel = select_events(two, ev, delta_m=3.0, track_rate=np.array([0.5, 0.9, 0.9, 0.2]), std_electron_eff=1.0, rng=0)
    assert sel["tagger_rate"].to_dict() == pytest.approx({1: 1 - 0.5 * 0.8})


def test_impact_study_tag_rate_estimate_where_the_tagger_leaves_no_background():
    tr, ev = _tables()
    sig = (tr.assign(label=1, pid=-11, score=1.0, category="trt_calo"), ev)
    bkg_tr = tr.assign(label=0, pid=211, score=0.0, category="trt_calo")
    # plenty of reconstructed background tracks elsewhere fix the working point: 5 % of them pass
    other = pd.DataFrame({"event_id": 99, "reco": True, "pt": 2.0, "eta": 0.0, "phi": 0.0, "charge": 1,
                          "ptcone30": 0.0, "d0": 0.0, "z0sintheta": 0.0, "pid": 211, "label": 0,
                          "category": "trt_calo", "score": np.linspace(0, 1, 400)})
    bkg_ev = pd.concat([ev, ev.iloc[[2]].assign(event_id=99)], ignore_index=True)
    res = impact_study(_ScoreTagger(), {(103.0, 100.0): sig}, (pd.concat([bkg_tr, other], ignore_index=True), bkg_ev),
                       std_electron_eff=1.0, lumi_fb=1.0, random_state=0)
    sel = res["points"][0]["selections"]
    assert sel["no_tagger"]["n_bkg_mc"] == 1 and not sel["no_tagger"]["b_is_floor"]
    assert sel["tagger"]["n_bkg_mc"] == 0 and sel["tagger"]["b_is_floor"]  # the one event's track fails the tagger
    rb = sel["tagger_rate"]
    assert not rb["b_is_floor"] and 0.02 < rb["b"] < 0.08  # ~ the 5 % tag rate of trt_calo 1-2 GeV hadrons
    assert rb["s"] == pytest.approx(sel["tagger"]["s"])  # the signal track is a prompt electron passing always
