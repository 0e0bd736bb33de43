"""The input fuzz of tests/test_fuzz_inputs.py as a before/after table (issue 20).

    PYTHONPATH=src python scripts/fuzz_before_after.py [N]            # this checkout
    PYTHONPATH=/work/base/src python scripts/fuzz_before_after.py [N] # before

Seeded random corruptions (numpy, not hypothesis, so both trees see the same inputs) of a small valid event
file (bytes and table contents) and of a valid config, run through the search's input stage in process
(training is replaced by a probe). Prints the count of each outcome:
  clean        an excess error, nothing left on disk
  stub         an excess error, but a run directory was left behind
  raw          another exception type (a raw class name or traceback for the user)
  silent       the search went ahead on data the oracle calls invalid (or a config breaking a documented rule)
  valid        the search went ahead on valid data (or a valid config)
  hang         no answer within 30 s (the HDF5 C library spinning on a corrupted header; the child is killed)
"""

from __future__ import annotations

import collections
import copy
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_fuzz_inputs import COLS, KEYS, VALID, _corrupt, _oracle_ok, _rules_hold  # noqa: E402

from excess import workflow  # noqa: E402
from excess.config import parse_config  # noqa: E402
from excess.data.io import write_events  # noqa: E402
from excess.errors import ConfigError, ExcessError  # noqa: E402
from excess.search.synthetic import toy_events  # noqa: E402


class _WouldTrain(Exception):
    pass


def input_stage(tmp: Path, data_path: Path) -> str:
    import excess.search as search
    from excess.search.scan import _check_events

    raw = {"data": {"path": str(data_path)}, "scan": {"windows": [[3300, 3700]], "global_toys": 0},
           "run": {"workers": 1}}
    cfg = parse_config(raw)
    seen = {}

    def probe(events, **kw):
        _check_events(events, kw["features"])  # what the scan checks first
        seen["ok"] = _oracle_ok(events)
        raise _WouldTrain

    orig = search.run_scan
    search.run_scan = probe
    run = tmp / "run"
    try:
        workflow.run_search(cfg, output=run)
    except _WouldTrain:
        return "valid" if seen["ok"] else "silent"
    except ExcessError:
        return "stub" if run.exists() else "clean"
    except Exception:
        return "raw"
    finally:
        search.run_scan = orig
        shutil.rmtree(run, ignore_errors=True)
    return "valid"


HANG_S = 30


def in_child(fn, *args) -> str:
    """``fn(*args)`` in a forked child; "hang" when it takes longer than HANG_S (a corrupted HDF5 header can make
    the HDF5 C library spin, which no Python code can interrupt)."""
    import os
    import select

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            out = fn(*args)
        except BaseException:
            out = "raw"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], HANG_S)
    if not ready:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(r)
        return "hang"
    out = os.read(r, 64).decode() or "raw"
    os.close(r)
    os.waitpid(pid, 0)
    return out


def byte_corruption(rng):
    k = rng.integers(5)
    if k == 0:
        return ("truncate", rng.random())
    if k == 1:
        return ("flip", [(rng.random(), int(rng.integers(256))) for _ in range(rng.integers(1, 20))])
    if k == 2:
        return ("zero", rng.random(), int(rng.integers(1, 4096)))
    if k == 3:
        return ("append", bytes(rng.integers(0, 256, rng.integers(1, 64)).astype(np.uint8)))
    return ("empty",)


def table_corruption(df, rng, path: Path) -> Path:
    df = df.copy()
    col = COLS[rng.integers(len(COLS))]
    k = rng.integers(5)
    if k == 0:
        df[col] = df[col].astype(float)
        df.loc[rng.choice(len(df), rng.integers(1, 30), replace=False), col] = [np.nan, np.inf, -np.inf][rng.integers(3)]
    elif k == 1:
        df[col] = df[col].astype(str)
        path = path.with_suffix(".parquet")
        df.to_parquet(path)
        return path
    elif k == 2:
        df = df.drop(columns=[col])
    elif k == 3:
        df = df.rename(columns={col: col.upper()})
    else:
        df = df.iloc[:0]
    write_events(df, path)
    return path


def config_mutation(rng):
    raw = copy.deepcopy(VALID)
    pool = [None, True, False, -1, 0, 0.0, 1, 1.5, 1e9, math.nan, math.inf, "", "mjj", "label", "mj1", "cuda:x",
            "idealized", [], [0.1, 0.1], [3700, 3300], [[3700, 3300]], [[3300, 3700], [3300, 3700]],
            [[3300, 3700, 3400, 4000]], ["mj1", "mj1"], ["mjj"], {"a": 1}, {"mjj": "M", "mj1": "M"}]
    for _ in range(rng.integers(1, 4)):
        keys = KEYS[rng.integers(len(KEYS))].split(".")
        sec = raw
        for k in keys[:-1]:
            sec = sec.setdefault(k, {})
        if rng.random() < 0.15:
            sec.pop(keys[-1], None)
        else:
            sec[keys[-1]] = copy.deepcopy(pool[rng.integers(len(pool))])
    return raw


def main(n: int = 200):
    rng = np.random.default_rng(20)
    df = toy_events(800, 0, random_state=2)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        valid = {}
        for ext in ("h5", "parquet"):
            write_events(df, tmp / f"v.{ext}")
            valid[ext] = (tmp / f"v.{ext}").read_bytes()
        arr = np.column_stack([df[c].to_numpy() / (1000.0 if c in ("mjj", "mj1", "delta_mj") else 1.0) for c in COLS])
        np.save(tmp / "v.npy", arr)
        valid["npy"] = (tmp / "v.npy").read_bytes()
        counts = collections.Counter()
        for i in range(n):
            fmt = ["h5", "parquet", "npy"][i % 3]
            p = tmp / f"c{i}.{fmt}"
            c = byte_corruption(rng)
            p.write_bytes(_corrupt(valid[fmt], c))
            res = in_child(input_stage, tmp, p)
            if res == "hang":
                print(f"hang (> {HANG_S} s): {fmt} {str(c)[:300]}", file=sys.stderr, flush=True)
            counts[res] += 1
        out["byte corruptions of .h5/.parquet/.npy"] = counts
        counts = collections.Counter()
        for i in range(n):
            p = table_corruption(df, rng, tmp / f"t{i}.h5")
            counts[in_child(input_stage, tmp, p)] += 1
        out["invalid tables (NaN/inf, text column, missing/renamed column, 0 rows)"] = counts
        counts = collections.Counter()
        for _ in range(n):
            raw = config_mutation(rng)
            try:
                cfg = parse_config(raw, "cfg.yaml")
            except ConfigError:
                counts["clean"] += 1
                continue
            except Exception:
                counts["raw"] += 1
                continue
            counts["valid" if _rules_hold(cfg) else "silent"] += 1
        out["config mutations"] = counts
        counts = collections.Counter()
        from excess.config import load_config

        text = yaml.safe_dump(VALID).encode()
        for i in range(n):
            p = tmp / f"cfg{i}.yaml"
            p.write_bytes(_corrupt(text, byte_corruption(rng)))
            try:
                cfg = load_config(p)
            except ConfigError:
                counts["clean"] += 1
                continue
            except Exception:
                counts["raw"] += 1
                continue
            counts["valid" if _rules_hold(cfg) else "silent"] += 1
        out["byte corruptions of the YAML config"] = counts
    for k, c in out.items():
        print(f"| {k} | " + ", ".join(f"{o} {c[o]}" for o in ("clean", "stub", "raw", "silent", "valid", "hang") if c[o]) + " |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
