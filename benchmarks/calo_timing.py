"""Generation time per shower vs batch size (1, 10, 128, 1024, 10k): model vs the GFLASH reference.

Prints a CaloGAN-style table (full simulation vs model) for saved models, e.g.

    .venv/bin/python benchmarks/calo_timing.py runs/calo/ds1_flow runs/calo/ds1_vae --threads 2

Torch uses ``--threads`` threads (the goal is stated for 2 CPU cores); the reference simulator is
numpy (one core) and is timed on at most ``--reference-max-showers`` showers per batch size.
On a shared machine, run it when the cores are otherwise idle: contention inflates small-batch times.
The model's CPU time per shower (the process's, all threads) is printed next to the wall time, with
the load average: on a loaded machine quote ``--threads 1`` CPU time, which other jobs barely change.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dirs", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", default="1,10,128,1024,10000")
    ap.add_argument("--reference-max-showers", type=int, default=1024)
    ap.add_argument("--out", type=Path, default=None, help="JSON with all tables")
    ap.add_argument("--compile", action="store_true", help="also time the flows through torch.compile (compilation not timed)")
    ap.add_argument("--device", default="auto", help='torch device: "auto" (CUDA when present), "cpu", "cuda[:N]", "mps"')
    a = ap.parse_args(argv)

    from excess._util import atomic_write_json
    from excess.calo.gflash import GFlashSimulator, sample_incident_energies
    from excess.calo.models import load_model
    from excess.calo.timing import time_generation

    sizes = tuple(int(s) for s in a.batch_sizes.split(","))
    results = []
    for d in a.model_dirs:
        model = load_model(d, device=a.device)
        ds1 = model.geometry_.name.startswith("ds1")
        sim = GFlashSimulator.preset("ds1-like" if ds1 else "ds2-like", model.geometry_)
        e = (sample_incident_energies(max(sizes), "discrete", e_min=256, e_max=2.0**22, random_state=0) if ds1
             else sample_incident_energies(max(sizes), "log-uniform", random_state=0))
        for comp in (False, True) if a.compile and model._can_compile else (False,):
            res = time_generation(model, sim, energies=e, batch_sizes=sizes, threads=a.threads,
                                  reference_max_showers=a.reference_max_showers, random_state=0, compile=comp)
            print(f"\n{d}:")
            print(res.format_table())
            results.append({"model_dir": str(d), **res.to_dict()})
    import os

    la = os.getloadavg()
    print(f"\nload average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} on {os.cpu_count()} CPUs (wall times are only "
          "meaningful when the load is below the CPU count)")
    if a.out:
        atomic_write_json(a.out, results)
    print("\nreproduce:", "OMP_NUM_THREADS=%d .venv/bin/python" % a.threads, shlex.join(["benchmarks/calo_timing.py", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
