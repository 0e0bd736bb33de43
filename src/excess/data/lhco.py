"""Loaders of the official LHC Olympics 2020 formats into the excess event table.

* R&D / black-box feature files (``events_anomalydetection_v2.features.h5``, ``events_LHCO2020_BlackBox1.features.h5``):
  a pandas table with per-jet columns ``pxj1 pyj1 pzj1 mj1 tau1j1 tau2j1 tau3j1`` and the same for ``j2``, plus
  ``label`` in the R&D file (black boxes have none: label = -1). Read with pandas/PyTables when available,
  otherwise directly with h5py (pandas "fixed" format).
* CATHODE-style ``.npy`` arrays: columns [mjj, mj_lighter, delta_mj, tau21_lighter, tau21_heavier, label] in **TeV**
  (5 columns: no label). Converted to GeV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .jets import derived_features, dijet_columns

__all__ = ["read_lhco_features", "read_cathode_npy", "LHCO_JET_COLUMNS", "write_lhco_features", "write_cathode_npy"]

LHCO_JET_COLUMNS = tuple(f"{q}j{j}" for j in (1, 2) for q in ("px", "py", "pz", "m", "tau1", "tau2", "tau3"))
_RENAME = {"m": "m", "tau1": "tau1", "tau2": "tau2", "tau3": "tau3"}


def _read_pandas_fixed_h5py(path: Path) -> pd.DataFrame:
    """Read a pandas ``to_hdf(format="fixed")`` frame without PyTables."""
    import h5py

    with h5py.File(path, "r") as f:
        keys = [k for k in f.keys() if isinstance(f[k], h5py.Group)]
        if not keys:
            raise InputError(f"{path}: no pandas table found (no HDF5 group)")
        g = f[keys[0]]
        if "block0_values" not in g:
            raise InputError(f"{path}: group {keys[0]!r} is not a pandas fixed-format table")
        cols: dict[str, np.ndarray] = {}
        i = 0
        while f"block{i}_values" in g:
            items = [x.decode() if isinstance(x, bytes) else str(x) for x in g[f"block{i}_items"][...]]
            vals = g[f"block{i}_values"][...]
            for j, name in enumerate(items):
                cols[name] = vals[:, j]
            i += 1
        order = [x.decode() if isinstance(x, bytes) else str(x) for x in g["axis0"][...]]
    return pd.DataFrame({c: cols[c] for c in order if c in cols})


def read_lhco_features(path: str | Path) -> pd.DataFrame:
    """Read an official LHCO 2020 feature file into the excess event table (GeV)."""
    path = Path(path)
    raw = None
    try:
        import tables  # noqa: F401  (pandas.read_hdf needs PyTables)

        raw = pd.read_hdf(path)
    except ImportError:
        raw = None
    except (ValueError, KeyError, TypeError, OSError):
        raw = None
    if raw is None:
        raw = _read_pandas_fixed_h5py(path)
    missing = [c for c in LHCO_JET_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(
            f"{path}: not an LHCO feature file: missing column(s) {missing} (expected {list(LHCO_JET_COLUMNS)})"
        )
    four, mass = {}, {}
    for j in (1, 2):
        px, py, pz, m = (raw[f"{q}j{j}"].to_numpy(dtype=float) for q in ("px", "py", "pz", "m"))
        four[j] = (px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2))
        mass[j] = m
    cols = dijet_columns(four[1], four[2])
    for j in (1, 2):
        cols[f"jet{j}_m"] = mass[j]  # the file's mass exactly, not re-derived from E and p
        for n in (1, 2, 3):
            cols[f"jet{j}_tau{n}"] = raw[f"tau{n}j{j}"].to_numpy(dtype=float)
    cols.update(derived_features(cols))
    df = pd.DataFrame(cols)
    for c in df.columns:
        df[c] = df[c].astype(np.float32)
    df["label"] = raw["label"].to_numpy().astype(np.int8) if "label" in raw.columns else np.int8(-1)
    if not np.isfinite(df.drop(columns="label").to_numpy()).all():
        bad = df.columns[~np.isfinite(df.drop(columns="label")).all().reindex(df.columns, fill_value=True)].tolist()
        raise InputError(f"{path}: non-finite values in column(s) {bad}")
    df.attrs["excess"] = {"source": str(path), "format": "LHCO 2020 features", "has_labels": "label" in raw.columns}
    return df


def read_cathode_npy(path: str | Path) -> pd.DataFrame:
    """Read a CATHODE-style ``.npy`` array (TeV) into the excess event table (GeV)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] not in (5, 6):
        raise InputError(
            f"{path}: expected a 2-D array with 5 or 6 columns "
            f"[mjj, mj_lighter, delta_mj, tau21_lighter, tau21_heavier(, label)] in TeV, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))[:5].tolist()
        raise InputError(f"{path}: non-finite values in rows {rows}...")
    if np.nanmedian(arr[:, 0]) > 100:
        raise InputError(f"{path}: mjj median {np.median(arr[:, 0]):.1f} looks like GeV; CATHODE arrays are in TeV")
    df = pd.DataFrame(
        {
            "mjj": arr[:, 0] * 1000.0,
            "mj1": arr[:, 1] * 1000.0,
            "delta_mj": arr[:, 2] * 1000.0,
            "tau21_j1": arr[:, 3],
            "tau21_j2": arr[:, 4],
        }
    ).astype(np.float32)
    df["mj2"] = (df["mj1"] + df["delta_mj"]).astype(np.float32)
    df["label"] = arr[:, 5].astype(np.int8) if arr.shape[1] == 6 else np.int8(-1)
    df.attrs["excess"] = {"source": str(path), "format": "CATHODE npy (TeV)", "has_labels": arr.shape[1] == 6}
    return df


def write_lhco_features(df: pd.DataFrame, path: str | Path, with_label: bool = True) -> Path:
    """Write an event table in the official LHCO feature-file layout (pandas fixed HDF5; needs PyTables)."""
    from .._util import atomic_path

    out = {}
    for j in (1, 2):
        pt, eta, phi = (df[f"jet{j}_{q}"].to_numpy(dtype=float) for q in ("pt", "eta", "phi"))
        out[f"pxj{j}"] = pt * np.cos(phi)
        out[f"pyj{j}"] = pt * np.sin(phi)
        out[f"pzj{j}"] = pt * np.sinh(eta)
        out[f"mj{j}"] = df[f"jet{j}_m"].to_numpy(dtype=float)
        for n in (1, 2, 3):
            out[f"tau{n}j{j}"] = df[f"jet{j}_tau{n}"].to_numpy(dtype=float)
    raw = pd.DataFrame(out)[list(LHCO_JET_COLUMNS)]
    if with_label:
        raw["label"] = df["label"].to_numpy(dtype=float)
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        raw.to_hdf(tmp, key="df", mode="w", format="fixed")
    return path


def write_cathode_npy(df: pd.DataFrame, path: str | Path, with_label: bool = True) -> Path:
    """Write the CATHODE-style array (TeV) of an event table."""
    from .._util import atomic_path

    cols = [df["mjj"] / 1000.0, df["mj1"] / 1000.0, df["delta_mj"] / 1000.0, df["tau21_j1"], df["tau21_j2"]]
    if with_label:
        cols.append(df["label"])
    arr = np.stack([np.asarray(c, dtype=float) for c in cols], axis=1)
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
    return path
