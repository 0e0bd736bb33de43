"""What the benchmark harnesses share: loading and splitting the samples, the sideband flows they
train once per configuration (optionally cached across runs), and the arguments and generation step of the
jet-tagging benchmarks (q/g and b-tagging)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._util import atomic_write_json, get_logger
from ..anomaly import in_sr
from ..errors import InputError

__all__ = ["load_features", "split_indices", "timed", "flow_location", "train_sb_flow", "add_tagging_args",
           "generate_jets"]

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


def add_tagging_args(ap, *, what: str, n_jets: int, chunk_size: int, gen_seed: int, taggers: str, seeds: int,
                     epochs: int) -> None:
    """The arguments every jet-tagging benchmark takes (data directory, generation, evaluation, training), with
    that benchmark's defaults; ``what`` names its chunk files in the help."""
    ap.add_argument("--data", type=Path, required=True, help=f"directory of {what} chunks (generated if needed)")
    ap.add_argument("--n-jets", type=int, default=n_jets, help="jets to generate there (0: only read)")
    ap.add_argument("--chunk-size", type=int, default=chunk_size)
    ap.add_argument("--gen-seed", type=int, default=gen_seed)
    ap.add_argument("--out", type=Path, required=True, help="run directory of the evaluation")
    ap.add_argument("--taggers", default=taggers)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--max-jets", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=seeds)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--patience", type=int, default=4)


def generate_jets(generate, args) -> None:
    """``generate(args.data, args.n_jets, seed=args.gen_seed, chunk_size=args.chunk_size)`` (resumable; nothing
    when ``--n-jets 0``), its new jets and wall time on stderr."""
    if args.n_jets > 0:
        t0 = time.perf_counter()
        r = generate(args.data, args.n_jets, seed=args.gen_seed, chunk_size=args.chunk_size)
        print(f"generation: {r['n_jets_generated']} new jets in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
