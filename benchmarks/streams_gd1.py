"""Stellar streams on a GD-1-like mock patch: purity/completeness, a stream-free control, wall time.

    PYTHONPATH=src nice -n 10 python benchmarks/streams_gd1.py --out /tmp/streams_bench

1. Mock patches (seeded): one with the GD-1-like gala stream, one without (another seed, same background model).
2. GaiaCWoLa protocol: one SR = the stream's median mu_lam +- 1 sigma, sidebands to +- 3 sigma, 5-fold scores;
   purity and completeness of the top-100 and top-250 SR stars (published on real GD-1: 56 % / 51 % top-250
   pooled over 21 patches; SkyCURTAINs 75 % purity at 38 % completeness). A mock is not real data.
3. Via Machinae scan: sliding windows over ``--scan-range``, top-100 per window, Hough lines, protoclusters; the
   same scan on the stream-free mock must give no line above the threshold.
4. Wall time of each step (one process; the machine's 2 cores are shared).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from excess._util import atomic_write_json, set_quiet, to_jsonable
from excess.astro.streams.io import read_gaia, read_metadata, write_gaia
from excess.astro.streams.mock import MockConfig, make_mock_patch
from excess.astro.streams.run import evaluate_run, run_stream_search
from excess.astro.streams.search import StreamSearchConfig


def _mock(path: Path, cfg: MockConfig) -> dict:
    if not path.exists():
        p = make_mock_patch(cfg)
        write_gaia(p.stars, path, metadata=p.to_dict())
    return read_metadata(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/streams_bench")
    ap.add_argument("--density", type=float, default=3500.0, help="background stars per deg^2 at G < 20.2")
    ap.add_argument("--stream-fraction", type=float, default=0.0094, help="stream share of the fiducial SR")
    ap.add_argument("--stream-particles", type=int, default=2)
    ap.add_argument("--method", default="cwola")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scan-range", nargs=2, type=float, default=None, help="SR centres (default: 5-95 percentile)")
    ap.add_argument("--sr-width", type=float, default=2.0)
    ap.add_argument("--sb-width", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--threshold", type=float, default=6.0)
    ap.add_argument("--skip-scan", action="store_true")
    ap.add_argument("--skip-null", action="store_true")
    a = ap.parse_args(argv)
    set_quiet(True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"args": vars(a), "note": "a mock is not real data"}
    t = time.perf_counter()
    meta = _mock(out / "mock_stream.parquet", MockConfig(density=a.density, stream_fraction=a.stream_fraction,
                                                          stream_particles=a.stream_particles, seed=a.seed))
    results["mock_stream"] = {**meta, "wall_s": time.perf_counter() - t}
    print(f"mock with stream: {meta['n_stars']} stars, {meta['n_stream']} stream stars "
          f"({meta['n_stream_sr']} in the fiducial SR with {meta['n_background_sr']} background)", flush=True)

    # 2. GaiaCWoLa protocol
    lo, hi = meta["fiducial_sr"]
    sd = (hi - lo) / 2
    cfg = StreamSearchConfig(method=a.method, windows=[(lo, hi)], sb_width=2 * sd, top_n=250, seed=a.seed,
                             threshold=a.threshold)
    t = time.perf_counter()
    run_stream_search(out / "mock_stream.parquet", out / "gaiacwola", cfg)
    wall = time.perf_counter() - t
    ev = evaluate_run(out / "gaiacwola")
    b = ev["best_window"]
    results["gaiacwola"] = {"sr": [lo, hi], "sb_width": 2 * sd, "n_stream_sr": b["n_stream_sr"], "n_sr": b["n_sr"],
                            "top100": b.get("top100"), "top250": b.get("top250"), "wall_s": wall}
    for k in ("top100", "top250"):
        x = b.get(k) or {}
        print(f"GaiaCWoLa protocol {k}: purity {x.get('purity', float('nan')):.1%}, completeness "
              f"{x.get('completeness', float('nan')):.1%} ({x.get('n_stream_selected')} of {x.get('n_stream')} "
              f"SR stream stars; {b['n_sr']} SR stars) [{wall:.0f} s]", flush=True)

    from excess.astro.streams.search import prepare_patch, sliding_windows

    sel, _ = prepare_patch(read_gaia(out / "mock_stream.parquet"), meta["center"])
    results["n_windows_full_scan"] = len(sliding_windows(sel["mu_lam"].to_numpy(), StreamSearchConfig(
        sr_width=a.sr_width, step=a.step)))
    results["n_stars_after_cuts"] = len(sel)
    print(f"{len(sel)} stars after cuts; the default scan (5th-95th percentile of mu_lam) has "
          f"{results['n_windows_full_scan']} windows", flush=True)
    del sel
    if not a.skip_scan:
        scfg = StreamSearchConfig(method=a.method, sr_width=a.sr_width, step=a.step, sb_width=a.sb_width,
                                  scan_range=tuple(a.scan_range) if a.scan_range else None, seed=a.seed,
                                  threshold=a.threshold)
        t = time.perf_counter()
        run = run_stream_search(out / "mock_stream.parquet", out / "scan_stream", scfg)
        wall = time.perf_counter() - t
        ev = evaluate_run(out / "scan_stream")
        d = json.loads((out / "scan_stream" / "search.json").read_text())
        results["scan_stream"] = {"n_windows": len(d["windows"]), "wall_s": wall,
                                  "max_significance": run.best_significance, "n_candidates": run.n_candidates,
                                  "protoclusters": ev["protoclusters"], "best_window": ev["best_window"]}
        print(f"VM scan (stream): {len(d['windows'])} windows in {wall:.0f} s; best line "
              f"{run.best_significance:.1f}; {run.n_protoclusters} protocluster(s): "
              + "; ".join(f"#{p['id']} {p['significance']:.1f} sigma, {p['n_selected']} stars, purity "
                          f"{p['purity']:.0%}, completeness {p['completeness']:.0%}" for p in ev["protoclusters"][:3]),
              flush=True)
    if not a.skip_null and not a.skip_scan:
        t = time.perf_counter()
        nmeta = _mock(out / "mock_null.parquet", MockConfig(density=a.density, stream=False, seed=a.seed + 1000,
                                                             center=tuple(meta["center"])))
        results["mock_null"] = {**nmeta, "wall_s": time.perf_counter() - t}
        t = time.perf_counter()
        run = run_stream_search(out / "mock_null.parquet", out / "scan_null", scfg)
        wall = time.perf_counter() - t
        d = json.loads((out / "scan_null" / "search.json").read_text())
        sig = [w["line"]["significance"] for w in d["windows"] if w["line"]]
        results["scan_null"] = {"n_windows": len(d["windows"]), "wall_s": wall, "significances": sig,
                                "n_candidates": run.n_candidates}
        print(f"VM scan (stream-free): {len(sig)} windows in {wall:.0f} s; line significances "
              f"{', '.join(f'{s:.1f}' for s in sig)}; {run.n_candidates} above threshold {a.threshold}", flush=True)
    atomic_write_json(out / "results.json", to_jsonable(results))
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
