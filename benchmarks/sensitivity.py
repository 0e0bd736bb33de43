"""Sensitivity at the frontier (issue 22): the search's local Z next to the *oracle* Z at every cut.

The oracle knows the truth (generated data only): at a cut, ``Z_oracle`` is the local significance
of the same selected SR count over the *true* selected background count (the labelled background
events passing the cut, no uncertainty). ``Z_search / Z_oracle`` is what the background estimate
(sideband fit or efficiency model) and the sculpting of the cut cost.

Sub-commands::

    # toys with the signal of the LHCO R&D set-up, S/sqrt(B) in the 3.3-3.7 TeV SR, seeds 1..5
    python benchmarks/sensitivity.py toys --method cwola --n-background 300000 --s-over-sqrt-b 1 2 --seeds 5
    # background-only pseudo-experiments of a cheap learned scorer through the whole scan
    python benchmarks/sensitivity.py null --n-pseudo 100
    # the packaged 40k-event LHCO-like demo dataset (truth labels inside)
    python benchmarks/sensitivity.py demo
    # generated samples (a background chunk dir + a signal sample): the signal injected at S/sqrt(B) in the
    # LHCO SR with `excess.data.mix.inject_signal` (what `excess generate mix` does), seeds 1..5
    python benchmarks/sensitivity.py sample --background data/qcd_1m --signal data/signal_100k \
        --method cwola --s-over-sqrt-b 1 2 --seeds 5 --windows all --json out.json

``--method``: gaussian (the cheap CWoLa-like :class:`~excess.search.synthetic.GaussianSRvsSB`),
gaussian-full (the same with full covariances: it learns correlations), cwola, cwola-fast, cathode (the
default settings), cathode-fast (the tests' fast settings: they do not find the W' signal at 1M);
``--params '{"flow_groups": 2}'`` merges a JSON object into the method's parameters. ``sample --windows``: all (the scan's default sliding windows),
signal (the LHCO SR only) or neighbours (it and the next two); ``--write-mix DIR`` keeps each injected
sample. ``-v`` prints every window and cut.

Options: ``--decorrelation`` (auto | quantile | ratio | copula | flow | none), ``--fit-on`` (which training
events fit the transform: auto | window | sidebands | heldout), ``--decorrelation-param key=value`` (alias
``--flow-param``: the transform's options, e.g. ``epochs=10`` for the flow, ``corr_degree=1`` for the copula), ``--background-model`` (efficiency | sideband | profile |
signal_fit), ``--mass-correlation k`` (toy jet masses ~ mjj^k; default 1, the sculpting case),
``--joint-drift r`` (toy features' *correlations* drift with mjj, marginals do not: a per-feature
decorrelation leaves that; :func:`~excess.search.synthetic.toy_events`), ``null --windows 1`` (only the
LHCO window), ``--json out.json``. Everything is seeded; results print as tables on stdout.

Joint decorrelation (the figures of the README)::

    # sculpting and calibration, background only, correlations drifting with mjj, a correlation-aware scorer
    python benchmarks/sensitivity.py null --method gaussian-full --joint-drift 0.5 --mass-correlation 0 \
        --decorrelation quantile --windows 1 --n-pseudo 20 --n-background 30000
    python benchmarks/sensitivity.py null ... --decorrelation copula
    python benchmarks/sensitivity.py null ... --decorrelation flow --fit-on heldout

Residual sculpting on background only (:func:`excess.search.sculpting.sculpting_check`: the out-of-fold AUC
of a SR-vs-SB classifier on decorrelated background events, and the selected SR count over the scan's
prediction at each cut; 0.5 and 1 when nothing is left to sculpt), on a chunk folder or on toys::

    python benchmarks/sensitivity.py sculpting --background data/qcd_1m --max-events 500000 \
        --decorrelation quantile copula --efficiencies 0.1 0.03 0.01 0.003 0.001
    python benchmarks/sensitivity.py sculpting --toy 100000 --joint-drift 0.5 --mass-correlation 0 --decorrelation quantile copula

The classifier is sculpting_check's cheap one-model CWoLa unless ``--params`` or another ``--method`` is given
(``--params '{}'``: the scan's own CWoLa ensemble).

The selection of each cut is rebuilt from the scan's out-of-fold scores and per-fold thresholds,
with the fold assignment the scan documents (:func:`excess.anomaly.base.stratified_folds` with the
window's seed); the benchmark checks that it reproduces the scan's selected counts (up to float32
rounding of the stored scores at the threshold: at most 2 events or 0.2 %).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from scipy import stats as sps

from excess.search import run_scan
from excess.anomaly.base import stratified_folds
from excess.search.synthetic import GaussianSRvsSB, toy_events
from excess.stats.significance import local_significance
from excess.stats.windows import LHCO_SR, Window

FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
# the SR of the signal and its neighbours (overlapping, as in the default sliding scan)
WINDOWS = [Window.around((3100.0, 3500.0), 450.0), Window.around(LHCO_SR), Window.around((3500.0, 3900.0)),
           Window.around((3700.0, 4100.0))]
# the generated sample: its data range starts at ~2.6 TeV, so the LHCO SR is the lowest default window
WINDOWS_SAMPLE = {"signal": [Window.around(LHCO_SR)],
                  "neighbours": [Window.around(LHCO_SR), Window.around((3500.0, 3900.0)), Window.around((3700.0, 4100.0))]}


def oracle_table(result, events, n_folds: int) -> list[dict]:
    """Per window and cut: the search's Z and the oracle Z (true background count), with the counts."""
    m = events["mjj"].to_numpy(float)
    y = events["label"].to_numpy()
    rows = []
    for w in result.windows:
        if w.scores is None or not w.tests:
            continue
        in_win, _, _ = w.window.masks(m)
        idx = np.nonzero(in_win)[0]
        mw, yw, sw = m[idx], y[idx], w.scores[idx]
        _, in_sr, _ = w.window.masks(mw)
        fold = stratified_folds(in_sr, n_folds, np.random.default_rng(w.seed))
        for t in w.tests:
            if not t.thresholds:
                continue
            # the scan keeps the scores as float32: compare in float32 (the scan keeps score >= threshold)
            sel = sw.astype(np.float32) >= np.asarray(t.thresholds, dtype=np.float64).astype(np.float32)[fold]
            n_sr, n_sb = int((sel & in_sr).sum()), int((sel & ~in_sr).sum())
            tol = max(2, int(0.002 * (t.n_selected_sr + t.n_selected_sb)))
            if abs(n_sr - t.n_selected_sr) + abs(n_sb - t.n_selected_sb) > tol:
                raise RuntimeError(f"{w.window.label} eff {t.efficiency}: rebuilt selection {n_sr}/{n_sb} != scan "
                                   f"{t.n_selected_sr}/{t.n_selected_sb}: the scan's fold assignment changed")
            s_true = int((sel & in_sr & (yw == 1)).sum())
            b_true = int((sel & in_sr & (yw == 0)).sum())
            z_or = local_significance(n_sr, max(b_true, 0.5), 0.0).z if n_sr > 0 else 0.0
            row = {"window": w.window.label, "efficiency": t.efficiency, "status": t.status, "n_sr": n_sr,
                   "s_true": s_true, "b_true": b_true, "z_oracle": z_or,
                   "s_over_sqrt_b": s_true / np.sqrt(max(b_true, 1))}
            if t.ok:
                sig = t.significance
                row.update(b_hat=sig.b_hat, sigma_b=sig.sigma_b, z_search=sig.z, z_signed=sig.z_signed,
                           pull_b=(sig.b_hat - b_true) / np.sqrt(sig.sigma_b**2 + max(b_true, 1)))
                if t.background is not None:
                    row["z_slope"] = t.background.efficiency_fit.z_slope
            rows.append(row)
    return rows


def _print_rows(rows, title=""):
    if title:
        print(f"\n## {title}")
    print(f"{'window':>14} {'eff':>7} {'n_SR':>6} {'s':>5} {'b_true':>7} {'b_hat':>14} {'Z_search':>8} {'Z_oracle':>8}"
          f" {'slope':>6}")
    for r in rows:
        bh = f"{r['b_hat']:.1f}+-{r['sigma_b']:.1f}" if "b_hat" in r else r["status"][:14]
        zs = f"{r['z_search']:8.2f}" if "z_search" in r else f"{'-':>8}"
        sl = f"{r['z_slope']:6.1f}" if "z_slope" in r else f"{'-':>6}"
        print(f"{r['window']:>14} {r['efficiency']:7.4g} {r['n_sr']:6d} {r['s_true']:5d} {r['b_true']:7d} {bh:>14} {zs}"
              f" {r['z_oracle']:8.2f} {sl}")


def _method(name: str):
    if name == "gaussian":
        return GaussianSRvsSB(), None
    if name == "gaussian-full":
        return GaussianSRvsSB(covariance="full"), None
    if name == "cwola":
        return "cwola", {}
    if name == "cwola-fast":
        return "cwola", {"fast": True}
    if name == "cathode":
        return "cathode", {}
    if name == "cathode-fast":
        return "cathode", {"fast": True}
    raise SystemExit(f"unknown method {name}")


def _method_with_params(a):
    """The method of ``--method`` with ``--params`` (a JSON object) merged into its parameters."""
    method, params = _method(a.method)
    extra = getattr(a, "params", None)
    if extra:
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as err:
            raise SystemExit(f"--params is not a JSON object: {extra!r} ({err})") from None
        if not isinstance(extra, dict) or params is None:
            raise SystemExit(f"--params needs a JSON object and a named method (cwola, cathode), got {a.method!r}")
        params = {**params, **extra}
    return method, params


def _n_signal(n_background: int, target: float, seed: int) -> int:
    """Signal events to inject so that S / sqrt(B) in the LHCO SR is ``target`` (expected counts)."""
    probe = toy_events(200_000, 20_000, random_state=10_000 + seed)
    mjj, lab = probe["mjj"].to_numpy(), probe["label"].to_numpy()
    in_sr = (mjj >= LHCO_SR[0]) & (mjj < LHCO_SR[1])
    fb = in_sr[lab == 0].mean()
    fs = in_sr[lab == 1].mean()
    return int(round(target * np.sqrt(fb * n_background) / fs))


def cmd_toys(a) -> dict:
    method, params = _method_with_params(a)
    out = {"args": vars(a), "runs": []}
    for target in a.s_over_sqrt_b:
        for seed in range(1, a.seeds + 1):
            ns = _n_signal(a.n_background, target, seed)
            ev = toy_events(a.n_background, ns, mass_correlation=a.mass_correlation, joint_drift=a.joint_drift,
                            random_state=seed)
            windows = WINDOWS[1:2] if a.windows == 1 else WINDOWS[:a.windows]
            out["runs"].append(_run_one(ev, a, method, params, windows, target, seed, ns))
    _summary(out, a.s_over_sqrt_b)
    return out


SIGNAL_WINDOW = "SR 3300-3700"


def _decorrelation_params(a) -> dict | None:
    """``decorrelation_params`` of the scan from ``--fit-on`` and ``--decorrelation-param key=value``."""
    from excess.cli.common import parse_params

    params = parse_params(a.flow_param or (), option="--decorrelation-param")
    if a.fit_on != "auto":
        params["fit_on"] = a.fit_on
    return params or None


def _run_one(ev, a, method, params, windows, target, seed, ns) -> dict:
    """One scan of ``ev`` with the benchmark's options; prints one line (and the table with -v)."""
    t0, c0 = time.perf_counter(), time.process_time()
    r = run_scan(ev, method=method, method_params=params, features=FEATURES, windows=windows,
                 efficiencies=a.efficiencies, n_folds=a.n_folds, n_workers=a.workers, random_state=seed,
                 global_toys=a.global_toys, show_progress=False, decorrelation=a.decorrelation,
                 decorrelation_params=_decorrelation_params(a),
                 background_model=a.background_model, min_selected=a.min_selected,
                 efficiency_degree=a.efficiency_degree)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = oracle_table(r, ev, a.n_folds)
    best_w, best_t = r.best
    brow = next(x for x in rows if x["window"] == best_w.window.label and x["efficiency"] == best_t.efficiency)
    sig_rows = [x for x in rows if x["window"] == SIGNAL_WINDOW]
    sig_ok = [x for x in sig_rows if "z_search" in x]
    sw_best = max(sig_ok, key=lambda x: x["z_search"]) if sig_ok else None
    g = r.global_significance
    run = {"s_over_sqrt_b": target, "seed": seed, "n_signal": ns, "runtime_s": dt, "cpu_s": cpu,
           "best_window": best_w.window.label, "best_eff": best_t.efficiency, "z_best": best_t.z,
           "z_oracle_at_best": brow["z_oracle"],
           "signal_window_best": None if sw_best is None else {k: sw_best[k] for k in
                                                               ("efficiency", "z_search", "z_oracle", "s_true", "b_true", "b_hat", "sigma_b")},
           "z_oracle_max_signal_window": max((x["z_oracle"] for x in sig_rows), default=float("nan")),
           "max_sic": next((w.max_sic for w in r.windows if w.window.label == SIGNAL_WINDOW), None),
           "z_global": None if g is None else g.z_global, "rows": rows}
    if a.verbose:
        _print_rows(rows, f"S/sqrt(B) = {target}, seed {seed}, {ns} signal events")
    sw = run["signal_window_best"] or {}
    print(f"S/sqrt(B)={target} seed={seed}: best {run['best_window']} eff {run['best_eff']:g} Z={run['z_best']:.2f} "
          f"(oracle at that cut {run['z_oracle_at_best']:.2f}); signal window: Z={sw.get('z_search', float('nan')):.2f} "
          f"oracle {sw.get('z_oracle', float('nan')):.2f} at eff {sw.get('efficiency', float('nan')):g} "
          f"[s={sw.get('s_true')}, b_true={sw.get('b_true')}, b_hat={sw.get('b_hat', float('nan')):.1f}"
          f"+-{sw.get('sigma_b', float('nan')):.1f}]; oracle max {run['z_oracle_max_signal_window']:.2f}; "
          f"max SIC {run['max_sic'] if run['max_sic'] is None else round(run['max_sic'], 1)}; "
          f"global {run['z_global'] if run['z_global'] is None else round(run['z_global'], 2)}; "
          f"{dt:.0f}s wall, {cpu:.0f}s cpu", flush=True)
    return run


def _summary(out: dict, targets) -> None:
    print("\n## summary: search Z / oracle Z at the search's best cut of the signal window, and where the best window is")
    for target in targets:
        runs = [x for x in out["runs"] if x["s_over_sqrt_b"] == target]
        ratios = [x["signal_window_best"]["z_search"] / x["signal_window_best"]["z_oracle"]
                  for x in runs if x["signal_window_best"] and x["signal_window_best"]["z_oracle"] > 0]
        zs = [x["signal_window_best"]["z_search"] for x in runs if x["signal_window_best"]]
        right = sum(x["best_window"] == SIGNAL_WINDOW for x in runs)
        print(f"S/sqrt(B) = {target}: best local Z in the signal window median {np.median(zs) if zs else float('nan'):.2f} "
              f"(per seed {np.round(zs, 2).tolist()}); ratio median {np.median(ratios) if ratios else float('nan'):.2f} "
              f"(per seed {np.round(ratios, 2).tolist()}); signal window most significant in {right}/{len(runs)} seeds")


def cmd_sample(a) -> dict:
    """The generated samples: background (chunk dir or file) + the signal injected at S/sqrt(B) in the LHCO SR."""
    from excess.data.io import read_events, write_events
    from excess.data.mix import inject_signal

    cols = ["mjj", "mj1", "mj2", *[f for f in FEATURES if f not in ("mj1", "mj2")]]
    bkg = read_events(a.background, columns=cols)
    sig = read_events(a.signal, columns=cols)
    m_b, m_s = bkg["mjj"].to_numpy(), sig["mjj"].to_numpy()
    b_sr = int(((m_b >= LHCO_SR[0]) & (m_b < LHCO_SR[1])).sum())
    f_sr = float(((m_s >= LHCO_SR[0]) & (m_s < LHCO_SR[1])).mean())
    method, params = _method_with_params(a)
    windows = None if a.windows == "all" else WINDOWS_SAMPLE[a.windows]
    out = {"args": vars(a), "n_background": len(bkg), "background_sr": b_sr, "signal_sr_fraction": f_sr, "runs": []}
    print(f"background {len(bkg)} events ({b_sr} in the LHCO SR); signal SR fraction {f_sr:.3f}; method {a.method}; "
          f"windows {a.windows}", flush=True)
    for target in a.s_over_sqrt_b:
        ns = int(round(target * np.sqrt(b_sr) / f_sr))
        for seed in a.seed_list or range(1, a.seeds + 1):
            ev, info = inject_signal(bkg, sig, n_signal=ns, sr=LHCO_SR, random_state=seed)
            if a.write_mix:
                import pathlib

                path = pathlib.Path(a.write_mix) / f"mix_s{target:g}_seed{seed}.h5"
                if not path.exists():
                    write_events(ev, path, {"mix": info.to_dict()})
            run = _run_one(ev, a, method, params, windows, target, seed, ns)
            run["mix"] = info.to_dict()
            out["runs"].append(run)
            if a.json:  # keep what is done if the run is interrupted
                from excess._util import atomic_write_json

                atomic_write_json(a.json, out)
    _summary(out, a.s_over_sqrt_b)
    return out


def cmd_null(a) -> dict:
    rng = np.random.default_rng(a.seed)
    method, params = _method_with_params(a)
    windows = WINDOWS[1:2] if a.windows == 1 else WINDOWS[:a.windows]
    z_loc, p_signed, z_glob = [], [], []
    slopes = {e: [] for e in a.efficiencies}
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(a.n_pseudo):
        ev = toy_events(a.n_background, 0, mass_correlation=a.mass_correlation, joint_drift=a.joint_drift,
                        random_state=rng)
        if i < a.first:  # drawn and dropped: a run split by --first covers the same pseudo-experiments
            continue
        r = run_scan(ev, method=method, method_params=params, features=FEATURES, windows=windows,
                     efficiencies=a.efficiencies, n_folds=2, n_workers=1, random_state=i, global_toys=a.global_toys,
                     show_progress=False,
                     decorrelation=a.decorrelation, decorrelation_params=_decorrelation_params(a),
                     background_model=a.background_model, min_selected=a.min_selected,
                     efficiency_degree=a.efficiency_degree)
        for w in r.windows:
            if w.window.sr == LHCO_SR:
                t = w.tests[0]
                if t.ok:
                    p_signed.append(t.significance.p_signed)
                for t in w.tests:
                    if t.ok and t.background is not None:
                        slopes[t.efficiency].append(t.background.efficiency_fit.z_slope)
        z_loc.extend(t.z for _, t in r.tests)
        z_glob.append(r.global_significance.z_global if r.global_significance else np.nan)
        if a.verbose:
            print(f"  scan {i}: max local Z {max((t.z for _, t in r.tests), default=float('nan')):.2f}, global "
                  f"{z_glob[-1]:.2f}, slopes {[round(s[-1], 2) for s in slopes.values() if s]}", flush=True)
    ks = sps.kstest(p_signed, "uniform")
    z_glob = np.asarray(z_glob)
    slope_stats = {str(e): {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
                   for e, v in slopes.items() if v}
    out = {"args": vars(a), "ks_p": float(ks.pvalue), "n_p": len(p_signed), "max_global": float(np.nanmax(z_glob)),
           "frac_global_gt2": float(np.nanmean(z_glob > 2)), "max_local": float(np.nanmax(z_loc)),
           "z_global": z_glob.tolist(), "p_signed": p_signed, "slopes": slope_stats,
           "runtime_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    print(f"{a.n_pseudo - a.first} background-only scans ({a.n_background} events, {len(windows)} windows x "
          f"{len(a.efficiencies)} cuts, {a.method}, decorrelation={a.decorrelation}, fit_on={a.fit_on}, "
          f"background={a.background_model}, mass_correlation={a.mass_correlation}, joint_drift={a.joint_drift}):")
    print(f"  KS of the LHCO window's signed local p at eff {a.efficiencies[0]:g}: p = {ks.pvalue:.3f} (n = {len(p_signed)})")
    print(f"  global Z: max {out['max_global']:.2f}, fraction > 2: {out['frac_global_gt2']:.3f} "
          f"({a.global_toys} toys each); max local Z {out['max_local']:.2f}")
    for e, st in slope_stats.items():
        print(f"  sculpting diagnostic (efficiency slope / error) at eff {float(e):g}: mean {st['mean']:.2f}, "
              f"std {st['std']:.2f} (flat: 0, 1; n = {st['n']})")
    print(f"  {out['runtime_s']:.0f}s wall, {out['cpu_s']:.0f}s cpu", flush=True)
    return out


def cmd_demo(a) -> dict:
    from excess.data.io import read_events
    from excess.workflow import demo_dataset_path

    ev = read_events(demo_dataset_path())
    method, params = _method_with_params(a)
    out = {"args": vars(a)}
    for bm in ("sideband", "efficiency"):
        t0 = time.perf_counter()
        r = run_scan(ev, method=method, method_params=params, features=FEATURES, windows=[Window.around(LHCO_SR)],
                     efficiencies=a.efficiencies, n_folds=a.n_folds, n_workers=a.workers, random_state=1,
                     global_toys=0, show_progress=False, decorrelation=a.decorrelation, background_model=bm,
                     decorrelation_params=_decorrelation_params(a),
                     min_selected=a.min_selected, efficiency_degree=a.efficiency_degree)
        rows = oracle_table(r, ev, a.n_folds)
        _print_rows(rows, f"demo dataset, {a.method}, decorrelation {a.decorrelation}, background {bm} "
                          f"({time.perf_counter() - t0:.0f}s)")
        out[bm] = rows
    return out


def cmd_sculpting(a) -> dict:
    """Background only: what a SR-vs-SB classifier still learns after each decorrelation (``--sr``: the LHCO window)."""
    from excess.search.sculpting import sculpting_check

    if a.toy:
        ev = toy_events(a.toy, 0, mass_correlation=a.mass_correlation, joint_drift=a.joint_drift, random_state=a.seed)
        source = (f"toys: {a.toy} background events, mass_correlation {a.mass_correlation}, joint_drift "
                  f"{a.joint_drift}, seed {a.seed}")
    else:
        from excess.data.io import read_events

        ev = read_events(a.background, columns=["mjj", *FEATURES], max_events=a.max_events or None)
        if a.max_events:
            ev = ev.iloc[: a.max_events]
        source = f"{a.background}: the first {len(ev)} events"
    print(f"# python benchmarks/sensitivity.py {' '.join(sys.argv[1:])}\n# {source}", flush=True)
    out = {"args": vars(a), "source": source, "checks": [], "moments": {}}
    if a.moments:  # no classifier: per 200 GeV mjj bin, the mapped features' mean / std / tails, pair correlations
        from excess.search.sculpting import decorrelated_moments

        for kind in a.decorrelation:
            mo = decorrelated_moments(ev[list(FEATURES)], ev["mjj"].to_numpy(float), Window.around(tuple(a.sr)),
                                      decorrelation=kind, decorrelation_params=_decorrelation_params(a))
            out["moments"][kind] = mo
            e = mo["edges"]
            print(f"\n{kind}: per mjj bin {', '.join(f'{e[i]:.0f}' for i in range(len(e) - 1))} GeV (n {mo['n']}): "
                  f"mean / std / fraction above +2.5 and below -2.5 in 1e-3 (expected {1e3 * mo['expected_tail']:.2f})")
            for f in FEATURES:
                print(f"  {f:>9}: " + "  ".join(f"{mo['mean'][f][i]:+.3f}/{mo['std'][f][i]:.3f}/{1e3 * mo['upper'][f][i]:.1f}/"
                                                f"{1e3 * mo['lower'][f][i]:.1f}" for i in range(len(e) - 1)))
            for k, v in mo["corr"].items():
                print(f"  corr {k:>18}: " + " ".join(f"{x:+.3f}" for x in v))
        if a.moments_only:
            return out
    if a.params is None and a.method == "cwola":
        method, params = "cwola", None  # sculpting_check's cheap one-model CWoLa
    else:  # e.g. --params '{}': the scan's own CWoLa (its ensemble); --method cathode
        method, params = _method_with_params(a)
    for kind in a.decorrelation:
        r = sculpting_check(ev[list(FEATURES)], ev["mjj"].to_numpy(float), Window.around(tuple(a.sr)), decorrelation=kind,
                            decorrelation_params=_decorrelation_params(a), method=method, method_params=params,
                            efficiencies=a.efficiencies,
                            n_folds=a.n_folds, subsets="singles+pairs" if a.subsets else None,
                            background_model=a.background_model, min_selected=a.min_selected, random_state=a.seed)
        print("\n" + r.table(), flush=True)
        out["checks"].append(r.to_dict())
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("toys", "null", "demo", "sample", "sculpting"):
        s = sub.add_parser(name)
        if name == "sculpting":
            s.add_argument("--decorrelation", nargs="+", default=["quantile", "copula"],
                           help="one check per decorrelation (auto: the CWoLa default)")
        else:
            s.add_argument("--decorrelation", default="auto")
        s.add_argument("--background-model", default="efficiency")
        s.add_argument("--mass-correlation", type=float, default=1.0)
        s.add_argument("--joint-drift", type=float, default=0.0)
        s.add_argument("--fit-on", default="auto", choices=("auto", "window", "sidebands", "heldout"))
        s.add_argument("--decorrelation-param", "--flow-param", dest="flow_param", action="append", default=None,
                       metavar="KEY=VALUE", help="an option of the decorrelation transform (repeatable)")
        s.add_argument("--min-selected", type=int, default=20)
        s.add_argument("--efficiency-degree", type=lambda v: v if v in ("auto", "average") else int(v), default="auto")
        s.add_argument("--global-toys", type=int, default=0 if name != "null" else 50)
        s.add_argument("--json", default=None)
        s.add_argument("--method", default="cwola" if name != "null" else "gaussian")
        s.add_argument("--params", default=None, help="JSON object merged into the method's parameters")
        s.add_argument("--n-folds", type=int, default=5)
        s.add_argument("--workers", type=int, default=1)
        s.add_argument("--efficiencies", type=float, nargs="+",
                       default={"null": [0.1, 0.01, 0.001], "sculpting": [0.1, 0.01, 0.001]}.get(
                           name, [0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4]))
        s.add_argument("-v", "--verbose", action="store_true")
    t = sub.choices["toys"]
    t.add_argument("--n-background", type=int, default=300_000)
    t.add_argument("--s-over-sqrt-b", type=float, nargs="+", default=[1.0, 2.0])
    t.add_argument("--seeds", type=int, default=5)
    t.add_argument("--windows", type=int, default=4, help="4: the four toy windows; 1: the LHCO window only")
    n = sub.choices["null"]
    n.add_argument("--n-pseudo", type=int, default=100)
    n.add_argument("--n-background", type=int, default=30_000)
    n.add_argument("--seed", type=int, default=2026)
    n.add_argument("--first", type=int, default=0,
                   help="skip the first N pseudo-experiments (drawn and dropped): split a run over processes")
    n.add_argument("--windows", type=int, default=3, help="3: the first three toy windows; 1: the LHCO window only")
    sm = sub.choices["sample"]
    sm.add_argument("--background", default="data/qcd_1m",
                    help="background chunk folder (excess generate dijet); default data/qcd_1m, relative to the working directory")
    sm.add_argument("--signal", default="data/signal_100k",
                    help="signal sample (excess generate dijet); default data/signal_100k, relative to the working directory")
    sm.add_argument("--s-over-sqrt-b", type=float, nargs="+", default=[1.0, 2.0])
    sm.add_argument("--seeds", type=int, default=5)
    sm.add_argument("--seed-list", type=int, nargs="+", default=None)
    sm.add_argument("--windows", choices=("all", "signal", "neighbours"), default="all",
                    help="all: the scan's default sliding windows; signal: the LHCO SR; neighbours: it and the next two")
    sm.add_argument("--write-mix", default=None, help="folder to write each injected sample to (.h5)")
    sc = sub.choices["sculpting"]
    sc.add_argument("--background", default="data/qcd_1m", help="background events (chunk folder or file)")
    sc.add_argument("--max-events", type=int, default=500_000, help="the first N background events (0: all)")
    sc.add_argument("--toy", type=int, default=0, help="use N toy background events instead (toy_events)")
    sc.add_argument("--subsets", action="store_true", help="also the AUC of each feature and pair alone (11x the CPU)")
    sc.add_argument("--seed", type=int, default=1)
    sc.add_argument("--moments", action="store_true", help="also the mapped features' moments per mjj bin (no classifier)")
    sc.add_argument("--sr", type=float, nargs=2, default=list(LHCO_SR), metavar=("LO", "HI"),
                    help="the signal region of the checked window (GeV; default the LHCO SR)")
    sc.add_argument("--moments-only", action="store_true", help="only the moments (seconds)")
    a = p.parse_args(argv)
    out = {"toys": cmd_toys, "null": cmd_null, "demo": cmd_demo, "sample": cmd_sample,
           "sculpting": cmd_sculpting}[a.cmd](a)
    if a.json:
        from excess._util import atomic_write_json

        atomic_write_json(a.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
