"""Wall time of training the default CATHODE sideband flow, and the device it ran on.

Trains exactly the flow the CATHODE method trains by default (``excess.anomaly.density.DEFAULT_FLOW``:
quantile preprocessing + MAF 6 x (128, 128), 40 cosine-annealed epochs, batch 1024, patience 10) on
the sideband events of the packaged LHCO-like demo dataset, bootstrap-resampled (with replacement)
to ``--n-events`` events; the SR is 3300-3700 GeV and every other event is sideband.

The flow gets ``device=--device`` (default "auto": the first CUDA GPU when torch sees one, else the
CPU). Against a source tree older than the device setting (no ``device`` parameter in
``make_flow``) the parameter is not passed and the flow runs where that code runs it: the CPU.

Prints one line ``RESULT ...`` with the wall time of the fit, epochs run, seconds per epoch, the
device, the torch thread count, and the command to reproduce. The process's total time (imports,
data loading and the fit) is what an outside timer sees.

Reproduce (the numbers in the README's "Devices" section):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/sb_flow_device.py --n-events 60000
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/sb_flow_device.py --n-events 1000000   # LHCO scale, on a GPU

``--flow-params`` (JSON) overrides the default flow, e.g. ``'{"epochs": 2}'`` for a smoke test.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-events", type=int, default=60_000, help="events after bootstrap resampling (SR + SB)")
    p.add_argument("--device", default="auto", help='torch device: "auto", "cpu", "cuda", "cuda:N" or "mps"')
    p.add_argument("--flow-params", default="{}", help="JSON overrides of the default CATHODE flow")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import numpy as np
    import torch

    try:
        from excess.anomaly.density import DEFAULT_FLOW, make_flow
    except ImportError:  # the code before the renovation (for before/after timing)
        from excess.anomaly._flows import DEFAULT_FLOW, make_flow
    from excess.data.io import read_events
    from excess.workflow import demo_dataset_path

    feats = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
    lo, hi = 3300.0, 3700.0
    events = read_events(demo_dataset_path())[[*feats, "mjj"]].to_numpy(float)
    rng = np.random.default_rng(a.seed)
    data = events[rng.integers(0, len(events), a.n_events)]
    sb = (data[:, -1] < lo) | (data[:, -1] >= hi)
    X, m = data[sb, :4], data[sb, 4]
    fp = {**DEFAULT_FLOW, **json.loads(a.flow_params)}

    has_device = "device" in inspect.signature(make_flow).parameters
    if has_device:
        from excess.nn.device import describe_device

        device = describe_device(a.device)
        flow = make_flow(fp, a.seed, a.device)
    else:  # the code before the device setting: everything on the CPU
        if a.device not in ("auto", "cpu"):
            p.error(f"--device {a.device}: this excess has no device setting (CPU only)")
        device = "cpu (no device setting in this excess)"
        flow = make_flow(fp, a.seed)
    t0 = time.perf_counter()
    flow.fit(X, m)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t_fit = time.perf_counter() - t0
    hist = flow.history_
    n_ep = hist["stopped_epoch"] + 1
    print(f"# data: {len(events)} packaged demo events bootstrapped to {a.n_events}; SB (flow training): {int(sb.sum())}")
    print(f"# flow: {fp}")
    print(f"RESULT fit_s={t_fit:.2f} epochs={n_ep} s_per_epoch={t_fit / n_ep:.3f} n_sb={int(sb.sum())} "
          f"val_loss={hist['val_loss'][-1]:.4f} device={device!r} torch_threads={torch.get_num_threads()}")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch {torch.__version__}")
    print(f"# reproduce: python benchmarks/sb_flow_device.py {' '.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
