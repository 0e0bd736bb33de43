"""The installed command: version, fast help, one-line errors."""

import json
import shutil
import subprocess
import sys

import pytest

import excess

EXE = shutil.which("excess") or str((__import__("pathlib").Path(sys.executable).parent / "excess"))


def run(*args, timeout=120):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_version():
    p = run("--version")
    assert p.returncode == 0 and excess.__version__ in p.stdout


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from excess.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "main(['generate', 'dijet', '--help'])\n"
        "heavy = [m for m in ('torch', 'pythia8mc', 'fastjet', 'zuko', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr


def test_unknown_command_and_missing_config():
    p = run("frobnicate")
    assert p.returncode != 0
    p = run("search", "does-not-exist.yaml")
    assert p.returncode == 1 and p.stderr.strip().startswith("error:") and "no such config file" in p.stderr
    assert "Traceback" not in p.stderr


def test_search_check_prints_resolved_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: x.h5}\nscan: {n_folds: 3}\n")
    p = run("search", str(cfg), "--check", "--set", "method.name=cathode")
    assert p.returncode == 0, p.stderr
    assert "name: cathode" in p.stdout and "n_folds: 3" in p.stdout and "global_toys: 200" in p.stdout
    cfg.write_text("data: {path: x.h5}\nscan: {nfolds: 3}\n")
    p = run("search", str(cfg), "--check")
    assert p.returncode == 1 and "scan.nfolds: unknown key" in p.stderr


def test_validate_realism_cli(tmp_path):
    from excess.data.generate import generate_dijet

    generate_dijet(tmp_path / "a.h5", 150, process="signal", seed=5, n_workers=1)
    generate_dijet(tmp_path / "b.h5", 150, process="signal", seed=6, n_workers=1)
    p = run("validate", "realism", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    rep = json.loads((tmp_path / "out" / "realism.json").read_text())
    ks = {c["feature"]: c["ks_distance"] for c in rep["comparisons"]}
    assert set(ks) == {"mjj", "mj1", "delta_mj", "tau21_j1", "tau21_j2"}
    assert all(0 <= v < 0.25 for v in ks.values()), ks  # two seeds of the same process agree
    assert (tmp_path / "out" / "realism.png").stat().st_size > 1000
    p = run("validate", "realism", str(tmp_path / "a.h5"))  # built-in official quartiles
    assert p.returncode == 0 and "signal" in p.stdout and "3511" in p.stdout
