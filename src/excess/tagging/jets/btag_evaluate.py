"""Evaluation of the b-taggers: light and c rejection at fixed b efficiency over seeds, in pT bins, plots, report.

:func:`evaluate_btaggers` splits the jets once (a fixed test set), trains every tagger with ``n_seeds`` seeds,
computes ``D_b`` (:func:`~.btag.b_discriminant`, ``f_c``) on the test jets and writes a run directory::

    out/
      config.json, provenance.json
      scores/<tagger>_seed<k>.npz   test probabilities, training wall and CPU time (a rerun skips them: resume)
      predictions.h5                label, jet pT/eta and every D_b, row-aligned with the test jets
      metrics.json                  per tagger: light / c rejection at 70, 77, 85 % b efficiency (mean, std,
                                    per seed), b-vs-light AUC, training time; per pT bin at the inclusive 77 % cut
      plots/light_rejection.png, c_rejection.png, discriminant.png, rejection_vs_pt.png
      report.html

Working points are cuts on ``D_b`` giving the stated b efficiency on the test b jets (inclusive in pT); the pT
bins use the inclusive 77 % cut, as ATLAS's fixed-cut working points. Rejection is ``1 / efficiency`` of the
light (c) jets above the cut; a rejection with fewer than ~10 background jets passing is statistically poor (the
number passing is recorded).
"""

from __future__ import annotations

import html
import json
import time
import warnings
from pathlib import Path

import numpy as np

from ..._util import atomic_path, atomic_write_json, check_random_state, get_logger, package_versions
from ...data.btag import FLAVOURS, check_btag_inputs
from ...errors import ConfigError, InputError
from ...stats.roc import roc_auc, roc_curve

__all__ = ["WORKING_POINTS", "rejection_table", "evaluate_btaggers", "write_btag_report"]

log = get_logger(__name__)

WORKING_POINTS = (0.70, 0.77, 0.85)
B, C, L = FLAVOURS["b"], FLAVOURS["c"], FLAVOURS["light"]


def _cut(d_b: np.ndarray, eff: float) -> float:
    return float(np.quantile(d_b, 1.0 - eff))


def rejection_table(y, d_b, working_points=WORKING_POINTS) -> dict:
    """Light and c rejection (``1 / mistag efficiency``) at the cuts giving the ``working_points`` b efficiencies.

    Returns ``{"light_rej_77": ..., "c_rej_77": ..., "cut_77": ..., "n_light_pass_77": ...}`` per point.
    """
    y, d_b = np.asarray(y), np.asarray(d_b, dtype=float)
    if y.shape != d_b.shape:
        raise InputError(f"labels {y.shape} and discriminant {d_b.shape} differ in shape")
    for lab, nm in ((B, "b"), (C, "c"), (L, "light")):
        if not np.any(y == lab):
            raise InputError(f"rejection needs {nm} jets in the test set; use more jets")
    out = {}
    for wp in working_points:
        k = int(round(100 * wp))
        cut = _cut(d_b[y == B], wp)
        for lab, nm in ((L, "light"), (C, "c")):
            npass = int((d_b[y == lab] > cut).sum())
            out[f"{nm}_rej_{k}"] = float(np.sum(y == lab) / npass) if npass else float("inf")
            out[f"n_{nm}_pass_{k}"] = npass
        out[f"cut_{k}"] = cut
    return out


def _pt_bins(y, d_b, pt, cut, edges) -> list[dict]:
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (pt >= lo) & (pt < hi)
        row = {"pt_lo": float(lo), "pt_hi": float(hi)}
        for lab, nm in ((B, "b"), (C, "c"), (L, "light")):
            sel = m & (y == lab)
            row[f"n_{nm}"] = int(sel.sum())
            eff = float((d_b[sel] > cut).mean()) if sel.any() else float("nan")
            row[f"{nm}_eff"] = eff
            if nm != "b":
                row[f"{nm}_rej"] = (1.0 / eff if eff > 0 else float("inf")) if sel.any() else float("nan")
        rows.append(row)
    return rows


def _bin_stats(bins: list[list[dict]]) -> tuple[list[dict], list[dict]]:
    """Mean (counts: first seed) and std over seeds of the per-bin rows."""
    mean = [{key: (float(np.nanmean([b[i][key] for b in bins])) if isinstance(v, float) else v)
             for key, v in bins[0][i].items()} for i in range(len(bins[0]))]
    std = [{key: float(np.std([b[i][key] for b in bins], ddof=1)) if len(bins) > 1 else 0.0
            for key in ("light_rej", "c_rej", "b_eff")} for i in range(len(bins[0]))]
    return mean, std


def _stats(v) -> tuple[float, float]:
    v = np.asarray(v, dtype=float)
    if not np.all(np.isfinite(v)):
        return float(np.mean(v)), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def evaluate_btaggers(
    X: np.ndarray,
    y: np.ndarray,
    jet_pt: np.ndarray,
    out_dir,
    *,
    taggers=("ip3d", "deepsets", "rnnip"),
    n_train: int | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.25,
    n_seeds: int = 3,
    seed: int = 0,
    f_c: float = 0.07,
    pt_bins=(20.0, 40.0, 70.0, 120.0, 300.0),
    params: dict | None = None,
    data_files=(),
    jet_eta: np.ndarray | None = None,
) -> dict:
    """Train and test every b-tagger with ``n_seeds`` seeds; write the run directory ``out_dir``; return metrics."""
    from .btag import BTAGGERS, b_discriminant, make_btagger

    X, y = check_btag_inputs(X, y, name="jets")
    jet_pt = np.asarray(jet_pt, dtype=float)
    if jet_pt.shape != y.shape or not np.all(np.isfinite(jet_pt)):
        raise InputError(f"jet_pt must be finite with shape {y.shape}, got {jet_pt.shape}")
    params = dict(params or {})
    unknown = [t for t in taggers if t not in BTAGGERS] + [t for t in params if t not in BTAGGERS]
    if unknown or not taggers:
        raise ConfigError(f"unknown or no b-tagger(s) {unknown}; known: {', '.join(BTAGGERS)}")
    if n_seeds < 1:
        raise ConfigError(f"n_seeds must be >= 1, got {n_seeds}")
    if not 0 <= f_c <= 1:
        raise ConfigError(f"f_c must be in [0, 1], got {f_c}")
    edges = np.asarray(pt_bins, dtype=float)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ConfigError(f"pt_bins must be increasing edges, got {pt_bins}")
    n = len(y)
    perm = check_random_state(seed).permutation(n)
    n_test = int(n_test if n_test is not None else round(test_fraction * n))
    n_train = int(n_train if n_train is not None else n - n_test)
    if n_test < 3 or n_train < 3 or n_test + n_train > n:
        raise InputError(f"cannot split {n} jets into {n_train} training and {n_test} test jets")
    te, tr = perm[:n_test], perm[n_test: n_test + n_train]
    for part, idx in (("training", tr), ("test", te)):
        missing = [k for k, v in FLAVOURS.items() if not np.any(y[idx] == v)]
        if missing:
            raise InputError(f"the {part} set has no {missing} jets; use more jets")
    out = Path(out_dir)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    config = {"taggers": list(taggers), "n_train": n_train, "n_test": n_test, "n_seeds": n_seeds, "seed": seed,
              "f_c": f_c, "pt_bins": edges.tolist(), "params": params, "signal": "b jets (label 5)",
              "working_points": list(WORKING_POINTS)}
    cfg_file = out / "config.json"
    if cfg_file.exists() and json.loads(cfg_file.read_text()) != json.loads(json.dumps(config)):
        raise ConfigError(f"{out} holds a run with other settings; use another directory")
    atomic_write_json(cfg_file, config)
    atomic_write_json(out / "provenance.json", {"versions": package_versions(("torch", "sklearn", "numpy", "pythia8mc")),
                                                "data_files": list(data_files), "n_jets_available": n})
    yt, ptt = y[te], jet_pt[te]
    t_start = time.perf_counter()
    results, curves, dists, scores = {}, {}, {}, {}
    seeds = [seed * 1000 + k for k in range(n_seeds)]
    for name in taggers:
        per_seed, secs, cpus, aucs, bins = [], [], [], [], []
        curves[name] = []
        for k, s in enumerate(seeds):
            f = out / "scores" / f"{name}_seed{k}.npz"
            if f.exists():
                with np.load(f) as d:
                    proba, sec, cpu = d["proba"], float(d["train_seconds"]), float(d["train_cpu_seconds"])
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                model = make_btagger(name, random_state=s, **params.get(name, {})).fit(X[tr], y[tr])
                sec, cpu = time.perf_counter() - t0, time.process_time() - c0
                proba = model.predict_proba(X[te])
                with atomic_path(f, suffix=".npz") as tmp:
                    np.savez(tmp, proba=proba, train_seconds=sec, train_cpu_seconds=cpu)
            d_b = b_discriminant(proba, f_c)
            scores[f"{name}_seed{k}"] = d_b
            tab = rejection_table(yt, d_b)
            per_seed.append(tab)
            secs.append(sec)
            cpus.append(cpu)
            bl = yt != C
            aucs.append(roc_auc((yt[bl] == B).astype(int), d_b[bl]))
            bins.append(_pt_bins(yt, d_b, ptt, tab["cut_77"], edges))
            curves[name].append({nm: roc_curve((yt[yt != other] == B).astype(int), d_b[yt != other])
                                 for nm, other in (("light", C), ("c", L))})
            if k == 0:
                dists[name] = d_b
            log.info("%s seed %d: light rej %.1f, c rej %.2f at 77 %% (%.0f s)", name, k, tab["light_rej_77"],
                     tab["c_rej_77"], sec)
        r = {"seeds": per_seed, "auc_b_vs_light": aucs, "train_seconds": secs, "train_cpu_seconds": cpus,
             "params": params.get(name, {}), "pt_bins_77": bins}
        for key in per_seed[0]:
            if key.startswith(("light_rej", "c_rej")):
                r[f"{key}_mean"], r[f"{key}_std"] = _stats([t[key] for t in per_seed])
        r["auc_b_vs_light_mean"], r["auc_b_vs_light_std"] = _stats(aucs)
        r["train_seconds_mean"] = float(np.mean(secs))
        r["train_cpu_seconds_mean"] = float(np.mean(cpus))
        with warnings.catch_warnings():  # empty pT bins give NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            r["pt_bins_77_mean"], r["pt_bins_77_std"] = _bin_stats(bins)
        results[name] = r
    _write_predictions(out / "predictions.h5", yt, te, ptt, None if jet_eta is None else np.asarray(jet_eta)[te],
                       scores)
    counts = {k: int((yt == v).sum()) for k, v in FLAVOURS.items()}
    _plots(out / "plots", curves, dists, yt, results, edges, n_train, counts)
    metrics = {"taggers": results, "n_train": n_train, "n_test": n_test, "n_seeds": n_seeds, "f_c": f_c,
               "test_counts": counts, "train_counts": {k: int((y[tr] == v).sum()) for k, v in FLAVOURS.items()},
               "runtime_s": time.perf_counter() - t_start,
               "plot_captions": {
                   "light_rejection.png": "Light-jet rejection vs b efficiency (test set), one line per seed.",
                   "c_rejection.png": "c-jet rejection vs b efficiency (test set), one line per seed.",
                   "discriminant.png": f"D_b (f_c = {f_c}) per truth flavour, first seed of each tagger.",
                   "rejection_vs_pt.png": "Light and c rejection per jet-pT bin at the inclusive 77 % cut "
                                          "(mean and std over seeds)."}}
    atomic_write_json(out / "metrics.json", metrics)
    write_btag_report(out)
    return metrics


def _write_predictions(path: Path, y, index, pt, eta, scores: dict) -> None:
    import h5py

    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            h["label"] = y
            h["jet_index"] = index
            h["jet_pt"] = pt
            if eta is not None:
                h["jet_eta"] = eta
            for k, v in scores.items():
                h[f"d_b/{k}"] = v


def _plots(pdir: Path, curves, dists, yt, results, edges, n_train, counts) -> None:
    from ...report.figures import color, pyplot, save_figure

    plt = pyplot(None)
    title = f"{n_train:,} training jets; test: {counts['b']:,} b, {counts['c']:,} c, {counts['light']:,} light"
    for flav, ylim in (("light", (1, 1e4)), ("c", (1, 100))):
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for i, (name, runs) in enumerate(curves.items()):
            for k, run in enumerate(runs):
                fpr, tpr, _ = run[flav]
                ok = (fpr > 0) & (tpr > 0.4)
                ax.plot(tpr[ok], 1.0 / fpr[ok], color=color(i), lw=1.2, alpha=0.8, label=name if k == 0 else None)
        for wp in WORKING_POINTS:
            ax.axvline(wp, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlim(0.4, 1)
        ax.set_ylim(*ylim)
        ax.set_xlabel("b-jet efficiency")
        ax.set_ylabel(f"{flav}-jet rejection")
        ax.set_title(title, fontsize=8)
        ax.legend(frameon=False, fontsize=8)
        save_figure(fig, pdir / f"{flav}_rejection.png", rect=(0, 0, 1, 1))
    fig, axes = plt.subplots(1, len(dists), figsize=(4.2 * len(dists), 3.6), squeeze=False)
    for ax, (name, d_b) in zip(axes[0], dists.items()):
        lo, hi = np.quantile(d_b, [0.001, 0.999])
        bins = np.linspace(lo, hi, 50)
        for j, (nm, lab) in enumerate((("light", L), ("c", C), ("b", B))):
            ax.hist(d_b[yt == lab], bins=bins, histtype="step", density=True, color=color(j), label=nm)
        ax.set_yscale("log")
        ax.set_xlabel(f"D_b ({name})")
        ax.legend(frameon=False, fontsize=8)
    save_figure(fig, pdir / "discriminant.png", rect=(0, 0, 1, 1))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    centres = 0.5 * (edges[:-1] + edges[1:])
    for i, (name, r) in enumerate(results.items()):
        for ax, key in zip(axes, ("light_rej", "c_rej")):
            m = [b[key] for b in r["pt_bins_77_mean"]]
            s = [b[key] for b in r["pt_bins_77_std"]]
            ax.errorbar(centres + (i - 1) * 0.02 * (edges[-1] - edges[0]), m, yerr=s, xerr=None, fmt="o-",
                        color=color(i), label=name, ms=4)
    for ax, key in zip(axes, ("light", "c")):
        ax.set_xlabel("jet pT [GeV]")
        ax.set_ylabel(f"{key} rejection at the 77 % cut")
        ax.set_yscale("log")
        ax.legend(frameon=False, fontsize=8)
    save_figure(fig, pdir / "rejection_vs_pt.png", rect=(0, 0, 1, 1))


def write_btag_report(run_dir) -> Path:
    """``run_dir/report.html`` from ``metrics.json``, ``config.json`` and ``plots/``."""
    from ...report.html import figure_gallery, fmt, page_head, pre_section, write_page

    run_dir = Path(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text())
    cfg = (run_dir / "config.json").read_text() if (run_dir / "config.json").exists() else ""
    head = "".join(f"<th>light rej. {int(100 * wp)} %</th><th>c rej. {int(100 * wp)} %</th>" for wp in WORKING_POINTS)
    rows = []
    for name, r in m["taggers"].items():
        cells = "".join(f"<td>{fmt(r[f'light_rej_{int(100 * wp)}_mean'], 1)} ± {fmt(r[f'light_rej_{int(100 * wp)}_std'], 1)}</td>"
                        f"<td>{fmt(r[f'c_rej_{int(100 * wp)}_mean'], 2)} ± {fmt(r[f'c_rej_{int(100 * wp)}_std'], 2)}</td>"
                        for wp in WORKING_POINTS)
        rows.append(f"<tr><td class='l'>{html.escape(name)}</td>{cells}<td>{fmt(r['auc_b_vs_light_mean'], 4)}</td>"
                    f"<td>{fmt(r['train_seconds_mean'], 0)}</td></tr>")
    bins = []
    for name, r in m["taggers"].items():
        for b, s in zip(r["pt_bins_77_mean"], r["pt_bins_77_std"]):
            bins.append(f"<tr><td class='l'>{html.escape(name)}</td><td>{b['pt_lo']:.0f}-{b['pt_hi']:.0f}</td>"
                        f"<td>{fmt(b['b_eff'], 3)}</td><td>{fmt(b['light_rej'], 1)} ± {fmt(s['light_rej'], 1)}</td>"
                        f"<td>{fmt(b['c_rej'], 2)} ± {fmt(s['c_rej'], 2)}</td><td>{b['n_b']}/{b['n_c']}/{b['n_light']}</td></tr>")
    tc = m["test_counts"]
    parts = page_head(f"excess b-tagging: {run_dir.name}", "excess b-tagging report",
                      f"b (signal) vs c and light · D_b with f_c = {m['f_c']} · {m['n_train']:,} training jets · "
                      f"test {tc['b']:,} b / {tc['c']:,} c / {tc['light']:,} light · {m['n_seeds']} seed(s) · "
                      f"runtime {m['runtime_s']:.0f} s")
    parts += [f"<table><tr><th class='l'>tagger</th>{head}<th>AUC b vs light</th><th>training s per seed</th></tr>",
              *rows, "</table>", "<h2>pT bins at the inclusive 77 % cut (mean ± std over seeds)</h2>",
              "<table><tr><th class='l'>tagger</th><th>jet pT [GeV]</th><th>b eff.</th><th>light rej.</th>"
              "<th>c rej.</th><th>test jets b/c/light</th></tr>", *bins, "</table>"]
    parts.append(figure_gallery(sorted((run_dir / "plots").glob("*.png")), m.get("plot_captions", {})))
    parts.append(pre_section("Settings", cfg))
    return write_page(run_dir, parts)
