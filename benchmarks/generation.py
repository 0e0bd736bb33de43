"""Generation throughput: accepted events/s per core, and excess's overhead over bare Pythia.

Bare Pythia = ``Pythia.nextBatch`` with the same settings and seed, nothing else. excess = the full
chunk pipeline (Pythia, visible-particle selection, detector response, anti-kt clustering, selection,
N-subjettiness, HDF5 writing). Both run in this one process, alternating, ``--repeats`` times; medians
are reported. Overhead = excess time per *generated* Pythia event / bare time per event - 1.

Reproduce:  .venv/bin/python benchmarks/generation.py [--events 1500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from excess.data.generate import PythiaSource, generate_chunk, silence_stdout  # noqa: E402
from excess.data.settings import GeneratorSettings  # noqa: E402


def bare_pythia(settings, seed, n_events, batch_size=500):
    src = PythiaSource(settings, seed)  # same configuration, init not timed
    t0 = time.perf_counter()
    done = 0
    while done < n_events:
        with silence_stdout():
            b = src.pythia.nextBatch(min(batch_size, n_events - done))
        done += len(b)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1500, help="selected events per excess run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="lhco")
    args = ap.parse_args(argv)
    rows = []
    # warm-up: imports and first-call costs are paid once per process, not per event
    with tempfile.TemporaryDirectory() as d:
        generate_chunk(GeneratorSettings.from_preset(args.preset).to_dict(), 50, 1, str(Path(d) / "w.h5"))
        bare_pythia(GeneratorSettings.from_preset(args.preset), 1, 50)
    for process in ("qcd", "signal"):
        s = GeneratorSettings.from_preset(args.preset, process=process)
        rates, overheads, reco_share = [], [], []
        for r in range(args.repeats):
            seed = 1000 + r
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                meta = generate_chunk(s.to_dict(), args.events, seed, str(Path(d) / "c.h5"))
                t_ex = time.perf_counter() - t0 - meta["timing"]["init_s"]
            n_gen = meta["counts"]["n_pythia_events"]
            t_bare = bare_pythia(s, seed, n_gen)
            rates.append(args.events / t_ex)
            overheads.append((t_ex / n_gen) / (t_bare / n_gen) - 1)
            reco_share.append(meta["timing"]["reconstruction_s"] / t_ex)
        rows.append((process, statistics.median(rates), statistics.median(overheads), statistics.median(reco_share),
                     meta["counts"]["n_selected"] / meta["counts"]["n_pythia_events"]))
    print(f"preset={args.preset}  events/run={args.events}  repeats={args.repeats}  (medians, one process = one core)")
    print(f"{'process':<8}{'accepted ev/s/core':>20}{'overhead vs bare Pythia':>26}{'reco share':>12}{'sel. eff.':>11}")
    for p, rate, ov, share, eff in rows:
        print(f"{p:<8}{rate:>20.1f}{100 * ov:>25.1f}%{100 * share:>11.1f}%{eff:>11.3f}")
    print("reproduce: .venv/bin/python benchmarks/generation.py --events %d --repeats %d --preset %s"
          % (args.events, args.repeats, args.preset))


if __name__ == "__main__":
    main()
