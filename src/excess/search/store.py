"""The resume store of a scan: finished work on disk, written atomically, reused only when its
settings fingerprint matches.

Layout under ``root``::

    windows/<key>.json           a finished WindowResult (it carries its fingerprint)
    windows/<key>.scores.npz     the window's out-of-fold scores: event indices ``idx`` and ``scores``
    windows/<key>.toys<N>.npz    the window's N global pseudo-experiments (local Z per toy and cut)
    folds/<unit>_f<k>.npz        the scores of fold k of a unit (the window's key, or <key>_null<t>)
    scan.json                    the ScanResult

``ResumeStore(None)`` stores nothing and finds nothing, so the scan needs no special case.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._util import atomic_path, atomic_write_json
from ..anomaly.base import FoldScores
from ..stats.windows import Window
from .results import ScanResult, WindowResult

__all__ = ["ResumeStore"]

_DAMAGED = (OSError, ValueError, KeyError, EOFError, __import__("zipfile").BadZipFile)


class ResumeStore:
    """Per-window and per-fold results of a scan under ``root`` (None: a store that keeps nothing)."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root)
        if self.root is not None:
            (self.root / "windows").mkdir(parents=True, exist_ok=True)
            (self.root / "folds").mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ResumeStore({str(self.root) if self.root else None!r})"

    def _path(self, *parts: str) -> Path | None:
        return None if self.root is None else self.root.joinpath(*parts)

    # -- windows ------------------------------------------------------------------------------------
    def window(self, window: Window, fingerprint: str) -> WindowResult | None:
        """The finished result of ``window`` under the same settings, or None."""
        path = self._path("windows", f"{window.key}.json")
        if path is None:
            return None
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return WindowResult.from_dict(d) if d.get("fingerprint") == fingerprint else None

    def save_window(self, result: WindowResult) -> None:
        path = self._path("windows", f"{result.window.key}.json")
        if path is not None:
            atomic_write_json(path, result.to_dict())

    def window_scores(self, window: Window) -> tuple[np.ndarray, np.ndarray] | None:
        """``(idx, scores)``: the out-of-fold scores of the window's events (indices into the table)."""
        path = self._path("windows", f"{window.key}.scores.npz")
        if path is None or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return z["idx"], z["scores"]

    def save_window_scores(self, window: Window, idx: np.ndarray, scores: np.ndarray, fingerprint: str) -> None:
        path = self._path("windows", f"{window.key}.scores.npz")
        if path is not None:
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, idx=idx, scores=scores, fingerprint=fingerprint)

    # -- folds --------------------------------------------------------------------------------------
    def fold(self, unit: str, k: int, fingerprint: str) -> FoldScores | None:
        path = self._path("folds", f"{unit}_f{k}.npz")
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) != fingerprint:
                    return None
                extras = json.loads(str(z["extras"]))
                runtime = float(z["runtime_s"]) if "runtime_s" in z.files else 0.0
                return FoldScores(z["scores"], extras.get("signal_fraction"), extras.get("signal_fraction_err"), runtime)
        except _DAMAGED:
            return None  # a damaged resume file: the fold is computed again

    def save_fold(self, unit: str, k: int, result: FoldScores, fingerprint: str) -> None:
        path = self._path("folds", f"{unit}_f{k}.npz")
        if path is not None:
            extras = {"signal_fraction": result.signal_fraction, "signal_fraction_err": result.signal_fraction_err}
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, scores=result.scores, extras=json.dumps(extras), runtime_s=result.runtime_s,
                         fingerprint=fingerprint)

    # -- global pseudo-experiments ------------------------------------------------------------------
    def toys(self, result: WindowResult, n_toys: int) -> np.ndarray | None:
        """The window's ``n_toys`` pseudo-experiments (Z per toy and cut) if they belong to ``result``."""
        path = self._path("windows", f"{result.window.key}.toys{n_toys}.npz")
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return z["z"] if str(z["fingerprint"]) == result.fingerprint else None
        except _DAMAGED:
            return None  # a damaged resume file: the pseudo-experiments are run again

    def save_toys(self, result: WindowResult, n_toys: int, z: np.ndarray) -> None:
        path = self._path("windows", f"{result.window.key}.toys{n_toys}.npz")
        if path is not None:
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, z=z, fingerprint=result.fingerprint)

    # -- the scan -----------------------------------------------------------------------------------
    def save_scan(self, result: ScanResult) -> None:
        path = self._path("scan.json")
        if path is not None:
            result.save(path)
