"""Loading a search's inputs: any supported event file (or a ROOT tree) with a column mapping and unit
scaling, the packaged demo dataset, and the input hash recorded in a run's provenance.

>>> from excess.data.inputs import demo_dataset_path, load_events
>>> df = load_events(demo_dataset_path())
>>> {"mjj", "mj1", "mj2", "delta_mj", "tau21_j1", "tau21_j2", "label"} <= set(df.columns)
True
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .schema import LABEL, MASS_COLUMNS

__all__ = ["load_events", "check_events", "read_root", "demo_dataset_path", "input_sha256"]


def demo_dataset_path() -> Path:
    """The packaged LHCO-like demo dataset (generated with excess; see scripts/make_demo_dataset.py)."""
    return Path(str(resources.files("excess") / "datasets" / "lhco_demo.h5"))


def read_root(path: str | Path, tree: str | None = None) -> pd.DataFrame:
    """One tree (TTree or RNTuple) of a ROOT file as a DataFrame; ``tree`` may be omitted if there is one."""
    import uproot

    path = Path(path)
    with uproot.open(path) as f:
        trees = sorted({k.split(";")[0] for k, c in f.classnames().items()
                        if c.startswith("TTree") or c == "ROOT::RNTuple"})
        name = tree or (trees[0] if len(trees) == 1 else None)
        if name is None:
            raise InputError(f"{path}: give data.tree, the file holds trees {trees}")
        if name not in trees:
            raise InputError(f"{path}: no tree {name!r}; trees: {trees}")
        return f[name].arrays(library="pd")


def load_events(path: str | Path, *, tree: str | None = None, columns: dict[str, str] | None = None,
                scale_to_gev: float = 1.0, max_events: int | None = None) -> pd.DataFrame:
    """Read one input (any format of :func:`excess.data.io.read_events`, or ROOT) as an event table.

    ``columns`` maps excess column names to the file's (``{"mjj": "Mjj_TeV", ...}``);
    ``scale_to_gev`` multiplies the mass columns (1000 for TeV); ``mj2`` is derived from ``mj1`` and
    ``delta_mj`` when missing; a missing ``label`` becomes -1 (unknown); ``max_events`` keeps the first rows.
    """
    from .io import read_events

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".root":
        try:
            df = read_root(path, tree)
        except InputError:
            raise
        except Exception as exc:  # uproot raises many types for a damaged file
            raise InputError(f"{path}: not a readable ROOT file ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    elif columns and path.suffix.lower() == ".parquet":
        from .io import read_parquet_table

        df = read_parquet_table(path)  # a user's file: raw columns, mapped below
    else:
        df = read_events(path)
    if columns:
        missing = [src for src in columns.values() if src not in df.columns]
        if missing:
            raise InputError(f"{path}: column(s) {missing} from data.columns not in the file; available: {list(df.columns)}")
        attrs = df.attrs
        df = df.rename(columns={src: dst for dst, src in columns.items()})
        df.attrs = attrs
    if scale_to_gev != 1.0:
        for c in MASS_COLUMNS:
            if c in df.columns:
                df[c] = df[c] * scale_to_gev
    if "mj2" not in df.columns and {"mj1", "delta_mj"} <= set(df.columns):
        df["mj2"] = df["mj1"] + df["delta_mj"]
    if LABEL not in df.columns:
        df[LABEL] = np.int8(-1)
    if max_events is not None:
        attrs = df.attrs
        df = df.iloc[:max_events].reset_index(drop=True)
        df.attrs = attrs
    return df


def check_events(df: pd.DataFrame, columns, *, source: str | Path, drop_nonfinite: bool = False,
                 key: str = "data.path") -> tuple[pd.DataFrame, dict]:
    """Check an event table before a search: events present, ``columns`` present and numeric, no NaN/inf.

    Returns the table (rows with NaN/inf in ``columns`` dropped when ``drop_nonfinite``) and a record of what
    was dropped (``{"n_rows": ..., "per_column": {...}}``, empty when nothing). Every failure is an
    :class:`~excess.errors.InputError` naming the file, the columns and what to do.
    """
    from ..errors import NonFiniteError

    columns = list(dict.fromkeys(columns))
    if len(df) == 0:
        raise InputError(f"{source}: the file holds no events (0 rows); point {key} at a file with events")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {missing}; the file has {list(df.columns)[:30]}; "
                         "map your file's names with data.columns (e.g. {mjj: Mjj}) or change scan.features")
    for c in columns:
        dt = df[c].dtype
        if not (pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_complex_dtype(dt)) or pd.api.types.is_bool_dtype(dt):
            example = next((v for v in df[c].head(3).tolist()), None)
            raise InputError(f"{source}: column {c!r} holds {dt} values (e.g. {example!r}), not numbers; write it as a "
                             "float column (excess does not convert text to numbers)")
    values = df[columns].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if not bad.any():
        return df, {}
    per_column = {c: int(n) for c, n in zip(columns, bad.sum(axis=0)) if n}
    rows = bad.any(axis=1)
    n_rows = int(rows.sum())
    if not drop_nonfinite:
        detail = ", ".join(f"{c}: {n}" for c, n in per_column.items())
        raise NonFiniteError(
            f"{source}: {n_rows} of {len(df)} events have NaN/inf values ({detail}); fix the file, or set "
            "data.drop_nonfinite: true to drop those rows (the count is recorded in provenance.json)",
            per_column, n_rows)
    attrs = df.attrs
    out = df.loc[~rows].reset_index(drop=True)
    out.attrs = attrs
    if len(out) == 0:
        raise InputError(f"{source}: every event has NaN/inf values in {list(per_column)}; nothing is left to search")
    return out, {"n_rows": n_rows, "per_column": per_column}


def input_sha256(path: str | Path) -> str:
    """SHA-256 of an input file, or of the concatenated chunks of a dataset directory."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(path.glob("chunk-*.h5")) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
