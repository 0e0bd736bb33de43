"""Wall time of one CATHODE window on 1M-event-scale data, broken down by step.

The generated background is bootstrap-resampled (with replacement) to ``--n-events`` events and signal
is injected at S/B = 0.64 % in the SR (LHCO nominal). Steps timed:

1. SB flow training (the default CATHODE flow, ``excess.anomaly.density.DEFAULT_FLOW``: quantile
   preprocessing + MAF 6 x (128, 128), 40 cosine-annealed epochs; once for the window, saved and
   shared by the folds; ``--flow-params`` JSON overrides it);
2. per fold (``--folds``, the classifier is k-fold so every SR event is scored out of fold):
   KDE of SR m + flow sampling (``--oversample`` x SR events) + classifier ensemble training + scoring.

Reproduce:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cathode_timing.py --n-events 1000000

(on otherwise idle cores: background event generation competes for the same two cores).

Prints a table of seconds per step, the machine's load average, and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--background", default=os.path.expanduser("~/.cache/excess/lhco/background"))
    p.add_argument("--signal", default=os.path.expanduser("~/.cache/excess/lhco/signal"))
    p.add_argument("--n-events", type=int, default=1_000_000)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--oversample", type=float, default=4.0)
    p.add_argument("--flow-params", default="{}", help="JSON overrides of the default CATHODE flow")
    p.add_argument("--hgb-members", type=int, default=3)
    p.add_argument("--hgb-max-iter", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help='torch device of the flow: "auto", "cpu", "cuda", "cuda:N" or "mps"')
    a = p.parse_args(argv)

    import numpy as np

    from excess.anomaly import cross_val_scores, in_sr, make_method
    from excess.anomaly.density import make_flow
    from excess.data.io import read_events
    from excess.stats.roc import max_sic

    feats = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
    sr = (3300.0, 3700.0)
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    bkg = read_events(a.background)[[*feats, "mjj"]].to_numpy(float)
    sig = read_events(a.signal)[[*feats, "mjj"]].to_numpy(float)
    n_avail = len(bkg)
    bkg = bkg[rng.integers(0, len(bkg), a.n_events)]
    n_bkg_sr = int(in_sr(bkg[:, -1], sr).sum())
    sig_sr = sig[in_sr(sig[:, -1], sr)]
    n_inj_sr = int(round(0.0064 * n_bkg_sr))
    sig_pick = sig_sr[rng.choice(len(sig_sr), n_inj_sr, replace=False)]
    data = np.vstack([bkg, sig_pick])
    y = np.r_[np.zeros(len(bkg), int), np.ones(len(sig_pick), int)]
    X, m = data[:, :4], data[:, 4]
    t_load = time.perf_counter() - t0
    is_sr = in_sr(m, sr)
    print(f"# data: {n_avail} generated background events bootstrapped to {len(bkg)}; SR: {n_bkg_sr} bkg + "
          f"{n_inj_sr} signal (S/B 0.64 %); SB: {int((~is_sr).sum())}", flush=True)

    import json

    from excess.anomaly.density import DEFAULT_FLOW

    fp = {**DEFAULT_FLOW, **json.loads(a.flow_params)}
    print(f"# flow: {fp}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        flow = make_flow(fp, a.seed, a.device).fit(X[~is_sr], m[~is_sr])
        t_flow = time.perf_counter() - t0
        flow.save(Path(tmp) / "flow")
        n_ep = flow.history_["stopped_epoch"] + 1
        from excess.nn.device import describe_device

        print(f"flow: {t_flow:.0f} s for {n_ep} epochs ({t_flow / n_ep:.1f} s/epoch on {int((~is_sr).sum())} SB events) "
              f"on {describe_device(a.device)}", flush=True)
        est = make_method("cathode", background_flow=str(Path(tmp) / "flow"), oversample=a.oversample, device=a.device,
                          classifier_params={"n_members": a.hgb_members, "max_iter": a.hgb_max_iter})
        t0 = time.perf_counter()
        s = cross_val_scores(est, X, m, sr=sr, n_folds=a.folds, random_state=a.seed)
        t_clf = time.perf_counter() - t0
    total = t_load + t_flow + t_clf
    print(f"classifier k-fold ({a.folds} folds x {a.hgb_members} HGB members, {a.oversample:g}x samples, "
          f"incl. sampling + scoring all window events): {t_clf:.0f} s")
    print(f"load + resample: {t_load:.0f} s")
    print(f"TOTAL one CATHODE window: {total:.0f} s = {total / 60:.1f} min")
    print(f"max SIC on the window's own SR events (out-of-fold, {len(sig_pick)} signal): {max_sic(y[is_sr], s[is_sr]):.2f}")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; command: {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
