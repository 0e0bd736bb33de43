"""Mock Gaia patch: seeded, Gaia-like errors, and a stream that lies on its track."""

import numpy as np
import pytest

from excess.astro.streams.coords import add_patch_coordinates
from excess.astro.streams.cuts import apply_cuts
from excess.astro.streams.mock import MockConfig, gd1_track, make_mock_patch
from excess.errors import ConfigError

# small and quick: ~10 background stars per deg^2 and a 1-Gyr stream
SMALL = dict(density=12.0, stream_age=1.0, stream_particles=1, stream_fraction=0.3, seed=3)


@pytest.fixture(scope="module")
def patch():
    return make_mock_patch(MockConfig(**SMALL))


def test_mock_is_seeded_and_labelled(patch):
    s = patch.stars
    again = make_mock_patch(MockConfig(**SMALL))
    assert again.stars.equals(s)
    other = make_mock_patch(MockConfig(**{**SMALL, "seed": 4, "stream": False}))
    assert not np.allclose(other.stars.ra.to_numpy()[:50], s.ra.to_numpy()[:50])
    assert other.n_stream == 0 and other.stars.is_stream.sum() == 0
    assert s.source_id.is_unique and set(s.population.unique()) == {0, 1, 2, 3}
    assert (s.is_stream == (s.population == 3)).all()
    assert patch.n_stream == int(s.is_stream.sum()) > 10
    # the requested fraction of the stream among cut-passing stars in the fiducial SR is met
    assert patch.to_dict()["stream_fraction_sr"] == pytest.approx(0.3, abs=0.03)


def test_mock_errors_are_gaia_dr3_like(patch):
    s = patch.stars
    pull = (s.pmra - s.pmra_true) / s.pmra_error
    assert abs(pull.std() - 1) < 0.1 and abs(pull.mean()) < 0.1
    faint = s.phot_g_mean_mag.between(19.5, 20.2)
    assert 0.3 < s.loc[faint, "pmra_error"].median() < 0.8  # DR3: ~0.3-0.6 mas/yr at G 19-20
    plx_pull = (s.parallax - 1 / s.distance_true) / s.parallax_error
    assert abs(plx_pull.std() - 1) < 0.1
    assert s.phot_g_mean_mag.max() < 20.3 and (s.ruwe >= 1).all() and 0.01 < (s.ruwe > 1.4).mean() < 0.06


def test_mock_stream_lies_on_its_track(patch):
    import astropy.coordinates as coord
    import astropy.units as u
    import gala.coordinates as gc

    st = patch.stars.loc[patch.stars.is_stream == 1]
    f = coord.SkyCoord(ra=st.ra.to_numpy() * u.deg, dec=st.dec.to_numpy() * u.deg).transform_to(gc.GD1Koposov10())
    phi1, phi2 = f.phi1.wrap_at(180 * u.deg).deg, f.phi2.deg
    assert -43 < np.median(phi1) < -27  # the patch is centred on phi1 = -35
    off = phi2 - gd1_track(phi1)
    # thin and along the progenitor's orbit; a stream is offset from its orbit by a few tenths of a degree
    # (Sanders & Binney 2013), so the tolerance is 0.5 deg for the median and 1.2 deg for 90 % of the stars
    assert abs(np.median(off)) < 0.5 and np.percentile(abs(off), 90) < 1.2
    assert np.std(off) < 0.5
    assert np.percentile(abs(phi2), 90) < 1.5  # and on the GD-1 great circle
    # a cold stream in proper motion, near the published GD-1 values at phi1 ~ -35 (-12.2, -3.1 mas/yr)
    pm = coord.SkyCoord(ra=st.ra.to_numpy() * u.deg, dec=st.dec.to_numpy() * u.deg,
                        pm_ra_cosdec=st.pmra_true.to_numpy() * u.mas / u.yr,
                        pm_dec=st.pmdec_true.to_numpy() * u.mas / u.yr).transform_to(gc.GD1Koposov10())
    assert np.median(pm.pm_phi1_cosphi2.to_value(u.mas / u.yr)) == pytest.approx(-12.2, abs=2.0)
    assert np.std(pm.pm_phi2.to_value(u.mas / u.yr)) < 1.0
    assert 6 < np.median(st.distance_true) < 11  # GD-1 is 7-10 kpc away
    bkg = patch.stars.loc[patch.stars.is_stream == 0]
    assert np.std(bkg.pmra) > 5 * np.std(st.pmra)


def test_mock_stream_passes_the_cuts_in_the_fiducial_sr(patch):
    s = add_patch_coordinates(patch.stars, patch.center)
    sel, _ = apply_cuts(s)
    lo, hi = patch.fiducial_sr
    in_sr = sel.mu_lam.between(lo, hi)
    assert sel.loc[in_sr, "is_stream"].sum() == patch.n_stream_sr
    assert (~sel.loc[in_sr, "is_stream"].astype(bool)).sum() == patch.n_background_sr


def test_mock_config_errors():
    with pytest.raises(ConfigError, match="stream_fraction"):
        MockConfig(stream_fraction=1.5)
    with pytest.raises(ConfigError, match="radius"):
        MockConfig(radius=0)
