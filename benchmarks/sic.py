"""Max SIC of every anomaly method on generated LHCO-like data (thin over excess.benchmarks).

Reproduce (the README's table was made with the full 1M generated QCD sample):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/sic.py --out runs/bench/sic1M_v2 \
        --s-over-b 0.0064,0.0032,0.0019 --seeds 0,1,2,3,4 \
        --methods supervised,idealized,cwola,cathode,ranode --flow-cache runs/bench/flows1M_v2

``--flow-cache`` keeps each (injection, seed) SB flow, so a rerun with other ``--method-params``
(classifier settings, oversampling, ...) only refits the methods.

Prints the markdown table (max SIC mean ± std over seeds, AUC, wall seconds per method on this CPU)
and writes sic_benchmark.json, sic_benchmark.md and max_sic_noise*.png to --out. Resumable: finished
(injection, seed) configurations are kept in rows.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--background", default=os.path.expanduser("~/.cache/excess/lhco/background"))
    p.add_argument("--signal", default=os.path.expanduser("~/.cache/excess/lhco/signal"))
    p.add_argument("--s-over-b", default="0.0064,0.0032,0.0019")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--noise", default="0", help="comma-separated numbers of extra N(0,1) columns")
    p.add_argument("--methods", default=None)
    p.add_argument("--max-background", type=int, default=None)
    p.add_argument("--flow-params", default=None, help="JSON overrides of the SB flow (default: the methods' default)")
    p.add_argument("--fast", action="store_true")
    p.add_argument("--flow-cache", default=None, help="directory keeping the SB flows for reuse by later runs")
    p.add_argument("--method-params", default=None,
                   help='JSON {method: {param: value}}, e.g. \'{"cathode": {"oversample": 10}}\'')
    p.add_argument("--bkg-only-check", action="store_true",
                   help="instead: CATHODE on background only; selected fraction of SR test events vs flow samples, "
                        "vs the adjacent sidebands, and the local Z of the dijet sideband fit")
    p.add_argument("--out", default="runs/bench/sic")
    a = p.parse_args(argv)

    from excess.anomaly import METHODS
    from excess.benchmarks import SICBenchmarkConfig, run_sic_benchmark

    fp = None
    if a.flow_params:
        from excess.anomaly.density import DEFAULT_FLOW

        fp = {**DEFAULT_FLOW, **json.loads(a.flow_params)}
        fp["hidden"] = tuple(fp["hidden"])
    cfg = SICBenchmarkConfig(
        background=a.background, signal=a.signal,
        s_over_b=tuple(float(v) for v in a.s_over_b.split(",")), seeds=tuple(int(v) for v in a.seeds.split(",")),
        n_noise=tuple(int(v) for v in a.noise.split(",")),
        methods=tuple(a.methods.split(",")) if a.methods else METHODS,
        max_background=a.max_background, flow_params=fp, fast=a.fast, flow_cache=a.flow_cache,
        method_params=json.loads(a.method_params) if a.method_params else {},
    )
    if a.bkg_only_check:
        from excess.benchmarks import background_only_check

        print("| seed | efficiency | frac SR data | frac samples | pull vs samples | frac SB low / high | "
              "SB interpolated | pull vs SB interp. | selected SR | dijet fit b ± db | Z (fit) | fit p | N data SR | N samples |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for seed in cfg.seeds:
            for r in background_only_check(cfg, seed):
                print(f"| {seed} | {r['efficiency']:g} | {r['frac_data']:.4f} | {r['frac_samples']:.4f} | "
                      f"{r['pull']:+.2f} | {r['frac_sb_low']:.4f} / {r['frac_sb_high']:.4f} | "
                      f"{r['frac_sb_interp']:.4f} | {r['pull_sb_interp']:+.2f} | {r['n_sel_sr']} | "
                      f"{r['b_fit']:.1f} ± {r['b_fit_err']:.1f} | {r['z_fit']:+.2f} | {r['fit_p_value']:.2f} | "
                      f"{r['n_data_sr']} | {r['n_samples']} |", flush=True)
        print(f"# command: {' '.join(sys.argv)}")
        return 0
    res = run_sic_benchmark(cfg, a.out)
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.1f}; command: {' '.join(sys.argv)}")
    print(res.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
