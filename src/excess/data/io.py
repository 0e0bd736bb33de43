"""Reading and writing event tables (HDF5, Parquet) — atomically.

HDF5 layout written by excess (``format = "excess-events/1"``)::

    /events/<column>     one 1-D dataset per column (float32 features, int8 label, ...)
    attrs["format"]      "excess-events/1"
    attrs["metadata"]    JSON: generator settings, seeds, versions, counts, cross-section

A *dataset directory* holds ``chunk-NNNNN.h5`` files (one per seeded generation chunk) and
``manifest.json``; :func:`read_events` reads a directory as the concatenation of its chunks.
Parquet files carry the same columns and the metadata JSON under the schema key ``excess``.

:func:`read_events` also recognises the official formats (LHC Olympics 2020 feature files,
CATHODE-style ``.npy``) through :mod:`excess.data.lhco`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import atomic_path, to_jsonable
from ..errors import InputError

__all__ = ["write_events", "read_events", "read_metadata", "FORMAT"]

FORMAT = "excess-events/1"


def _meta(df: pd.DataFrame, metadata: dict | None) -> dict:
    meta = dict(df.attrs.get("excess", {}))
    if metadata:
        meta.update(metadata)
    return to_jsonable(meta)


def write_events(df: pd.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write an event table to ``.h5``/``.hdf5`` or ``.parquet`` atomically (temp name, then rename)."""
    path = Path(path)
    meta = _meta(df, metadata)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        import h5py

        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["metadata"] = json.dumps(meta)
                g = f.create_group("events")
                for col in df.columns:
                    arr = np.asarray(df[col].to_numpy())
                    g.create_dataset(str(col), data=arr, compression="gzip", compression_opts=4, shuffle=True)
                g.attrs["columns"] = json.dumps([str(c) for c in df.columns])
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"excess": json.dumps(meta).encode()})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        raise InputError(f"{path}: unsupported output format {suffix!r} (use .h5, .hdf5 or .parquet)")
    return path


def _read_excess_h5(path: Path, columns=None) -> pd.DataFrame:
    import h5py

    with h5py.File(path, "r") as f:
        meta = json.loads(f.attrs.get("metadata", "{}"))
        g = f["events"]
        order = json.loads(g.attrs["columns"]) if "columns" in g.attrs else list(g.keys())
        if columns is not None:
            missing = [c for c in columns if c not in g]
            if missing:
                raise InputError(f"{path}: missing column(s) {missing}; available: {order}")
            order = list(columns)
        df = pd.DataFrame({c: g[c][...] for c in order})
    df.attrs["excess"] = meta
    return df


def _chunk_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("chunk-*.h5") if not p.name.startswith("."))


def read_metadata(path: str | os.PathLike) -> dict:
    """Metadata of an excess file or dataset directory, without reading the events."""
    import h5py

    path = Path(path)
    if path.is_dir():
        manifest = path / "manifest.json"
        if manifest.exists():
            return json.loads(manifest.read_text())
        files = _chunk_files(path)
        return {"chunks": [read_metadata(p) for p in files]}
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        md = pq.read_schema(path).metadata or {}
        return json.loads(md.get(b"excess", b"{}"))
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs.get("metadata", "{}"))


def read_events(path: str | os.PathLike, columns: list[str] | None = None, max_events: int | None = None) -> pd.DataFrame:
    """Read an event table from any supported file or dataset directory.

    Supported: excess HDF5/Parquet files and chunk directories, the LHC Olympics 2020 feature
    files (pandas HDF5 tables), and CATHODE-style ``.npy`` arrays. Energies are returned in GeV.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        files = _chunk_files(path)
        if not files:
            raise InputError(f"{path}: directory holds no chunk-*.h5 event files")
        frames, metas, n = [], [], 0
        for p in files:
            try:
                df = _read_excess_h5(p, columns)
            except InputError:
                raise
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise InputError(f"{p}: damaged chunk file ({_why(exc)}); delete it and rerun the generation to "
                                 "remake it") from None
            frames.append(df)
            metas.append(df.attrs.get("excess", {}))
            n += len(df)
            if max_events is not None and n >= max_events:
                break
        out = pd.concat(frames, ignore_index=True)
        if max_events is not None:
            out = out.iloc[:max_events].reset_index(drop=True)
        out.attrs["excess"] = _merge_chunk_meta(metas, source=str(path))
        return out
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from .lhco import read_cathode_npy

        df = read_cathode_npy(path)
    elif suffix == ".parquet":
        df = read_parquet_table(path, columns)
    elif suffix in (".h5", ".hdf5", ".hdf"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                is_excess = f.attrs.get("format", "") == FORMAT
        except OSError as exc:
            raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc
        if is_excess:
            try:
                df = _read_excess_h5(path, columns)
            except InputError:
                raise
            except (OSError, KeyError, ValueError, TypeError) as exc:
                raise InputError(f"{path}: damaged excess HDF5 file ({_why(exc)}); regenerate or re-copy it") from None
        else:
            from .lhco import read_lhco_features

            try:
                df = read_lhco_features(path)
            except InputError:
                raise
            except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
                raise InputError(f"{path}: neither an excess event file nor an LHCO feature file ({_why(exc)})") from None
    else:
        raise InputError(f"{path}: unsupported input format {suffix!r} (.h5, .hdf5, .parquet, .npy or a chunk directory)")
    if columns is not None and suffix != ".parquet":
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}; available: {list(df.columns)}")
        attrs = df.attrs
        df = df[list(columns)]
        df.attrs = attrs
    if max_events is not None:
        attrs = df.attrs
        df = df.iloc[:max_events].reset_index(drop=True)
        df.attrs = attrs
    return df


def _why(exc: BaseException) -> str:
    """An exception's message without its class name (the user needs what, not which Python type)."""
    msg = str(exc).strip() or type(exc).__name__
    return msg.splitlines()[0][:200]


def read_parquet_table(path: Path, columns=None) -> pd.DataFrame:
    """A Parquet file as a DataFrame (excess metadata in ``attrs``); an unreadable file is an :class:`InputError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=columns)
        df = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_why(exc)}); check that the file is complete "
                         "(re-copy or rewrite it)") from None
    md = table.schema.metadata or {}
    try:
        df.attrs["excess"] = json.loads(md.get(b"excess", b"{}"))
    except ValueError:
        df.attrs["excess"] = {}
    return df


def _merge_chunk_meta(metas: list[dict], source: str) -> dict:
    if not metas:
        return {}
    first = dict(metas[0])
    out = {k: v for k, v in first.items() if k not in ("seed", "counts", "timing", "chunk")}
    out["source"] = source
    out["n_chunks"] = len(metas)
    out["seeds"] = [m.get("seed") for m in metas]
    counts: dict[str, float] = {}
    for m in metas:
        for k, v in (m.get("counts") or {}).items():
            if isinstance(v, (int, float)):
                counts[k] = counts.get(k, 0) + v
    out["counts"] = counts
    xs = [m.get("cross_section") for m in metas if m.get("cross_section")]
    if xs:
        # weight the per-chunk selected cross-sections by their generated events
        w = np.array([x.get("n_pythia_events", 1) for x in xs], dtype=float)
        sel = np.array([x.get("selected_fb", np.nan) for x in xs], dtype=float)
        out["cross_section"] = {"selected_fb": float(np.nansum(w * sel) / np.sum(w)), "n_chunks": len(xs)}
    return out
