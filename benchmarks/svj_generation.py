"""Semi-visible-jet generation throughput: preselected events per CPU second (one core), signal and QCD.

Runs :func:`excess.data.svj.generate_svj_chunk` (Pythia 8 Hidden Valley or HardQCD, Delphes-CMS-like detector,
MET veto, anti-kt, preselection, N-subjettiness, tracks through the shared track model, HDF5 writing) in this
process and reports, per sample: the preselection efficiency (preselected / generated Pythia events), preselected
events per CPU second and per wall second (CPU time is the per-core cost on a shared machine), the generated-event
rate and the share of the time spent in Pythia. CPU time is ``time.process_time`` of this process (one core).

``--from-chunks DIR...`` generates nothing: it reads the metadata that every chunk of a production run
(``excess svj generate`` / ``excess svj grid``) records about its own process (CPU seconds, Pythia and
reconstruction time, generated and preselected events, dark-meson decays) and prints the same figures per
directory, so the throughput of the production samples themselves is reported.

Reproduce:  .venv/bin/python benchmarks/svj_generation.py [--signal-events 500] [--qcd-events 100]
            .venv/bin/python benchmarks/svj_generation.py --from-chunks data/svj/qcd30k data/svj/grid/svj_mz*
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


def from_chunks(directory) -> dict:
    """The figures of :func:`run` summed over the chunks of a production directory (their own metadata)."""
    import h5py

    files = sorted(Path(directory).glob("chunk-*.h5"))
    if not files:
        raise SystemExit(f"{directory}: no chunk-*.h5 files")
    tot = dict(n=0, gen=0, passed=0, cpu=0.0, wall=0.0, py=0.0, reco=0.0, dec=0, inv=0)
    for f in files:
        with h5py.File(f, "r") as h:
            meta = json.loads(h.attrs["metadata"])
            n = int(h["tracks"].shape[0])
        c, t, dm = meta["counts"], meta["timing"], meta.get("dark_mesons") or {}
        tot["n"] += n
        tot["gen"] += c["n_pythia_events"]
        tot["passed"] += c["n_passed"]
        tot["cpu"] += t["cpu_s"]
        tot["wall"] += t["total_s"]
        tot["py"] += t["pythia_s"]
        tot["reco"] += t["reconstruction_s"]
        tot["dec"] += dm.get("n_decayed") or 0
        tot["inv"] += dm.get("n_invisible") or 0
    s = meta["settings"]
    return {
        "process": s["process"],
        "point": (f"mZ'={s['m_zprime']:g} r_inv={s['r_inv']:g}" if s["process"] == "signal"
                  else f"pTHatMin={s['pthat_min']:g}") + f" ({len(files)} chunks)",
        "n_selected": tot["n"], "n_generated": tot["gen"], "preselection_eff": tot["passed"] / max(tot["gen"], 1),
        "selected_per_cpu_s": tot["n"] / tot["cpu"], "selected_per_wall_s": tot["n"] / tot["wall"],
        "generated_per_cpu_s": tot["gen"] / tot["cpu"],
        "pythia_share": tot["py"] / max(tot["py"] + tot["reco"], 1e-9), "cpu_s": tot["cpu"], "wall_s": tot["wall"],
        "invisible_fraction": tot["inv"] / tot["dec"] if tot["dec"] else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signal-events", type=int, default=500, help="preselected events per signal point")
    ap.add_argument("--qcd-events", type=int, default=100, help="preselected QCD events")
    ap.add_argument("--points", default="2000:0.3,4000:0.7", help="signal points m_zprime:r_inv, comma separated")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--from-chunks", nargs="+", default=None, metavar="DIR",
                    help="generate nothing: report production chunk directories from their own metadata")
    args = ap.parse_args(argv)
    rows = []
    if args.from_chunks:
        rows = [from_chunks(d) for d in args.from_chunks]
    else:
        for k, p in enumerate(args.points.split(",")):
            mz, ri = (float(x) for x in p.split(":"))
            rows.append(run(SVJSettings(process="signal", m_zprime=mz, r_inv=ri), args.signal_events, 100 + k))
        rows.append(run(SVJSettings(process="qcd"), args.qcd_events, 200))
    print(f"{'sample':42s} {'events':>7s} {'presel eff':>10s} {'sel/cpu-s':>10s} {'sel/wall-s':>10s} "
          f"{'gen/cpu-s':>10s} {'cpu s':>8s} {'pythia %':>8s} {'r_inv meas':>10s}")
    for r in rows:
        inv = "" if r["invisible_fraction"] is None else f"{r['invisible_fraction']:.4f}"
        print(f"{r['process'] + ' ' + r['point']:42s} {r['n_selected']:7d} {r['preselection_eff']:10.4f} "
              f"{r['selected_per_cpu_s']:10.2f} {r['selected_per_wall_s']:10.2f} {r['generated_per_cpu_s']:10.1f} "
              f"{r['cpu_s']:8.0f} {100 * r['pythia_share']:8.1f} {inv:>10s}")
    if not args.from_chunks:
        load = os.getloadavg()
        print(f"load average during the run: {load[0]:.1f} (1 min) on {os.cpu_count()} cores")
    print("command: " + " ".join([Path(sys.executable).name, "benchmarks/svj_generation.py", *sys.argv[1:]]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
