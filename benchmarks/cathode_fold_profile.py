"""Where the CPU of one CATHODE fold goes: sideband-flow training, sampling, classifier training, scoring.

One fold (fold 0 of ``--folds``) of one sliding window (SR ``--sr``, 500 GeV sidebands, as the scan's
default windows), the method's default pieces: the SB flow (``excess.anomaly.density.DEFAULT_FLOW``
updated by ``--flow-params``), ``oversample`` x SR-training-events flow samples at KDE-drawn masses,
the HGB ensemble on SR data vs samples, scoring of the held-out fold. Prints CPU seconds (this process,
1 torch thread) per step. To keep it cheap, ``--epochs-timed N`` trains the flow for N epochs only
and scales the per-epoch CPU to the epochs the flow would run (``DEFAULT_FLOW['epochs']``, capped by
the step budget ``max_steps`` when set); say so when quoting it.

Reproduce::

    OMP_NUM_THREADS=1 python benchmarks/cathode_fold_profile.py --events mixed.h5 --epochs-timed 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", required=True, help="event file or chunk directory")
    p.add_argument("--n-events", type=int, default=None, help="keep the first N events")
    p.add_argument("--sr", default="3300,3700")
    p.add_argument("--sideband", type=float, default=500.0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--oversample", type=float, default=4.0)
    p.add_argument("--flow-params", default="{}", help="JSON overrides of the default SB flow")
    p.add_argument("--epochs-timed", type=int, default=2, help="flow epochs actually trained (then scaled)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    os.environ.setdefault("EXCESS_NO_PROGRESS", "1")

    import numpy as np

    from excess.anomaly.base import in_sr
    from excess.anomaly.cathode import sample_sr_mass
    from excess.anomaly.density import DEFAULT_FLOW, make_flow
    from excess.data.io import read_events
    from excess.nn.classifiers import make_classifier
    from excess.nn.training import budget_epochs

    feats = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
    ev = read_events(a.events)
    if a.n_events:
        ev = ev.iloc[: a.n_events]
    X, m = ev[feats].to_numpy(float), ev["mjj"].to_numpy(float)
    lo, hi = (float(v) for v in a.sr.split(","))
    keep = (m >= lo - a.sideband) & (m < hi + a.sideband)
    X, m = X[keep], m[keep]
    sr = in_sr(m, (lo, hi))
    fold = np.random.default_rng(a.seed).integers(0, a.folds, m.size)
    tr = fold != 0
    n_sb_tr, n_sr_tr = int((tr & ~sr).sum()), int((tr & sr).sum())
    print(f"# {len(ev)} events; window SR {lo:g}-{hi:g}: {int(sr.sum())} SR + {int((~sr).sum())} SB; fold 0 trains on "
          f"{n_sr_tr} SR + {n_sb_tr} SB", flush=True)
    fp = {**DEFAULT_FLOW, **json.loads(a.flow_params)}
    cpu = time.process_time
    t = cpu()
    flow = make_flow({**fp, "epochs": a.epochs_timed, "max_steps": None}, a.seed + 1, "cpu").fit(X[tr & ~sr], m[tr & ~sr])
    t_ep = (cpu() - t) / (flow.history_["stopped_epoch"] + 1)
    n_train = n_sb_tr - int(round(fp.get("validation_fraction", 0.2) * n_sb_tr))
    steps = math.ceil(n_train / fp["batch_size"])
    epochs = budget_epochs(fp["epochs"], steps, fp.get("max_steps"))
    rows = [("SB flow training (scaled)", t_ep * epochs,
             f"{t_ep:.2f} CPU-s/epoch x {epochs} epochs ({steps} steps/epoch, max_steps {fp.get('max_steps')})")]
    n_s = int(round(a.oversample * n_sr_tr))
    t = cpu()
    ms = sample_sr_mass(m[tr & sr], n_s, np.random.default_rng(a.seed + 2))
    Xs = flow.sample(ms, random_state=a.seed + 3)
    rows.append(("flow sampling", cpu() - t, f"{n_s} samples"))
    Xc = np.concatenate([X[tr & sr], Xs])
    yc = np.r_[np.ones(n_sr_tr, int), np.zeros(n_s, int)]
    t = cpu()
    clf = make_classifier("hgb", random_state=a.seed + 4).fit(Xc, yc)
    rows.append(("classifier (HGB) training", cpu() - t,
                 f"{len(yc)} rows, iterations {[int(c.n_iter_) for c in clf.members_]}"))
    t = cpu()
    clf.predict_proba(X[~tr])
    rows.append(("scoring the held-out fold", cpu() - t, f"{int((~tr).sum())} events"))
    total = sum(r[1] for r in rows)
    print("| step | CPU s | share | |\n|---|---|---|---|")
    for name, s, note in rows:
        print(f"| {name} | {s:.1f} | {100 * s / total:.0f} % | {note} |")
    print(f"| fold total | {total:.1f} | | x {a.folds} folds: {a.folds * total:.0f} CPU-s per window |")
    print(f"# load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("# reproduce: python benchmarks/cathode_fold_profile.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
