"""Gaia DR3 stars with radial velocities -> Galactocentric positions (kpc) and velocities (km/s).

Input: a table with the ``gaia_source`` columns ``ra, dec`` [deg], ``parallax`` [mas], ``pmra, pmdec``
[mas/yr] and ``radial_velocity`` [km/s] (the RVS subsample), plus ``parallax_error`` for the parallax
cut and optionally ``ruwe`` and ``source_id``. Files: CSV (``.csv``, ``.csv.gz``), Parquet, FITS or
VOTable (through astropy), HDF5 written by pandas.

Checks (each an :class:`~excess.errors.InputError` naming the file, column, row and value): missing
columns, NaN or infinite values in the required columns, non-positive parallaxes. ``drop_invalid=True``
drops such rows instead (counted in :attr:`GaiaStars.counts`).

Quality cuts (defaults): ``parallax / parallax_error > 5`` (distance = 1 / parallax then has < 20 %
error, so the inversion bias is small), ``ruwe < 1.4`` (when the column is present), optionally a maximum
distance from the Sun.

Solar parameters (:data:`SOLAR_PARAMETERS`, astropy's ``Galactocentric`` "v4.0" values): distance to the
Galactic centre 8.122 kpc (GRAVITY Collaboration 2018, A&A 615, L15), height above the plane 20.8 pc
(Bennett & Bovy 2019, MNRAS 482, 1417), solar velocity (12.9, 245.6, 7.78) km/s (Drimmel & Poggio 2018,
RNAAS 2, 210; Reid & Brunthaler 2004). Astropy's Galactocentric frame puts the Sun near
``x = -8.122 kpc``, with ``y`` towards Galactic rotation at the Sun and ``z`` towards the North Galactic Pole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import ConfigError, InputError

__all__ = ["GaiaStars", "read_gaia", "to_galactocentric", "SOLAR_PARAMETERS", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("ra", "dec", "parallax", "pmra", "pmdec", "radial_velocity")
SOLAR_PARAMETERS = {"galcen_distance_kpc": 8.122, "z_sun_pc": 20.8, "galcen_v_sun_kms": (12.9, 245.6, 7.78),
                    "roll_deg": 0.0, "source": "astropy Galactocentric v4.0 defaults"}


@dataclass(frozen=True)
class GaiaStars:
    """Galactocentric positions ``x`` (n, 3) kpc and velocities ``v`` (n, 3) km/s, with the cut flow."""

    x: np.ndarray
    v: np.ndarray
    source_id: np.ndarray | None
    counts: dict = field(default_factory=dict)
    solar: dict = field(default_factory=lambda: dict(SOLAR_PARAMETERS))

    def __len__(self) -> int:
        return self.x.shape[0]


def _read_table(path: Path):
    import pandas as pd

    name = path.name.lower()
    try:
        if name.endswith((".csv", ".csv.gz", ".csv.bz2")):
            return pd.read_csv(path)
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".h5", ".hdf5", ".hdf")):
            return pd.read_hdf(path)
        if name.endswith((".fits", ".fit", ".fits.gz", ".vot", ".xml", ".ecsv")):
            from astropy.table import Table

            return Table.read(path).to_pandas()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: could not read the table ({exc})") from None
    raise InputError(f"{path}: unknown file type (use .csv, .parquet, .fits, .vot, .ecsv or pandas .h5)")


def to_galactocentric(ra, dec, parallax, pmra, pmdec, radial_velocity) -> tuple[np.ndarray, np.ndarray]:
    """Heliocentric Gaia astrometry (deg, mas, mas/yr, km/s) -> Galactocentric ``(x, v)`` in kpc and km/s."""
    import astropy.coordinates as coord
    import astropy.units as u

    frame = coord.Galactocentric(galcen_distance=SOLAR_PARAMETERS["galcen_distance_kpc"] * u.kpc,
                                 z_sun=SOLAR_PARAMETERS["z_sun_pc"] * u.pc,
                                 galcen_v_sun=coord.CartesianDifferential(SOLAR_PARAMETERS["galcen_v_sun_kms"] * u.km / u.s),
                                 roll=SOLAR_PARAMETERS["roll_deg"] * u.deg)
    c = coord.SkyCoord(ra=np.asarray(ra) * u.deg, dec=np.asarray(dec) * u.deg,
                       distance=(1.0 / np.asarray(parallax, dtype=np.float64)) * u.kpc,
                       pm_ra_cosdec=np.asarray(pmra) * u.mas / u.yr, pm_dec=np.asarray(pmdec) * u.mas / u.yr,
                       radial_velocity=np.asarray(radial_velocity) * u.km / u.s, frame="icrs")
    g = c.transform_to(frame)
    x = np.column_stack([g.x.to_value(u.kpc), g.y.to_value(u.kpc), g.z.to_value(u.kpc)])
    v = np.column_stack([g.v_x.to_value(u.km / u.s), g.v_y.to_value(u.km / u.s), g.v_z.to_value(u.km / u.s)])
    return x, v


def read_gaia(path, *, min_parallax_over_error: float | None = 5.0, max_ruwe: float | None = 1.4,
              max_distance_kpc: float | None = None, drop_invalid: bool = False) -> GaiaStars:
    """Read, check, cut and convert a Gaia DR3 table with radial velocities (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    df = _read_table(path)
    df.columns = [str(c).lower() for c in df.columns]
    need = list(REQUIRED_COLUMNS) + (["parallax_error"] if min_parallax_over_error else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)} (Gaia DR3 gaia_source names; "
                         f"found {', '.join(map(str, df.columns[:12]))})")
    counts = {"read": int(len(df))}
    keep = np.ones(len(df), dtype=bool)
    for col in need:
        vals = df[col].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(vals)
        if bad.any():
            if not drop_invalid:
                i = int(np.argmax(bad))
                raise InputError(f"{path}: column {col!r} has {int(bad.sum())} NaN/infinite values (first at row {i}: "
                                 f"{vals[i]}); select stars with radial velocities or pass drop_invalid=True")
            counts[f"dropped_nan_{col}"] = int((bad & keep).sum())
            keep &= ~bad
    plx = df["parallax"].to_numpy(dtype=np.float64)
    bad = np.isfinite(plx) & (plx <= 0)
    if bad.any():
        if not drop_invalid:
            i = int(np.argmax(bad))
            raise InputError(f"{path}: column 'parallax' has {int(bad.sum())} non-positive values (first at row {i}: "
                             f"{plx[i]} mas); distances need parallax > 0 (or pass drop_invalid=True)")
        counts["dropped_nonpositive_parallax"] = int((bad & keep).sum())
        keep &= ~bad
    if min_parallax_over_error:
        if min_parallax_over_error < 0:
            raise ConfigError(f"min_parallax_over_error must be >= 0, got {min_parallax_over_error}")
        err = df["parallax_error"].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = plx / err > min_parallax_over_error
        counts["cut_parallax_over_error"] = int((keep & ~ok).sum())
        keep &= ok
    if max_ruwe is not None and "ruwe" in df.columns:
        ruwe = df["ruwe"].to_numpy(dtype=np.float64)
        ok = np.isfinite(ruwe) & (ruwe < max_ruwe)
        counts["cut_ruwe"] = int((keep & ~ok).sum())
        keep &= ok
    if max_distance_kpc is not None:
        with np.errstate(divide="ignore"):
            ok = 1.0 / plx <= max_distance_kpc
        counts["cut_distance"] = int((keep & ~ok).sum())
        keep &= ok
    sel = df.loc[keep]
    counts["kept"] = int(keep.sum())
    if counts["kept"] == 0:
        raise InputError(f"{path}: no star passes the checks and quality cuts ({counts})")
    x, v = to_galactocentric(*(sel[c].to_numpy(dtype=np.float64) for c in REQUIRED_COLUMNS))
    sid = sel["source_id"].to_numpy() if "source_id" in sel.columns else None
    return GaiaStars(x=x, v=v, source_id=sid, counts=counts)
