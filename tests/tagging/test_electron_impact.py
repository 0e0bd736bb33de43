"""The mock higgsino signal region: Asimov significance and the track selection."""

import numpy as np
import pandas as pd
import pytest

from excess.errors import InputError
from excess.tagging.impact import asimov_z, select_events


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
