"""The line threshold from stream-free runs: the null distribution of the best line significance per window.

Via Machinae's line significance (S - B)/sqrt(B + sigma_B^2 + 1) is not a calibrated Gaussian significance: the
best of ~10^4 Hough bins over a classifier's top stars, each window's selection shaped by the classifier's
smooth preferences. Instead of trusting a fixed 6, search a stream-free sky (a mock without a stream, or a region
with no known stream) with the same settings and take a quantile (default: the maximum) of the best line of
every window::

    excess streams search null.parquet -o runs/null ...               # the same settings as the real search
    excess streams search patch.parquet -o runs/gd1 ... --threshold auto --null-run runs/null

Every window's best line is kept in ``search.json`` whether or not it passed the threshold, so any finished run
(or survey: its ``patches/*/search.json``) serves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import ConfigError, InputError

__all__ = ["null_line_significances", "calibrate_threshold"]


def _search_files(run_dir: Path) -> list[Path]:
    if (run_dir / "search.json").exists():
        return [run_dir / "search.json"]
    files = sorted(run_dir.glob("patches/*/search.json"))
    if not files:
        raise InputError(f"{run_dir}: not a stream-search or survey run directory (no search.json)")
    return files


def null_line_significances(run_dirs) -> np.ndarray:
    """The best line significance of every searched window of the given run (or survey) directories."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    out = []
    for rd in map(Path, run_dirs):
        for f in _search_files(rd):
            d = json.loads(f.read_text())
            out += [w["line"]["significance"] for w in d["windows"] if w.get("line")]
    if not out:
        raise InputError(f"{', '.join(map(str, run_dirs))}: no window with a Hough line to calibrate on")
    return np.asarray(out, float)


def calibrate_threshold(run_dirs, quantile: float = 1.0) -> dict:
    """The ``quantile`` of the null distribution of the best line significance per window (1.0: its maximum);
    the returned ``threshold`` is the next float above it, so that a candidate (significance >= threshold) lies
    strictly above that null value."""
    if not 0 < quantile <= 1:
        raise ConfigError(f"threshold: the null quantile must be in (0, 1], got {quantile}")
    sig = null_line_significances(run_dirs)
    q = float(np.max(sig)) if quantile == 1 else float(np.quantile(sig, quantile, method="higher"))
    thr = float(np.nextafter(q, np.inf))  # a candidate line must lie strictly above that null value
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    return {"threshold": thr, "quantile": quantile, "n_windows": int(len(sig)),
            "null_runs": [str(Path(r).resolve()) for r in run_dirs],
            "null_significances": sorted(map(float, sig)),
            "null_median": float(np.median(sig)), "null_max": float(np.max(sig))}
