"""Issue 20, "failure is part of the product": every defect found by the careless-user probe has a test here.

The CLI is called in process (``excess.cli.main.main``): one line on stderr, a meaningful exit code, nothing
left in the way. A search that fails on its inputs fails before any training, so these tests are fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from excess.cli.main import main
from excess.config import load_config, parse_config
from excess.data.inputs import check_events, load_events
from excess.data.io import write_events
from excess.errors import (
    EXIT_INTERRUPTED,
    EXIT_NO_RESULT,
    ConfigError,
    InputError,
    NonFiniteError,
    OutputError,
    RunDirectoryError,
)
from excess.search.synthetic import toy_events

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]


@pytest.fixture(scope="module")
def good():
    return toy_events(3000, 0, random_state=1)


def _cfg(d, data_path, extra=None):
    raw = {"data": {"path": str(data_path)}, "scan": {"windows": [[3300, 3700]], "global_toys": 0},
           "run": {"workers": 1}}
    for k, v in (extra or {}).items():
        raw[k].update(v)
    p = d / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _excess(capsys, *args):
    rc = main(["--quiet", *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _one_error_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    line = lines[0]
    for raw in ("ArrowInvalid", "FileNotFoundError", "JSONDecodeError", "NotADirectoryError", "PermissionError",
                "KeyError", "ValueError", "internal error"):
        assert raw not in line, line
    return line


# --- 1. a failed search leaves no stub run directory; the rerun with fixed data just works -------------------
@pytest.mark.parametrize("corrupt, match", [
    (lambda df: df.assign(tau21_j1=np.where(np.arange(len(df)) < 7, np.nan, df["tau21_j1"])),
     r"7 of 3000 events have NaN/inf values \(tau21_j1: 7\).*data\.drop_nonfinite"),
    (lambda df: df.drop(columns=["tau21_j2"]), r"missing column\(s\) \['tau21_j2'\].*data\.columns"),
    (lambda df: df.iloc[:0], r"holds no events \(0 rows\).*data\.path"),
])
def test_bad_data_leaves_no_run_directory(tmp_path, capsys, good, corrupt, match):
    write_events(corrupt(good.copy()), tmp_path / "ev.h5")
    cfg = _cfg(tmp_path, tmp_path / "ev.h5")
    rc, err = _excess(capsys, "search", cfg, "-o", tmp_path / "run")
    assert rc == 1
    line = _one_error_line(err)
    assert str(tmp_path / "ev.h5") in line
    import re

    assert re.search(match, line), line
    assert not (tmp_path / "run").exists()


def test_window_outside_data_names_the_key_and_leaves_nothing(tmp_path, capsys, good):
    write_events(good, tmp_path / "ev.h5")
    cfg = _cfg(tmp_path, tmp_path / "ev.h5", {"scan": {"windows": [[9000, 9400]]}})
    rc, err = _excess(capsys, "search", cfg, "-o", tmp_path / "run")
    assert rc == 1 and "scan.windows" in _one_error_line(err) and "outside the data range" in err
    assert not (tmp_path / "run").exists()


def test_stub_of_an_older_failure_does_not_block_the_rerun(tmp_path, good, monkeypatch):
    """A run directory with config.yaml and no result (left by an older excess or a kill -9) is reused."""
    from excess import workflow

    write_events(good, tmp_path / "ev.h5")
    cfg = load_config(_cfg(tmp_path, tmp_path / "ev.h5"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {path: other.h5}\n")
    (run / "provenance.json").write_text("{}")
    calls = []
    monkeypatch.setattr(workflow, "_run_in", lambda *a: calls.append(a) or "ran")
    assert workflow.run_search(cfg, output=run) == "ran" and calls


def test_failure_during_the_run_removes_a_directory_it_created(tmp_path, good, monkeypatch):
    from excess import workflow

    write_events(good, tmp_path / "ev.h5")
    cfg = load_config(_cfg(tmp_path, tmp_path / "ev.h5"))

    def boom(run_dir, *a):
        (run_dir / "config.yaml").write_text("x")
        raise InputError("fails before any result")

    monkeypatch.setattr(workflow, "_run_in", boom)
    with pytest.raises(InputError):
        workflow.run_search(cfg, output=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_drop_nonfinite_drops_and_records(tmp_path, good):
    df = good.copy()
    df.loc[:4, "mjj"] = np.inf
    df.loc[3:9, "mj1"] = np.nan
    with pytest.raises(NonFiniteError) as info:
        check_events(df, ["mjj", *FEATURES], source="f.h5")
    assert info.value.counts == {"mjj": 5, "mj1": 7} and info.value.n_rows == 10
    out, dropped = check_events(df, ["mjj", *FEATURES], source="f.h5", drop_nonfinite=True)
    assert len(out) == len(df) - 10 and np.isfinite(out[["mjj", *FEATURES]].to_numpy()).all()
    assert dropped == {"n_rows": 10, "per_column": {"mjj": 5, "mj1": 7}}
    assert parse_config({"data": {"path": "x.h5", "drop_nonfinite": True}}).data.drop_nonfinite


# --- 2. semantic config rules are caught by --check, each naming its key path ----------------------------------
@pytest.mark.parametrize("override, key", [
    ("scan.windows=[[3700, 3300]]", r"scan\.windows\.0: .*sr_lo < sr_hi"),
    ("scan.windows=[[3300, 3700], [3300, 3700]]", r"scan\.windows: .*same window"),
    ("scan.windows=[[3300, 3700, 3400, 4100]]", r"scan\.windows\.0: .*sidebands"),
    ("scan.windows=[[.nan, 3700]]", r"scan\.windows\.0: .*finite"),
    ("scan.efficiencies=[0.1, 0]", r"scan\.efficiencies\.1: .*\(0, 1\]"),
    ("scan.efficiencies=[0.1, 0.1]", r"scan\.efficiencies: .*distinct"),
    ("scan.efficiencies=[]", r"scan\.efficiencies"),
    ("scan.features=[mj1, mj1]", r"scan\.features: .*distinct"),
    ("scan.features=[mj1, mjj]", r"scan\.features\.1: .*resonant feature"),
    ("scan.features=[label]", r"scan\.features\.0: .*leak"),
    ("method.name=idealized", r"data\.background_path: .*idealized"),
    ("data.columns={mjj: M, mj1: M}", r"data\.columns: .*mapped twice"),
])
def test_check_catches_semantic_rules(tmp_path, capsys, override, key):
    import re

    cfg = _cfg(tmp_path, "ev.h5")
    rc, err = _excess(capsys, "search", cfg, "--check", "--set", override)
    assert rc == 1 and re.search(key, _one_error_line(err)), err


def test_check_accepts_a_valid_config(tmp_path, capsys):
    rc = main(["search", str(_cfg(tmp_path, "ev.h5")), "--check"])
    assert rc == 0 and "windows" in capsys.readouterr().out


# --- 3. no raw exception classes ---------------------------------------------------------------------------------
def test_corrupt_parquet_is_named(tmp_path, capsys):
    (tmp_path / "ev.parquet").write_bytes(b"PAR1 not really")
    rc, err = _excess(capsys, "search", _cfg(tmp_path, tmp_path / "ev.parquet"), "-o", tmp_path / "run")
    assert rc == 1 and "not a readable Parquet file" in _one_error_line(err) and "ev.parquet" in err
    assert not (tmp_path / "run").exists()


def test_report_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    rc, err = _excess(capsys, "report", tmp_path / "notarun")
    assert rc == 1 and "not a finished run directory (no metrics.json)" in _one_error_line(err)
    rc, err = _excess(capsys, "report", tmp_path / "missing")
    assert rc == 1 and "no such run directory" in _one_error_line(err)


def test_report_on_corrupt_metrics_names_the_file(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"windows": [')
    rc, err = _excess(capsys, "report", tmp_path / "run")
    line = _one_error_line(err)
    assert rc == 1 and "metrics.json: not valid JSON" in line
    with pytest.raises(InputError):
        from excess.report.html import write_report

        write_report(tmp_path / "run")


def test_output_under_a_file(tmp_path, capsys, good):
    write_events(good, tmp_path / "ev.h5")
    (tmp_path / "afile").write_text("x")
    rc, err = _excess(capsys, "search", _cfg(tmp_path, tmp_path / "ev.h5"), "-o", tmp_path / "afile" / "run")
    assert rc == 1 and "is a file, not a folder" in _one_error_line(err)
    assert (tmp_path / "afile").read_text() == "x"


def test_unwritable_output_is_an_output_error(tmp_path, monkeypatch):
    """Root ignores permission bits, so the refusal is simulated at the one place folders are made."""
    from pathlib import Path

    from excess._util import ensure_dir

    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(OutputError, match=r"cannot create this folder \(Permission denied\)"):
        ensure_dir(tmp_path / "x" / "run")


def test_unexpected_oserror_still_names_the_path(capsys, monkeypatch):
    import excess.cli.search as cs

    def boom(*a, **k):
        raise IsADirectoryError(21, "Is a directory", "/some/where")

    monkeypatch.setattr("excess.config.load_config", boom)
    rc, err = _excess(capsys, "search", "x.yaml")
    assert rc == 1 and "/some/where: Is a directory" in _one_error_line(err)
    assert cs  # imported


# --- 4. relative paths resolve against the config's folder -----------------------------------------------------
def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    p = tmp_path / "proj" / "cfg.yaml"
    p.write_text("data: {path: ev.h5, background_path: ../bg.h5}\nrun: {output: runs/a}\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(p, ["data.max_events=10"])
    assert cfg.data.path == str((tmp_path / "proj" / "ev.h5").resolve())
    assert cfg.data.background_path == str((tmp_path / "proj" / ".." / "bg.h5").resolve())
    assert cfg.run.output == str((tmp_path / "proj" / "runs" / "a").resolve())
    cfg = load_config(p, ["data.path=other.h5"])  # command-line values stay relative to the working directory
    assert cfg.data.path == "other.h5"


# --- 5. exit codes: 3 when the search ran but no window gave a result; Ctrl-C says --resume --------------------
def _outcome(best):
    from excess.workflow import SearchOutcome

    return SearchOutcome(run_dir="r", report="r/report.html", best_window=best, best_efficiency=best and 0.1,
                         z_local=best and 2.0,
                         z_global=None, z_global_is_limit=False, z_trials=None, m_res=None, m_x=None, m_y=None,
                         runtime_s=1.0, no_result_reasons=("SR 3300-3700: no_result (7 events selected, need 20)",))


def test_no_result_exits_3_with_the_reasons(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("excess.workflow.run_search", lambda *a, **k: _outcome(None))
    rc, err = _excess(capsys, "search", _cfg(tmp_path, "ev.h5"))
    assert rc == EXIT_NO_RESULT == 3
    assert "No window produced a result" in err and "SR 3300-3700: no_result (7 events selected" in err
    monkeypatch.setattr("excess.workflow.run_search", lambda *a, **k: _outcome("SR 3300-3700"))
    assert _excess(capsys, "search", _cfg(tmp_path, "ev.h5"))[0] == 0


def test_no_result_reasons_from_metrics():
    from excess.workflow import no_result_reasons

    metrics = {"windows": [
        {"window": {"label": "SR 3300-3700"}, "status": "ok", "tests": [
            {"status": "no_result", "reason": "12 events selected, need 20"}]},
        {"window": {"label": "SR 3500-3900"}, "status": "no_result", "reason": "empty sideband", "tests": []}]}
    assert no_result_reasons(metrics) == ["SR 3300-3700: no_result (12 events selected, need 20)",
                                          "SR 3500-3900: no_result (empty sideband)"]


def test_ctrl_c_says_resume_continues(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("excess.workflow.run_search", interrupted)
    rc, err = _excess(capsys, "search", _cfg(tmp_path, "ev.h5"))
    assert rc == EXIT_INTERRUPTED and "--resume" in err and "Aborted" not in err


# --- 6. smaller ones ------------------------------------------------------------------------------------------------
def test_resume_on_a_finished_run_rewrites_nothing(tmp_path, good, monkeypatch):
    from excess import workflow

    write_events(good, tmp_path / "ev.h5")
    cfg = load_config(_cfg(tmp_path, tmp_path / "ev.h5"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    metrics = {"runtime_s": 12.5, "best": {"window": "SR 3300-3700", "efficiency": 0.1, "z_local": 2.0}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    for n in ("predictions.h5", "report.html"):
        (run / n).write_text("x")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    monkeypatch.setattr(workflow, "_run_in", lambda *a: pytest.fail("a finished run was run again"))
    out = workflow.run_search(cfg, output=run, resume=True)
    assert out.runtime_s == 12.5 and out.best_window == "SR 3300-3700"
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    with pytest.raises(RunDirectoryError, match="--resume to continue"):
        workflow.run_search(cfg, output=run)


def test_string_column_is_an_error_not_coerced(tmp_path, good):
    df = good.copy()
    df["tau21_j1"] = df["tau21_j1"].astype(str)
    df.to_parquet(tmp_path / "ev.parquet")
    events = load_events(tmp_path / "ev.parquet")
    with pytest.raises(InputError, match=r"ev\.parquet: column 'tau21_j1' holds .* not numbers"):
        check_events(events, ["mjj", *FEATURES], source=tmp_path / "ev.parquet")


def test_generate_refuses_to_overwrite_and_leaves_no_staging_folder(tmp_path, capsys):
    pytest.importorskip("pythia8mc")
    (tmp_path / "out.h5").write_text("precious")
    rc, err = _excess(capsys, "generate", "dijet", "-n", "10", "-o", tmp_path / "out.h5", "-j", "1")
    assert rc == 1 and "exists; pass --force" in _one_error_line(err)
    assert (tmp_path / "out.h5").read_text() == "precious"
    rc, err = _excess(capsys, "generate", "dijet", "-n", "10", "-o", tmp_path / "new.h5", "-j", "1",
                      "--pythia", "Bogus:flag = on")
    assert rc == 1 and "Pythia rejected the setting" in _one_error_line(err)
    assert not (tmp_path / "new.h5.chunks").exists() and not (tmp_path / "new.h5").exists()


def test_calo_output_under_a_file_fails_before_the_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, err = _excess(capsys, "calo", "simulate", "-n", "2", "--preset", "ds1-like", "-o", tmp_path / "afile" / "s.h5")
    assert rc == 1 and "is a file, not a folder" in _one_error_line(err)
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n garbage")
    rc, err = _excess(capsys, "calo", "evaluate", "--reference", tmp_path / "bad.h5", "--generated",
                      tmp_path / "bad.h5", "-o", tmp_path / "ev")
    assert rc == 1 and "not a readable HDF5 file" in _one_error_line(err)
    assert not (tmp_path / "ev").exists()


def test_readme_states_the_contract_and_its_exit_codes():
    from pathlib import Path

    import excess.errors as E

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "## What excess promises when things go wrong" in readme
    section = readme.split("## What excess promises when things go wrong")[1].split("\n## ")[0]
    for code in (E.EXIT_OK, E.EXIT_ERROR, E.EXIT_USAGE, E.EXIT_NO_RESULT, E.EXIT_INTERRUPTED):
        assert f"| {code} |" in section
    assert readme.index("## Command line") < readme.index("## What excess promises")


def test_damaged_resume_files_are_recomputed_not_fatal(tmp_path):
    from excess.search.store import ResumeStore
    from excess.stats.windows import Window

    store = ResumeStore(tmp_path / "scan")
    (tmp_path / "scan" / "folds" / "u_f0.npz").write_bytes(b"PK\x03\x04 truncated")
    assert store.fold("u", 0, "fp") is None
    w = Window.around((3300, 3700))
    (tmp_path / "scan" / "windows" / f"{w.key}.json").write_text("{")
    assert store.window(w, "fp") is None


def test_dropped_rows_are_recorded_in_provenance(tmp_path, good, monkeypatch):
    from excess import workflow

    df = good.copy()
    df.loc[:5, "tau21_j2"] = np.nan
    write_events(df, tmp_path / "ev.h5")
    cfg = load_config(_cfg(tmp_path, tmp_path / "ev.h5", {"data": {"drop_nonfinite": True}}))
    seen = {}

    def probe(events, **kw):
        seen["prov"] = json.loads((tmp_path / "run" / "provenance.json").read_text())
        seen["n"] = len(events)
        raise KeyboardInterrupt  # stop before any training: nothing finished, so the run directory goes

    monkeypatch.setattr("excess.search.run_scan", probe)
    with pytest.raises(KeyboardInterrupt):
        workflow.run_search(cfg, output=tmp_path / "run")
    assert seen["n"] == len(df) - 6 and seen["prov"]["n_events"] == len(df) - 6
    assert seen["prov"]["dropped_nonfinite"] == {str(tmp_path / "ev.h5"): {"n_rows": 6, "per_column": {"tau21_j2": 6}}}
    assert not (tmp_path / "run").exists()
