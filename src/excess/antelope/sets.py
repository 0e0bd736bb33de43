"""Track sets of the two leading jets: validation, the >= 3-track selection and the PFN's preprocessing.

The contract of the semi-visible-jet samples (``excess.data.svj.read_svj``): ``tracks`` is a float32 array
``(N, 160, 8)`` of up to 80 tracks per jet, leading jet first, each jet's tracks pT-sorted, with the columns
:data:`TRACK_COLUMNS` ``(pt, eta, phi, e, d0, z0, qoverp, jet)`` (``jet`` 0 or 1); padding rows are all zero and
the mask of real tracks is ``pt > 0`` (:func:`excess.nn.sets.set_mask`). Any number of rows per event works
here; the models are permutation invariant and blind to padding.

:class:`TrackPreprocessor` (fitted on training tracks only) maps each real track to the PFN inputs
:data:`FEATURES`: ``log pT``, ``log E``, ``eta`` and ``phi`` relative to its jet's axis (the track-pT-weighted
centroid of that jet's tracks; ``phi`` wrapped), ``asinh(d0 / 0.05 mm)``, ``asinh(z0 / 0.1 mm)`` (the samples'
tails reach tens of mm, the core is ~0.03 mm), ``q/p`` and the jet flag, then scales every
feature over the real training tracks: ``"minmax"`` to [0, 1] (ANTELOPE's MinMax scaling) or ``"standard"``
(zero mean, unit variance). Padding rows stay exactly zero. The axis is computed from the set itself, so the
representation is a function of the tracks alone (no event-table column needed, and every track permutation
gives the same axis).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..errors import ConfigError, InputError, NotFittedError

__all__ = ["TRACK_COLUMNS", "FEATURES", "MIN_TRACKS", "check_sets", "n_tracks", "track_selection",
           "TrackPreprocessor"]

TRACK_COLUMNS = ("pt", "eta", "phi", "e", "d0", "z0", "qoverp", "jet")
FEATURES = ("log_pt", "log_e", "deta", "dphi", "asinh_d0", "asinh_z0", "qoverp", "jet")
D0_SCALE, Z0_SCALE = 0.05, 0.1
"""mm: ``d0`` and ``z0`` enter as ``asinh(d0 / 0.05 mm)``, ``asinh(z0 / 0.1 mm)``: linear within the resolution,
logarithmic in the tails (displaced tracks reach tens of mm), so MinMax scaling does not squash the core."""
MIN_TRACKS = 3
"""ANTELOPE's selection: at least three tracks in the event (both jets together)."""

_PT, _ETA, _PHI, _E, _JET = 0, 1, 2, 3, 7


def check_sets(tracks, mask=None, *, name: str = "tracks", min_tracks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Validate zero-padded track sets; return ``(tracks float32 (N, M, 8), mask bool (N, M))``.

    One :class:`~excess.errors.InputError` per problem, naming it: ragged input (a list of events with different
    numbers of rows), wrong shape, NaN/inf in a real track, events with no track (all padding) or fewer than
    ``min_tracks``, a mask of the wrong shape. With an explicit ``mask`` the rows it marks as padding are zeroed.
    """
    if isinstance(tracks, (list, tuple)):
        shapes = {np.shape(t) for t in tracks}
        if len(shapes) > 1:
            raise InputError(f"{name}: ragged input, events have different shapes {sorted(shapes)[:4]}; pad every "
                             "event to the same number of rows with zeros (padding rows have pt = 0)")
    try:
        x = np.asarray(tracks, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not a numeric array ({exc}); ragged input? pad every event to the same number of "
                         "rows with zeros") from None
    if x.ndim != 3 or x.shape[-1] != len(TRACK_COLUMNS):
        raise InputError(f"{name}: must have shape (events, tracks, {len(TRACK_COLUMNS)}) with columns "
                         f"{', '.join(TRACK_COLUMNS)}; got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{name}: no events or no track rows (shape {x.shape})")
    if mask is None:
        m = np.isfinite(x[..., _PT]) & (x[..., _PT] != 0)
        m |= ~np.isfinite(x[..., _PT])  # a NaN pT is a (broken) track, reported below
    else:
        m = np.asarray(mask)
        if m.shape != x.shape[:2]:
            raise InputError(f"{name}: mask must have shape {x.shape[:2]}, got {m.shape}")
        m = m.astype(bool)
    bad = ~np.isfinite(x) & m[..., None]
    if bad.any():
        rows = np.nonzero(bad.any(axis=(1, 2)))[0]
        cols = [TRACK_COLUMNS[c] for c in np.nonzero(bad.any(axis=(0, 1)))[0]]
        raise InputError(f"{name}: {rows.size} events have NaN/inf in a track (first events {rows[:5].tolist()}, "
                         f"columns {cols}); drop them first")
    if mask is not None:
        x = np.where(m[..., None], x, np.float32(0))
    if (m & (x[..., _PT] < 0)).any():
        rows = np.nonzero((m & (x[..., _PT] < 0)).any(axis=1))[0]
        raise InputError(f"{name}: negative track pt in events {rows[:5].tolist()}")
    n = m.sum(axis=1)
    empty = np.nonzero(n == 0)[0]
    if empty.size:
        raise InputError(f"{name}: {empty.size} events have no track (all padding; first events "
                         f"{empty[:5].tolist()}); apply the track selection first "
                         f"(excess.antelope.track_selection, >= {MIN_TRACKS} tracks)")
    few = np.nonzero(n < min_tracks)[0]
    if few.size:
        raise InputError(f"{name}: {few.size} events have fewer than {min_tracks} tracks (first events "
                         f"{few[:5].tolist()}); apply the track selection first (excess.antelope.track_selection)")
    return x, m


def n_tracks(tracks) -> np.ndarray:
    """Number of real tracks (``pt > 0``) per event."""
    return (np.asarray(tracks)[..., _PT] > 0).sum(axis=1)


def track_selection(tracks, min_tracks: int = MIN_TRACKS) -> np.ndarray:
    """Boolean event mask of ANTELOPE's selection: at least ``min_tracks`` real tracks (``pt > 0``)."""
    return n_tracks(tracks) >= int(min_tracks)


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _raw_features(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Unscaled features (N, M, 8) of real tracks (padding rows are garbage-free zeros)."""
    pt = np.where(m, x[..., _PT], 1.0).astype(np.float64)
    e = np.where(m, np.maximum(x[..., _E], x[..., _PT]), 1.0).astype(np.float64)
    eta, phi = x[..., _ETA].astype(np.float64), x[..., _PHI].astype(np.float64)
    jet = x[..., _JET]
    deta = np.zeros_like(eta)
    dphi = np.zeros_like(phi)
    for j in (0, 1):
        sel = m & (np.rint(jet) == j)
        w = np.where(sel, pt, 0.0)
        wsum = w.sum(axis=1, keepdims=True)
        has = wsum > 0
        wn = np.where(has, w / np.where(has, wsum, 1.0), 0.0)
        # phi centroid: unwrap around the hardest track of the jet first
        lead = np.take_along_axis(phi, np.argmax(w, axis=1)[:, None], axis=1)
        phi_u = lead + _wrap(phi - lead)
        eta_c = (wn * eta).sum(axis=1, keepdims=True)
        phi_c = (wn * phi_u).sum(axis=1, keepdims=True)
        deta = np.where(sel, eta - eta_c, deta)
        dphi = np.where(sel, _wrap(phi_u - phi_c), dphi)
    d0 = np.arcsinh(x[..., 4].astype(np.float64) / D0_SCALE)
    z0 = np.arcsinh(x[..., 5].astype(np.float64) / Z0_SCALE)
    f = np.stack([np.log(pt), np.log(e), deta, dphi, d0, z0, x[..., 6], jet], axis=-1)
    return np.where(m[..., None], f, 0.0)


class TrackPreprocessor(TransformerMixin, BaseEstimator):
    """Track sets -> scaled PFN inputs ``(N, M, 8)`` (:data:`FEATURES`) with the mask; see the module docstring.

    ``fit(tracks)`` learns the per-feature scaling over the real tracks of the training events only;
    ``transform(tracks) -> (features float32, mask)`` with each event's real tracks first and the rows beyond
    the largest set dropped.
    """

    def __init__(self, scaling: str = "minmax", min_tracks: int = 1):
        self.scaling = scaling
        self.min_tracks = min_tracks

    def fit(self, tracks, y=None, mask=None):
        if self.scaling not in ("minmax", "standard"):
            raise ConfigError(f"scaling must be 'minmax' or 'standard', got {self.scaling!r}")
        x, m = check_sets(tracks, mask, name="training tracks", min_tracks=self.min_tracks)
        real = _raw_features(x, m)[m]
        if self.scaling == "minmax":
            lo, hi = real.min(axis=0), real.max(axis=0)
            self.offset_, self.scale_ = lo, hi - lo
        else:
            self.offset_, self.scale_ = real.mean(axis=0), real.std(axis=0)
        self.scale_ = np.where(self.scale_ > 0, self.scale_, 1.0)
        self.n_features_in_ = len(TRACK_COLUMNS)
        return self

    def transform(self, tracks, mask=None) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "scale_"):
            raise NotFittedError("TrackPreprocessor is not fitted")
        x, m = check_sets(tracks, mask, min_tracks=self.min_tracks)
        f = (_raw_features(x, m) - self.offset_) / self.scale_
        f = np.where(m[..., None], f, 0.0).astype(np.float32)
        # real tracks first (stable; the models are permutation invariant), rows beyond the largest set dropped:
        # a batch can then be cut to its own largest set (PFNClassifier), which saves most of the padding's cost
        order = np.argsort(~m, axis=1, kind="stable")
        k = int(m.sum(axis=1).max())
        f = np.take_along_axis(f, order[..., None], axis=1)[:, :k]
        return np.ascontiguousarray(f), np.take_along_axis(m, order, axis=1)[:, :k]

    def to_meta(self) -> dict:
        return {"scaling": self.scaling, "min_tracks": int(self.min_tracks), "offset": self.offset_.tolist(),
                "scale": self.scale_.tolist()}

    @classmethod
    def from_meta(cls, meta: dict) -> TrackPreprocessor:
        pp = cls(scaling=meta["scaling"], min_tracks=int(meta.get("min_tracks", 1)))
        pp.offset_, pp.scale_ = np.asarray(meta["offset"]), np.asarray(meta["scale"])
        pp.n_features_in_ = len(TRACK_COLUMNS)
        return pp
