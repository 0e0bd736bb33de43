"""CPU seconds of R-ANODE's signal-flow training on one fold of one window.

Fits ``make_method("ranode", random_state=seed, flow_params=FAST_FLOW)`` (a cheap SB flow, so that the
signal members stand out) on the folds other than fold 0 of the window SR 3.3-3.7 TeV (500 GeV
sidebands) and prints, per seed, the CPU seconds of each ``fit_torch`` call (the SB flow, the signal
flows), the epochs run, the members' ``w`` and the max SIC of fold 0's SR events (labels from the file).

    OMP_NUM_THREADS=1 python benchmarks/ranode_fold.py --events mix60k_s300.h5 --seeds 0 1 [--batched]
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", required=True, help="event file with labels (excess generate mix)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--batched", action="store_true", help="batched_members=True (the members as one vmapped model)")
    a = p.parse_args(argv)

    import numpy as np
    import torch

    import excess.nn.training as training
    from excess.anomaly import make_method
    from excess.anomaly.base import stratified_folds
    from excess.anomaly.density import FAST_FLOW
    from excess.data.io import read_events
    from excess.search.scan import DEFAULT_FEATURES
    from excess.stats.roc import max_sic

    torch.set_num_threads(1)
    ev = read_events(a.events)
    m, y = ev["mjj"].to_numpy(), ev["label"].to_numpy()
    X = ev[list(DEFAULT_FEATURES)].to_numpy()
    sel = (m >= 2800) & (m < 4200)
    X, m, y = X[sel], m[sel], y[sel]
    is_sr = (m >= 3300) & (m < 3700)
    fold = stratified_folds(is_sr, 5, np.random.default_rng(0))
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # torch's one-time optimizer imports, before timing
    cpu: dict[str, list[float]] = {}
    fit_torch = training.fit_torch

    def timed(*args, **kw):  # the estimators import fit_torch from excess.nn.training when they fit
        t = time.process_time()
        res = fit_torch(*args, **kw)
        cpu.setdefault(kw.get("desc") or "flow", []).append(round(time.process_time() - t, 2))
        return res

    training.fit_torch = timed
    for seed in a.seeds:
        cpu.clear()
        est = make_method("ranode", random_state=seed, flow_params=FAST_FLOW, batched_members=a.batched)
        t0 = time.process_time()
        est.fit(X[fold != 0], m[fold != 0], sr=(3300, 3700))
        t1 = time.process_time()
        te = (fold == 0) & is_sr
        s = est.score_samples(X[te], m[te])
        print(json.dumps({"seed": seed, "fit_cpu_s": round(t1 - t0, 2), "fit_torch_cpu_s": dict(cpu),
                          "epochs": [mm["history"]["stopped_epoch"] + 1 for mm in est.members_],
                          "w": [round(mm["w_trained"], 4) for mm in est.members_],
                          "max_sic_fold0": round(float(max_sic(y[te], s)), 2)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
