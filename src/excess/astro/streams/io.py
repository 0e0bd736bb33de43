"""Reading and writing Gaia star tables (CSV, ECSV, FITS, HDF5, Parquet) with the archive's column names.

The Gaia archive (``gaiadr3.gaia_source``) names the columns a stream search needs ``ra``, ``dec``
(deg), ``pmra``, ``pmdec`` (mas/yr; ``pmra`` is mu_alpha* = mu_alpha cos(dec)), ``parallax`` (mas),
``phot_g_mean_mag``, ``bp_rp`` and ``ruwe``. Every reader returns a :class:`pandas.DataFrame` with those
columns (float64) plus whatever else the file holds (``source_id``, mock truth such as ``is_stream``),
and raises :class:`~excess.errors.InputError` naming the file and the missing columns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..._util import atomic_path
from ...errors import InputError

__all__ = ["GAIA_COLUMNS", "read_gaia", "write_gaia", "check_gaia_table"]

#: The archive columns a stream search needs, in the archive's spelling.
GAIA_COLUMNS: tuple[str, ...] = ("ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag", "bp_rp", "ruwe")

_SUFFIXES = {
    ".csv": "csv", ".csv.gz": "csv", ".ecsv": "ecsv",
    ".fits": "fits", ".fit": "fits", ".fits.gz": "fits",
    ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5",
    ".parquet": "parquet", ".pq": "parquet",
}


def _kind(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    raise InputError(f"{path}: unknown Gaia file type; expected one of {', '.join(sorted(_SUFFIXES))}")


def check_gaia_table(df: pd.DataFrame, source: str = "table", required=GAIA_COLUMNS) -> pd.DataFrame:
    """Check that ``df`` holds the ``required`` columns as finite numbers; returns them as float64.

    Column names are matched case-insensitively (the archive's VOTable/FITS exports are sometimes
    upper-case) and renamed to the archive's lower-case spelling. Rows with NaN in a required column
    are an error (Gaia 2-parameter solutions have no parallax/proper motion: drop them before).
    """
    lower = {str(c).lower(): c for c in df.columns}
    missing = [c for c in required if c not in lower]
    if missing:
        raise InputError(f"{source}: missing Gaia column(s) {missing}; found {list(map(str, df.columns))[:20]}")
    df = df.rename(columns={lower[c]: c for c in required if lower[c] != c})
    out = df.copy()
    for c in required:
        try:
            out[c] = np.asarray(out[c], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: column {c!r} is not numeric ({exc})") from None
        bad = ~np.isfinite(out[c].to_numpy())
        if bad.any():
            raise InputError(f"{source}: column {c!r} has {int(bad.sum())} non-finite value(s) "
                             f"(first at row {int(np.flatnonzero(bad)[0])}); drop those stars first")
    return out.reset_index(drop=True)


def _read_hdf5(path: Path) -> pd.DataFrame:
    import h5py

    with h5py.File(path, "r") as f:
        if "stars" in f and isinstance(f["stars"], h5py.Group):
            g = f["stars"]
            return pd.DataFrame({k: g[k][()] for k in g.keys() if isinstance(g[k], h5py.Dataset)})
        cols = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset) and f[k].ndim == 1}
        if cols:
            return pd.DataFrame(cols)
    try:  # a pandas/PyTables table
        return pd.read_hdf(path)
    except Exception as exc:  # noqa: BLE001 - any failure is an unreadable file
        raise InputError(f"{path}: no star table found (expected a 'stars' group of 1-D columns, "
                         f"top-level 1-D columns, or a pandas table): {exc}") from None


def read_gaia(path: str | os.PathLike, *, required=GAIA_COLUMNS) -> pd.DataFrame:
    """Read a Gaia star table from CSV, ECSV or FITS (through astropy), HDF5 or Parquet.

    >>> stars = read_gaia("gd1_patch.fits")   # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    kind = _kind(path)
    try:
        if kind == "csv":
            df = pd.read_csv(path, comment="#")
        elif kind == "parquet":
            df = pd.read_parquet(path)
        elif kind in ("fits", "ecsv"):
            from astropy.table import Table

            t = Table.read(path, format="fits" if kind == "fits" else "ascii.ecsv")
            cols = [c for c in t.colnames if t[c].ndim == 1]
            df = t[cols].to_pandas()
        else:
            df = _read_hdf5(path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - report unreadable files as input errors
        raise InputError(f"{path}: cannot read as {kind}: {exc}") from None
    return check_gaia_table(df, str(path), required=required)


def write_gaia(df: pd.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write a star table atomically; the format follows the suffix (as :func:`read_gaia`).

    ``metadata`` (JSON-able) is stored as the HDF5 attribute / Parquet key ``excess`` (not in CSV or FITS).
    """
    path = Path(path)
    kind = _kind(path)
    meta = json.dumps(metadata or {}, default=str)
    with atomic_path(path, suffix=path.suffix) as tmp:
        if kind == "csv":
            df.to_csv(tmp, index=False)
        elif kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"excess": meta.encode()})
            pq.write_table(table, tmp)
        elif kind in ("fits", "ecsv"):
            from astropy.table import Table

            t = Table.from_pandas(df)
            t.write(tmp, format="fits" if kind == "fits" else "ascii.ecsv", overwrite=True)
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                g = f.create_group("stars")
                for c in df.columns:
                    g.create_dataset(c, data=df[c].to_numpy(), compression="gzip", compression_opts=1)
                f.attrs["excess"] = meta
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` that :func:`write_gaia` stored (HDF5 and Parquet), else ``{}``."""
    path = Path(path)
    kind = _kind(path)
    if kind == "hdf5":
        import h5py

        with h5py.File(path, "r") as f:
            return json.loads(f.attrs.get("excess", "{}"))
    if kind == "parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta.get(b"excess", b"{}"))
    return {}
