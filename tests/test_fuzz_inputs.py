"""Property-based input fuzz (issue 20): random corruptions of a small valid event file and of a valid config
never give a traceback (only :class:`excess.errors.ExcessError`), never leave a half-written run directory,
and never succeed silently on invalid data.

"Invalid" is judged by an oracle independent of the code under test: after a corruption, a search may only
go ahead if every column it uses is present, numeric and finite and the file has events; a config may only
parse if it obeys the documented rules.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from excess import workflow
from excess.config import parse_config
from excess.data.io import write_events
from excess.errors import ConfigError, ExcessError, InputError
from excess.search.synthetic import toy_events

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
COLS = ["mjj", *FEATURES]
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    df = toy_events(800, 0, random_state=2)
    files = {}
    for ext in ("h5", "parquet"):
        write_events(df, d / f"ev.{ext}")
        files[ext] = (d / f"ev.{ext}").read_bytes()
    arr = np.column_stack([df[c].to_numpy() / (1000.0 if c in ("mjj", "mj1", "delta_mj") else 1.0) for c in COLS])
    np.save(d / "ev.npy", arr)
    files["npy"] = (d / "ev.npy").read_bytes()
    return df, files


def _search(tmp, data_path, drop=False):
    """Run the search's input stage (training replaced by a probe); returns the events it would scan, or the
    ExcessError it raised. Anything else propagates and fails the test."""
    cfg = parse_config({"data": {"path": str(data_path), "drop_nonfinite": drop},
                        "scan": {"windows": [[3300, 3700]], "global_toys": 0}, "run": {"workers": 1}})
    seen = {}

    def probe(run_dir, cfg_, cfg_text, events, *rest):
        seen["events"] = events
        seen["dropped"] = rest[2]
        return "ran"

    run = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(workflow, "_run_in", probe)
        try:
            workflow.run_search(cfg, output=run)
        except ExcessError as exc:
            assert not run.exists(), "a failed search left a run directory"
            assert "Traceback" not in str(exc) and str(exc).strip()
            return None, exc
    return seen, None


def _oracle_ok(df: pd.DataFrame) -> bool:
    if len(df) == 0 or any(c not in df.columns for c in COLS):
        return False
    if not all(pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in COLS):
        return False
    return bool(np.isfinite(df[COLS].to_numpy(dtype=float)).all())


# ---- byte-level corruptions of valid files ------------------------------------------------------------------
corruption = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=20)),
    st.tuples(st.just("zero"), st.floats(0, 1), st.integers(1, 4096)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("empty"),),
)


def _corrupt(data: bytes, c) -> bytes:
    b = bytearray(data)
    if c[0] == "truncate":
        return bytes(b[: int(c[1] * (len(b) - 1))])
    if c[0] == "flip":
        for pos, val in c[1]:
            b[min(int(pos * len(b)), len(b) - 1)] = val
        return bytes(b)
    if c[0] == "zero":
        i = int(c[1] * len(b))
        b[i : i + c[2]] = bytes(len(b[i : i + c[2]]))
        return bytes(b)
    if c[0] == "append":
        return bytes(b) + c[1]
    return b""


@FUZZ
@given(fmt=st.sampled_from(["h5", "parquet", "npy"]), c=corruption)
def test_corrupted_file_never_tracebacks_or_passes_silently(tmp_path_factory, valid, fmt, c):
    tmp = tmp_path_factory.mktemp("c")
    path = tmp / f"ev.{fmt}"
    path.write_bytes(_corrupt(valid[1][fmt], c))
    seen, err = _search(tmp, path)
    if err is not None:
        assert isinstance(err, (InputError, ConfigError))
        assert str(path) in str(err) or "scan.windows" in str(err), str(err)
    else:
        assert _oracle_ok(seen["events"]), "a search went ahead on invalid data"


# ---- semantic corruptions of the table: always invalid, always named ----------------------------------------
table_corruption = st.one_of(
    st.tuples(st.just("nonfinite"), st.sampled_from(COLS), st.sampled_from([np.nan, np.inf, -np.inf]),
              st.lists(st.integers(0, 799), min_size=1, max_size=30, unique=True)),
    st.tuples(st.just("text"), st.sampled_from(COLS)),
    st.tuples(st.just("drop"), st.sampled_from(COLS)),
    st.tuples(st.just("rename"), st.sampled_from(COLS)),
    st.tuples(st.just("no_rows"),),
)


@FUZZ
@given(fmt=st.sampled_from(["h5", "parquet"]), c=table_corruption, drop=st.booleans())
def test_invalid_table_is_refused_naming_file_and_column(tmp_path_factory, valid, fmt, c, drop):
    df = valid[0].copy()
    kind = c[0]
    if kind == "nonfinite":
        df[c[1]] = df[c[1]].astype(float)
        df.loc[c[3], c[1]] = c[2]
    elif kind == "text":
        df[c[1]] = df[c[1]].astype(str)
        fmt = "parquet"  # the HDF5 writer of excess stores numbers only
    elif kind == "drop":
        df = df.drop(columns=[c[1]])
    elif kind == "rename":
        df = df.rename(columns={c[1]: c[1].upper()})
    else:
        df = df.iloc[:0]
    tmp = tmp_path_factory.mktemp("t")
    path = tmp / f"ev.{fmt}"
    if kind == "text":
        df.to_parquet(path)
    else:
        write_events(df, path)
    seen, err = _search(tmp, path, drop=drop)
    if kind == "nonfinite" and drop:
        assert err is None, err
        assert len(seen["events"]) == 800 - len(c[3]) and _oracle_ok(seen["events"])
        assert seen["dropped"][str(path)] == {"n_rows": len(c[3]), "per_column": {c[1]: len(c[3])}}
        return
    assert isinstance(err, InputError), "invalid data passed silently"
    msg = str(err)
    assert str(path) in msg
    if kind != "no_rows":
        assert c[1] in msg
    if kind == "nonfinite":
        assert f"{c[1]}: {len(c[3])}" in msg and "data.drop_nonfinite" in msg


# ---- the config -----------------------------------------------------------------------------------------------
VALID = {"data": {"path": "ev.h5"}, "method": {"name": "cwola", "params": {}},
         "scan": {"features": list(FEATURES), "efficiencies": [0.1, 0.01], "n_folds": 3,
                  "windows": [[3300, 3700], [3500, 3900, 3000, 4400]], "global_toys": 10},
         "run": {"output": "runs/x", "seed": 1, "workers": 1}}
KEYS = ["data.path", "data.demo", "data.columns", "data.scale_to_gev", "data.max_events", "data.drop_nonfinite",
        "method.name", "method.params", "scan.features", "scan.efficiencies", "scan.n_folds", "scan.windows",
        "scan.window_width", "scan.global_toys", "scan.alpha", "scan.fit_functions", "scan.function_test",
        "run.seed", "run.workers", "run.device", "run.output", "bogus", "scan.bogus"]
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10_000), st.floats(allow_nan=True, allow_infinity=True),
              st.text(max_size=8), st.sampled_from(["mjj", "label", "mj1", "cuda:x", "cpu", "idealized"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)
mutation = st.one_of(st.tuples(st.just("set"), st.sampled_from(KEYS), values),
                     st.tuples(st.just("del"), st.sampled_from(KEYS)))


def _apply(raw, m):
    import copy

    raw = copy.deepcopy(raw)
    keys = m[1].split(".")
    sec = raw
    for k in keys[:-1]:
        sec = sec.setdefault(k, {})
        if not isinstance(sec, dict):
            return raw
    if m[0] == "set":
        sec[keys[-1]] = m[2]
    else:
        sec.pop(keys[-1], None)
    return raw


def _rules_hold(cfg) -> bool:
    s = cfg.scan
    effs_ok = bool(s.efficiencies) and all(math.isfinite(e) and 0 < e <= 1 for e in s.efficiencies) \
        and len(set(s.efficiencies)) == len(s.efficiencies)
    feats_ok = bool(s.features) and len(set(s.features)) == len(s.features) and not {"mjj", "label"} & set(s.features)
    wins_ok = s.windows is None or all(
        all(math.isfinite(x) for x in w) and (w[0] < w[1]) and (len(w) == 2 or w[2] < w[0] < w[1] < w[3])
        for w in s.windows)
    data_ok = bool(cfg.data.path) != bool(cfg.data.demo)
    ideal_ok = cfg.method.name != "idealized" or bool(cfg.data.background_path)
    return effs_ok and feats_ok and wins_ok and data_ok and ideal_ok


@FUZZ
@given(muts=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_config_is_refused_or_obeys_the_rules(muts):
    raw = VALID
    for m in muts:
        raw = _apply(raw, m)
    try:
        cfg = parse_config(raw, "cfg.yaml")
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("cfg.yaml: ") and "Traceback" not in msg
        return
    assert _rules_hold(cfg), f"an invalid config passed: {raw}"


@FUZZ
@given(c=corruption)
def test_corrupted_yaml_is_refused_or_valid(tmp_path_factory, c):
    from excess.config import load_config

    p = tmp_path_factory.mktemp("y") / "cfg.yaml"
    p.write_bytes(_corrupt(yaml.safe_dump(VALID).encode(), c))
    try:
        cfg = load_config(p)
    except ConfigError as exc:
        assert str(p) in str(exc)
        return
    assert _rules_hold(cfg)
