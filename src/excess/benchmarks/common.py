"""What the benchmark harnesses share: loading and splitting the samples, and the sideband flows they
train once per configuration (optionally cached across runs)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._util import atomic_write_json, get_logger
from ..anomaly import in_sr
from ..errors import InputError

__all__ = ["load_features", "split_indices", "timed", "flow_location", "train_sb_flow"]

log = get_logger(__name__)


def load_features(path: str, features, max_events=None):
    """The ``features`` and ``mjj`` of an event file (rows with NaN/inf dropped, with a warning)."""
    from ..data.io import read_events

    df = read_events(path, columns=None, max_events=max_events)
    missing = [c for c in (*features, "mjj") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}")
    df = df[[*features, "mjj"]].copy()
    ok = np.isfinite(df.to_numpy(dtype=float)).all(axis=1)
    if not ok.all():
        log.warning("%s: dropping %d rows with NaN/inf features", path, int((~ok).sum()))
        df = df[ok].reset_index(drop=True)
    return df


def split_indices(n: int, fractions: Sequence[float], rng) -> list[np.ndarray]:
    """A random partition of ``range(n)`` into parts of the given fractions (the last takes the rest)."""
    perm = rng.permutation(n)
    edges = np.cumsum([0, *[int(round(f * n)) for f in fractions[:-1]]])
    return [perm[a:b] for a, b in zip(edges, [*edges[1:], n])]


def timed(fn):
    """``(fn(), seconds)``."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def flow_location(cfg, flow_params, s_over_b, seed, n_noise, n_bkg, tmpdir: Path) -> Path:
    """Where the SB flow of one configuration lives (``tmpdir`` unless ``cfg.flow_cache`` is set).

    The cache key covers everything the flow depends on: injection, seed, noise columns, background
    size, features, SR and the flow's hyperparameters; a flow trained under other settings is never reused.
    """
    if cfg.flow_cache is None:
        return tmpdir / f"flow-{s_over_b}-{seed}-{n_noise}"
    ident = json.dumps({"s_over_b": s_over_b, "seed": seed, "n_noise": n_noise, "n_bkg": n_bkg, "fast": cfg.fast,
                        "features": list(cfg.features), "sr": list(cfg.sr), "flow": flow_params,
                        "background": os.path.abspath(cfg.background), "signal": os.path.abspath(cfg.signal)},
                       sort_keys=True, default=str)
    return Path(cfg.flow_cache) / f"flow-{s_over_b}-{seed}-{n_noise}-{hashlib.sha1(ident.encode()).hexdigest()[:12]}"


def train_sb_flow(path: Path, flow_params, seed, X, m, sr) -> tuple[float, int]:
    """Train the SB flow on the sideband events of (X, m) and save it at ``path``, unless a cached one is
    there (its ``benchmark_timing.json`` written last). Returns its training seconds and epochs."""
    from ..anomaly.density import make_flow

    timing = path / "benchmark_timing.json"
    if timing.exists():
        cached = json.loads(timing.read_text())
        log.info("reusing the SB flow %s (trained in %.0f s)", path, cached["seconds"])
        return cached["seconds"], cached["epochs"]
    sb = ~in_sr(m, sr)
    flow, seconds = timed(lambda: make_flow(flow_params, seed).fit(X[sb], m[sb]))
    epochs = flow.history_["stopped_epoch"] + 1
    flow.save(path)
    atomic_write_json(timing, {"seconds": seconds, "epochs": epochs})
    return seconds, epochs
