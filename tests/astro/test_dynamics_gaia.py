"""The Gaia DR3 reader on tiny files written here, and the baryon model."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("astropy")

from excess.astro.dynamics.gaia import SOLAR_PARAMETERS, read_gaia  # noqa: E402
from excess.errors import ConfigError, InputError  # noqa: E402

SGR_A = (266.4051, -28.936175)  # ICRS, deg


def _table(**over):
    d = {"source_id": [1, 2, 3, 4],
         "ra": [SGR_A[0], 10.0, 200.0, 120.0], "dec": [SGR_A[1], 40.0, -20.0, 5.0],
         "parallax": [1.0, 2.0, 0.5, 4.0], "parallax_error": [0.01, 0.02, 0.01, 0.01],
         "pmra": [0.0, 5.0, -3.0, 1.0], "pmdec": [0.0, -2.0, 1.0, 0.5],
         "radial_velocity": [0.0, 20.0, -10.0, 3.0], "ruwe": [1.0, 1.1, 1.0, 2.0]}
    d.update(over)
    return pd.DataFrame(d)


def test_reader_converts_with_documented_solar_parameters(tmp_path):
    p = tmp_path / "gaia.csv"
    _table().to_csv(p, index=False)
    stars = read_gaia(p)
    assert stars.counts["read"] == 4 and stars.counts["cut_ruwe"] == 1 and len(stars) == 3
    np.testing.assert_array_equal(stars.source_id, [1, 2, 3])
    # a star at rest with respect to the Sun moves with the Sun's Galactocentric velocity
    np.testing.assert_allclose(stars.v[0], SOLAR_PARAMETERS["galcen_v_sun_kms"], atol=1e-6)
    # 1 kpc towards the Galactic centre from the Sun at x = -8.122 kpc
    np.testing.assert_allclose(stars.x[0, 0], -SOLAR_PARAMETERS["galcen_distance_kpc"] + 1.0, atol=2e-3)
    assert abs(stars.x[0, 1]) < 1e-3
    # distances from the Sun are 1 / parallax
    sun = np.array([-SOLAR_PARAMETERS["galcen_distance_kpc"], 0.0, SOLAR_PARAMETERS["z_sun_pc"] / 1000])
    d = np.linalg.norm(stars.x - sun, axis=1)
    np.testing.assert_allclose(d, [1.0, 0.5, 2.0], rtol=1e-3)
    # the same table as parquet gives the same stars
    q = tmp_path / "gaia.parquet"
    _table().to_parquet(q)
    np.testing.assert_allclose(read_gaia(q).x, stars.x)


def test_reader_cuts(tmp_path):
    p = tmp_path / "g.csv"
    _table(parallax_error=[0.01, 1.0, 0.01, 0.01]).to_csv(p, index=False)
    s = read_gaia(p, max_ruwe=None, max_distance_kpc=1.5)
    assert s.counts["cut_parallax_over_error"] == 1 and s.counts["cut_distance"] == 1
    assert list(s.source_id) == [1, 4]


def test_reader_errors(tmp_path):
    p = tmp_path / "missing.csv"
    _table().drop(columns=["radial_velocity", "pmdec"]).to_csv(p, index=False)
    with pytest.raises(InputError, match=r"missing\.csv: missing columns pmdec, radial_velocity"):
        read_gaia(p)
    p = tmp_path / "neg.csv"
    _table(parallax=[1.0, -0.3, 0.5, 4.0]).to_csv(p, index=False)
    with pytest.raises(InputError, match=r"'parallax' has 1 non-positive values \(first at row 1: -0.3"):
        read_gaia(p)
    s = read_gaia(p, drop_invalid=True, max_ruwe=None)
    assert s.counts["dropped_nonpositive_parallax"] == 1 and list(s.source_id) == [1, 3, 4]
    p = tmp_path / "nan.csv"
    _table(radial_velocity=[1.0, np.nan, np.nan, 2.0]).to_csv(p, index=False)
    with pytest.raises(InputError, match=r"'radial_velocity' has 2 NaN/infinite values \(first at row 1"):
        read_gaia(p)
    assert read_gaia(p, drop_invalid=True, max_ruwe=None).counts["dropped_nan_radial_velocity"] == 2
    with pytest.raises(InputError, match="no such file"):
        read_gaia(tmp_path / "absent.csv")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(InputError, match="unknown file type"):
        read_gaia(tmp_path / "x.txt")
    p = tmp_path / "none.csv"
    _table(ruwe=[3.0] * 4).to_csv(p, index=False)
    with pytest.raises(InputError, match="no star passes"):
        read_gaia(p)


def test_baryon_model():
    pytest.importorskip("galpy")
    from excess.astro.dynamics.baryons import baryon_model

    b = baryon_model("mwpotential2014")
    x = np.array([[8.0, 0.0, 0.0], [8.0, 0.0, 1.0], [0.0, 8.0, 0.0]])
    rho = b.density(x) * 1e-9  # Msun/pc^3
    assert 0.03 < rho[0] < 0.2  # a local stellar-disk density of the right size
    assert rho[1] < 0.2 * rho[0] and rho[2] == pytest.approx(rho[0])  # falls off with height; axisymmetric
    assert "Bovy 2015" in b.to_dict()["source"]
    np.testing.assert_array_equal(baryon_model("none").density(x), 0.0)
    with pytest.raises(ConfigError, match="unknown baryon model"):
        baryon_model("mckee")
