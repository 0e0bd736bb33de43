from __future__ import annotations

import numpy as np
import pytest

from excess.calo.geometry import CaloGeometry
from excess.calo.gflash import DS1_ENERGIES_MEV, GFlashSimulator, sample_incident_energies
from excess.errors import ConfigError, InputError


def test_shapes_and_seeding(tiny_simulator):
    e = np.full(20, 5000.0)
    a = tiny_simulator.simulate(e, 7)
    b = tiny_simulator.simulate(e, np.random.default_rng(7))
    c = tiny_simulator.simulate(e, 8)
    assert a.shape == (20, 60) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a >= 0).all()


def test_energy_conservation_when_contained():
    """Huge, deep, finely sampled calorimeter: all energy is seen, with the requested resolution."""
    g = CaloGeometry.regular("big", 4, 2, [0, 50, 500, 5000])
    sim = GFlashSimulator.preset("ds2-like", g, layer_boundaries_x0=(0, 5, 10, 20, 80), sampling_term=0.11)
    e = np.full(400, 10_000.0)
    r = sim.simulate(e, 1).sum(1) / e
    assert r.mean() == pytest.approx(1.0, abs=0.01)
    assert r.std() == pytest.approx(0.11 / np.sqrt(10.0), rel=0.25)


def test_ds2_like_physics():
    sim = GFlashSimulator.preset("ds2-like", spot_factor=0.5)
    depth = (np.asarray(sim.layer_boundaries_x0[:-1]) + np.asarray(sim.layer_boundaries_x0[1:])) / 2
    means = []
    for energy in (2_000.0, 200_000.0):
        x = sim.simulate(np.full(30, energy), 3)
        layers = sim.geometry.layer_sums(x)
        means.append((layers @ depth / layers.sum(1)).mean())
        ratio = x.sum(1) / energy
        assert 0.9 < ratio.mean() < 1.02  # small lateral/longitudinal leakage
    # shower maximum moves deeper logarithmically: ln(100) ~ 4.6 X0
    assert 3.5 < means[1] - means[0] < 5.5
    # the core is narrow: the innermost radial ring holds the most energy
    x = sim.simulate(np.full(20, 50_000.0), 4)
    rings = x.reshape(20, 45, 16, 9).sum(axis=(0, 1, 2))
    assert rings.argmax() == 0 and rings[0] > 0.4 * rings.sum()


def test_photons_start_deeper(tiny_geometry):
    kw = dict(layer_boundaries_x0=(0.0, 2.0, 6.0, 20.0), spot_factor=0.3)
    el = GFlashSimulator.preset("ds2-like", tiny_geometry, particle="electron", **kw)
    ph = GFlashSimulator.preset("ds2-like", tiny_geometry, particle="photon", **kw)
    e = np.full(300, 10_000.0)
    f_el = tiny_geometry.layer_sums(el.simulate(e, 1))[:, 0].mean()
    f_ph = tiny_geometry.layer_sums(ph.simulate(e, 1))[:, 0].mean()
    assert f_ph < 0.8 * f_el


def test_ds1_like_preset():
    sim = GFlashSimulator.preset("ds1-like", spot_factor=0.2)
    assert sim.geometry.n_voxels == 368 and sim.particle == "photon"
    x = sim.simulate(np.full(20, 65536.0), 0)
    frac = sim.geometry.layer_sums(x).sum(0) / x.sum()
    assert frac.argmax() == 2  # the middle layer collects most of an EM shower
    d = sim.describe()
    assert d["effective"]["X0_eff_mm"] > 0 and "GFLASH" in d["reference"]


def test_energies():
    e = sample_incident_energies(1000, "log-uniform", random_state=0)
    assert e.min() >= 1e3 and e.max() <= 1e6
    assert 0.4 < np.mean(np.log10(e) < 4.5) < 0.6
    d = sample_incident_energies(500, "discrete", e_min=256, e_max=2.0**22, random_state=0)
    assert set(np.unique(d)) <= set(DS1_ENERGIES_MEV) and len(np.unique(d)) == 15
    assert np.all(sample_incident_energies(3, "1024") == 1024)
    with pytest.raises(ConfigError):
        sample_incident_energies(3, "flat")


def test_bad_config(tiny_geometry):
    with pytest.raises(ConfigError, match="particle"):
        GFlashSimulator.preset("ds2-like", tiny_geometry, particle="pion")
    with pytest.raises(ConfigError, match="layer_boundaries_x0"):
        GFlashSimulator.preset("ds2-like", tiny_geometry, layer_boundaries_x0=(0, 1))
    with pytest.raises(ConfigError, match="preset"):
        GFlashSimulator.preset("ds5-like")
    with pytest.raises(InputError, match="> 0"):
        GFlashSimulator.preset("ds2-like", tiny_geometry).simulate([100.0, -1.0])
