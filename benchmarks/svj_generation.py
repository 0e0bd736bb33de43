"""Semi-visible-jet generation throughput: preselected events per CPU second (one core), signal and QCD.

Runs :func:`excess.data.svj.generate_svj_chunk` (Pythia 8 Hidden Valley or HardQCD, Delphes-CMS-like detector,
MET veto, anti-kt, preselection, N-subjettiness, tracks through the shared track model, HDF5 writing) in this
process and reports, per sample: the preselection efficiency (preselected / generated Pythia events), preselected
events per CPU second and per wall second (CPU time is the per-core cost on a shared machine), the generated-event
rate and the share of the time spent in Pythia. CPU time is ``time.process_time`` of this process (one core).

Reproduce:  .venv/bin/python benchmarks/svj_generation.py [--signal-events 500] [--qcd-events 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from excess.data.svj import SVJSettings, generate_svj_chunk  # noqa: E402


def run(settings: SVJSettings, n: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        w0, c0 = time.perf_counter(), time.process_time()
        meta = generate_svj_chunk(settings.to_dict(), n, seed, str(Path(d) / "c.h5"))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n_gen = meta["counts"]["n_pythia_events"]
    t = meta["timing"]
    return {
        "process": settings.process,
        "point": (f"mZ'={settings.m_zprime:g} r_inv={settings.r_inv:g}" if settings.process == "signal"
                  else f"pTHatMin={settings.pthat_min:g}"),
        "n_selected": n, "n_generated": n_gen, "preselection_eff": meta["counts"]["preselection_efficiency"],
        "selected_per_cpu_s": n / cpu, "selected_per_wall_s": n / wall, "generated_per_cpu_s": n_gen / cpu,
        "pythia_share": t["pythia_s"] / max(t["pythia_s"] + t["reconstruction_s"], 1e-9),
        "cpu_s": cpu, "wall_s": wall,
        "invisible_fraction": meta["dark_mesons"]["invisible_fraction"],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signal-events", type=int, default=500, help="preselected events per signal point")
    ap.add_argument("--qcd-events", type=int, default=100, help="preselected QCD events")
    ap.add_argument("--points", default="2000:0.3,4000:0.7", help="signal points m_zprime:r_inv, comma separated")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    rows = []
    for k, p in enumerate(args.points.split(",")):
        mz, ri = (float(x) for x in p.split(":"))
        rows.append(run(SVJSettings(process="signal", m_zprime=mz, r_inv=ri), args.signal_events, 100 + k))
    rows.append(run(SVJSettings(process="qcd"), args.qcd_events, 200))
    print(f"{'sample':28s} {'presel eff':>10s} {'sel/cpu-s':>10s} {'sel/wall-s':>10s} {'gen/cpu-s':>10s} "
          f"{'pythia %':>8s} {'r_inv meas':>10s}")
    for r in rows:
        inv = "" if r["invisible_fraction"] is None else f"{r['invisible_fraction']:.3f}"
        print(f"{r['process'] + ' ' + r['point']:28s} {r['preselection_eff']:10.4f} {r['selected_per_cpu_s']:10.2f} "
              f"{r['selected_per_wall_s']:10.2f} {r['generated_per_cpu_s']:10.1f} {100 * r['pythia_share']:8.1f} {inv:>10s}")
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.1f} (1 min) on {os.cpu_count()} cores")
    print("command: " + " ".join([Path(sys.executable).name, "benchmarks/svj_generation.py", *sys.argv[1:]]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
