"""Evaluation of q/g taggers: ROC, AUC and background rejection with spreads over seeds, plots, a run directory.

:func:`evaluate_taggers` splits the jets once (a fixed test set), trains every tagger with ``n_seeds`` seeds
(initialisation, batch order and validation split change; the training jets do not), scores the test set and
writes a run directory::

    out/
      config.json        the resolved settings
      provenance.json    versions, data files
      scores/<tagger>_seed<k>.npz   test scores (a rerun skips finished ones: resume)
      predictions.h5     y and every score, row-aligned with the test jets (HDF5)
      metrics.json       per tagger: AUC and rejection at 50 % quark efficiency (mean, std, per seed), times
      plots/roc.png      gluon rejection vs quark efficiency
      report.html

Quark jets are the signal (label 1), as in EnergyFlow.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..._util import atomic_path, atomic_write_json, check_random_state, get_logger, package_versions
from ...errors import ConfigError, InputError
from ...stats.roc import rejection_at, roc_auc, roc_curve

__all__ = ["rejection_at", "TaggerResult", "evaluate_taggers", "write_jets_report", "plot_rejection"]

log = get_logger(__name__)


@dataclass(frozen=True)
class TaggerResult:
    """Test metrics of one tagger over seeds."""

    name: str
    auc: list[float]
    rejection_50: list[float]
    train_seconds: list[float]
    n_train: int
    n_test: int
    params: dict = field(default_factory=dict)
    train_cpu_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("auc", "rejection_50", "train_seconds", "train_cpu_seconds"):
            v = np.asarray(d[k], dtype=float)
            d[f"{k}_mean"] = float(v.mean())
            with np.errstate(invalid="ignore"):  # an infinite rejection (no background left) stays inf
                d[f"{k}_std"] = float(v.std(ddof=1)) if v.size > 1 and np.all(np.isfinite(v)) else (
                    0.0 if v.size == 1 else float("nan"))
        return d


def plot_rejection(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], path, *, title: str = "") -> Path:
    """Gluon rejection 1/FPR vs quark efficiency, one line per seed and tagger."""
    from ...report.figures import color, pyplot, save_figure

    plt = pyplot(None)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for i, (name, runs) in enumerate(curves.items()):
        c = color(i)
        for k, (fpr, tpr) in enumerate(runs):
            ok = fpr > 0
            ax.plot(tpr[ok], 1.0 / fpr[ok], color=c, lw=1.2, alpha=0.8, label=name if k == 0 else None)
    ax.axvline(0.5, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 1e3)
    ax.set_xlabel("quark efficiency (TPR)")
    ax.set_ylabel("gluon rejection 1 / FPR")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    return save_figure(fig, path, rect=(0, 0, 1, 1))


def evaluate_taggers(
    X: np.ndarray,
    y: np.ndarray,
    out_dir,
    *,
    taggers=("hgb", "efn", "pfn", "cnn"),
    n_train: int | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.2,
    n_seeds: int = 3,
    seed: int = 0,
    params: dict | None = None,
    data_files=(),
) -> dict:
    """Train and test every tagger on ``(X, y)`` with ``n_seeds`` seeds; write the run directory ``out_dir``.

    ``params`` maps a tagger name to constructor arguments (e.g. ``{"pfn": {"epochs": 10}}``). The test set is
    the first ``n_test`` (default ``test_fraction``) of a seeded permutation, the training set the next
    ``n_train`` (default: the rest). Returns the metrics dict written to ``metrics.json``.
    """
    from ...data.qg import check_jets
    from .models import TAGGERS, make_tagger

    X, y = check_jets(X, y, name="jets")
    params = dict(params or {})
    unknown = [t for t in taggers if t not in TAGGERS] + [t for t in params if t not in TAGGERS]
    if unknown:
        raise ConfigError(f"unknown tagger(s) {unknown}; known: {', '.join(TAGGERS)}")
    if n_seeds < 1:
        raise ConfigError(f"n_seeds must be >= 1, got {n_seeds}")
    n = len(y)
    perm = check_random_state(seed).permutation(n)
    n_test = int(n_test if n_test is not None else round(test_fraction * n))
    n_train = int(n_train if n_train is not None else n - n_test)
    if n_test < 2 or n_train < 2 or n_test + n_train > n:
        raise InputError(f"cannot split {n} jets into {n_train} training and {n_test} test jets")
    te, tr = perm[:n_test], perm[n_test : n_test + n_train]
    if len(np.unique(y[te])) < 2 or len(np.unique(y[tr])) < 2:
        raise InputError("training and test sets both need quark (1) and gluon (0) jets; use more jets")
    out = Path(out_dir)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    config = {"taggers": list(taggers), "n_train": n_train, "n_test": n_test, "n_seeds": n_seeds, "seed": seed,
              "params": params, "signal": "quark (label 1)"}
    cfg_file = out / "config.json"
    if cfg_file.exists() and json.loads(cfg_file.read_text()) != json.loads(json.dumps(config)):
        raise ConfigError(f"{out} holds a run with other settings; use another directory")
    atomic_write_json(cfg_file, config)
    atomic_write_json(out / "provenance.json", {"versions": package_versions(("torch", "sklearn", "numpy", "fastjet")),
                                                "data_files": list(data_files), "n_jets_available": n})
    t_start = time.perf_counter()
    results, curves, scores = {}, {}, {}
    seeds = [seed * 1000 + k for k in range(n_seeds)]
    for name in taggers:
        aucs, rejs, secs, cpus = [], [], [], []
        curves[name] = []
        for k, s in enumerate(seeds):
            f = out / "scores" / f"{name}_seed{k}.npz"
            if f.exists():
                with np.load(f) as d:
                    sc, sec = d["score"], float(d["train_seconds"])
                    cpu = float(d["train_cpu_seconds"]) if "train_cpu_seconds" in d else float("nan")
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                model = make_tagger(name, random_state=s, **params.get(name, {})).fit(X[tr], y[tr])
                sec, cpu = time.perf_counter() - t0, time.process_time() - c0
                sc = model.decision_function(X[te])
                with atomic_path(f, suffix=".npz") as tmp:
                    np.savez(tmp, score=sc, train_seconds=sec, train_cpu_seconds=cpu)
            log.info("%s seed %d: AUC %.4f (%.0f s wall, %.0f s CPU)", name, k, roc_auc(y[te], sc), sec, cpu)
            scores[f"{name}_seed{k}"] = sc
            aucs.append(roc_auc(y[te], sc))
            rejs.append(rejection_at(y[te], sc, 0.5))
            secs.append(sec)
            cpus.append(cpu)
            fpr, tpr, _ = roc_curve(y[te], sc)
            curves[name].append((fpr, tpr))
        results[name] = TaggerResult(name, aucs, rejs, secs, n_train, n_test, params.get(name, {}), cpus).to_dict()
    _write_predictions(out / "predictions.h5", y[te], te, scores)
    plot_rejection(curves, out / "plots" / "roc.png",
                   title=f"q/g: {n_train:,} training / {n_test:,} test jets, {n_seeds} seed(s)")
    metrics = {"taggers": results, "n_train": n_train, "n_test": n_test, "n_seeds": n_seeds,
               "runtime_s": time.perf_counter() - t_start,
               "plot_captions": {"roc.png": "Gluon rejection vs quark efficiency (test set), one line per seed."}}
    atomic_write_json(out / "metrics.json", metrics)
    write_jets_report(out)
    return metrics


def _write_predictions(path: Path, y: np.ndarray, index: np.ndarray, scores: dict) -> None:
    import h5py

    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            h["label"] = y
            h["jet_index"] = index
            for k, v in scores.items():
                h[f"scores/{k}"] = v


def write_jets_report(run_dir) -> Path:
    """``run_dir/report.html`` from ``metrics.json``, ``config.json`` and ``plots/``."""
    from ...report.html import figure_gallery, fmt, page_head, pre_section, write_page

    run_dir = Path(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text())
    cfg = (run_dir / "config.json").read_text() if (run_dir / "config.json").exists() else ""
    rows = []
    for name, r in m["taggers"].items():
        rows.append(f"<tr><td class='l'>{html.escape(name)}</td><td>{fmt(r['auc_mean'], 4)} ± {fmt(r['auc_std'], 4)}</td>"
                    f"<td>{fmt(r['rejection_50_mean'], 1)} ± {fmt(r['rejection_50_std'], 1)}</td>"
                    f"<td>{fmt(r['train_seconds_mean'], 0)} / {fmt(r.get('train_cpu_seconds_mean'), 0)}</td></tr>")
    parts = page_head(f"excess jet tagging: {run_dir.name}", "excess jet tagging report",
                      f"quark (signal) vs gluon · {m['n_train']:,} training jets · {m['n_test']:,} test jets · "
                      f"{m['n_seeds']} seed(s) · runtime {m['runtime_s']:.0f} s")
    parts += ["<table><tr><th class='l'>tagger</th><th>AUC (mean ± std over seeds)</th>"
              "<th>gluon rejection at 50 % quark eff.</th><th>training time per seed, wall / CPU (s)</th></tr>", *rows, "</table>"]
    parts.append(figure_gallery(sorted((run_dir / "plots").glob("*.png")), m.get("plot_captions", {})))
    parts.append(pre_section("Settings", cfg))
    return write_page(run_dir, parts)
