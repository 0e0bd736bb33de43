"""Quark/gluon tagging benchmark: generation throughput and the AUCs of the CNN, PFN, EFN and tree baseline.

1. Generates (or resumes) q/g jets in the EnergyFlow recipe with :func:`excess.data.qg.generate_qg` and reports
   the generation throughput in jets/s per core from the chunks' own timing (every chunk in the directory,
   including those of earlier runs).
2. Trains every tagger with ``--seeds`` seeds on ``--n-train`` jets and tests on ``--n-test`` held-out jets
   (:func:`excess.tagging.jets.evaluate_taggers`), writing a run directory with metrics.json, plots and
   report.html, and prints AUC (mean +- std over seeds), gluon rejection at 50 % quark efficiency and the
   training time per seed.

Example (the figures in the README's "Jet tagging" section come from the command printed at the end)::

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/qg_tagging.py --data /tmp/qg --n-jets 12000 \
        --out /tmp/qg_run --seeds 2 --epochs 15

``--data`` may also point at the public EnergyFlow ``QG_jets*.npz`` files (``--n-jets 0`` skips generation).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def _seconds(m) -> float:
    """CPU seconds of a chunk (older chunks recorded only their wall time, which over-counts on a busy machine)."""
    return m["timing"].get("cpu_s", m["timing"]["total_s"])


def throughput(data_dir: Path) -> dict:
    metas = [json.loads(p.read_text()) for p in sorted(data_dir.glob("*.npz.json"))]
    n = sum(m["n_jets"] for m in metas)
    cpu = sum(_seconds(m) for m in metas)
    by = {}
    for f in ("quark", "gluon"):
        ms = [m for m in metas if m["flavour"] == f]
        nf, tf = sum(m["n_jets"] for m in ms), sum(_seconds(m) for m in ms)
        by[f] = {"n_jets": nf, "seconds": tf, "jets_per_s": nf / tf if tf else None,
                 "acceptance": nf / max(1, sum(m["n_pythia_events"] for m in ms))}
    return {"n_jets": n, "process_seconds": cpu, "timing": "cpu" if all("cpu_s" in m["timing"] for m in metas) else "wall", "jets_per_s_per_core": n / cpu if cpu else None, **by}


def main(argv=None):
    from excess.benchmarks.common import add_tagging_args, generate_jets

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tagging_args(ap, what="q/g .npz", n_jets=12000, chunk_size=1000, gen_seed=20261201,
                     taggers="hgb,efn,pfn,pfn_nopid,cnn", seeds=2, epochs=15)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 = both cores of the machine)")
    ap.add_argument("--param", action="append", default=[], metavar="TAGGER.KEY=VALUE",
                    help="constructor argument of one tagger (JSON value), e.g. pfn.lr_schedule=\"cosine\" "
                         "or pfn.batch_size=500; repeatable, overrides --epochs/--patience")
    args = ap.parse_args(argv)

    import torch

    from excess.data.qg import generate_qg, load_qg
    from excess.tagging.jets import evaluate_taggers

    torch.set_num_threads(args.threads)
    generate_jets(generate_qg, args)
    thr = throughput(args.data)
    d = load_qg(args.data, max_jets=args.max_jets)
    taggers = [t for t in args.taggers.split(",") if t]
    nn = {"epochs": args.epochs, "patience": args.patience}
    params = {t: dict(nn) for t in taggers if t != "hgb"}
    for item in args.param:
        key, _, value = item.partition("=")
        tagger, _, name = key.partition(".")
        if not name or not value:
            ap.error(f"--param wants TAGGER.KEY=VALUE, got {item!r}")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # a bare string such as cosine
        params.setdefault(tagger, {})[name] = value
    m = evaluate_taggers(d.X, d.y, args.out, taggers=taggers, n_train=args.n_train, n_test=args.n_test,
                         n_seeds=args.seeds, params=params, data_files=d.files)
    summary = {"command": shlex.join([sys.executable, *sys.argv]), "throughput": thr, "n_jets_read": len(d),
               "n_train": m["n_train"], "n_test": m["n_test"],
               "taggers": {k: {f: v[f] for f in ("auc_mean", "auc_std", "rejection_50_mean", "rejection_50_std",
                                                 "train_seconds_mean", "train_cpu_seconds_mean", "auc")} for k, v in m["taggers"].items()}}
    (args.out / "benchmark.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    t = thr
    print(f"\ngeneration: {t['jets_per_s_per_core']:.2f} jets/s per core "
          f"(quark {t['quark']['jets_per_s']:.2f}/s, acceptance {t['quark']['acceptance']:.3f}; "
          f"gluon {t['gluon']['jets_per_s']:.2f}/s, acceptance {t['gluon']['acceptance']:.3f})")
    print(f"training {m['n_train']} jets, testing {m['n_test']} jets, {m['n_seeds']} seeds:")
    for k, v in m["taggers"].items():
        print(f"  {k:10s} AUC {v['auc_mean']:.4f} +- {v['auc_std']:.4f}   R50 {v['rejection_50_mean']:.1f} "
              f"+- {v['rejection_50_std']:.1f}   train {v['train_seconds_mean']:.0f} s wall, "
              f"{v['train_cpu_seconds_mean']:.0f} s CPU per seed")


if __name__ == "__main__":
    main()
