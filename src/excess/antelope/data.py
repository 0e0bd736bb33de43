"""Samples of the ANTELOPE wing: reading (the contract reader of ``excess.data.svj``), signal points, splits.

The generation (``excess svj generate``) writes samples that ``excess.data.svj.read_svj(path)`` reads into an
object with ``.events`` (a DataFrame with ``mT``, the jet variables, ``label`` 0 QCD / 1 signal and the signal
point ``m_zprime, r_inv, m_dark``) and ``.tracks`` (``(N, 160, 8)``, :mod:`excess.antelope.sets`). This module
concatenates several of them (a QCD sample and one or more signal samples), names the signal points, and makes
the seeded background split that keeps the training events out of the evaluation and the search.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError

__all__ = ["SVJData", "HIGH_LEVEL", "POINT_COLUMNS", "load_samples", "signal_points", "parse_point", "point_mask",
           "point_label", "split_indices", "preselect"]

HIGH_LEVEL = ("m_j1", "tau21_j1", "tau32_j1", "ntrk_j1", "ptd_j1", "m_j2", "tau21_j2", "tau32_j2", "ntrk_j2", "ptd_j2")
"""The high-level jet variables of the baseline autoencoder (mass, N-subjettiness ratios, track multiplicity,
pT_D of both leading jets)."""
POINT_COLUMNS = ("m_zprime", "r_inv", "m_dark")


@dataclass
class SVJData:
    """Events (DataFrame, index 0..N-1) and their track sets ``(N, M, 8)``, row-aligned; ``origin`` names each
    event as ``(file, row in that file)`` so that training events can be recognised in another selection of the
    same files (:meth:`keys`)."""

    events: pd.DataFrame
    tracks: np.ndarray
    files: tuple[str, ...] = ()
    file_id: np.ndarray | None = None
    row: np.ndarray | None = None

    def __post_init__(self):
        if len(self.events) != len(self.tracks):
            raise InputError(f"{len(self.events)} events but {len(self.tracks)} track sets")
        n = len(self.events)
        if self.file_id is None:
            self.file_id = np.zeros(n, np.int64)
        if self.row is None:
            self.row = np.arange(n, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.events)

    def subset(self, idx) -> SVJData:
        idx = np.asarray(idx)
        return SVJData(self.events.iloc[idx].reset_index(drop=True), self.tracks[idx], self.files,
                       self.file_id[idx], self.row[idx])

    def keys(self, idx=None) -> list[str]:
        """``"file#row"`` of the events (all, or ``idx``): their identity across runs."""
        idx = np.arange(len(self)) if idx is None else np.asarray(idx)
        return [f"{self.files[f] if self.files else ''}#{r}" for f, r in zip(self.file_id[idx], self.row[idx])]

    @classmethod
    def concat(cls, parts: Sequence[SVJData]) -> SVJData:
        files, fid = [], []
        for p in parts:
            offset = len(files)
            files += list(p.files) or [""]
            fid.append(p.file_id + offset)
        return cls(pd.concat([p.events for p in parts], ignore_index=True),
                   np.concatenate([p.tracks for p in parts]), tuple(files), np.concatenate(fid),
                   np.concatenate([p.row for p in parts]))


def _read_svj(path):
    try:
        from ..data.svj import read_svj
    except ModuleNotFoundError as exc:  # pragma: no cover - the generation wing ships with excess
        raise ConfigError(f"reading {path}: excess.data.svj (the semi-visible-jet samples) is not available in this "
                          f"installation ({exc})") from None
    return read_svj(path)


def load_samples(paths: Sequence[str | os.PathLike], *, reader=None) -> SVJData:
    """Read and concatenate samples (``reader`` defaults to ``excess.data.svj.read_svj``)."""
    if not paths:
        raise InputError("no input samples given")
    read = reader or _read_svj
    parts = []
    # a chunk directory is read file by file, so an event's key (file#row, :meth:`SVJData.keys`) is the same
    # whether the directory or its chunk files were given (the search excludes the models' training events by key)
    files = []
    for p in paths:
        chunks = sorted(c for c in Path(p).glob("chunk-*.h5") if not c.name.startswith(".")) if Path(p).is_dir() else []
        files += chunks or [p]
    for p in files:
        s = read(p)
        ev = s.events.reset_index(drop=True)
        missing = [c for c in ("mT", "label") if c not in ev.columns]
        if missing:
            raise InputError(f"{p}: events lack columns {missing}")
        parts.append(SVJData(ev, np.asarray(s.tracks), (str(Path(p).resolve()),)))
    return SVJData.concat(parts)


def point_label(point) -> str:
    m, r, d = point
    return f"mZ'={m:g} r_inv={r:g}" + ("" if d is None or not np.isfinite(d) else f" m_dark={d:g}")


def signal_points(events: pd.DataFrame) -> list[tuple[float, float, float]]:
    """The distinct signal points ``(m_zprime, r_inv, m_dark)`` of the signal events, sorted."""
    sig = events[events["label"] == 1]
    if sig.empty:
        return []
    missing = [c for c in POINT_COLUMNS if c not in sig.columns]
    if missing:
        raise InputError(f"signal events lack the signal-point columns {missing}")
    pts = sig[list(POINT_COLUMNS)].drop_duplicates().to_numpy(dtype=float)
    return sorted(tuple(float(v) for v in p) for p in pts)


def parse_point(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"2000,0.3"`` or ``"2000,0.3,20"`` (m_Z' in GeV, r_inv, optionally m_dark in GeV) -> a tuple."""
    try:
        vals = tuple(float(v) for v in (text.replace(":", ",").split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise ConfigError(f"a signal point is m_zprime,r_inv[,m_dark] (numbers), got {text!r}") from None
    if len(vals) not in (2, 3):
        raise ConfigError(f"a signal point is m_zprime,r_inv[,m_dark], got {text!r}")
    return vals


def point_mask(events: pd.DataFrame, point) -> np.ndarray:
    """Signal events of ``point`` (``(m_zprime, r_inv)`` matches every m_dark of it); an unknown point is one
    :class:`~excess.errors.InputError` listing the points the sample holds."""
    point = parse_point(point)
    known = signal_points(events)
    sel = events["label"].to_numpy() == 1
    for col, v in zip(POINT_COLUMNS, point):
        sel &= np.isclose(events[col].to_numpy(dtype=float), v, rtol=1e-6, atol=1e-9)
    if not sel.any():
        listing = "; ".join(",".join(f"{v:g}" for v in p) for p in known) or "none (no signal events)"
        raise InputError(f"unknown signal point {','.join(f'{v:g}' for v in point)} (m_zprime,r_inv[,m_dark]); the "
                         f"samples hold: {listing}")
    return sel


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(n)`` into ``(train, held_out)`` with ``fraction`` in train (sorted indices)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"the training fraction must be in (0, 1), got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(fraction * n))
    return np.sort(perm[:k]), np.sort(perm[k:])


def preselect(data: SVJData, *, min_tracks: int = 3, columns: Sequence[str] = HIGH_LEVEL) -> tuple[SVJData, dict]:
    """ANTELOPE's >= ``min_tracks`` selection plus finite ``mT`` and high-level variables; returns the kept events
    and the counts (a record of what was dropped)."""
    from .sets import n_tracks

    ev = data.events
    missing = [c for c in columns if c not in ev.columns]
    if missing:
        raise InputError(f"events lack the high-level columns {missing}")
    nt = n_tracks(data.tracks)
    finite = np.isfinite(ev[["mT", *columns]].to_numpy(dtype=float)).all(axis=1)
    finite_tracks = np.isfinite(data.tracks.reshape(len(data), -1)).all(axis=1)
    keep = (nt >= min_tracks) & finite & finite_tracks
    counts = {"n_in": int(len(ev)), "n_kept": int(keep.sum()), "dropped_few_tracks": int((nt < min_tracks).sum()),
              "dropped_nonfinite": int((~(finite & finite_tracks)).sum())}
    return data.subset(np.nonzero(keep)[0]), counts
