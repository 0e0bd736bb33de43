"""The complete search as one call: config -> run directory with results, plots and ``report.html``.

Run directory layout::

    config.yaml        the resolved configuration (defaults filled in)
    provenance.json    versions, seed, input file hashes, git revision, command line, timings
    scan/              per-window results and fold scores (resume state; written atomically)
    metrics.json       the scan result (per window and cut: fit, local Z, characterisation; global Z)
    predictions.h5     per-event out-of-fold scores, row-aligned with the observer columns
    plots/*.png        mjj with fits and pulls, significance vs window, SIC curves
    report.html        what a physicist pastes into a talk

``resume=True`` reuses finished windows and folds of an interrupted run with the same settings.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._util import atomic_path, atomic_write_json, ensure_dir, get_logger, package_versions, to_jsonable
from ._version import __version__
from .config import SearchConfig
from .data.inputs import check_events, demo_dataset_path, input_sha256, load_events
from .errors import ConfigError, InputError, OutputError, RunDirectoryError

__all__ = ["run_search", "demo_dataset_path", "SearchOutcome", "no_result_reasons"]

log = get_logger(__name__)


def _git_revision() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
            return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def _versions() -> dict:
    return package_versions(("numpy", "scipy", "pandas", "scikit-learn", "torch", "zuko", "iminuit", "dask", "distributed"))


@dataclass(frozen=True)
class SearchOutcome:
    run_dir: str
    report: str
    best_window: str | None
    best_efficiency: float | None
    z_local: float | None
    z_global: float | None
    z_global_is_limit: bool
    z_trials: float | None
    m_res: float | None
    m_x: float | None
    m_y: float | None
    runtime_s: float
    no_result_reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        import dataclasses

        return to_jsonable(dataclasses.asdict(self))

    def summary(self) -> str:
        if self.best_window is None:
            why = "".join(f"\n  {r}" for r in self.no_result_reasons)
            return f"No window produced a result:{why}\nReport: {self.report}"
        s = (f"Most significant window: {self.best_window} GeV at background efficiency {self.best_efficiency:g}: "
             f"local Z = {self.z_local:.2f}")
        if self.z_global is not None:
            if self.z_global_is_limit:
                s += f", global Z > {self.z_global:.2f} (no pseudo-experiment reached it; more toys tighten the bound)"
            else:
                s += f", global Z = {self.z_global:.2f}"
        if self.z_trials is not None:
            s += f" [trials-factor estimate {self.z_trials:.2f}]"
        if self.m_res:
            s += f"; resonance mass ~{self.m_res:.0f} GeV"
        if self.m_x and self.m_y:
            s += f", jet masses mX ~{self.m_x:.0f} GeV, mY ~{self.m_y:.0f} GeV"
        return s + f".\nReport: {self.report}"


def _load(path: Path, data, cfg: SearchConfig, key: str) -> tuple[pd.DataFrame, dict]:
    """Read one input and check it for the search (columns, numbers, NaN/inf); returns (events, dropped)."""
    events = load_events(path, tree=data.tree, columns=data.columns, scale_to_gev=data.scale_to_gev,
                         max_events=data.max_events)
    return check_events(events, [cfg.scan.resonant, *cfg.scan.features], source=path, drop_nonfinite=data.drop_nonfinite, key=key)


def _resolve_inputs(cfg: SearchConfig):
    if cfg.data.demo:
        path = demo_dataset_path()
        if not path.exists():
            raise InputError(f"{path}: the packaged demo dataset is missing from this installation")
    else:
        path = Path(cfg.data.path)
    events, dropped = _load(path, cfg.data, cfg, "data.path")
    background = None
    inputs = {str(path): input_sha256(path)}
    dropped_all = {str(path): dropped} if dropped else {}
    if cfg.data.background_path:
        bpath = Path(cfg.data.background_path)
        background, bdropped = _load(bpath, cfg.data, cfg, "data.background_path")
        inputs[str(bpath)] = input_sha256(bpath)
        if bdropped:
            dropped_all[str(bpath)] = bdropped
    if cfg.method.name == "idealized" and background is None:
        raise ConfigError("method 'idealized' needs data.background_path (a background-only reference sample)")
    _check_against_data(cfg, events, path)
    return events, background, inputs, dropped_all


def _check_against_data(cfg: SearchConfig, events: pd.DataFrame, path: Path) -> None:
    """What needs the data but no training: the windows against the mjj range, labels for supervised methods."""
    from .stats.windows import default_data_range, sliding_windows, validate_windows

    sc = cfg.scan
    m = events[cfg.scan.resonant].to_numpy(dtype=float)
    try:
        if sc.windows:
            validate_windows([tuple(w) for w in sc.windows], m)
        else:
            wo = {k: v for k, v in (("width", sc.window_width), ("step", sc.window_step),
                                    ("sideband_width", sc.sideband_width)) if v is not None}
            sliding_windows(data_range=default_data_range(m), **wo)
    except (ConfigError, InputError) as exc:
        key = "scan.windows" if sc.windows else "scan.window_width/window_step/sideband_width"
        raise ConfigError(f"{key}: {exc} (data: {path}); change the windows or the data") from None
    if cfg.method.name == "supervised":
        labels = events["label"].to_numpy() if "label" in events.columns else None
        if labels is None or not np.isin(labels, (0, 1)).all():
            raise InputError(f"{path}: method 'supervised' needs a 'label' column of 0/1 for every event; "
                             "use a labelled sample or another method")


def _has_results(run_dir: Path) -> bool:
    """Whether a run directory holds anything worth keeping: finished scan steps or the final metrics."""
    if (run_dir / "metrics.json").exists():
        return True
    scan = run_dir / "scan"
    return scan.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in scan.rglob("*"))


def _finished(run_dir: Path) -> bool:
    return all((run_dir / n).exists() for n in ("metrics.json", "predictions.h5", "report.html"))


def _best_summary(result) -> dict | None:
    best = result.best
    if best is None:
        return None
    w, t = best
    ch = t.characterisation
    sig = t.significance
    return {
        "window": w.window.label,
        "efficiency": t.efficiency,
        "z_local": t.z,
        "p_local": getattr(sig, "p_value", None) if sig is not None else None,
        "m_res": getattr(ch, "m_res", None) if ch else None,
        "m_x": getattr(ch, "m_x", None) if ch else None,
        "m_y": getattr(ch, "m_y", None) if ch else None,
        "signal_fraction": w.signal_fraction,
        "signal_fraction_err": w.signal_fraction_err,
    }


def run_search(cfg: SearchConfig, *, output: str | Path | None = None, resume: bool = False,
               show_progress: bool = True, argv: list[str] | None = None) -> SearchOutcome:
    """Run the search described by ``cfg``; write the run directory; return a summary."""
    import yaml

    t0 = time.perf_counter()
    run_dir = Path(output or cfg.run.output)
    device = _run_device(cfg)  # before any work: a device that is not here fails now
    resolved = cfg.model_dump(mode="json")
    cfg_text = yaml.safe_dump(resolved, sort_keys=False)
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"{run_dir}: exists and is a file, not a run directory; choose another --output")
    if run_dir.is_dir() and (run_dir / "config.yaml").exists() and _has_results(run_dir):
        if not resume:
            raise RunDirectoryError(f"{run_dir}: run directory exists; pass --resume to continue it or choose another "
                                    "--output")
        try:
            same = (run_dir / "config.yaml").read_text() == cfg_text
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            raise RunDirectoryError(f"{run_dir}: --resume with a different configuration (compare {run_dir}/config.yaml); "
                                    "use another --output")
        if _finished(run_dir):
            log.info("%s: the run is finished; nothing to do (delete it or choose another --output to rerun)", run_dir)
            return _outcome_from_run(run_dir)
    # read and check the inputs before the run directory exists: a bad input leaves nothing behind
    events, background, inputs, dropped = _resolve_inputs(cfg)
    created = not run_dir.exists()
    ensure_dir(run_dir)
    try:
        return _run_in(run_dir, cfg, cfg_text, events, background, inputs, dropped, device, t0, resume, show_progress,
                       argv)
    except BaseException:
        if created and not _has_results(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth resuming: leave nothing in the way
        raise


def _outcome_from_run(run_dir: Path) -> SearchOutcome:
    """The summary of a finished run, from its saved files (nothing is rewritten)."""
    from ._util import read_json

    metrics = read_json(run_dir / "metrics.json", "metrics file")
    return _outcome(run_dir, run_dir / "report.html", metrics)


def _outcome(run_dir: Path, report: Path, metrics: dict) -> SearchOutcome:
    best = metrics.get("best") or {}
    g = metrics.get("global_significance") or {}
    return SearchOutcome(
        run_dir=str(run_dir), report=str(report), best_window=best.get("window"), best_efficiency=best.get("efficiency"),
        z_local=best.get("z_local"), z_global=g.get("z_global"),
        z_global_is_limit=bool(g.get("z_global_is_limit", False)), z_trials=g.get("z_trials"), m_res=best.get("m_res"),
        m_x=best.get("m_x"), m_y=best.get("m_y"), runtime_s=metrics.get("runtime_s") or 0.0,
        no_result_reasons=tuple(no_result_reasons(metrics)) if not metrics.get("best") else (),
    )


def no_result_reasons(metrics: dict) -> list[str]:
    """Why each window of a scan gave no result (``"SR 3300-3700: fewer than 20 events selected"``)."""
    out = []
    for w in metrics.get("windows") or []:
        label = (w.get("window") or {}).get("label") or str(w.get("window"))
        if w.get("status") not in (None, "ok"):
            out.append(f"{label}: {w.get('status')}" + (f" ({w['reason']})" if w.get("reason") else ""))
            continue
        why = sorted({f"{t.get('status')}" + (f" ({t['reason']})" if t.get("reason") else "")
                      for t in w.get("tests") or [] if t.get("status") not in (None, "ok")})
        if why:
            out.append(f"{label}: " + "; ".join(why))
    return out or ["no window passed the selection and fit (see metrics.json)"]


def _run_in(run_dir, cfg, cfg_text, events, background, inputs, dropped, device, t0, resume, show_progress, argv):
    from .search import run_scan

    with atomic_path(run_dir / "config.yaml", suffix=".yaml") as tmp:
        tmp.write_text(cfg_text)
    prov = {
        "excess_version": __version__,
        "versions": _versions(),
        "seed": cfg.run.seed,
        "inputs_sha256": inputs,
        "git_revision": _git_revision(),
        "command": argv if argv is not None else sys.argv,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "device": device,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_events": len(events),
        "input_metadata": to_jsonable(events.attrs.get("excess", {})),
        "dropped_nonfinite": dropped,
    }
    atomic_write_json(run_dir / "provenance.json", prov)

    sc = cfg.scan
    window_options = {k: v for k, v in (("width", sc.window_width), ("step", sc.window_step),
                                        ("sideband_width", sc.sideband_width)) if v is not None}
    result = run_scan(
        events,
        method=cfg.method.name,
        method_params={**cfg.method.params, "device": cfg.run.device},  # travels with every fold task
        windows=[tuple(w) for w in sc.windows] if sc.windows else None,
        features=sc.features,
        efficiencies=sc.efficiencies,
        n_folds=sc.n_folds,
        address=cfg.run.scheduler,
        n_workers=cfg.run.workers,
        random_state=cfg.run.seed,
        resume_dir=run_dir / "scan",
        background_events=background,
        global_toys=sc.global_toys,
        null_toys=sc.null_toys,
        alpha=sc.alpha,
        fit_functions=sc.fit_functions,
        function_test=sc.function_test,
        min_selected=sc.min_selected,
        window_options=window_options or None,
        show_progress=show_progress,
        decorrelation=sc.decorrelation,
        decorrelation_params=dict(sc.decorrelation_params) or None,
        background_model=sc.background_model,
        efficiency_degree=sc.efficiency_degree,
        signal_width=sc.signal_width,
        resonant=sc.resonant,
    )
    metrics = result.to_dict()
    metrics["method"] = cfg.method.name
    metrics["best"] = _best_summary(result)
    metrics["n_events"] = len(events)
    captions = _write_plots(result, events, run_dir / "plots")
    metrics["plot_captions"] = captions
    metrics["runtime_s"] = time.perf_counter() - t0
    atomic_write_json(run_dir / "metrics.json", metrics)
    _write_predictions(result, events, cfg, run_dir)
    prov["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    prov["runtime_s"] = metrics["runtime_s"]
    atomic_write_json(run_dir / "provenance.json", prov)
    from .report.html import write_report

    report = write_report(run_dir)
    return _outcome(run_dir, report, metrics)


def _run_device(cfg: SearchConfig) -> dict:
    """``run.device`` and what it resolves to here (with a Dask scheduler each worker resolves it itself)."""
    from .anomaly import make_method
    from .anomaly._device import uses_torch

    if not uses_torch(make_method(cfg.method.name, **cfg.method.params)):  # HGB trees: torch is not imported
        return {"setting": cfg.run.device, "resolved": "cpu", "note": "the method trains no torch model"}
    if cfg.run.scheduler:
        return {"setting": cfg.run.device, "resolved": None, "note": "resolved on each Dask worker"}
    from .nn.device import describe_device

    try:
        return {"setting": cfg.run.device, "resolved": describe_device(cfg.run.device)}
    except ConfigError as exc:
        raise ConfigError(f"run.device: {exc}") from None


def _write_plots(result, events: pd.DataFrame, plot_dir: Path) -> dict[str, str]:
    """Plots of the scan (mjj with fits and pulls per cut, Z vs window, SIC where labels exist)."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    try:
        from .report import search_plots
    except ImportError:  # pragma: no cover - plots module ships with the package
        return {}
    return search_plots.write_scan_plots(result, events, plot_dir)


def _write_predictions(result, events: pd.DataFrame, cfg: SearchConfig, run_dir: Path) -> Path:
    """predictions.h5: observer columns plus one out-of-fold score column per window (NaN outside it)."""
    from .data.io import write_events

    from .search import ResumeStore

    keep = [c for c in (cfg.scan.resonant, *cfg.scan.features, "mj1", "mj2", "label") if c in events.columns]
    pred = events[list(dict.fromkeys(keep))].copy()
    n = len(pred)
    store = ResumeStore(run_dir / "scan")
    for w in result.windows:
        idx_scores = store.window_scores(w.window)
        if idx_scores is None:
            continue  # a window without a result has no scores
        idx, scores = idx_scores
        col = np.full(n, np.nan, dtype=np.float32)
        col[idx] = scores
        pred[f"score_{w.window.key}"] = col
    return write_events(pred, run_dir / "predictions.h5", {"description": "out-of-fold anomaly scores per window"})
