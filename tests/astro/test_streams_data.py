"""Stream search data layer: Gaia readers, patch coordinates, the published cuts."""

import numpy as np
import pandas as pd
import pytest

from excess.astro.streams.coords import add_patch_coordinates, from_patch, to_patch
from excess.astro.streams.cuts import StreamCuts, apply_cuts
from excess.astro.streams.io import GAIA_COLUMNS, read_gaia, read_metadata, write_gaia
from excess.errors import ConfigError, InputError


def _stars(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "source_id": np.arange(n, dtype=np.int64),
        "ra": rng.uniform(140, 160, n), "dec": rng.uniform(20, 40, n),
        "pmra": rng.normal(0, 6, n), "pmdec": rng.normal(0, 6, n), "parallax": rng.normal(0.3, 0.2, n),
        "phot_g_mean_mag": rng.uniform(14, 21, n), "bp_rp": rng.uniform(0.2, 1.5, n),
        "ruwe": rng.lognormal(0.0, 0.2, n),
    })


@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".fits", ".h5", ".parquet"])
def test_readers_round_trip(tmp_path, suffix):
    df = _stars()
    path = write_gaia(df, tmp_path / f"patch{suffix}", metadata={"seed": 3})
    back = read_gaia(path)
    for c in GAIA_COLUMNS + ("source_id",):
        np.testing.assert_allclose(back[c].to_numpy(), df[c].to_numpy(), rtol=1e-12)
    if suffix in (".h5", ".parquet"):
        assert read_metadata(path) == {"seed": 3}


def test_reader_upper_case_fits_columns(tmp_path):
    from astropy.table import Table

    df = _stars(20)
    Table.from_pandas(df.rename(columns=str.upper)).write(tmp_path / "u.fits")
    assert list(read_gaia(tmp_path / "u.fits")[list(GAIA_COLUMNS)].columns) == list(GAIA_COLUMNS)


def test_reader_errors_name_file_and_column(tmp_path):
    df = _stars(10).drop(columns=["ruwe", "bp_rp"])
    df.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(InputError, match=r"x\.csv.*\['bp_rp', 'ruwe'\]"):
        read_gaia(tmp_path / "x.csv")
    bad = _stars(10)
    bad.loc[3, "pmra"] = np.nan
    bad.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(InputError, match="'pmra'.*row 3"):
        read_gaia(tmp_path / "nan.csv")
    (tmp_path / "a.txt").write_text("1")
    with pytest.raises(InputError, match="unknown Gaia file type"):
        read_gaia(tmp_path / "a.txt")
    with pytest.raises(InputError, match="no such file"):
        read_gaia(tmp_path / "missing.parquet")


def test_patch_coordinates_round_trip_and_centre():
    rng = np.random.default_rng(1)
    center = (148.0, 34.0)
    ra, dec = rng.uniform(130, 166, 500), rng.uniform(20, 48, 500)
    pmra, pmdec = rng.normal(0, 8, 500), rng.normal(0, 8, 500)
    phi, lam, mphi, mlam = to_patch(ra, dec, pmra, pmdec, center=center)
    ra2, dec2, pmra2, pmdec2 = from_patch(phi, lam, mphi, mlam, center=center)
    np.testing.assert_allclose(ra2, ra, atol=1e-9)
    np.testing.assert_allclose(dec2, dec, atol=1e-9)
    np.testing.assert_allclose(pmra2, pmra, atol=1e-9)
    np.testing.assert_allclose(pmdec2, pmdec, atol=1e-9)
    np.testing.assert_allclose(np.hypot(mphi, mlam), np.hypot(pmra, pmdec), rtol=1e-10)  # a rotation
    c = to_patch(np.array([center[0]]), np.array([center[1]]), center=center)
    np.testing.assert_allclose(np.concatenate(c), 0.0, atol=1e-10)
    # a star due north of the centre stays north; a star moving north still moves (mostly) north
    p = to_patch(np.array([center[0]]), np.array([center[1] + 5]), np.array([0.0]), np.array([3.0]), center=center)
    np.testing.assert_allclose([p[0][0], p[1][0], p[2][0], p[3][0]], [0, 5, 0, 3], atol=1e-9)


def test_patch_coordinates_match_astropy_offset_frame():
    import astropy.units as u
    from astropy.coordinates import ICRS, SkyCoord, SkyOffsetFrame

    rng = np.random.default_rng(2)
    center = (200.0, -15.0)
    ra, dec = rng.uniform(190, 210, 50), rng.uniform(-25, -5, 50)
    pmra, pmdec = rng.normal(0, 5, 50), rng.normal(0, 5, 50)
    c = SkyCoord(ICRS(ra=ra * u.deg, dec=dec * u.deg, pm_ra_cosdec=pmra * u.mas / u.yr, pm_dec=pmdec * u.mas / u.yr))
    off = c.transform_to(SkyOffsetFrame(origin=SkyCoord(ra=center[0] * u.deg, dec=center[1] * u.deg)))
    phi, lam, mphi, mlam = to_patch(ra, dec, pmra, pmdec, center=center)
    np.testing.assert_allclose(phi, off.lon.wrap_at(180 * u.deg).deg, atol=1e-8)
    np.testing.assert_allclose(lam, off.lat.deg, atol=1e-8)
    np.testing.assert_allclose(mphi, off.pm_lon_coslat.to_value(u.mas / u.yr), atol=1e-6)
    np.testing.assert_allclose(mlam, off.pm_lat.to_value(u.mas / u.yr), atol=1e-6)


def test_published_cuts_and_cut_flow():
    df = add_patch_coordinates(_stars(2000), center=(150.0, 30.0))
    sel, flow = apply_cuts(df, StreamCuts(radius=5.0))
    assert list(flow) == ["all", "g", "color", "pm", "ruwe", "radius"]
    assert flow["all"] == 2000 and all(a >= b for a, b in zip(list(flow.values()), list(flow.values())[1:]))
    assert len(sel) == flow["radius"] > 0
    assert (sel.phot_g_mean_mag < 20.2).all() and sel.bp_rp.between(0.5, 1.0).all() and (sel.ruwe < 1.4).all()
    assert (np.hypot(sel.pmra, sel.pmdec) > 2).all() and (np.hypot(sel.phi, sel.lam) < 5.05).all()
    with pytest.raises(ConfigError, match="color_min"):
        StreamCuts(color_min=1.2)
