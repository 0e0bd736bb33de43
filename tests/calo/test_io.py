from __future__ import annotations

import h5py
import numpy as np
import pytest

from excess.calo.geometry import load_geometry
from excess.calo.io import read_showers, write_showers
from excess.errors import InputError


def _data(n=5, v=368, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e3, 1e5, n), rng.exponential(10.0, (n, v)).astype(np.float32) * (rng.random((n, v)) > 0.5)


def test_round_trip(tmp_path):
    e, x = _data()
    g = load_geometry("ds1-photons")
    p = write_showers(tmp_path / "a.h5", e, x, geometry=g, metadata={"seed": 3})
    with h5py.File(p) as f:  # the challenge's layout
        assert f["incident_energies"].shape == (5, 1)
        assert f["showers"].shape == (5, 368) and f["showers"].dtype == np.float32
    d = read_showers(p)
    np.testing.assert_array_equal(d.showers, x)
    np.testing.assert_allclose(d.incident_energies, e)
    assert d.geometry.name == "ds1-photons" and d.attrs["metadata"] == {"seed": 3}
    assert len(d.subset(slice(0, 2))) == 2


def test_plain_challenge_file_infers_geometry(tmp_path):
    e, x = _data(v=533)
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f["incident_energies"] = e.reshape(-1, 1)
        f["showers"] = x
    assert read_showers(p).geometry.name == "ds1-pions"


def test_wrong_voxel_count(tmp_path):
    e, x = _data(v=100)
    p = write_showers(tmp_path / "w.h5", e, x)
    with pytest.raises(InputError, match=r"w\.h5.*'showers'.*ds2.*6480"):
        read_showers(p, "ds2")
    with pytest.raises(InputError, match="6480"):
        write_showers(tmp_path / "x.h5", e, x, geometry=load_geometry("ds2"))
    assert not (tmp_path / "x.h5").exists()


def test_negative_energies(tmp_path):
    e, x = _data()
    x[2, 7] = -1.5
    p = tmp_path / "neg.h5"
    with h5py.File(p, "w") as f:
        f["incident_energies"] = e.reshape(-1, 1)
        f["showers"] = x
    with pytest.raises(InputError, match=r"neg\.h5.*'showers'.*negative.*shower 2, voxel 7 = -1.5"):
        read_showers(p)
    e[1] = 0.0
    with pytest.raises(InputError, match="incident_energies"):
        write_showers(tmp_path / "b.h5", e, np.abs(x))


def test_missing_key_and_not_hdf5(tmp_path):
    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        f["showers"] = np.zeros((2, 368))
    with pytest.raises(InputError, match=r"m\.h5: missing key 'incident_energies'"):
        read_showers(p)
    q = tmp_path / "t.h5"
    q.write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_showers(q)
    with pytest.raises(InputError, match="not found"):
        read_showers(tmp_path / "none.h5")


def test_nan_rejected(tmp_path):
    e, x = _data()
    x[0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        write_showers(tmp_path / "n.h5", e, x)
