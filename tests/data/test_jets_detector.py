"""N-subjettiness and the detector response on controlled inputs."""

import awkward as ak
import numpy as np
import pytest

from excess.data.detector import apply_detector
from excess.data.jets import cluster_events, nsubjettiness
from excess.data.settings import GeneratorSettings


def _particles(rows):
    return ak.Array([[dict(px=px, py=py, pz=pz, E=e) for px, py, pz, e in jet] for jet in rows], with_name="Momentum4D")


def _massless(pt, eta, phi):
    return (pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta))


@pytest.mark.parametrize("axes", ["wta", "kt"])
def test_nsubjettiness_limits(axes):
    one = [_massless(100.0, 0.0, 0.0)]
    two = [_massless(100.0, 0.0, 0.0), _massless(50.0, 0.3, 0.0)]
    three = two + [_massless(30.0, 0.0, 0.4)]
    t = nsubjettiness(_particles([one, two, three]), n_max=3, axes=axes)
    assert t[(1, 1.0)][0] == 0.0  # a single particle is its own axis
    assert t[(2, 1.0)][1] == pytest.approx(0.0, abs=1e-12)  # N particles, N axes: tau_N = 0
    assert t[(3, 1.0)][2] == pytest.approx(0.0, abs=1e-12)
    # two-particle jet, WTA: the axis sits on the harder particle: tau1 = 50 * 0.3 / 150
    if axes == "wta":
        assert t[(1, 1.0)][1] == pytest.approx(50 * 0.3 / 150, rel=1e-6)
    assert np.all(t[(1, 1.0)] >= t[(2, 1.0)] - 1e-12)


def test_nsubjettiness_two_prong_vs_one_prong():
    rng = np.random.default_rng(0)

    def prong(eta0, phi0, n, width, pt):
        return [_massless(pt / n, eta0 + width * rng.normal(), phi0 + width * rng.normal()) for _ in range(n)]

    two_prong = prong(0.0, 0.0, 20, 0.02, 500) + prong(0.4, 0.0, 20, 0.02, 500)
    one_prong = prong(0.0, 0.0, 40, 0.25, 1000)
    t = nsubjettiness(_particles([two_prong, one_prong]), n_max=2)
    tau21 = t[(2, 1.0)] / t[(1, 1.0)]
    assert tau21[0] < 0.2 < tau21[1]


def test_cluster_constituents_match_jets():
    """Jet four-momenta equal the sum of the constituents used for N-subjettiness."""
    s = GeneratorSettings(process="qcd", detector="none", leading_pt_min=100.0)
    ev = [_massless(600, 0.1, 0.0), _massless(500, 0.2, 0.1), _massless(900, -0.3, 3.0), _massless(30, 2.0, 1.5)]
    passed, cols = cluster_events(_particles([ev]), s)
    assert passed.tolist() == [True]
    assert cols["jet1_pt"][0] == pytest.approx(1100.0 * np.cos(0.05), rel=0.02)
    assert cols["jet2_pt"][0] == pytest.approx(900.0, rel=1e-6)
    assert cols["jet2_m"][0] == pytest.approx(0.0, abs=1e-3)
    assert cols["n_jets"][0] == 3


def test_detector_response():
    rng = np.random.default_rng(1)
    n_ev, n_p = 20, 300
    pt = rng.exponential(5.0, size=(n_ev, n_p)) + 0.2
    eta = rng.uniform(-2.4, 2.4, size=(n_ev, n_p))
    phi = rng.uniform(-np.pi, np.pi, size=(n_ev, n_p))
    px, py, pz, e = _massless(pt, eta, phi)
    parts = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    pid = ak.Array(np.where(rng.random((n_ev, n_p)) < 0.6, 211, np.where(rng.random((n_ev, n_p)) < 0.7, 22, 130)))
    charge = ak.Array(np.where(np.asarray(pid) == 211, 1.0, 0.0))
    out1 = apply_detector(parts, pid, charge, np.random.default_rng(5))
    out2 = apply_detector(parts, pid, charge, np.random.default_rng(5))
    assert ak.all(out1.E == out2.E)  # seeded
    assert len(out1) == n_ev
    e_in = ak.to_numpy(ak.sum(parts.E, axis=1))
    e_out = ak.to_numpy(ak.sum(out1.E, axis=1))
    # energy is conserved up to thresholds and resolution (a few per cent per event)
    assert np.all(np.abs(e_out / e_in - 1) < 0.1)
    assert np.all(e_out < e_in * 1.05)
    # neutral deposits merge into towers: fewer objects than particles
    assert ak.sum(ak.num(out1)) < ak.sum(ak.num(parts))
