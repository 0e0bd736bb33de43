"""The fast generation path: flat-array clustering equals FastJet's awkward interface, and the trigger veto
changes nothing but the time (same seed -> bit-identical selected events)."""

import awkward as ak
import fastjet
import numpy as np
import pytest

from excess.data.generate import PythiaSource, generate_chunk, silence_stdout
from excess.data.io import read_events
from excess.data.jets import FlatClustering, _offsets, cluster_flat, trigger_bound
from excess.data.settings import GeneratorSettings


@pytest.fixture(scope="module")
def truth_batch():
    src = PythiaSource(GeneratorSettings.from_preset("truth"), 4242)
    return src.next_batch(40)


def test_flat_clustering_equals_awkward_interface(truth_batch):
    b = truth_batch
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, 1.0)
    with silence_stdout():
        flat = FlatClustering(b.px, b.py, b.pz, b.e, _offsets(b.counts), jetdef)
        cs = fastjet.ClusterSequence(b.to_awkward(), jetdef)
        jets = cs.inclusive_jets(min_pt=20.0)
        consts = cs.constituents(min_pt=20.0)
    px, py, pz, e, off = flat.inclusive_jets(20.0)
    np.testing.assert_array_equal(off, np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(jets)))]))
    for got, f in zip((px, py, pz, e), ("px", "py", "pz", "E")):
        np.testing.assert_array_equal(got, ak.to_numpy(ak.flatten(getattr(jets, f))))
    c_off, idx = flat.constituent_index(20.0)
    per_jet = ak.flatten(consts, axis=1)
    np.testing.assert_array_equal(np.diff(c_off), ak.to_numpy(ak.num(per_jet)))
    np.testing.assert_array_equal(b.px[idx], ak.to_numpy(ak.flatten(per_jet.px)))
    # every jet is the E-scheme sum of its constituents
    np.testing.assert_allclose(np.add.reduceat(b.px[idx], c_off[:-1]), px, rtol=1e-9, atol=1e-6)


def test_trigger_bound_bounds_every_jet(truth_batch):
    """No jet of an event is harder than the event's bound (unsmeared, and with a scale factor)."""
    b = truth_batch
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, 1.0)
    with silence_stdout():
        px, py, _, _, off = FlatClustering(b.px, b.py, b.pz, b.e, _offsets(b.counts), jetdef).inclusive_jets(20.0)
    ev = np.repeat(np.arange(len(b)), np.diff(off))
    lead = np.zeros(len(b))
    np.maximum.at(lead, ev, np.hypot(px, py))
    for scale in (1.0, 1.05):
        s = GeneratorSettings(detector="none", jet_energy_scale=scale)
        bound = trigger_bound(b.counts, b.px, b.py, s)
        assert np.all(scale * lead <= bound * (1 + 1e-12))
        assert np.median(bound / np.maximum(scale * lead, 1e-9)) < 1.2  # and it is not a vacuous bound
    # with smearing: the bound uses the drawn factors; with z = 0 everywhere it is the scale's bound
    s = GeneratorSettings(detector="none", jet_energy_scale=1.0, jet_energy_resolution=0.1)
    z = np.zeros((len(b), 16))
    assert np.all(lead <= trigger_bound(b.counts, b.px, b.py, s, z) * (1 + 1e-12))
    # the 8-sigma clip bounds any draw
    big = trigger_bound(b.counts, b.px, b.py, s, np.full((len(b), 16), 50.0))
    np.testing.assert_allclose(big, 1.8 * trigger_bound(b.counts, b.px, b.py, GeneratorSettings(detector="none")))


@pytest.mark.parametrize("overrides", [
    dict(preset="truth", leading_pt_min=1150.0),
    # the default detector and jet smearing, and a wide resolution with the threshold in the bulk
    dict(preset="lhco"),
    dict(preset="lhco", jet_energy_resolution=0.2, leading_pt_min=1100.0),
])
def test_veto_changes_nothing(tmp_path, overrides, monkeypatch):
    import excess.data.jets as jets

    ov = dict(overrides)
    settings = GeneratorSettings.from_preset(ov.pop("preset"), **ov)
    s = settings.to_dict()
    vetoed = []

    def counting_bound(*args, **kwargs):  # the veto must really remove events here, or the test proves nothing
        bound = trigger_bound(*args, **kwargs)
        vetoed.append(int(np.sum(bound < settings.leading_pt_min * (1 - 1e-9))))
        return bound

    monkeypatch.setattr(jets, "trigger_bound", counting_bound)
    out = {}
    for veto in (True, False):
        meta = generate_chunk(s, 40, 31, str(tmp_path / f"v{veto}.h5"), batch_size=60, veto=veto)
        out[veto] = (read_events(tmp_path / f"v{veto}.h5"), meta["counts"])
    assert sum(vetoed) >= 1
    (a, ca), (b, cb) = out[True], out[False]
    assert ca == cb
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        np.testing.assert_array_equal(a[c].to_numpy(), b[c].to_numpy(), err_msg=c)


def test_veto_removes_events_that_fail(truth_batch):
    """The veto is a strict subset of the failing events, and it does remove some."""
    b = truth_batch
    s = GeneratorSettings.from_preset("truth")
    with silence_stdout():
        passed, _ = cluster_flat(b.counts, b.px, b.py, b.pz, b.e, s, veto=False)
    vetoed = trigger_bound(b.counts, b.px, b.py, s) < s.leading_pt_min * (1 - 1e-9)
    assert not np.any(vetoed & passed)
    assert vetoed.sum() >= 1


def test_charges_lookup_matches_particle_data():
    src = PythiaSource(GeneratorSettings.from_preset("truth"), 4243)
    pd_ = src.pythia.particleData
    for ids in (np.array([211, -211, 22, 2212, 211]), np.array([], dtype=np.int64),
                np.array([-11, 11, 22, 130, -2212, 3122, 211])):  # ids seen before and new ones, in any order
        np.testing.assert_array_equal(src.charges(ids), [float(pd_.charge(int(i))) for i in ids])


def test_visible_particles_fast_path_equals_awkward_path(monkeypatch):
    """The buffer path of visible_particles (final-state entries first, then the id test) gives the same arrays,
    dtypes and per-event counts as the plain awkward path."""
    import excess.data.generate as gen

    src = PythiaSource(GeneratorSettings.from_preset("truth", process="signal"), 4244)
    with silence_stdout():
        prt = src.pythia.nextBatch(15).prt
    assert gen._flat_fields(prt) is not None  # the fast path is the one generation takes
    fast = gen.visible_particles(prt)
    monkeypatch.setattr(gen, "_flat_fields", lambda prt: None)
    slow = gen.visible_particles(prt)
    assert fast[0].sum() == len(fast[1]) > 0
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
