"""Careless-user probes of the newer wings (issue 20): ``excess tag electrons``, ``jets``, ``dynamics``, ``streams``,
and ``generate mix|convert``. Each probe runs one bad input through the CLI in a fresh temporary directory and
prints a table row: command, input, exit code, first line of stderr, what was left on disk, and whether a raw
exception class name or a traceback reached the user.

    PYTHONPATH=src python scripts/wing_probes.py            # this checkout
    PYTHONPATH=src python scripts/wing_probes.py -k jets    # only probes whose command contains "jets"

Nothing outside the temporary directories is written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

EXE = [sys.executable, "-c", "import sys; from excess.cli.main import main; sys.exit(main())"]
RAW = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception|Invalid)\b(?!:? *\w+ *\()")
OURS = ("InputError", "ConfigError", "OutputError", "RunDirectoryError", "NonFiniteError", "GenerationError")


def run(args, cwd, timeout=120):
    env = {**os.environ, "EXCESS_NO_PROGRESS": "1", "MPLBACKEND": "Agg"}
    try:
        p = subprocess.run([*EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return "T/O", "timed out", False
    err = p.stderr.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("error") or ln.startswith("Error")] or err.splitlines()
    raw = bool(re.search(r"Traceback|internal error|\b\w+(Error|Exception|Invalid)\b", err)) and not any(
        o in err for o in OURS)
    raw = raw or "Traceback" in err or "internal error" in err
    return p.returncode, (lines[-1] if lines else "")[:150], raw


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*") if p.is_file()} | {
        str(p.relative_to(d)) + "/": None for p in d.rglob("*") if p.is_dir()}


def tree(d: Path, before: dict) -> str:
    now = snapshot(d)
    new = sorted(set(now) - set(before))
    changed = sorted(k for k in set(now) & set(before) if now[k] != before[k])
    out = (["new: " + ",".join(new)] if new else []) + (["OVERWRITTEN: " + ",".join(changed)] if changed else [])
    return "; ".join(out)[:70] or "-"


# ---------------------------------------------------------------- tiny inputs
def corrupt(d, name):
    (d / name).write_bytes(b"\x00garbage, not a real file\n" * 3)
    return name


def empty(d, name):
    (d / name).write_bytes(b"")
    return name


def regular_file(d):
    (d / "afile").write_text("x")
    return "afile"


def qg_npz(d, name="qg.npz", n=40, nan=False, keys=("X", "y")):
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(n, 6, 4)))
    X[..., 1] = rng.normal(size=(n, 6))
    X[..., 2] = rng.uniform(0, 6, size=(n, 6))
    X[..., 3] = 22
    if nan:
        X[0, 0, 0] = np.nan
    y = np.arange(n) % 2
    np.savez(d / name, **dict(zip(keys, (X, y))))
    return name


def gaia_csv(d, name="gaia.csv", drop=None, nan=False):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 50
    df = pd.DataFrame({"ra": rng.uniform(0, 360, n), "dec": rng.uniform(-30, 30, n), "parallax": rng.uniform(1, 2, n),
                       "parallax_error": np.full(n, 0.01), "pmra": rng.normal(size=n), "pmdec": rng.normal(size=n),
                       "radial_velocity": rng.normal(size=n) * 30})
    if nan:
        df.loc[:4, "pmra"] = np.nan
    if drop:
        df = df.drop(columns=[drop])
    df.to_csv(d / name, index=False)
    return name


def stars(d, name="stars.h5"):
    rc, msg, _ = run(["dynamics", "mock", "-n", "300", "-o", name], d)
    assert rc == 0, msg
    return name


def stream_mock(d, name="patch.parquet"):
    rc, msg, _ = run(["streams", "mock", name, "--radius", "2", "--density", "200"], d)
    assert rc == 0, msg
    return name


def events(d, name="ev.h5", n=500):
    from excess.data.io import write_events
    from excess.search.synthetic import toy_events

    write_events(toy_events(n, 20, random_state=0), d / name)
    return name


def tracks_parquet(d, name="tracks.parquet", drop=None):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 60
    from excess.data.tracks import TRACK_FEATURES

    df = pd.DataFrame({f: rng.uniform(1, 3, n) for f in TRACK_FEATURES})
    df["category"], df["label"] = "notrt_nocalo", np.arange(n) % 2
    if drop:
        df = df.drop(columns=[drop])
    df.to_parquet(d / name)
    return name


# ---------------------------------------------------------------- probes: (command label, input label, setup -> argv)
PROBES = [
    # tag electrons
    ("tag electrons train", "missing -i", lambda d: ["tag", "electrons", "train", "-i", "nope.parquet", "-o", "out"]),
    ("tag electrons train", "corrupt .parquet", lambda d: ["tag", "electrons", "train", "-i", corrupt(d, "t.parquet"), "-o", "out"]),
    ("tag electrons train", "empty .h5", lambda d: ["tag", "electrons", "train", "-i", empty(d, "t.h5"), "-o", "out"]),
    ("tag electrons train", "only one track category (dnn)", lambda d: ["tag", "electrons", "train", "-i", tracks_parquet(d), "-o", "out"]),
    ("tag electrons train", "dir that is not a sample", lambda d: (os.mkdir(d / "dd"), ["tag", "electrons", "train", "-i", "dd", "-o", "out"])[1]),
    ("tag electrons train", "-o under a file", lambda d: ["tag", "electrons", "train", "-i", tracks_parquet(d), "-o", f"{regular_file(d)}/out"]),
    ("tag electrons train", "-o existing training", lambda d: (
        run(["tag", "electrons", "train", "-i", tracks_parquet(d), "--model", "inclusive", "--epochs", "1", "--min-tracks", "5", "-o", "out"], d),
        ["tag", "electrons", "train", "-i", "tracks.parquet", "--model", "inclusive", "--epochs", "1", "--min-tracks", "5", "-o", "out"])[1]),
    ("tag electrons evaluate", "-m not a model dir", lambda d: (os.mkdir(d / "m"), ["tag", "electrons", "evaluate", "-m", "m", "-i", tracks_parquet(d), "-o", "out"])[1]),
    ("tag electrons impact", "-m not a model dir", lambda d: (os.mkdir(d / "m"), os.mkdir(d / "s"), ["tag", "electrons", "impact", "-m", "m", "-s", "s", "-b", "s", "-o", "out"])[2]),
    ("tag electrons simulate", "-o under a file", lambda d: ["tag", "electrons", "simulate", "-n", "5", "-o", f"{regular_file(d)}/out"]),
    # jets
    ("jets train", "missing data", lambda d: ["tag", "jets", "train", "nope.npz", "-o", "m"]),
    ("jets train", "corrupt .npz", lambda d: ["tag", "jets", "train", corrupt(d, "x.npz"), "-o", "m"]),
    ("jets train", "empty dir", lambda d: (os.mkdir(d / "dd"), ["tag", "jets", "train", "dd", "-o", "m"])[1]),
    ("jets train", ".npz without y", lambda d: ["tag", "jets", "train", qg_npz(d, keys=("X", "z")), "-o", "m"]),
    ("jets train", ".npz with NaN", lambda d: ["tag", "jets", "train", qg_npz(d, nan=True), "-o", "m"]),
    ("jets train", "-o under a file", lambda d: ["tag", "jets", "train", qg_npz(d), "-o", f"{regular_file(d)}/m", "--param", "epochs=1"]),
    ("jets train", "-o existing model", lambda d: (run(["tag", "jets", "train", qg_npz(d), "-o", "m", "--param", "epochs=1"], d),
                                                   ["tag", "jets", "train", "qg.npz", "-o", "m", "--param", "epochs=1"])[1]),
    ("jets evaluate", "-o under a file", lambda d: ["tag", "jets", "evaluate", qg_npz(d), "-o", f"{regular_file(d)}/r", "-t", "hgb", "--seeds", "1"]),
    ("jets evaluate", "unknown tagger", lambda d: ["tag", "jets", "evaluate", qg_npz(d), "-o", "r", "-t", "nosuch", "--seeds", "1"]),
    ("jets generate", "-o under a file", lambda d: ["tag", "jets", "generate", "-o", f"{regular_file(d)}/g", "-n", "4"]),
    # dynamics
    ("dynamics mock", "-o under a file", lambda d: ["dynamics", "mock", "-n", "10", "-o", f"{regular_file(d)}/s.h5"]),
    ("dynamics mock", "-o existing", lambda d: (stars(d), ["dynamics", "mock", "-n", "10", "-o", "stars.h5"])[1]),
    ("dynamics gaia", "corrupt csv", lambda d: ["dynamics", "gaia", corrupt(d, "g.csv"), "-o", "s.h5"]),
    ("dynamics gaia", "empty csv", lambda d: ["dynamics", "gaia", empty(d, "g.csv"), "-o", "s.h5"]),
    ("dynamics gaia", "csv without pmra", lambda d: ["dynamics", "gaia", gaia_csv(d, drop="pmra"), "-o", "s.h5"]),
    ("dynamics gaia", "csv with NaN", lambda d: ["dynamics", "gaia", gaia_csv(d, nan=True), "-o", "s.h5"]),
    ("dynamics gaia", "a directory", lambda d: (os.mkdir(d / "dd"), ["dynamics", "gaia", "dd", "-o", "s.h5"])[1]),
    ("dynamics fit", "corrupt stars .h5", lambda d: ["dynamics", "fit", corrupt(d, "s.h5"), "-o", "run"]),
    ("dynamics fit", "-o under a file", lambda d: ["dynamics", "fit", stars(d), "-o", f"{regular_file(d)}/run", "--epochs", "1", "--members", "1"]),
    ("dynamics fit", "-o existing fit", lambda d: (
        run(["dynamics", "fit", stars(d), "-o", "run", "--epochs", "1", "--members", "1", "--no-plots"], d),
        ["dynamics", "fit", "stars.h5", "-o", "run", "--epochs", "1", "--members", "1", "--no-plots"])[1]),
    ("dynamics fit", "bad --hidden", lambda d: ["dynamics", "fit", stars(d), "-o", "run", "--hidden", "a,b"]),
    ("dynamics accelerations", "dir not a run", lambda d: (os.mkdir(d / "dd"), ["dynamics", "accelerations", "dd"])[1]),
    ("dynamics density", "dir not a run", lambda d: (os.mkdir(d / "dd"), ["dynamics", "density", "dd"])[1]),
    # streams
    ("streams mock", "-o under a file", lambda d: ["streams", "mock", f"{regular_file(d)}/p.parquet", "--radius", "2", "--density", "200"]),
    ("streams mock", "unknown suffix", lambda d: ["streams", "mock", "p.xyz", "--radius", "2", "--density", "200"]),
    ("streams search", "corrupt .parquet", lambda d: ["streams", "search", corrupt(d, "p.parquet"), "-o", "run", "--fast"]),
    ("streams search", "empty .csv", lambda d: ["streams", "search", empty(d, "p.csv"), "-o", "run", "--fast"]),
    ("streams search", "csv lacking columns", lambda d: ["streams", "search", gaia_csv(d), "-o", "run", "--fast"]),
    ("streams search", "-o under a file", lambda d: ["streams", "search", stream_mock(d), "-o", f"{regular_file(d)}/run", "--fast"]),
    ("streams search", "-o existing run", lambda d: ((d / "run").mkdir(), (d / "run" / "search.json").write_text("{}"),
                                                     ["streams", "search", stream_mock(d), "-o", "run", "--fast"])[2]),
    ("streams search", "unknown method", lambda d: ["streams", "search", stream_mock(d), "-o", "run", "--method", "nosuch", "--fast"]),
    ("streams evaluate", "dir not a run", lambda d: (os.mkdir(d / "dd"), ["streams", "evaluate", "dd"])[1]),
    # generate mix / convert
    ("generate mix", "-o existing", lambda d: (events(d, "b.h5"), events(d, "s.h5"), (d / "out.h5").write_text("keep me"),
                                               ["generate", "mix", "-b", "b.h5", "-s", "s.h5", "-o", "out.h5", "--n-signal", "5"])[3]),
    ("generate convert", "output existing", lambda d: (events(d, "b.h5"), (d / "out.parquet").write_text("keep me"),
                                                      ["generate", "convert", "b.h5", "out.parquet"])[2]),
    ("generate mix", "-o under a file", lambda d: (events(d, "b.h5"), events(d, "s.h5"),
                                                   ["generate", "mix", "-b", "b.h5", "-s", "s.h5", "-o", f"{regular_file(d)}/o.h5", "--n-signal", "5"])[2]),
]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[argv.index("-k") + 1] if "-k" in argv else ""
    print("| command | input | exit | first line of the message | left on disk | raw class/traceback |")
    print("|---|---|---|---|---|---|")
    for cmd, what, setup in PROBES:
        if only and only not in cmd:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            args = setup(d)
            before = snapshot(d)
            rc, msg, raw = run(args, d)
            left = tree(d, before)
        msg = msg.replace("|", "/")
        print(f"| {cmd} | {what} | {rc} | {msg} | {left} | {'YES' if raw else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
