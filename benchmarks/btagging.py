"""b-tagging benchmark: generation throughput, training times, and light/c rejection of RNNIP, deep sets and IP3D.

1. Generates (or resumes) b/c/light jets with :func:`excess.data.btag.generate_btag` (Pythia 8 ttbar + QCD,
   track impact parameters through the shared detector model) and reports the throughput in jets/s per core
   from the chunks' own CPU time, per process (every chunk in the directory, including earlier runs).
2. Trains every tagger with ``--seeds`` seeds on ``--n-train`` jets, tests on ``--n-test`` held-out jets
   (:func:`excess.tagging.jets.btag_evaluate.evaluate_btaggers`, a run directory with metrics.json, plots and
   report.html) and prints light and c rejection at 70/77/85 % b efficiency (mean +- std over seeds), the
   b-vs-light AUC, the training wall and CPU time per seed, and the 77 % rejections per jet-pT bin.

Example (the README's b-tagging figures come from the command printed at the end)::

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/btagging.py --data /tmp/btag --n-jets 20000 \
        --out /tmp/btag_run --seeds 3 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def throughput(data_dir: Path) -> dict:
    metas = [json.loads(p.read_text()) for p in sorted(data_dir.glob("*.npz.json"))]
    out = {}
    for proc in ("ttbar", "qcd"):
        ms = [m for m in metas if m["process"] == proc]
        n, cpu = sum(m["n_jets"] for m in ms), sum(m["timing"]["cpu_s"] for m in ms)
        wall = sum(m["timing"]["total_s"] for m in ms)
        flav = {k: sum(m["flavour_counts"][k] for m in ms) for k in ("b", "c", "light")}
        out[proc] = {"n_jets": n, "cpu_s": cpu, "wall_s": wall, "jets_per_s_per_core": n / cpu if cpu else None,
                     "jets_per_event": n / max(1, sum(m["n_pythia_events"] for m in ms)), "flavours": flav}
    n = sum(v["n_jets"] for v in out.values())
    cpu = sum(v["cpu_s"] for v in out.values())
    out["all"] = {"n_jets": n, "cpu_s": cpu, "jets_per_s_per_core": n / cpu if cpu else None}
    return out


def main(argv=None):
    from excess.benchmarks.common import add_tagging_args, generate_jets

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tagging_args(ap, what="b-tagging", n_jets=20000, chunk_size=5000, gen_seed=101, taggers="ip3d,deepsets,rnnip",
                     seeds=3, epochs=20)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from excess.data.btag import generate_btag, load_btag
    from excess.tagging.jets.btag_evaluate import WORKING_POINTS, evaluate_btaggers

    torch.set_num_threads(args.threads)
    generate_jets(generate_btag, args)
    thr = throughput(args.data)
    d = load_btag(args.data, max_jets=args.max_jets)
    taggers = [t for t in args.taggers.split(",") if t]
    nn = {"epochs": args.epochs, "patience": args.patience, "batch_size": args.batch_size}
    params = {t: dict(nn) for t in taggers if t != "ip3d"}
    m = evaluate_btaggers(d.X, d.y, d.jets["jet_pt"], args.out, taggers=taggers, n_train=args.n_train,
                          n_test=args.n_test, n_seeds=args.seeds, params=params, data_files=d.files,
                          jet_eta=d.jets["jet_eta"])
    print("\n## generation throughput (CPU time of the chunks; Pythia 8 + FastJet + track model)")
    for proc in ("ttbar", "qcd", "all"):
        t = thr[proc]
        if t["n_jets"]:
            extra = (f", {t['jets_per_event']:.2f} jets/event, flavours {t['flavours']}" if proc != "all" else "")
            print(f"{proc:6s} {t['n_jets']:7d} jets  {t['jets_per_s_per_core']:7.1f} jets/s per core{extra}")
    tc = m["test_counts"]
    print(f"\n## rejection (test: {tc['b']} b / {tc['c']} c / {tc['light']} light; {m['n_train']} training jets; "
          f"{m['n_seeds']} seeds; f_c = {m['f_c']})")
    head = " ".join(f"{'light@' + str(int(100 * w)):>14s} {'c@' + str(int(100 * w)):>12s}" for w in WORKING_POINTS)
    print(f"{'tagger':9s} {head} {'AUC b/l':>15s} {'train wall s':>12s} {'train CPU s':>11s}")
    for name, r in m["taggers"].items():
        cells = " ".join(f"{r[f'light_rej_{int(100 * w)}_mean']:7.1f}+-{r[f'light_rej_{int(100 * w)}_std']:5.1f} "
                         f"{r[f'c_rej_{int(100 * w)}_mean']:5.2f}+-{r[f'c_rej_{int(100 * w)}_std']:4.2f}"
                         for w in WORKING_POINTS)
        print(f"{name:9s} {cells} {r['auc_b_vs_light_mean']:.4f}+-{r['auc_b_vs_light_std']:.4f} "
              f"{r['train_seconds_mean']:12.0f} {r['train_cpu_seconds_mean']:11.0f}")
    print("\n## per jet-pT bin at the inclusive 77 % cut (mean over seeds)")
    for name, r in m["taggers"].items():
        row = "  ".join(f"{b['pt_lo']:.0f}-{b['pt_hi']:.0f}: eff_b {b['b_eff']:.2f} light {b['light_rej']:.1f} "
                        f"c {b['c_rej']:.2f}" for b in r["pt_bins_77_mean"])
        print(f"{name:9s} {row}")
    print(f"\nrun directory: {args.out} (report.html)")
    print("command: OMP_NUM_THREADS=1 " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
