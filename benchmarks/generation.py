"""Generation throughput: accepted events/s per core, and excess's overhead over bare Pythia.

Bare Pythia = ``Pythia.nextBatch`` with the same settings and seed, nothing else. excess = the full
chunk pipeline (Pythia, visible-particle selection, detector response, anti-kt clustering, selection,
N-subjettiness, HDF5 writing). Overhead = excess time / bare time for the *same* Pythia events - 1.

Each measurement runs in a fresh worker process (imports and first-call costs are paid in an untimed
warm-up chunk) and reports CPU time (``time.process_time``: what the process itself used, robust to
other jobs on a shared machine) next to wall time; medians over ``--repeats`` seeds are printed.

Two overhead figures: *vs bare run* compares the chunk with a second, bare run of the same Pythia events
(the definition above); on a loaded machine Pythia's own CPU time varies by 10-20 % from run to run, which
this figure inherits. *In-run* splits the chunk's own CPU time: every ``nextBatch`` call inside the chunk is
timed (``process_time`` around it), and overhead = (chunk CPU - Pythia init - nextBatch CPU) / nextBatch
CPU, so Pythia and everything around it are measured in the same run, batch by batch, under the same load.

The CPU time of the chunk's FastJet calls (``FlatClustering``: anti-kt of the events, exclusive-kt reclustering
for N-subjettiness) is timed the same way and printed as a share of nextBatch CPU, next to the rest of the
in-run overhead.

``--baseline REV`` measures the code of git revision ``REV`` too (its ``src/`` exported to a temporary
folder), alternating baseline and current code run by run, so that before/after come from one run on
the same machine under the same load.

``--stages`` instead splits the per-event cost of one batch of ``--events`` Pythia events (of the first of
``--processes``) into its stages, each timed ``--repeats`` times on the same batch (CPU medians), as a share
of the CPU time Pythia took to generate that batch.

Reproduce:  .venv/bin/python benchmarks/generation.py [--events 1500] [--repeats 3] [--baseline c4efd10]
            .venv/bin/python benchmarks/generation.py --stages --processes signal --events 500 --repeats 7
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class _TimedPythia:
    """A Pythia instance whose ``nextBatch`` calls add their CPU time to ``acc["pythia"]``."""

    def __init__(self, pythia, acc):
        self._pythia, self._acc = pythia, acc

    def nextBatch(self, *args, **kwargs):  # noqa: N802 - Pythia's name
        c0 = time.process_time()
        try:
            return self._pythia.nextBatch(*args, **kwargs)
        finally:
            self._acc["pythia"] += time.process_time() - c0

    def __getattr__(self, name):
        return getattr(self._pythia, name)


def _time_pythia_calls(generate_module, acc: dict) -> None:
    """Make every ``PythiaSource`` of ``generate_module`` time its initialisation (``acc["init"]``) and its
    ``nextBatch`` calls (``acc["pythia"]``); works on the baseline's code too (nothing in excess changes)."""
    cls = generate_module.PythiaSource
    init = cls.__init__

    def timed_init(self, *args, **kwargs):
        c0 = time.process_time()
        init(self, *args, **kwargs)
        acc["init"] += time.process_time() - c0
        self.pythia = _TimedPythia(self.pythia, acc)

    cls.__init__ = timed_init


def _time_fastjet_calls(jets_module, acc: dict) -> None:
    """Make every ``FlatClustering`` of ``jets_module`` add the CPU time of its FastJet calls (the clustering, and
    reading jets and constituents back) to ``acc["antikt"]`` or ``acc["kt"]`` by its jet algorithm (the anti-kt
    clustering of the events; the exclusive-kt reclustering of N-subjettiness)."""
    import fastjet

    cls = getattr(jets_module, "FlatClustering", None)
    if cls is None:  # a baseline from before FlatClustering: its FastJet calls are not timed (shares 0)
        return

    def timed(f, init=False):
        def g(self, *args, **kwargs):
            c0 = time.process_time()
            try:
                return f(self, *args, **kwargs)
            finally:
                if init:
                    self._bench_key = "antikt" if args[-1].jet_algorithm() == fastjet.antikt_algorithm else "kt"
                acc[self._bench_key] += time.process_time() - c0
        return g

    for name in ("inclusive_jets", "constituent_index", "exclusive_jets_up_to"):
        setattr(cls, name, timed(getattr(cls, name)))
    cls.__init__ = timed(cls.__init__, init=True)


def worker(preset: str, process: str, n_events: int, seed: int) -> dict:
    import excess.data.generate as generate_module
    from excess.data.generate import PythiaSource, generate_chunk, silence_stdout
    from excess.data.settings import GeneratorSettings

    s = GeneratorSettings.from_preset(preset, process=process)
    import excess.data.jets as jets_module

    acc = {"init": 0.0, "pythia": 0.0, "antikt": 0.0, "kt": 0.0}
    _time_pythia_calls(generate_module, acc)
    _time_fastjet_calls(jets_module, acc)

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
            acc.update(init=0.0, pythia=0.0, antikt=0.0, kt=0.0)
            c0, w0 = time.process_time(), time.perf_counter()
            meta = generate_chunk(s.to_dict(), n_events, seed, str(Path(d2) / "c.h5"))
            c_chunk = time.process_time() - c0
            c_ex = c_chunk - c_init  # Pythia's initialisation is not part of the per-event cost
            in_run = {"cpu_chunk_in_run": c_chunk - acc["init"], "cpu_pythia_in_run": acc["pythia"],
                      "cpu_antikt_in_run": acc["antikt"], "cpu_kt_in_run": acc["kt"]}
            w_ex = time.perf_counter() - w0 - meta["timing"]["init_s"]
    n_gen = meta["counts"]["n_pythia_events"]
    c_bare, w_bare = bare_pythia(n_gen)
    return {"cpu_excess": c_ex, "wall_excess": w_ex, "cpu_bare": c_bare, "wall_bare": w_bare, "n_gen": n_gen,
            "n_sel": meta["counts"]["n_selected"], "reco_wall": meta["timing"]["reconstruction_s"], **in_run}


def stages(preset: str, process: str, n_events: int, repeats: int, seed: int = 1000) -> None:
    """Print the CPU time of each stage of the per-event path for one batch of ``n_events`` Pythia events."""
    import fastjet

    from excess.data.detector import apply_detector_flat
    from excess.data.generate import FlatBatch, PythiaSource, reconstruct_batch, silence_stdout, visible_particles
    from excess.data.jets import FlatClustering, _offsets, nsubjettiness_flat
    from excess.data.settings import GeneratorSettings

    s = GeneratorSettings.from_preset(preset, process=process)
    src = PythiaSource(s, seed)
    with silence_stdout():
        src.pythia.nextBatch(20)  # first-call costs
        c0 = time.process_time()
        raw = src.pythia.nextBatch(n_events)
        c_pythia = time.process_time() - c0

    def cpu(f):
        f()
        ts = []
        for _ in range(repeats):
            c0 = time.process_time()
            f()
            ts.append(time.process_time() - c0)
        return statistics.median(ts)

    counts, px, py, pz, e, ids = visible_particles(raw.prt)
    batch = FlatBatch(counts, px, py, pz, e, ids, src.charges(ids))
    rng = lambda: np.random.default_rng(seed)  # noqa: E731
    det = apply_detector_flat(counts, px, py, pz, e, ids, batch.charge, rng()) if s.detector != "none" else (counts, px, py, pz, e)
    antikt = fastjet.JetDefinition(fastjet.antikt_algorithm, s.jet_radius)
    with silence_stdout():
        cs = FlatClustering(*det[1:], _offsets(det[0]), antikt)
        jpx, jpy, _, _, j_off = cs.inclusive_jets(s.jet_pt_min)
        c_off, c_idx = cs.constituent_index(s.jet_pt_min)
    two = np.flatnonzero(np.diff(j_off) >= 2)
    lead = np.concatenate([j_off[:-1][two], j_off[:-1][two] + 1])  # two jets per event (FastJet's first two: for timing)
    n_const = c_off[lead + 1] - c_off[lead]
    parts = np.concatenate([c_idx[c_off[j]:c_off[j + 1]] for j in lead])
    cp = tuple(a[parts] for a in det[1:])
    kt = fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0, fastjet.WTA_pt_scheme if s.axes == "wta" else fastjet.E_scheme)
    rows = [("visible final state + charges", lambda: src.charges(visible_particles(raw.prt)[5]))]
    if s.detector != "none":
        rows.append(("detector response", lambda: apply_detector_flat(counts, px, py, pz, e, ids, batch.charge, rng())))
    rows += [("anti-kt clustering (FastJet)", lambda: FlatClustering(*det[1:], _offsets(det[0]), antikt)),
             ("jets + constituents read back", lambda: (cs.inclusive_jets(s.jet_pt_min), cs.constituent_index(s.jet_pt_min))),
             ("N-subj.: exclusive-kt reclustering", lambda: FlatClustering(*cp, _offsets(n_const), kt)),
             ("N-subjettiness, all (incl. reclustering)", lambda: nsubjettiness_flat(n_const, *cp, axes=s.axes)),
             ("reconstruct_batch, all (detector .. features)", lambda: reconstruct_batch(batch, s, rng()))]
    print(f"preset={preset} process={process}: one batch of {n_events} Pythia events, {int(counts.sum() / n_events)} visible "
          f"particles/event, {len(lead) // 2} events with >= 2 jets; Pythia nextBatch {c_pythia:.3f} s CPU; stage CPU = "
          f"median of {repeats}")
    print(f"{'stage':<48}{'CPU s':>8}{'% of Pythia':>13}")
    for name, f in rows:
        with silence_stdout():  # FastJet's banner
            t = cpu(f)
        print(f"{name:<48}{t:>8.3f}{100 * t / c_pythia:>12.1f}%", flush=True)
    print(f"reproduce: .venv/bin/python benchmarks/generation.py --stages --processes {process} --events {n_events} "
          f"--repeats {repeats} --preset {preset}")


def export_src(rev: str, dest: Path) -> Path:
    """``src/`` of git revision ``rev`` under ``dest``."""
    tar = dest / "src.tar"
    with open(tar, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"], stdout=fh, check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


def _in_run(x: dict) -> float:
    """In-run overhead: the chunk's CPU time beyond its own nextBatch calls, per nextBatch CPU second."""
    return x["cpu_chunk_in_run"] / x["cpu_pythia_in_run"] - 1


def _share(x: dict, key: str) -> float:
    """CPU time of the chunk's FastJet calls of one kind (``antikt`` or ``kt``) per nextBatch CPU second (0 for a
    run that did not time them)."""
    return x.get(f"cpu_{key}_in_run", 0.0) / x["cpu_pythia_in_run"]


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
    ap.add_argument("--stages", action="store_true", help="split the per-event cost of one batch into its stages")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--process", default="qcd", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1000, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stages:
        return stages(args.preset, args.processes.split(",")[0], args.events, args.repeats)
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
                    print(f"  {name} {process} seed {1000 + r}: overhead CPU vs bare run {100 * (x['cpu_excess'] / x['cpu_bare'] - 1):.1f}% "
                          f"(excess {x['cpu_excess']:.2f} s, bare {x['cpu_bare']:.2f} s CPU), in-run {100 * _in_run(x):.1f}% "
                          f"(chunk {x['cpu_chunk_in_run']:.2f} s, nextBatch {x['cpu_pythia_in_run']:.2f} s CPU; of it FastJet "
                          f"anti-kt {100 * _share(x, 'antikt'):.1f}%, kt {100 * _share(x, 'kt'):.1f}%)",
                          file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(f"preset={args.preset}  events/run={args.events}  repeats={args.repeats}  (medians; one process = one core; "
          f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'code':<22}{'process':<8}{'acc. ev/s/core (CPU)':>21}{'overhead CPU in-run':>21}  {'(per seed, %)':<32}"
          f"{'CPU vs bare run':>17}{'wall vs bare run':>18}{'excess CPU/wall':>17}{'sel. eff.':>11}"
          f"{'anti-kt':>9}{'kt':>6}{'rest':>7}{'Pythia in-run vs bare':>23}")
    for (name, process), rows in results.items():
        med = lambda f: statistics.median(f(x) for x in rows)  # noqa: E731
        rate = med(lambda x: x["n_sel"] / x["cpu_excess"])
        ov_in = med(_in_run)
        per_seed = " / ".join(f"{100 * _in_run(x):.1f}" for x in rows)
        ov_c = med(lambda x: x["cpu_excess"] / x["cpu_bare"] - 1)
        ov_w = med(lambda x: x["wall_excess"] / x["wall_bare"] - 1)
        busy = med(lambda x: x["cpu_excess"] / x["wall_excess"])
        eff = med(lambda x: x["n_sel"] / x["n_gen"])
        print(f"{name:<22}{process:<8}{rate:>21.1f}{100 * ov_in:>20.1f}%  {per_seed:<32}{100 * ov_c:>16.1f}%"
              f"{100 * ov_w:>17.1f}%{busy:>17.2f}{eff:>11.3f}{100 * med(lambda x: _share(x, 'antikt')):>8.1f}%"
              f"{100 * med(lambda x: _share(x, 'kt')):>5.1f}%"
              f"{100 * med(lambda x: _in_run(x) - _share(x, 'antikt') - _share(x, 'kt')):>6.1f}%"
              f"{100 * med(lambda x: x['cpu_pythia_in_run'] / x['cpu_bare'] - 1):>+22.1f}%")
    print("anti-kt, kt: CPU of the chunk's FastJet calls (anti-kt clustering of the events; exclusive-kt reclustering "
          "for N-subjettiness; each with reading jets and constituents back) per nextBatch CPU second; rest: the "
          "in-run overhead without them; Pythia in-run vs bare: nextBatch CPU inside the chunk against the bare run "
          "of the same events (a cost the in-run figure leaves out)")
    cmd = f".venv/bin/python benchmarks/generation.py --events {args.events} --repeats {args.repeats} --preset {args.preset}"
    if args.processes != "qcd,signal":
        cmd += f" --processes {args.processes}"
    if args.baseline:
        cmd += f" --baseline {args.baseline}"
    print("reproduce:", cmd)


if __name__ == "__main__":
    main()
