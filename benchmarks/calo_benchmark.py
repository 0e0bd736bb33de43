"""Classifier AUC / separation powers of a generative model vs held-out GFLASH reference showers.

Runs (and skips what is already done, so reruns resume) the CLI pipeline

    excess calo simulate  -> train / validation / test reference files
    excess calo train     -> model (best epoch by chi2 of E_tot/E_inc on the validation file)
    excess calo generate  -> one shower per test incident energy
    excess calo evaluate  -> summary.json (separation powers, low/high-level classifier AUC + JSD)

and prints the figures with the command that reproduces them. Example:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calo_benchmark.py --dataset ds1 --model flow --epochs 20

The README's best ds1 figure (low-level AUC 0.53, the default flow on 100k showers) is

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calo_benchmark.py --dataset ds1 --model flow --epochs 16 \
        --extra-train 80000 --tag _100k_rel
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

EXCESS = [sys.executable, "-m", "excess.cli.main"]
SIZES = {"ds1": (20000, 5000, 10000), "ds2": (12000, 3000, 10000)}
PRESET = {"ds1": "ds1-like", "ds2": "ds2-like"}
SEEDS = {"ds1": (1, 2, 3), "ds2": (11, 12, 13)}


def run(args):
    print("+", shlex.join(args), file=sys.stderr, flush=True)
    subprocess.run(args, check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["ds1", "ds2"], default="ds1")
    ap.add_argument("--model", choices=["flow", "vae", "wgan"], default="flow")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--param", action="append", default=[], help="model hyperparameter key=value")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--train-file", type=Path, default=None,
                    help="train on this file instead of the simulated {ds}_train.h5 (e.g. a larger sample)")
    ap.add_argument("--extra-train", type=int, default=0,
                    help="simulate this many more training showers (seed 4) and train on {ds}_train.h5 plus them")
    ap.add_argument("--runs", type=Path, default=Path("runs/calo"))
    ap.add_argument("--tag", default="", help="suffix of the model directory")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help='torch device of training, generation and the classifiers: "auto", "cpu", "cuda[:N]"')
    ap.add_argument("--eval-max-showers", type=int, default=None, help="evaluate on the first N test showers")
    ap.add_argument("--classifier-epochs", type=int, default=30)
    a = ap.parse_args(argv)

    r = a.runs
    ds = a.dataset
    files = [r / f"{ds}_{part}.h5" for part in ("train", "val", "test")]
    for f, n, seed in zip(files, SIZES[ds], SEEDS[ds]):
        if not f.exists():
            run([*EXCESS, "-q", "calo", "simulate", "--preset", PRESET[ds], "-n", str(n), "--seed", str(seed), "-o", str(f)])
    mdir = r / f"{ds}_{a.model}{a.tag}"
    train_file = a.train_file or files[0]
    if a.extra_train and not a.train_file:
        extra = r / f"{ds}_train_extra{a.extra_train}.h5"
        if not extra.exists():
            run([*EXCESS, "-q", "calo", "simulate", "--preset", PRESET[ds], "-n", str(a.extra_train), "--seed", "4", "-o", str(extra)])
        train_file = r / f"{ds}_train_plus{a.extra_train}.h5"
        if not train_file.exists():
            from excess.calo.io import read_showers, write_showers

            parts = [read_showers(files[0]), read_showers(extra)]
            write_showers(train_file, np.concatenate([p.incident_energies for p in parts]),
                          np.concatenate([p.showers for p in parts]), geometry=parts[0].geometry)
    train = [*EXCESS, "-q", "calo", "train", "--model", a.model, "--data", str(train_file), "--validation", str(files[1]),
             "--epochs", str(a.epochs), "--threads", str(a.threads), "--device", a.device, "-o", str(mdir)]
    if a.n_train:
        train += ["--max-showers", str(a.n_train)]
    for p in a.param:
        train += ["--param", p]
    run(train)
    gen = r / f"{ds}_{a.model}{a.tag}_generated.h5"
    run([*EXCESS, "-q", "calo", "generate", "--model-dir", str(mdir), "--energies-from", str(files[2]), "--seed", "7",
         "--threads", str(a.threads), "--device", a.device, "-o", str(gen), "--force"])
    ev = r / f"{ds}_{a.model}{a.tag}_eval"
    evaluate = [*EXCESS, "-q", "calo", "evaluate", "--reference", str(files[2]), "--generated", str(gen), "--seed", "0",
                "--threads", str(a.threads), "--device", a.device, "--classifier-epochs", str(a.classifier_epochs), "-o", str(ev)]
    if a.eval_max_showers:
        evaluate += ["--max-showers", str(a.eval_max_showers)]
    run(evaluate)
    s = json.loads((ev / "summary.json").read_text())
    t = json.loads((mdir / "train_summary.json").read_text())
    print(f"\n{ds} ({PRESET[ds]} GFLASH reference), model {a.model}: trained on {t['n_train']} showers, "
          f"best epoch {t['best_epoch']} of {a.epochs} ({t['train_seconds']:.0f} s)")
    for k, c in s["classifiers"].items():
        print(f"  classifier {k:>4}-level: AUC {c['auc']:.3f}  JSD {c['jsd']:.3f}  (test {c['n_test']} showers)")
    sp = s["separation_powers"]
    print(f"  separation power: mean {s['mean_separation_power']:.4f}, E_tot/E_inc {sp['E_ratio']:.4f}, voxel spectrum {sp['voxel_energy']:.4f}")
    print("reproduce:", "OMP_NUM_THREADS=1 .venv/bin/python", shlex.join(["benchmarks/calo_benchmark.py", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
