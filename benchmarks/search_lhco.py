"""End-to-end search on generated LHCO-like events: injected W' signal, full scan, runtime.

Reads the generated background and signal (``excess.data.io.read_events``), injects ``--n-signal``
signal events (default: the LHCO nominal 1000 per 1M background, scaled to the background size),
runs the default sliding-window scan with ``--method`` and prints: runtime, the most significant
window, its local/global Z, resonance mass, mX/mY estimates, and the Z of the LHCO SR 3300-3700.

Reproduce:
    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/search_lhco.py --method cwola --workers 2 \
        --background ~/.cache/excess/lhco/background --signal ~/.cache/excess/lhco/signal --out /tmp/search_lhco
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--background", default=str(Path.home() / ".cache/excess/lhco/background"))
    ap.add_argument("--signal", default=str(Path.home() / ".cache/excess/lhco/signal"))
    ap.add_argument("--n-background", type=int, default=None, help="use at most this many background events")
    ap.add_argument("--n-signal", type=int, default=None, help="injected signal events (default 1000 per 1M)")
    ap.add_argument("--method", default="cwola")
    ap.add_argument("--params", default="{}", help="JSON method parameters, e.g. '{\"fast\": true}'")
    ap.add_argument("--efficiencies", default="0.1,0.01,0.002")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--global-toys", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="resume/plots directory")
    a = ap.parse_args()

    from excess.data.io import read_events
    from excess.data.mix import inject_signal
    from excess.search import run_scan

    bkg = read_events(a.background, max_events=a.n_background)
    sig = read_events(a.signal)
    n_sig = a.n_signal if a.n_signal is not None else int(round(1000 * len(bkg) / 1e6))
    events, info = inject_signal(bkg, sig, n_signal=n_sig, random_state=a.seed)
    effs = tuple(float(e) for e in a.efficiencies.split(","))
    print(f"events: {len(bkg)} background + {n_sig} signal injected; mixing info: {info.to_dict()}")
    t0 = time.perf_counter()
    r = run_scan(events, method=a.method, method_params=json.loads(a.params), efficiencies=effs, n_folds=a.folds,
                 n_workers=a.workers, random_state=a.seed, global_toys=a.global_toys,
                 resume_dir=None if a.out is None else Path(a.out) / "scan")
    dt = time.perf_counter() - t0
    print(r.summary())
    print(f"scan runtime: {dt:.0f} s on {a.workers} workers ({len(r.windows)} windows x {a.folds} folds)")
    best = r.best
    if best:
        w, t = best
        ch = t.characterisation
        print(f"best: {w.window.label} eff {t.efficiency:g}: Z_local={t.z:.2f} (toys p={t.p_toys}), "
              f"fit {t.fit.function} chi2/ndf={t.fit.chi2:.1f}/{t.fit.ndf} p={t.fit.p_value:.2g}; "
              f"m_res={ch.m_res} mX={ch.m_x} mY={ch.m_y}; signal fraction={w.signal_fraction} +- {w.signal_fraction_err}")
    for w in r.windows:
        if w.window.sr == (3300.0, 3700.0):
            print("LHCO SR:", [(t.efficiency, round(t.z, 2) if t.ok else t.status) for t in w.tests],
                  "max SIC", w.max_sic)
    if a.out:
        from excess.report.search_plots import write_scan_plots

        write_scan_plots(r, events, Path(a.out) / "plots")
        print("plots in", Path(a.out) / "plots")


if __name__ == "__main__":
    main()
