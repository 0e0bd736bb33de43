"""The flow's fast sampling path against zuko's own inverse: time per shower at one batch size.

Both paths draw the same showers (the fast path is tested equal to zuko's inverse up to float
rounding); this prints the median of ``--repeats`` timings of ``model.sample`` for each (wall and CPU
time of the process, all threads), and the ratio. A third row is the fast path as it was before its
chunks ran side by side on the torch threads (chunks of 2^18 elements, each matrix product split over
the threads): on a loaded machine that split spins at every barrier. The last row adds the compiled
loops (``sample(compiled_loops=True)``, loaded in its warm-up call).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/calo_fast_sampling.py runs/calo/ds1_flow_100k_rel --threads 2

With ``--baseline REV`` (a git revision, e.g. ``main``) it compares this checkout's sampling with that
revision's instead: REV is checked out into a temporary git worktree, and each repeat samples the same
showers (same model, energies and seed) once with REV's code and once with this checkout's (with
``compiled_loops=True`` where ``sample`` takes it, loaded in the untimed warm-up call), each in a
fresh process, in turn (A B A B ...: a machine whose load drifts slows both alike). It prints the median
wall and CPU time per shower of each and their ratios, and whether the showers are bit-identical.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", default=None, help="git revision to compare with, sampled in a worktree of it (see above)")
    a = ap.parse_args(argv)
    if a.baseline:
        return compare_with_baseline(a, argv)

    import torch

    from excess.calo.gflash import sample_incident_energies
    from excess.calo.models import load_model

    torch.set_num_threads(a.threads)
    model = load_model(a.model_dir)
    ds1 = model.geometry_.name.startswith("ds1")
    e = (sample_incident_energies(a.batch_size, "discrete", e_min=256, e_max=2.0**22, random_state=0) if ds1
         else sample_incident_energies(a.batch_size, "log-uniform", random_state=0))
    import os

    from excess.calo.models import flow as flow_module

    generate = model._generate
    parallel, chunk = flow_module._map_chunks, model._chunk_elements

    def sequential(f, chunks, workers):
        return [f(*c) for c in chunks]

    times = {}
    rows = (("zuko inverse", False, chunk, parallel, False), ("fast path, before", True, 2**18, sequential, False),
            ("fast path", True, chunk, parallel, False), ("fast path + loops", True, chunk, parallel, True))
    for name, fast, ce, mapper, loops in rows:
        model._generate = lambda c, g, _fast=fast: generate(c, g, fast=_fast)  # noqa: E731
        model._chunk_elements, flow_module._map_chunks = ce, mapper
        model.sample(e[:100], random_state=0, compiled_loops=loops)  # warm-up (loads the compiled loops)
        ts, cs = [], []
        for r in range(a.repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            model.sample(e, batch_size=a.batch_size, random_state=r, compiled_loops=loops)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        times[name] = float(np.median(ts)) / a.batch_size * 1e3
        cpu = float(np.median(cs)) / a.batch_size * 1e3
        print(f"{name:>17}: {times[name]:.4f} ms per shower, CPU {cpu:.4f} ms (median of {a.repeats}, batch {a.batch_size}, "
              f"{a.threads} thread(s))", flush=True)
    flow_module._map_chunks = parallel
    print(f"speed-up of the fast path: {times['zuko inverse'] / times['fast path']:.2f}x over zuko, "
          f"{times['fast path, before'] / times['fast path']:.2f}x over the fast path before; with the compiled loops "
          f"{times['zuko inverse'] / times['fast path + loops']:.2f}x over zuko")
    la = os.getloadavg()
    print(f"load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} on {os.cpu_count()} CPUs")
    print("reproduce:", f"OMP_NUM_THREADS={a.threads} .venv/bin/python", shlex.join(["benchmarks/calo_fast_sampling.py", *(argv or sys.argv[1:])]))


_CHILD = r"""
import sys, time, numpy as np, torch
from excess.calo.gflash import sample_incident_energies
from excess.calo.models import load_model
model_dir, threads, bs, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
model = load_model(model_dir, device="cpu")
ds1 = model.geometry_.name.startswith("ds1")
e = (sample_incident_energies(bs, "discrete", e_min=256, e_max=2.0**22, random_state=0) if ds1
     else sample_incident_energies(bs, "log-uniform", random_state=0))
import inspect
kw = {"compiled_loops": True} if "compiled_loops" in inspect.signature(model.sample).parameters else {}
model.sample(e[:100], random_state=0, **kw)  # warm-up (loads the compiled loops where there are some)
c0, t0 = time.process_time(), time.perf_counter()
x = model.sample(e, batch_size=bs, random_state=1, **kw)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
np.save(out, x)
print(wall, cpu)
"""


def compare_with_baseline(a, argv):
    import os
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "-q", "--detach", str(base), a.baseline], check=True)
        try:
            res = {"baseline": ([], []), "this checkout": ([], [])}
            outs = {}
            for r in range(a.repeats):
                for name, src in (("baseline", base / "src"), ("this checkout", root / "src")):
                    outs[name] = Path(tmp) / f"{name.replace(' ', '_')}.npy"
                    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(a.threads)}
                    p = subprocess.run([sys.executable, "-c", _CHILD, str(a.model_dir), str(a.threads), str(a.batch_size), str(outs[name])],
                                       env=env, check=True, capture_output=True, text=True)
                    wall, cpu = map(float, p.stdout.split()[-2:])
                    res[name][0].append(wall)
                    res[name][1].append(cpu)
            xa, xb = np.load(outs["baseline"]), np.load(outs["this checkout"])
            same = np.array_equal(xa, xb)
            diff = float(np.abs(xa - xb).max())
            rel = float((np.abs(xa - xb) / np.maximum(np.abs(xa), 1.0)).max())  # relative, for deposits above 1 MeV
            hits = float(np.mean((xa > 0) == (xb > 0)))
            e_rel = float(np.abs(xa.sum(1) - xb.sum(1)).max() / xa.sum(1).max())
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(base)], check=False)
    med = {k: (float(np.median(w)) / a.batch_size * 1e3, float(np.median(c)) / a.batch_size * 1e3) for k, (w, c) in res.items()}
    for k, (w, c) in med.items():
        print(f"{k:>13} ({a.baseline if k == 'baseline' else 'HEAD + changes'}): {w:.4f} ms per shower wall, CPU {c:.4f} ms "
              f"(median of {a.repeats}, batch {a.batch_size}, {a.threads} thread(s))")
    print(f"this checkout / baseline: wall {med['this checkout'][0] / med['baseline'][0]:.3f}, "
          f"CPU {med['this checkout'][1] / med['baseline'][1]:.3f}")
    print(f"showers bit-identical: {same} (max |difference| {diff:.3g} MeV; relative {rel:.2g}; voxels hit in both or "
          f"neither {hits:.6f}; max shower-energy difference / largest shower energy {e_rel:.2g})")
    la = os.getloadavg()
    print(f"load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} on {os.cpu_count()} CPUs")
    print("reproduce:", f"OMP_NUM_THREADS={a.threads} .venv/bin/python", shlex.join(["benchmarks/calo_fast_sampling.py", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
