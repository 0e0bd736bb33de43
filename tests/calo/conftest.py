from __future__ import annotations

import numpy as np
import pytest

from excess.calo.geometry import CaloGeometry
from excess.calo.gflash import GFlashSimulator, sample_incident_energies


@pytest.fixture(scope="session")
def tiny_geometry() -> CaloGeometry:
    """3 layers x 4 angular x 5 radial bins = 60 voxels, ds2-like radii (mm)."""
    return CaloGeometry.regular("tiny", 3, 4, [0, 4.65, 9.3, 18.6, 27.9, 41.85])


@pytest.fixture(scope="session")
def tiny_simulator(tiny_geometry) -> GFlashSimulator:
    # 3 thick layers of 4 X0 each, few spots: fast and still shower-like
    return GFlashSimulator.preset("ds2-like", tiny_geometry, layer_boundaries_x0=(0.0, 4.0, 8.0, 14.0), spot_factor=0.3)


@pytest.fixture(scope="session")
def tiny_data(tiny_simulator):
    rng = np.random.default_rng(123)
    e = sample_incident_energies(600, "log-uniform", e_min=1e3, e_max=1e5, random_state=rng)
    return e, tiny_simulator.simulate(e, rng)


@pytest.fixture(scope="session")
def mixed_geometry() -> CaloGeometry:
    """A 5-voxel front layer (radial only) before two 20-voxel layers, as ds1's small layers."""
    from excess.calo.geometry import Layer

    edges = (0, 4.65, 9.3, 18.6, 27.9, 41.85)
    return CaloGeometry("mixed", (Layer(0, edges, 1), Layer(1, edges, 4), Layer(2, edges, 4)))


@pytest.fixture(scope="session")
def mixed_data(mixed_geometry):
    sim = GFlashSimulator.preset("ds2-like", mixed_geometry, layer_boundaries_x0=(0.0, 4.0, 8.0, 14.0), spot_factor=0.3)
    rng = np.random.default_rng(7)
    e = sample_incident_energies(400, "log-uniform", e_min=1e3, e_max=1e5, random_state=rng)
    return e, sim.simulate(e, rng)
