"""Generation throughput: accepted events/s per core, and excess's overhead over bare Pythia.

Bare Pythia = ``Pythia.nextBatch`` with the same settings and seed, nothing else. excess = the full
chunk pipeline (Pythia, visible-particle selection, detector response, anti-kt clustering, selection,
N-subjettiness, HDF5 writing). Overhead = excess time / bare time for the *same* Pythia events - 1.

Each measurement runs in a fresh worker process (imports and first-call costs are paid in an untimed
warm-up chunk) and reports CPU time (``time.process_time``: what the process itself used, robust to
other jobs on a shared machine) next to wall time; medians over ``--repeats`` seeds are printed.

``--baseline REV`` measures the code of git revision ``REV`` too (its ``src/`` exported to a temporary
folder), alternating baseline and current code run by run, so that before/after come from one run on
the same machine under the same load.

Reproduce:  .venv/bin/python benchmarks/generation.py [--events 1500] [--repeats 3] [--baseline c4efd10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(preset: str, process: str, n_events: int, seed: int) -> dict:
    from excess.data.generate import PythiaSource, generate_chunk, silence_stdout
    from excess.data.settings import GeneratorSettings

    s = GeneratorSettings.from_preset(preset, process=process)

    def bare_pythia(n_gen, batch_size=500):
        src = PythiaSource(s, seed)  # same configuration and seed: the same events; init not timed
        c0, w0 = time.process_time(), time.perf_counter()
        done = 0
        while done < n_gen:
            with silence_stdout():
                b = src.pythia.nextBatch(min(batch_size, n_gen - done))
            done += len(b)
        return time.process_time() - c0, time.perf_counter() - w0

    with tempfile.TemporaryDirectory() as d:  # warm-up: imports, FastJet banner, first calls
        generate_chunk(s.to_dict(), 30, 1, str(Path(d) / "w.h5"))
        with tempfile.TemporaryDirectory() as d2:
            c0 = time.process_time()
            src_init = PythiaSource(s, seed)  # the CPU time of Pythia's initialisation, measured apart
            c_init = time.process_time() - c0
            del src_init
            c0, w0 = time.process_time(), time.perf_counter()
            meta = generate_chunk(s.to_dict(), n_events, seed, str(Path(d2) / "c.h5"))
            c_ex = time.process_time() - c0 - c_init  # Pythia's initialisation is not part of the per-event cost
            w_ex = time.perf_counter() - w0 - meta["timing"]["init_s"]
    n_gen = meta["counts"]["n_pythia_events"]
    c_bare, w_bare = bare_pythia(n_gen)
    return {"cpu_excess": c_ex, "wall_excess": w_ex, "cpu_bare": c_bare, "wall_bare": w_bare, "n_gen": n_gen,
            "n_sel": meta["counts"]["n_selected"], "reco_wall": meta["timing"]["reconstruction_s"]}


def export_src(rev: str, dest: Path) -> Path:
    """``src/`` of git revision ``rev`` under ``dest``."""
    tar = dest / "src.tar"
    with open(tar, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"], stdout=fh, check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


def run_worker(src: Path, preset, process, n_events, seed) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--worker", "--preset", preset, "--process", process,
                          "--events", str(n_events), "--seed", str(seed)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1500, help="selected events per excess run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="lhco")
    ap.add_argument("--processes", default="qcd,signal")
    ap.add_argument("--baseline", default=None, help="git revision to measure too (before/after in one run)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--process", default="qcd", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1000, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        with open(os.devnull, "w") as devnull:  # Pythia/FastJet banners must not reach the JSON line
            old = os.dup(1)
            os.dup2(devnull.fileno(), 1)
            try:
                res = worker(args.preset, args.process, args.events, args.seed)
            finally:
                os.dup2(old, 1)
        print(json.dumps(res), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        codes = [("current", ROOT / "src")]
        if args.baseline:
            codes.insert(0, (f"baseline {args.baseline}", export_src(args.baseline, Path(tmp))))
        results = {(c, p): [] for c, _ in codes for p in args.processes.split(",")}
        for process in args.processes.split(","):
            for r in range(args.repeats):
                for name, src in codes:  # alternate: baseline, current, baseline, current, ...
                    results[(name, process)].append(run_worker(src, args.preset, process, args.events, 1000 + r))
                    x = results[(name, process)][-1]
                    print(f"  {name} {process} seed {1000 + r}: overhead CPU {100 * (x['cpu_excess'] / x['cpu_bare'] - 1):.1f}% "
                          f"(excess {x['cpu_excess']:.2f} s, bare {x['cpu_bare']:.2f} s CPU)", file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(f"preset={args.preset}  events/run={args.events}  repeats={args.repeats}  (medians; one process = one core; "
          f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'code':<22}{'process':<8}{'acc. ev/s/core (CPU)':>21}{'overhead CPU':>14}{'overhead wall':>15}"
          f"{'excess CPU/wall':>17}{'sel. eff.':>11}")
    for (name, process), rows in results.items():
        med = lambda f: statistics.median(f(x) for x in rows)  # noqa: E731
        rate = med(lambda x: x["n_sel"] / x["cpu_excess"])
        ov_c = med(lambda x: x["cpu_excess"] / x["cpu_bare"] - 1)
        ov_w = med(lambda x: x["wall_excess"] / x["wall_bare"] - 1)
        busy = med(lambda x: x["cpu_excess"] / x["wall_excess"])
        eff = med(lambda x: x["n_sel"] / x["n_gen"])
        print(f"{name:<22}{process:<8}{rate:>21.1f}{100 * ov_c:>13.1f}%{100 * ov_w:>14.1f}%{busy:>17.2f}{eff:>11.3f}")
    cmd = f".venv/bin/python benchmarks/generation.py --events {args.events} --repeats {args.repeats} --preset {args.preset}"
    if args.baseline:
        cmd += f" --baseline {args.baseline}"
    print("reproduce:", cmd)


if __name__ == "__main__":
    main()
