"""One tiny pipeline through the CLI: simulate -> train (1 epoch) -> generate -> evaluate -> timing."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np

from excess.cli.main import main


def _run(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_pipeline_end_to_end(tmp_path, tiny_geometry, capsys):
    geo = tmp_path / "tiny.xml"
    geo.write_text(tiny_geometry.to_xml_string())
    ref, val, gen = tmp_path / "ref.h5", tmp_path / "val.h5", tmp_path / "gen.h5"
    common = ["--preset", "ds2-like", "--geometry", str(geo), "--e-max", "1e5", "--spot-factor", "0.3"]
    rc, out, _ = _run(["-q", "calo", "simulate", *common, "-n", "300", "--seed", "1", "-o", str(ref)], capsys)
    assert rc == 0 and json.loads(out)["n_voxels"] == 60
    rc, _, _ = _run(["-q", "calo", "simulate", *common, "-n", "200", "--seed", "2", "-o", str(val)], capsys)
    assert rc == 0
    with h5py.File(ref) as f:
        assert f["showers"].shape == (300, 60) and f["incident_energies"].shape == (300, 1)

    model = tmp_path / "flow"
    rc, out, _ = _run(["-q", "calo", "train", "--model", "flow", "--data", str(ref), "--validation", str(val), "--epochs", "1",
                       "--param", "shape_hidden=[32]", "--param", "shape_transforms=2", "-o", str(model)], capsys)
    assert rc == 0, out
    summary = json.loads(out)
    assert summary["best_epoch"] == 1 and (model / "model.pt").exists() and (model / "history.png").exists()
    saved = json.loads((model / "model.json").read_text())
    assert saved["model"] == "flow" and saved["params"]["shape_hidden"] == [32]

    before = json.loads((model / "model.json").read_text())["preprocessor"]
    rc, out, _ = _run(["-q", "calo", "calibrate", "--model-dir", str(model), "--data", str(ref), "--seed", "3"], capsys)
    assert rc == 0 and json.loads(out)["n_showers"] == 300, out
    after = json.loads((model / "model.json").read_text())["preprocessor"]
    assert after["thresholds_"] != before["thresholds_"]  # another draw of model showers: refitted
    assert len(after["layer_floors_"]) == 3

    rc, out, _ = _run(["-q", "calo", "generate", "--model-dir", str(model), "--energies-from", str(val), "-o", str(gen)], capsys)
    assert rc == 0 and json.loads(out)["n_showers"] == 200
    with h5py.File(gen) as f, h5py.File(val) as g:
        np.testing.assert_allclose(f["incident_energies"][:], g["incident_energies"][:])
        assert (f["showers"][:] >= 0).all()

    ev = tmp_path / "eval"
    rc, out, _ = _run(["-q", "calo", "evaluate", "--reference", str(val), "--generated", str(gen), "--classifier", "high",
                       "--classifier-epochs", "2", "-o", str(ev)], capsys)
    assert rc == 0, out
    s = json.loads((ev / "summary.json").read_text())
    assert 0.0 <= s["classifiers"]["high"]["auc"] <= 1.0
    assert 0.0 <= s["mean_separation_power"] <= 1.0 and "E_layer_2" in s["separation_powers"]
    assert (ev / "hist_overview.png").exists() and (ev / "hist_E_layer.png").exists()

    rc, out, _ = _run(["-q", "calo", "timing", "--model-dir", str(model), "--batch-sizes", "1,10", "--threads", "1",
                       "--reference-max-showers", "5", "-o", str(tmp_path / "t.json")], capsys)
    assert rc == 0 and "batch size" in out
    t = json.loads((tmp_path / "t.json").read_text())
    assert [r["batch_size"] for r in t["rows"]] == [1, 10] and all(r["model_ms_per_shower"] > 0 for r in t["rows"])

    # rerun without --force keeps the finished output
    before = ref.stat().st_mtime_ns
    rc, _, err = _run(["-q", "calo", "simulate", *common, "-n", "300", "-o", str(ref)], capsys)
    assert rc == 0 and "skipping" in err and ref.stat().st_mtime_ns == before


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["incident_energies"] = np.ones((3, 1))
        f["showers"] = np.ones((3, 100))
    rc, _, err = _run(["calo", "evaluate", "--reference", str(p), "--generated", str(p), "--geometry", "ds2", "-o", str(tmp_path / "e")], capsys)
    assert rc == 1
    assert err.startswith("error:") and "bad.h5" in err and "6480" in err and err.count("\n") == 1
    q = tmp_path / "nokey.h5"
    with h5py.File(q, "w") as f:
        f["showers"] = np.ones((3, 368))
    rc, _, err = _run(["calo", "train", "--data", str(q), "-o", str(tmp_path / "m")], capsys)
    assert rc == 1 and "missing key 'incident_energies'" in err


def test_import_does_not_load_torch():
    code = "import sys, excess.calo, excess.calo.models, excess.cli.calo; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
