"""Careless-user probes of issue 20: run each bad input through the ``excess`` CLI, print one table row per
probe (exit code, first line of stderr, what was left on disk).

    PYTHONPATH=src python scripts/failure_probes.py            # this checkout
    PYTHONPATH=/work/base/src python scripts/failure_probes.py # before

Each probe runs in a fresh temporary directory; nothing outside it is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXE = [sys.executable, "-c", "import sys; from excess.cli.main import main; sys.exit(main())"]
SEARCH_FAST = ["--set", "method.params={classifier_params: {n_members: 1, max_iter: 20}}", "--set", "scan.n_folds=2",
               "--set", "scan.global_toys=0", "--set", "run.workers=1", "--set", "scan.efficiencies=[0.1]"]


def run(args, cwd, timeout=300):
    env = {**os.environ, "EXCESS_NO_PROGRESS": "1", "MPLBACKEND": "Agg"}
    p = subprocess.run([*EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, (p.stderr.strip().splitlines() or [""])[-1][:160]


def events(n=4000, seed=0):
    from excess.search.synthetic import toy_events

    return toy_events(n, 0, random_state=seed)


def write(df, path):
    from excess.data.io import write_events

    write_events(df, path)


def cfg(d: Path, data_path, extra="", name="cfg.yaml"):
    p = d / name
    p.write_text(f"data: {{path: {data_path}}}\nscan:\n  windows: [[3300, 3700]]\n{extra}")
    return p


def left(d: Path, name="run"):
    r = d / name
    if not r.exists():
        return "no run dir"
    return "left: " + ",".join(sorted(x.name for x in r.iterdir()))


def probe_nan(d):
    df = events()
    df.loc[:9, "tau21_j1"] = np.nan
    df.loc[:2, "mj1"] = np.inf
    write(df, d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "run", *SEARCH_FAST], d)
    stub = left(d)
    write(events(), d / "ev.h5")  # fixed data, same -o
    rc2, msg2 = run(["search", str(cfg(d, d / "ev.h5")), "-o", "run", *SEARCH_FAST], d)
    return f"rc={rc} {msg} | {stub} | rerun after fix rc={rc2} {msg2 if rc2 else ''}"


def probe_missing_column(d):
    write(events().drop(columns=["tau21_j2"]), d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "run"], d)
    return f"rc={rc} {msg} | {left(d)}"


def probe_empty(d):
    write(events().iloc[:0], d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "run"], d)
    return f"rc={rc} {msg} | {left(d)}"


def probe_window_outside(d):
    write(events(), d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "run", "--set", "scan.windows=[[9000, 9400]]"], d)
    return f"rc={rc} {msg} | {left(d)}"


def probe_reversed_window_check(d):
    write(events(), d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "--check", "--set", "scan.windows=[[3700, 3300]]"], d)
    return f"--check rc={rc} {msg}"


def probe_semantic_check(d):
    write(events(), d / "ev.h5")
    out = []
    for ov in ("scan.features=[mj1, mj1]", "scan.efficiencies=[1.5]", "scan.windows=[[3300, 3700], [3500, 3900]]",
               "scan.efficiencies=[]", "scan.features=[]"):
        rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "--check", "--set", ov], d)
        out.append(f"{ov}: rc={rc} {msg[-70:]}")
    return " ; ".join(out)


def probe_corrupt_parquet(d):
    (d / "ev.parquet").write_bytes(b"PAR1 this is not parquet")
    rc, msg = run(["search", str(cfg(d, d / "ev.parquet")), "-o", "run"], d)
    return f"rc={rc} {msg} | {left(d)}"


def probe_string_column(d):
    df = events()
    df["tau21_j1"] = df["tau21_j1"].astype(str)
    df.to_parquet(d / "ev.parquet")
    rc, msg = run(["search", str(cfg(d, d / "ev.parquet")), "-o", "run", *SEARCH_FAST], d)
    return f"rc={rc} {msg} | {left(d)}"


def probe_report_not_a_run(d):
    (d / "notarun").mkdir()
    rc, msg = run(["report", "notarun"], d)
    return f"rc={rc} {msg}"


def probe_report_corrupt_metrics(d):
    (d / "run").mkdir()
    (d / "run" / "metrics.json").write_text('{"windows": [')
    rc, msg = run(["report", "run"], d)
    return f"rc={rc} {msg}"


def probe_output_under_file(d):
    write(events(), d / "ev.h5")
    (d / "afile").write_text("x")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "afile/run"], d)
    return f"rc={rc} {msg}"


def probe_output_unwritable(d):
    write(events(), d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "/proc/excess-run"], d)
    return f"rc={rc} {msg}"


def probe_relative_path(d):
    (d / "proj").mkdir()
    write(events(), d / "proj" / "ev.h5")
    c = cfg(d / "proj", "ev.h5")
    rc, msg = run(["search", str(c), "-o", "run", *SEARCH_FAST], d)  # cwd is not the config's folder
    return f"rc={rc} {msg if rc else 'ran'}"


def probe_no_result(d):
    write(events(), d / "ev.h5")
    rc, msg = run(["search", str(cfg(d, d / "ev.h5")), "-o", "run", *SEARCH_FAST, "--set", "scan.min_selected=100000"], d)
    return f"rc={rc} {msg}"


def probe_resume_finished(d):
    write(events(), d / "ev.h5")
    c = str(cfg(d, d / "ev.h5"))
    rc, _ = run(["search", c, "-o", "run", *SEARCH_FAST], d)
    m1 = json.loads((d / "run" / "metrics.json").read_text()).get("runtime_s") if rc in (0, 3) else None
    rc2, _ = run(["search", c, "-o", "run", "--resume", *SEARCH_FAST], d)
    m2 = json.loads((d / "run" / "metrics.json").read_text()).get("runtime_s") if rc2 in (0, 3) else None
    return f"rc={rc},{rc2} runtime_s {m1} -> {m2} ({'unchanged' if m1 == m2 else 'REWRITTEN'})"


def probe_ctrl_c(d):
    write(events(30000), d / "ev.h5")
    env = {**os.environ, "EXCESS_NO_PROGRESS": "1", "MPLBACKEND": "Agg"}
    args = [*EXE, "search", str(cfg(d, d / "ev.h5")), "-o", "run", "--set", "run.workers=1", "--set",
            "scan.global_toys=0"]
    p = subprocess.Popen(args, cwd=d, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    t0 = time.time()
    while not (d / "run" / "scan").exists() and time.time() - t0 < 120 and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    return f"rc={p.returncode} {(err.strip().splitlines() or [''])[-1][:150]}"


def probe_generate_fail(d):
    rc, msg = run(["generate", "dijet", "-n", "10", "-o", "out.h5", "-j", "1", "--pythia", "Bogus:flag = on"], d)
    chunks = (d / "out.h5.chunks").exists()
    return f"rc={rc} {msg[-90:]} | .chunks/ {'LEFT' if chunks else 'gone'}"


def probe_generate_overwrite(d):
    (d / "out.h5").write_text("precious")
    rc, msg = run(["generate", "dijet", "-n", "20", "--chunk-size", "20", "-o", "out.h5", "-j", "1",
                   "--process", "signal"], d)
    kept = (d / "out.h5").read_bytes() == b"precious"
    return f"rc={rc} {msg[-90:] if rc else ''} | existing file {'kept' if kept else 'OVERWRITTEN'}"


def probe_calo_bad_output(d):
    (d / "afile").write_text("x")
    rc, msg = run(["calo", "simulate", "-n", "5", "--preset", "ds1-like", "-o", "afile/showers.h5"], d)
    return f"rc={rc} {msg}"


def probe_calo_corrupt_input(d):
    (d / "bad.h5").write_bytes(b"\x89HDF\r\n garbage")
    rc, msg = run(["calo", "evaluate", "--generated", "bad.h5", "--reference", "bad.h5", "-o", "ev"], d)
    return f"rc={rc} {msg}"


PROBES = [v for k, v in list(globals().items()) if k.startswith("probe_")]

if __name__ == "__main__":
    only = sys.argv[1:]
    for f in PROBES:
        name = f.__name__[6:]
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                res = f(Path(tmp))
            except Exception as exc:  # a probe that could not run
                res = f"PROBE FAILED: {type(exc).__name__}: {exc}"
        print(f"| {name} | {res} |", flush=True)
