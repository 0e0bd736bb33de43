"""End to end: the SIC benchmark on tiny generated-like files, through the library and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest


def _events(n, signal, rng):
    m = rng.normal(3500, 100, n) if signal else rng.uniform(2500, 4500, n)
    mj1 = rng.normal(100 if signal else 60, 10, n).clip(1)
    return pd.DataFrame({
        "mjj": m, "mj1": mj1, "delta_mj": rng.normal(400 if signal else 80, 30, n).clip(0),
        "tau21_j1": rng.uniform(0.1, 0.4 if signal else 0.9, n), "tau21_j2": rng.uniform(0.1, 0.9, n),
        "label": np.full(n, int(signal), np.int8),
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from excess.data.io import write_events

    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("lhco")
    write_events(_events(8000, False, rng), d / "bkg.h5")
    write_events(_events(3000, True, rng), d / "sig.h5")
    return d / "bkg.h5", d / "sig.h5"


def test_sic_benchmark_library(files, tmp_path):
    from excess.benchmarks import SICBenchmarkConfig, run_sic_benchmark

    cfg = SICBenchmarkConfig(background=str(files[0]), signal=str(files[1]), s_over_b=(0.2,), seeds=(0,),
                             methods=("supervised", "idealized", "cwola"), n_noise=(0, 2), fast=True)
    res = run_sic_benchmark(cfg, tmp_path / "out")
    out = json.loads((tmp_path / "out" / "sic_benchmark.json").read_text())
    assert {r["method"] for r in out["rows"]} == {"supervised", "idealized", "cwola"}
    assert (tmp_path / "out" / "max_sic_noise2.png").stat().st_size > 1000
    sup = [e for e in res.summary if e["method"] == "supervised" and e["n_noise"] == 0][0]
    assert sup["max_sic_mean"] > 3  # an easy toy
    assert "| supervised |" in res.markdown()
    # rerun resumes from rows.jsonl without refitting
    again = run_sic_benchmark(cfg, tmp_path / "out")
    assert json.dumps(again.rows, default=float) == json.dumps(res.rows, default=float)


def test_sic_benchmark_cli(files, tmp_path):
    from click.testing import CliRunner

    from excess.cli.main import cli

    r = CliRunner().invoke(cli, ["-q", "benchmark", "sic", "--background", str(files[0]), "--signal", str(files[1]),
                                 "--s-over-b", "0.2", "--seeds", "0", "--methods", "cwola", "--fast",
                                 "-o", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert "| cwola |" in r.output
    assert (tmp_path / "cli" / "sic_benchmark.md").exists()


def test_background_only_check_runs(files):
    from excess.benchmarks import SICBenchmarkConfig, background_only_check

    cfg = SICBenchmarkConfig(background=str(files[0]), signal=str(files[1]), fast=True)
    rows = background_only_check(cfg, seed=0, efficiencies=(0.2,))
    assert rows[0]["n_samples"] == 4 * rows[0]["n_data_sr"]
    assert abs(rows[0]["frac_samples"] - 0.2) < 0.01 and np.isfinite(rows[0]["pull"])
    assert np.isfinite(rows[0]["pull_sb_interp"]) and 0 <= rows[0]["frac_sb_interp"] <= 1


def test_flow_cache_reuses_flows_across_method_variants(files, tmp_path):
    """A second run with other classifier settings loads the cached SB flow instead of retraining it;
    other flow settings get their own cache entry."""
    from excess.benchmarks import SICBenchmarkConfig, run_sic_benchmark

    cache = tmp_path / "flows"
    base = dict(background=str(files[0]), signal=str(files[1]), s_over_b=(0.2,), seeds=(0,), methods=("cathode",),
                fast=True, flow_cache=str(cache))
    first = run_sic_benchmark(SICBenchmarkConfig(**base), tmp_path / "a")
    (entry,) = list(cache.iterdir())
    stamp = (entry / "state_dict.pt").stat().st_mtime_ns
    second = run_sic_benchmark(SICBenchmarkConfig(**base, method_params={"cathode": {"oversample": 1}}), tmp_path / "b")
    assert list(cache.iterdir()) == [entry] and (entry / "state_dict.pt").stat().st_mtime_ns == stamp
    flow_rows = [[r for r in res.rows if r["method"] == "flow"][0] for res in (first, second)]
    assert flow_rows[0]["seconds"] == flow_rows[1]["seconds"]  # the recorded training time, not a retrain
    cath = [[r for r in res.rows if r["method"] == "cathode"][0] for res in (first, second)]
    assert cath[0]["max_sic"] != cath[1]["max_sic"]  # the variant really ran
    run_sic_benchmark(SICBenchmarkConfig(**{**base, "flow_params": {"kind": "maf", "transforms": 1, "hidden": (8,),
                                                                      "epochs": 2}}), tmp_path / "c")
    assert len(list(cache.iterdir())) == 2
