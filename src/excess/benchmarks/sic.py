"""The SIC benchmark: max SIC of every anomaly method on LHCO-like data at several signal injections.

Protocol (per injection and seed; all randomness from the seed):

1. the background sample is split into *data* (50 %), *reference* (25 %, the true background of
   idealized AD and supervised training) and *test* (25 %) parts; the signal sample into an *injection*
   pool (40 %), a supervised *training* pool (20 %) and a *test* pool (40 %);
2. signal is injected into the data part so that ``S/B`` inside the SR is the requested value
   (:func:`excess.data.mix.inject_signal`); optionally ``n_noise`` N(0, 1) columns are appended;
3. every method is fitted once on the data window (supervised: reference SR background vs training
   signal; idealized: data vs reference) and scores the *test* SR events (test background + test signal);
   the SB background flow is trained once and shared by CATHODE, ANODE and R-ANODE (its time is
   reported separately as ``flow``);
4. max SIC with the cutoff ``FPR >= 1/(N_bkg,test * max_rel_err^2)``, SIC at fixed FPR, AUC and wall time.

Library first: :func:`run_sic_benchmark` returns a :class:`SICBenchmarkResult`; ``benchmarks/sic.py``
and ``excess benchmark sic`` are thin wrappers. The background-only check lives in
:mod:`excess.benchmarks.background_only`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._util import atomic_write_json, get_logger, spawn_seeds
from ..anomaly import METHODS, in_sr, make_method
from ..data.schema import STANDARD_FEATURES
from ..errors import ConfigError
from .common import flow_location, load_features, split_indices, timed, train_sb_flow

__all__ = ["SICBenchmarkConfig", "SICBenchmarkResult", "run_sic_benchmark", "summarize", "summary_markdown",
           "LHCO_S_OVER_B"]

log = get_logger(__name__)

# LHCO R&D: 1000 / 500 / 300 signal events injected in 1M background -> S/B in the 3.3-3.7 TeV SR
LHCO_S_OVER_B = (0.0064, 0.0032, 0.0019)
FLOW_METHODS = ("anode", "cathode", "ranode")


@dataclass(frozen=True)
class SICBenchmarkConfig:
    background: str
    signal: str
    sr: tuple[float, float] = (3300.0, 3700.0)
    features: tuple[str, ...] = STANDARD_FEATURES
    s_over_b: tuple[float, ...] = LHCO_S_OVER_B
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    n_noise: tuple[int, ...] = (0,)
    max_background: int | None = None
    max_rel_err: float = 0.2
    fast: bool = False
    flow_params: dict | None = None
    method_params: dict = field(default_factory=dict)
    fpr_points: tuple[float, ...] = (1e-2, 1e-3)
    flow_cache: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SICBenchmarkResult:
    config: SICBenchmarkConfig
    rows: list[dict]
    summary: list[dict]
    sizes: dict

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "sizes": self.sizes, "summary": self.summary, "rows": self.rows}

    def markdown(self) -> str:
        return summary_markdown(self.summary, self.sizes)


def _run_config(bkg, sig, cfg: SICBenchmarkConfig, s_over_b: float, seed: int, n_noise: int, tmpdir: Path) -> list[dict]:
    from ..anomaly.density import FAST_FLOW
    from ..data.mix import inject_signal
    from ..stats.roc import roc_auc, sic_at_fpr, sic_curve

    rng = np.random.default_rng(seed)
    s_split, s_mix, s_noise, s_flow, s_methods = spawn_seeds(rng, 5)
    r = np.random.default_rng(s_split)
    b_data, b_ref, b_test = split_indices(len(bkg), (0.5, 0.25, 0.25), r)
    g_inj, g_sup, g_test = split_indices(len(sig), (0.4, 0.2, 0.4), r)
    data, info = inject_signal(bkg.iloc[b_data], sig.iloc[g_inj], s_over_b=s_over_b, sr=cfg.sr, random_state=s_mix)
    feats = list(cfg.features)
    noise_rng = np.random.default_rng(s_noise)

    def arrays(df):
        X = df[feats].to_numpy(dtype=np.float64)
        if n_noise:
            X = np.hstack([X, noise_rng.normal(size=(X.shape[0], n_noise))])
        return X, df["mjj"].to_numpy(dtype=np.float64)

    X, m = arrays(data)
    y = data["label"].to_numpy()
    X_ref, m_ref = arrays(bkg.iloc[b_ref])
    X_sup, m_sup = arrays(sig.iloc[g_sup])
    Xtb, mtb = arrays(bkg.iloc[b_test])
    Xts, mts = arrays(sig.iloc[g_test])
    tb, ts = in_sr(mtb, cfg.sr), in_sr(mts, cfg.sr)
    X_test = np.concatenate([Xtb[tb], Xts[ts]])
    m_test = np.concatenate([mtb[tb], mts[ts]])
    y_test = np.r_[np.zeros(tb.sum(), int), np.ones(ts.sum(), int)]
    base = {"s_over_b": s_over_b, "seed": seed, "n_noise": n_noise, "n_data": len(data),
            "n_sig_sr_data": info.n_signal_sr, "n_bkg_sr_data": info.n_background_sr,
            "s_over_sqrt_b": info.s_over_sqrt_b_sr, "n_bkg_test": int(tb.sum()), "n_sig_test": int(ts.sum())}
    rows = []
    flow_path = None
    flow_seconds = 0.0
    if any(mm in FLOW_METHODS for mm in cfg.methods):
        fp = cfg.flow_params if cfg.flow_params is not None else (FAST_FLOW if cfg.fast else None)
        flow_path = flow_location(cfg, fp, s_over_b, seed, n_noise, len(bkg), tmpdir)
        flow_seconds, epochs = train_sb_flow(flow_path, fp, s_flow, X, m, cfg.sr)
        rows.append({**base, "method": "flow", "seconds": flow_seconds, "epochs": epochs})
    method_seeds = spawn_seeds(np.random.default_rng(s_methods), len(cfg.methods))
    for name, ms in zip(cfg.methods, method_seeds):
        params = dict(cfg.method_params.get(name, {}))
        if name in FLOW_METHODS:
            params.setdefault("background_flow", str(flow_path))
        est = make_method(name, fast=cfg.fast, random_state=ms, **params)
        if name == "supervised":
            sr_ref = in_sr(m_ref, cfg.sr)
            sr_sup = in_sr(m_sup, cfg.sr)
            Xf = np.concatenate([X_ref[sr_ref], X_sup[sr_sup]])
            mf = np.concatenate([m_ref[sr_ref], m_sup[sr_sup]])
            yf = np.r_[np.zeros(sr_ref.sum(), int), np.ones(sr_sup.sum(), int)]
            fit = lambda: est.fit(Xf, mf, sr=cfg.sr, y=yf)  # noqa: E731
        elif name == "idealized":
            fit = lambda: est.fit(X, m, sr=cfg.sr, X_background=X_ref, m_background=m_ref)  # noqa: E731
        else:
            fit = lambda: est.fit(X, m, sr=cfg.sr)  # noqa: E731
        _, t_fit = timed(fit)
        s, t_score = timed(lambda: est.score_samples(X_test, m_test))
        curve = sic_curve(y_test, s, max_rel_err=cfg.max_rel_err)
        row = {**base, "method": name, "max_sic": curve.max_sic, "auc": roc_auc(y_test, s),
               "fpr_min": curve.fpr_min, "seconds": t_fit + t_score,
               "seconds_incl_flow": t_fit + t_score + (flow_seconds if name in FLOW_METHODS else 0.0)}
        for f in cfg.fpr_points:
            row[f"sic_at_fpr_{f:g}"] = float(sic_at_fpr(y_test, s, f)) if f >= curve.fpr_min else float("nan")
        if name == "ranode":
            row.update({"w_hat": est.signal_fraction_, "w_err": est.signal_fraction_err_,
                        "w_true": info.n_signal_sr / (info.n_signal_sr + info.n_background_sr)})
        rows.append(row)
        log.info("%s S/B=%.4f seed=%d noise=%d: max SIC %.2f (%.0fs)", name, s_over_b, seed, n_noise, curve.max_sic,
                 row["seconds"])
    return rows


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean, std, min, max of max SIC (and mean wall time) per (method, S/B, n_noise)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["s_over_b"], r["n_noise"]), []).append(r)
    out = []
    for (method, sob, nn), rs in groups.items():
        entry = {"method": method, "s_over_b": sob, "n_noise": nn, "n_seeds": len(rs),
                 "seconds_mean": float(np.mean([r["seconds"] for r in rs]))}
        if method != "flow":
            v = np.array([r["max_sic"] for r in rs], dtype=float)
            entry.update({"max_sic_mean": float(np.mean(v)), "max_sic_std": float(np.std(v, ddof=1)) if v.size > 1 else 0.0,
                          "max_sic_min": float(np.min(v)), "max_sic_max": float(np.max(v)),
                          "auc_mean": float(np.mean([r["auc"] for r in rs])),
                          "seconds_incl_flow_mean": float(np.mean([r["seconds_incl_flow"] for r in rs])),
                          "n_sig_sr_data": float(np.mean([r["n_sig_sr_data"] for r in rs])),
                          "s_over_sqrt_b": float(np.mean([r["s_over_sqrt_b"] for r in rs]))})
            if method == "ranode":
                entry["w_hat_mean"] = float(np.mean([r["w_hat"] for r in rs]))
                entry["w_err_mean"] = float(np.mean([r["w_err"] for r in rs]))
                entry["w_true_mean"] = float(np.mean([r["w_true"] for r in rs]))
        out.append(entry)
    order = {m: i for i, m in enumerate(("flow", *METHODS))}
    return sorted(out, key=lambda e: (e["n_noise"], -e["s_over_b"], order.get(e["method"], 99)))


def summary_markdown(summary: Sequence[dict], sizes: dict | None = None) -> str:
    lines = []
    if sizes:
        lines.append("Data: " + ", ".join(f"{k} = {v}" for k, v in sizes.items()) + "\n")
    lines.append("| noise cols | S/B in SR | S/sqrt(B) | method | max SIC mean ± std [min, max] | AUC | wall s (incl. flow) |")
    lines.append("|---|---|---|---|---|---|---|")
    for e in summary:
        if e["method"] == "flow":
            lines.append(f"| {e['n_noise']} | {100 * e['s_over_b']:.2f} % | | SB flow (shared) | | | {e['seconds_mean']:.0f} |")
            continue
        extra = ""
        if e["method"] == "ranode":
            extra = f" (w = {e['w_hat_mean']:.4f} ± {e['w_err_mean']:.4f}, true {e['w_true_mean']:.4f})"
        lines.append(
            f"| {e['n_noise']} | {100 * e['s_over_b']:.2f} % | {e['s_over_sqrt_b']:.2f} | {e['method']}{extra} | "
            f"{e['max_sic_mean']:.2f} ± {e['max_sic_std']:.2f} [{e['max_sic_min']:.2f}, {e['max_sic_max']:.2f}] | "
            f"{e['auc_mean']:.3f} | {e['seconds_mean']:.0f} ({e['seconds_incl_flow_mean']:.0f}) |"
        )
    return "\n".join(lines) + "\n"


def run_sic_benchmark(cfg: SICBenchmarkConfig, out_dir: str | os.PathLike | None = None) -> SICBenchmarkResult:
    """Run the benchmark; with ``out_dir`` write ``sic_benchmark.json``, ``.md`` and plots (resumable per config)."""
    from .._util import progress

    unknown = set(cfg.methods) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    bkg = load_features(cfg.background, cfg.features, cfg.max_background)
    if cfg.max_background is not None:
        bkg = bkg.iloc[: cfg.max_background]
    sig = load_features(cfg.signal, cfg.features)
    sizes = {"n_background": len(bkg), "n_signal_available": len(sig),
             "n_background_sr": int(in_sr(bkg["mjj"].to_numpy(), cfg.sr).sum())}
    out = Path(out_dir) if out_dir is not None else None
    partial_file = out / "rows.jsonl" if out is not None else None
    done: dict[tuple, list[dict]] = {}
    if partial_file is not None and partial_file.exists():
        for line in partial_file.read_text().splitlines():
            rec = json.loads(line)
            done[tuple(rec["key"])] = rec["rows"]
    rows: list[dict] = []
    # seed-outer order: a partial (resumable) run already covers every injection
    configs = [(sob, seed, nn) for nn in cfg.n_noise for seed in cfg.seeds for sob in cfg.s_over_b]
    with tempfile.TemporaryDirectory(prefix="excess-sic-") as tmp:
        for sob, seed, nn in progress(configs, desc="sic benchmark"):
            key = (sob, seed, nn, len(bkg), cfg.fast)
            if key in done:
                rows += done[key]
                continue
            rs = _run_config(bkg, sig, cfg, sob, seed, nn, Path(tmp))
            rows += rs
            if partial_file is not None:
                partial_file.parent.mkdir(parents=True, exist_ok=True)
                with open(partial_file, "a") as fh:
                    fh.write(json.dumps({"key": list(key), "rows": rs}, default=float) + "\n")
    result = SICBenchmarkResult(cfg, rows, summarize(rows), sizes)
    if out is not None:
        atomic_write_json(out / "sic_benchmark.json", result.to_dict())
        (out / "sic_benchmark.md").write_text(result.markdown())
        from ..report.sic import plot_max_sic_summary

        for nn in cfg.n_noise:
            table = [e for e in result.summary if e["n_noise"] == nn and e["method"] != "flow"]
            plot_max_sic_summary(
                table, out / f"max_sic_noise{nn}.png",
                note=(f"SIC on test SR events (N_bkg,test ~ {table[0]['n_seeds'] and rows[0]['n_bkg_test']}); "
                      f"cutoff FPR >= 1/(N_bkg,test x {cfg.max_rel_err:g}^2); background {len(bkg)} events"),
                title=f"max SIC vs injection ({len(cfg.features)} features + {nn} noise)",
            )
    return result
