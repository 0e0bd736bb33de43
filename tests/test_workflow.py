"""End to end (salt-style): the installed `excess search` on a tiny config in tmp_path.

Checks the run directory, the JSON, that the HTML references every plot, resume, report
regeneration, and that a finished run is not silently overwritten.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from excess.data.io import write_events
from excess.search.synthetic import toy_events

EXE = shutil.which("excess") or str(Path(sys.executable).parent / "excess")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("wf")
    events = toy_events(30_000, 600, random_state=3)
    write_events(events, d / "events.h5")
    cfg = d / "cfg.yaml"
    cfg.write_text(
        f"data: {{path: {d / 'events.h5'}}}\n"
        "method: {name: cwola, params: {classifier_params: {n_members: 2, max_iter: 40}}}\n"
        "scan:\n  windows: [[3300, 3700], [3700, 4100]]\n  n_folds: 3\n  efficiencies: [0.1, 0.02]\n"
        "  global_toys: 10\n"
        "run: {seed: 5, workers: 1}\n"
    )
    run_dir = d / "run"
    p = subprocess.run([EXE, "--quiet", "search", str(cfg), "-o", str(run_dir)], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    return d, cfg, run_dir, p


def test_run_directory(tiny):
    d, cfg, run_dir, p = tiny
    for name in ("config.yaml", "provenance.json", "metrics.json", "predictions.h5", "report.html"):
        assert (run_dir / name).is_file(), name
    summary = json.loads(p.stdout)
    assert summary["run_dir"] == str(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["method"] == "cwola" and metrics["n_events"] == 30_600
    assert len(metrics["windows"]) == 2
    # the injected 3.5 TeV signal: the SR window 3300-3700 is the most significant
    assert "3300-3700" in metrics["best"]["window"]
    assert summary["z_local"] == pytest.approx(metrics["best"]["z_local"])
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["seed"] == 5 and prov["versions"]["excess"]
    assert list(prov["inputs_sha256"].values())[0] and len(list(prov["inputs_sha256"].values())[0]) == 64
    with h5py.File(run_dir / "predictions.h5") as f:
        n = {k: f["events"][k].shape[0] for k in f["events"]}
    assert len(set(n.values())) == 1 and set(n.values()) == {30_600}  # row-aligned
    with h5py.File(run_dir / "predictions.h5") as f:
        score_cols = [k for k in f["events"] if k.startswith("score_")]
        assert len(score_cols) == 2
        import numpy as np

        s = f["events"][score_cols[0]][...]
        m = f["events"]["mjj"][...]
    inside = np.isfinite(s)
    assert inside.sum() > 1000 and np.all(np.isfinite(m[inside]))


def test_report_references_every_plot(tiny):
    _, _, run_dir, _ = tiny
    html = (run_dir / "report.html").read_text()
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    assert len(plots) >= 3
    refs = set(re.findall(r"src='plots/([^']+\.png)'", html))
    assert refs == set(plots)
    assert "3300" in html and "Settings" in html and "Provenance" in html


def test_resume_and_no_overwrite(tiny):
    d, cfg, run_dir, _ = tiny
    before = json.loads((run_dir / "metrics.json").read_text())
    p = subprocess.run([EXE, "--quiet", "search", str(cfg), "-o", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "--resume" in p.stderr
    p = subprocess.run([EXE, "--quiet", "search", str(cfg), "-o", str(run_dir), "--resume"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["best"] == before["best"]
    (run_dir / "report.html").unlink()
    p = subprocess.run([EXE, "report", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and (run_dir / "report.html").exists()
    assert not list(run_dir.rglob(".*.tmp"))  # nothing half-written left behind


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_browser(tiny):
    _, _, run_dir, _ = tiny
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={run_dir.parent / 'chromium-profile'}"]
    url = (run_dir / "report.html").resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    imgs = re.findall(r"<img src=\"plots/([^\"]+)\"", dom.stdout)
    assert sorted(imgs) == sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    shot = run_dir.parent / "report.png"
    p = subprocess.run([CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and shot.stat().st_size > 20_000  # a rendered page, not a blank one
