"""Dijet generation: physics validation, reproducibility, resume, clean stdout, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from excess.data.generate import generate_chunk, generate_dijet
from excess.data.io import read_events, read_metadata
from excess.data.schema import RAW_COLUMNS, STANDARD_FEATURES
from excess.data.settings import GeneratorSettings, pythia_config
from excess.errors import ConfigError, InputError


def test_schema_and_metadata(signal_events):
    df = signal_events
    assert len(df) == 400
    for col in (*RAW_COLUMNS, *STANDARD_FEATURES, "mjj", "mj2", "label"):
        assert col in df.columns, col
    assert (df["label"] == 1).all()
    assert np.isfinite(df.drop(columns="label").to_numpy()).all()
    # lighter/heavier convention and delta
    np.testing.assert_allclose(df["mj2"] - df["mj1"], df["delta_mj"], rtol=1e-5, atol=1e-3)
    assert (df["mj1"] <= df["mj2"]).all()
    # the LHCO selection: at least one jet with pT > 1.2 TeV and |eta| < 2.5
    lead_ok = ((df.jet1_pt > 1200) & (df.jet1_eta.abs() < 2.5)) | ((df.jet2_pt > 1200) & (df.jet2_eta.abs() < 2.5))
    assert lead_ok.all()
    assert (df.jet1_pt >= df.jet2_pt).all()
    meta = df.attrs["excess"]
    assert meta["settings"]["process"] == "signal"
    assert meta["versions"]["pythia8mc"] and meta["versions"]["fastjet"]
    assert meta["counts"]["n_selected"] == 400 and meta["counts"]["n_pythia_events"] >= 400
    assert meta["cross_section"]["selected_fb"] > 0


def test_signal_physics(signal_events):
    """W'(3500) -> X(500) Y(100): heavier jet near mX, lighter near mY, mjj near mW'."""
    df = signal_events
    assert 3300 < np.median(df.mjj) < 3650
    assert 440 < np.median(df.mj2) < 540
    assert 90 < np.median(df.mj1) < 135
    # a peak, not a spread: half of the events within +-15 % of mX
    assert np.mean(np.abs(df.mj2 / 500 - 1) < 0.15) > 0.5


def test_background_physics(qcd_events, signal_events):
    b, s = qcd_events, signal_events
    # steeply falling mjj above the turn-on: each 500 GeV bin from 3 TeV holds fewer events than the one below
    counts, _ = np.histogram(b.mjj, bins=[3000, 3500, 4000, 4500, 5000])
    assert all(counts[i] > counts[i + 1] for i in range(len(counts) - 1)), counts
    assert counts[0] > 2 * counts[2]  # measured ratio ~2.9 with 800 events
    # QCD jets are one-pronged: tau21 of signal jets is lower than QCD
    assert np.median(s.tau21_j2) < np.median(b.tau21_j2) - 0.15
    assert np.median(s.tau21_j1) < np.median(b.tau21_j1) - 0.05
    # QCD jet masses are light and broad compared to the X jet
    assert np.median(b.mj2) < 350


def test_reproducible_and_seed_dependent(tmp_path):
    s = GeneratorSettings.from_preset("lhco", process="signal").to_dict()
    a = generate_chunk(s, 30, 5, str(tmp_path / "a.h5"))
    b = generate_chunk(s, 30, 5, str(tmp_path / "b.h5"))
    c = generate_chunk(s, 30, 6, str(tmp_path / "c.h5"))
    da, db, dc = (read_events(tmp_path / f"{k}.h5") for k in "abc")
    np.testing.assert_array_equal(da.to_numpy(), db.to_numpy())
    assert not np.array_equal(da.mjj.to_numpy(), dc.mjj.to_numpy())
    assert a["seed"] == 5 and c["seed"] == 6


def test_resume_skips_finished_chunks(tmp_path):
    out = tmp_path / "ds"
    first = generate_dijet(out, 60, process="signal", seed=3, chunk_size=30, n_workers=1)
    assert first.n_chunks == 2 and first.n_chunks_skipped == 0
    before = (out / "chunk-00000.h5").read_bytes()
    (out / "chunk-00001.h5").unlink()
    second = generate_dijet(out, 60, process="signal", seed=3, chunk_size=30, n_workers=1)
    assert second.n_chunks_skipped == 1
    assert (out / "chunk-00000.h5").read_bytes() == before
    df = read_events(out)
    assert len(df) == 60
    manifest = read_metadata(out)
    assert manifest["chunk_seeds"] == [3, 1003]
    # other settings into the same directory: refused, nothing overwritten
    with pytest.raises(InputError, match="other settings"):
        generate_dijet(out, 60, process="signal", seed=3, chunk_size=30, n_workers=1, m_x=400)
    assert not list(out.glob(".chunk*"))  # no temporary files left behind


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(process="zprime"), "unknown process"),
        (dict(process="signal", m_x=3000, m_y=600), "m_x \\+ m_y < m_wprime"),
        (dict(process="signal", m_y=-5), "m_y must be positive"),
        (dict(seed=0), "seed must be in"),
        (dict(seed=900_000_001), "seed must be in"),
        (dict(axes="cone"), "unknown N-subjettiness axes"),
        (dict(preset="nope"), "unknown preset"),
        (dict(detector="atlas-run9"), "unknown detector"),
    ],
)
def test_bad_settings_fail_fast(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        generate_dijet(tmp_path / "x", 10, n_workers=1, **kwargs)
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").glob("chunk-*"))


def test_bad_counts(tmp_path):
    with pytest.raises(ConfigError, match="n_events must be positive"):
        generate_dijet(tmp_path / "x", 0, n_workers=1)
    with pytest.raises(ConfigError, match="chunk_size"):
        generate_dijet(tmp_path / "x", 10, chunk_size=-1, n_workers=1)


def test_signal_mass_windows_scale():
    cfg = pythia_config(GeneratorSettings(process="signal", m_wprime=2800, m_x=300, m_y=200), seed=1)
    assert "37:mMin = 270" in cfg and "37:mMax = 330" in cfg
    assert "36:mMin = 180" in cfg and "34:mMin = 2000" in cfg
    assert "PartonLevel:MPI = off" in pythia_config(GeneratorSettings.from_preset("lhco"), 1)
    assert "PartonLevel:MPI = on" in pythia_config(GeneratorSettings.from_preset("pythia"), 1)


def test_cli_stdout_is_clean_json(tmp_path):
    """Pythia/FastJet banners never reach stdout: it is exactly the JSON summary."""
    out = tmp_path / "s.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "excess.cli.main", "generate", "dijet", "-n", "20", "--process", "signal",
         "-o", str(out), "-j", "1", "--seed", "9"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_events"] == 20
    assert "PYTHIA" not in proc.stdout and "FastJet" not in proc.stdout
    df = read_events(out)
    assert len(df) == 20 and df.attrs["excess"]["settings"]["process"] == "signal"


def test_cli_bad_input_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "excess.cli.main", "generate", "dijet", "-n", "5", "-o", str(tmp_path / "x"),
         "--process", "signal", "--m-x", "4000"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "m_x + m_y < m_wprime" in proc.stderr
    assert "Traceback" not in proc.stderr
