"""Reading a track table for the electron tagger: excess samples or a user's Parquet/HDF5/ROOT file.

A user's table needs the features of :mod:`excess.data.tracks` (rename columns with ``columns``, a
mapping ``{excess_name: file_column}``) and either a ``category`` column (names of
:data:`~excess.data.tracks.CATEGORIES` or their codes 0-3) or the booleans ``has_trt`` and ``has_calo``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.io import read_parquet_table
from ..data.tracks import CATEGORIES
from ..errors import InputError

__all__ = ["read_track_table"]


def _read_root(path: Path, tree: str | None) -> pd.DataFrame:
    import uproot

    with uproot.open(path) as f:
        trees = sorted({k.split(";")[0] for k, c in f.classnames().items() if c.startswith("TTree")})
        name = tree or (trees[0] if len(trees) == 1 else None)
        if name is None:
            raise InputError(f"{path}: name the tree (--tree); the file holds {trees}")
        if name not in trees:
            raise InputError(f"{path}: no tree {name!r}; trees: {trees}")
        return f[name].arrays(library="pd")


def read_track_table(path: str | os.PathLike, *, columns: dict | None = None, tree: str | None = None,
                     reco_only: bool = True) -> pd.DataFrame:
    """Read tracks from an excess sample directory/file, or a Parquet, HDF5 or ROOT file of a user.

    ``columns`` maps excess names to the file's column names; ``reco_only`` keeps rows with ``reco`` true
    when that column exists. The result has a string ``category`` column.
    """
    from ..data.electrons import read_tracks
    from ..data.io import FORMAT

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if path.is_dir():
        df, _ = read_tracks(path)
    elif suffix == ".root":
        df = _read_root(path, tree)
    elif suffix == ".parquet":
        df = read_parquet_table(path)
    elif suffix in (".h5", ".hdf5", ".hdf"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                ours = f.attrs.get("format", "") == FORMAT
        except OSError as exc:
            raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
        if ours:
            df, _ = read_tracks(path)
        else:
            try:
                df = pd.read_hdf(path)
            except (ValueError, KeyError, TypeError, ImportError) as exc:
                raise InputError(f"{path}: not an excess track file nor a pandas HDF5 table ({exc})") from None
    else:
        raise InputError(f"{path}: unsupported track-table format {suffix!r} (.parquet, .h5, .root or a sample directory)")
    if columns:
        missing = [src for src in columns.values() if src not in df.columns]
        if missing:
            raise InputError(f"{path}: column(s) {missing} of the column mapping are not in the file; "
                             f"available: {list(df.columns)}")
        df = df.rename(columns={src: dst for dst, src in columns.items()})
    if "category" not in df.columns:
        if {"has_trt", "has_calo"} <= set(df.columns):
            trt, calo = df["has_trt"].astype(bool).to_numpy(), df["has_calo"].astype(bool).to_numpy()
            df["category"] = np.asarray(CATEGORIES, dtype=object)[np.where(trt, np.where(calo, 0, 2), np.where(calo, 1, 3))]
        else:
            raise InputError(f"{path}: missing column 'category' (or 'has_trt' and 'has_calo' to derive it)")
    elif df["category"].dtype.kind in "iu":
        codes = df["category"].to_numpy()
        if codes.min() < 0 or codes.max() >= len(CATEGORIES):
            raise InputError(f"{path}: integer categories must be 0-3 ({', '.join(CATEGORIES)}), got "
                             f"{sorted(set(codes.tolist()) - set(range(4)))[:5]}")
        df["category"] = np.asarray(CATEGORIES, dtype=object)[codes]
    else:
        df["category"] = df["category"].astype(str)
    if reco_only and "reco" in df.columns:
        df = df[df["reco"].astype(bool)]
    return df.reset_index(drop=True)
