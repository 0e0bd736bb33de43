"""The ANTELOPE bump hunt in mT: the search machinery of excess (:func:`excess.search.run_scan`) on the transverse
mass, with ANTELOPE's score.

How ANTELOPE plugs into the scan, which works on feature columns: the trained PFN (frozen) is applied once per
event and its latent vector becomes the columns ``pfn_0 ... pfn_63`` of the event table
(:func:`add_latent_columns`); the scan's method is ``make_method("antelope")`` on those columns, with

* ``mode="frozen"`` (default, the paper's setting): the VAE trained on a background (QCD) training sample,
  loaded in every fold: the score is fixed, the scan's per-fold thresholds keep the requested sideband
  efficiency; or
* ``mode="window"``: a VAE trained in every window and fold on the window's sideband events (data-driven).

Windows slide in ``resonant="mT"`` (:func:`excess.stats.windows.sliding_windows`); each cut's selected mT
spectrum is fitted over the whole window (SR and sidebands) with the 4-parameter dijet function plus a Gaussian
signal template of width :data:`MT_SIGNAL_WIDTH` x the SR centre (background model ``"dijet_signal"``,
:data:`MT_BACKGROUND_MODEL`); local Z from the profile likelihood ratio of no signal, global Z from
background-only pseudo-experiments of the whole scan, refitted with the same model.
The run directory is the search's (``metrics.json``, ``scan/``, ``plots/``, ``report.html`` by
:func:`excess.report.html.write_report`), plus ``truth.json``: S, B and S/sqrt(B) of the labelled events in the
most significant window (simulation only; the search never reads the labels).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import atomic_path, atomic_write_json, get_logger, to_jsonable
from ..errors import ConfigError, InputError
from .data import SVJData

__all__ = ["add_latent_columns", "run_antelope_search", "truth_in_window", "MODES", "MT_WINDOWS", "MT_RELATIVE_WINDOWS",
           "MT_FIT_FUNCTIONS", "MT_SIGNAL_WIDTH", "MT_BACKGROUND_MODEL", "MT_EFFICIENCIES"]

log = get_logger(__name__)

MODES = ("frozen", "window")

# Default sliding windows in mT (GeV). A semi-visible Z' does not make a narrow peak in mT: the invisible dark
# hadrons make mT an edge at m_Z' with a long tail below it (on the generated grid 10-90 % of the signal lies
# between ~0.55 and ~0.96 m_Z', e.g. 1.66-2.87 TeV for 3 TeV). The dijet search's 400 GeV SRs with 500 GeV
# sidebands leave much of such a signal in the sidebands, where the background fit absorbs it (measured:
# 200 injected 3 TeV events at S/sqrt(B) = 8.5 were missed with 300 GeV SRs and 250-400 GeV sidebands);
# 600 GeV SRs every 100 GeV with 800 GeV sidebands hold the edge in one SR and fit the background mostly where
# the signal is small against QCD. Any key passed in ``window_options`` overrides these.
MT_WINDOWS = {"width": 600.0, "step": 100.0, "sideband_width": 800.0}
# The sideband fits of the mT search use the 4-parameter dijet function only. With the scan's default choice (f3
# unless a likelihood-ratio test prefers f4 at alpha 0.05) the local Z is not calibrated where the spectrum is
# curved but not significantly so in the sidebands (e.g. an mT window whose sidebands hold part of the broad signal):
# measured on smooth background-only pseudo-data of such a window (SR 2400-3000 GeV, 800 GeV sidebands), f3 was
# chosen in half of the toys and then under-predicted the SR by 2.6 sigma_b, so 5 % of them had local Z > 3 (0.13 %
# expected); with f4 only, 0.3 % (300 toys) and the SR prediction unbiased. The price is a larger sigma_b.
MT_FIT_FUNCTIONS = (4,)
# The Gaussian signal template of the signal-plus-background fit (background model ``"dijet_signal"``): its width
# over the SR centre. Measured on the whole generated grid (data/svj/grid, 16 points, 2,500 preselected events
# each): the mT peak's FWHM / 2.355 over its mode is 0.056-0.089 for r_inv 0.2-0.3, 0.13-0.23 for r_inv 0.5 and
# 0.24-0.44 for r_inv 0.7 (no peak there, a broad shoulder); its median over the 12 points with r_inv <= 0.5 is
# 0.079, and an unbinned Gaussian fit to the core (mode +- 0.6 FWHM) gives a median of 0.080 over all 16 points
# (0.043-0.43). The dijet search's 0.04 (the mjj resolution) is half the narrowest peak.
MT_SIGNAL_WIDTH = 0.08
# The mT search's background model: the selected spectrum's dijet function fitted over the whole window together
# with that template (:func:`excess.stats.fit.fit_dijet_signal`). The sideband-only fit absorbed the part of the
# broad signal that leaks into the sidebands (30-40 of 108 injected events) and extrapolated imprecisely into the
# 600 GeV SR: 300 injected 3 TeV, r_inv 0.3 events (S/sqrt(B) 12-14) reached 3 sigma global in 2 of 5 injection
# draws (1000 toys each), and 0.35 % of the background-only tests had local Z > 3. With this model 4 of 5 draws
# reach the toys' limit of 3.09 (the fifth 2.75), QCD alone stays at global Z 0.06-0.14 (3 seeds), and the toys'
# P(Z > 3) is 0.09-0.19 % (Gaussian 0.135 %); README, ANTELOPE section. Not better everywhere: the broader 3 TeV,
# r_inv 0.5 signal (300 events, S/sqrt(B) 9) is found by neither model, and the sideband-only fit comes closer
# (local 2.7-2.9 in the right window vs 2.1-2.3, one of them in a wrong window).
MT_BACKGROUND_MODEL = "dijet_signal"
# The cuts of the mT search: the inclusive spectrum (1.0) and two ANTELOPE cuts. The inclusive spectrum is the
# model-independent baseline, and a broad semi-visible signal is often most significant there: in the measured
# searches (README, ANTELOPE section; 300 injected 3 TeV, r_inv 0.3 events, dijet_signal) it was the best cut in 4 of
# 5 draws. Every cut is in the look-elsewhere correction (the toys refit each). With background_model="efficiency"
# the 1.0 cut carries no information (selected = inclusive).
MT_EFFICIENCIES = (1.0, 0.3, 0.1)
# Mass-scaled alternative (``window_options={"relative": True}``; :func:`excess.stats.windows.sliding_windows`): SRs of
# 0.2 x their centre every 4 %, sidebands 0.3 x the centre on each side (SR 2500-3050 with sidebands 1660-3880 at
# 2.8 TeV), anchored at 3 TeV.
MT_RELATIVE_WINDOWS = {"width": 0.2, "step": 0.04, "sideband_width": 0.3, "anchor": 3000.0, "relative": True}


def add_latent_columns(events: pd.DataFrame, tracks, pfn, *, prefix: str = "pfn_") -> tuple[pd.DataFrame, list[str]]:
    """``events`` with the PFN latent of each event as columns ``prefix0, prefix1, ...`` and their names."""
    z = pfn.latent(tracks)
    cols = [f"{prefix}{k}" for k in range(z.shape[1])]
    clash = [c for c in cols if c in events.columns]
    if clash:
        raise InputError(f"events already have columns {clash[:3]}...; choose another prefix")
    out = pd.concat([events.reset_index(drop=True), pd.DataFrame(z, columns=cols)], axis=1)
    return out, cols


def truth_in_window(events: pd.DataFrame, window, scores=None, thresholds=(), resonant: str = "mT") -> dict:
    """S, B and S/sqrt(B) of the labelled events in the window's SR, inclusive and (with ``scores`` and the cut's
    per-fold ``thresholds``) after the cut at the mean threshold (an approximation when the folds' differ)."""
    m = events[resonant].to_numpy(dtype=float)
    y = events["label"].to_numpy()
    sr = (m >= window.sr_lo) & (m < window.sr_hi)

    def sb(sel):
        s, b = int(np.sum(sel & (y == 1))), int(np.sum(sel & (y == 0)))
        return {"S": s, "B": b, "S_over_sqrtB": float(s / np.sqrt(b)) if b > 0 else None}

    out = {"window": window.label, "inclusive": sb(sr)}
    if scores is not None and len(thresholds):
        s = np.asarray(scores, dtype=float)
        out["after_cut"] = {**sb(sr & np.isfinite(s) & (s >= float(np.mean(thresholds)))),
                            "threshold": float(np.mean(thresholds)), "note": "mean of the per-fold thresholds"}
    return out


def run_antelope_search(data: SVJData, models_dir, out, *, mode: str = "frozen", score: str = "total",
                        efficiencies: Sequence[float] = MT_EFFICIENCIES, windows=None,
                        window_options: dict | None = None, n_folds: int = 5, global_toys: int = 200,
                        seed: int = 1, device: str = "auto", workers: int | None = None,
                        vae_params: dict | None = None, show_progress: bool = True, resonant: str = "mT",
                        provenance: dict | None = None, min_sideband_events: int = 100,
                        background_model: str = MT_BACKGROUND_MODEL, fit_functions=MT_FIT_FUNCTIONS,
                        signal_width: float = MT_SIGNAL_WIDTH) -> dict:
    """Score with ANTELOPE and hunt for a bump in ``resonant``; write the run directory ``out``; return metrics.

    ``signal_width``: the Gaussian signal template's width over the SR centre (background models
    ``"dijet_signal"``, ``"signal_fit"``, ``"profile"``; :data:`MT_SIGNAL_WIDTH`)."""
    from ..nn.io import load_model
    from ..stats.fit import check_signal_width
    from ..stats.sideband import background_estimate
    from .models import PFNClassifier

    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    signal_width = check_signal_width(signal_width)
    background_estimate(background_model, functions=tuple(fit_functions), signal_width=signal_width)  # checked now
    models_dir, out = Path(models_dir), Path(out)
    pfn = load_model(models_dir / "pfn", device=device)
    if not isinstance(pfn, PFNClassifier):
        raise InputError(f"{models_dir / 'pfn'}: not a trained ANTELOPE PFN")
    if mode == "frozen" and not (models_dir / "vae" / "hyperparameters.json").exists():
        raise InputError(f"{models_dir / 'vae'}: no trained VAE (mode 'frozen' needs `excess antelope train`'s)")
    t0 = time.perf_counter()
    events, cols = add_latent_columns(data.events[[c for c in (resonant, "label") if c in data.events.columns]],
                                      data.tracks, pfn)
    params = {"score": score, "device": device}
    if mode == "frozen":
        params["vae"] = str((models_dir / "vae").resolve())
    else:
        params["vae_params"] = dict(vae_params or {})
    defaults = MT_RELATIVE_WINDOWS if (window_options or {}).get("relative") else MT_WINDOWS
    window_options = None if windows else {**defaults, **(window_options or {})}
    _check_windows(events[resonant].to_numpy(dtype=float), windows, window_options)  # before anything is written
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _scan_and_write(events, cols, data, params, models_dir, out, mode, score, efficiencies, windows,
                               window_options, n_folds, global_toys, seed, device, workers, show_progress, resonant,
                               provenance, t0, min_sideband_events, background_model, tuple(fit_functions),
                               signal_width)
    except BaseException:
        scan = out / "scan"
        if created and not (scan.is_dir() and any(p.is_file() for p in scan.rglob("*"))):
            import shutil

            shutil.rmtree(out, ignore_errors=True)  # nothing worth resuming: leave nothing in the way
        raise


def _check_windows(m, windows, window_options) -> None:
    from ..stats.windows import default_data_range, sliding_windows, validate_windows

    try:
        if windows:
            validate_windows(windows, m)
        else:
            wo = dict(window_options or {})
            sliding_windows(data_range=default_data_range(m, bin_width=float(wo.get("bin_width", 50.0))), **wo)
    except (ConfigError, InputError) as exc:
        raise ConfigError(f"mT windows: {exc}; change the window width / step / sideband width") from None


def _scan_and_write(events, cols, data, params, models_dir, out, mode, score, efficiencies, windows, window_options,
                    n_folds, global_toys, seed, device, workers, show_progress, resonant, provenance, t0,
                    min_sideband_events, background_model=MT_BACKGROUND_MODEL, fit_functions=MT_FIT_FUNCTIONS,
                    signal_width=MT_SIGNAL_WIDTH) -> dict:
    from ..report import search_plots
    from ..report.html import write_report
    from ..search import run_scan
    from ..workflow import _best_summary
    from .report import plot_mt_spectra

    result = run_scan(events, method="antelope", method_params=params, features=cols, resonant=resonant,
                      efficiencies=efficiencies, windows=windows, window_options=window_options, n_folds=n_folds,
                      global_toys=global_toys, random_state=seed, resume_dir=out / "scan", n_workers=workers,
                      show_progress=show_progress, min_sideband_events=min_sideband_events,
                      background_model=background_model, fit_functions=fit_functions, signal_width=signal_width)
    metrics = result.to_dict()
    metrics["method"] = f"antelope ({mode} VAE, score {score}) in {resonant}"
    metrics["best"] = _best_summary(result)
    metrics["n_events"] = len(events)
    truth = None
    if result.best is not None and "label" in events.columns:
        w, t = result.best
        truth = truth_in_window(events, w.window, w.scores, t.thresholds, resonant)
        atomic_write_json(out / "truth.json", truth)
    metrics["truth_best_window"] = truth
    caps = search_plots.write_scan_plots(result, None, out / "plots")
    caps[plot_mt_spectra(data.events, out / "plots" / "mt_spectra.png").name] = (
        "mT of the searched events by truth (QCD and the injected signal point), for orientation only.")
    metrics["plot_captions"] = caps
    metrics["runtime_s"] = time.perf_counter() - t0
    atomic_write_json(out / "metrics.json", metrics)
    cfg = {"models": str(models_dir), "mode": mode, "score": score, "resonant": resonant,
           "efficiencies": list(efficiencies), "windows": windows, "window_options": window_options,
           "n_folds": n_folds, "global_toys": global_toys, "seed": seed, "device": device,
           "min_sideband_events": min_sideband_events, "background_model": background_model,
           "fit_functions": list(fit_functions), "signal_width": signal_width}
    import yaml

    with atomic_path(out / "config.yaml", suffix=".yaml") as tmp:
        tmp.write_text(yaml.safe_dump(to_jsonable(cfg), sort_keys=False))
    atomic_write_json(out / "provenance.json", {"command": sys.argv, **(provenance or {})})
    write_report(out)
    return metrics
