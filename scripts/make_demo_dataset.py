"""Build the packaged demo dataset ``src/excess/datasets/lhco_demo.h5`` from generated samples.

The demo is an LHCO-like dataset made with excess itself (preset ``lhco``: Pythia 8 + FastJet,
MPI off, Delphes-CMS-like detector response, WTA axes), shipped so that ``make demo`` needs no
hours of generation:

    excess generate dijet -n 1000000 --process qcd    --seed 1      -o ~/.cache/excess/lhco/background
    excess generate dijet -n 100000  --process signal --seed 123456 -o ~/.cache/excess/lhco/signal
    python scripts/make_demo_dataset.py --n-background 100000 --n-signal 500

Only the standard features, the jet masses and the truth label are kept (float32).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from excess.data.io import read_events, write_events  # noqa: E402
from excess.data.mix import inject_signal  # noqa: E402

COLUMNS = ["mjj", "mj1", "mj2", "delta_mj", "tau21_j1", "tau21_j2", "label"]


def main(argv=None):
    cache = Path.home() / ".cache" / "excess" / "lhco"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--background", default=str(cache / "background"))
    ap.add_argument("--signal", default=str(cache / "signal"))
    ap.add_argument("--n-background", type=int, default=100_000)
    ap.add_argument("--n-signal", type=int, default=500)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "src/excess/datasets/lhco_demo.h5"))
    args = ap.parse_args(argv)
    bkg = read_events(args.background, columns=COLUMNS, max_events=args.n_background)
    if len(bkg) < args.n_background:
        raise SystemExit(f"only {len(bkg)} background events available in {args.background}")
    sig = read_events(args.signal, columns=COLUMNS)
    data, info = inject_signal(bkg, sig, n_signal=args.n_signal, random_state=np.random.default_rng(args.seed))
    for c in COLUMNS[:-1]:
        data[c] = data[c].astype(np.float32)
    meta = {
        "description": "excess demo: LHCO-like QCD dijets with an injected W'(3500) -> X(500) Y(100) signal",
        "mix": info.to_dict(),
        "background": {k: v for k, v in bkg.attrs["excess"].items() if k in ("settings", "seeds", "counts", "cross_section")},
        "signal": {k: v for k, v in sig.attrs["excess"].items() if k in ("settings", "seeds", "counts")},
        "recipe": "scripts/make_demo_dataset.py " + " ".join(argv or sys.argv[1:]),
    }
    write_events(data, args.output, meta)
    print(f"wrote {args.output}: {len(data)} events, {info.n_signal} signal injected "
          f"({info.n_signal_sr} in the SR 3.3-3.7 TeV over {info.n_background_sr} background: "
          f"S/B = {info.s_over_b_sr:.4f}, S/sqrt(B) = {info.s_over_sqrt_b_sr:.2f})")


if __name__ == "__main__":
    main()
