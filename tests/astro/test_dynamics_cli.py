"""A tiny end-to-end run through the CLI: mock -> fit -> accelerations -> density, and the Gaia command."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("galpy")

from excess.cli.main import main  # noqa: E402


def test_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXCESS_NO_PROGRESS", "1")
    stars = tmp_path / "stars.h5"
    assert main(["dynamics", "mock", "-n", "2000", "--seed", "1", "-o", str(stars)]) == 0
    run = tmp_path / "run"
    assert main(["dynamics", "fit", str(stars), "-o", str(run), "--velocity-scale", "auto",
                 "--velocity-degree", "high"]) != 0 and not (run / "model").exists()
    assert main(["dynamics", "fit", str(stars), "-o", str(run), "--members", "2", "--epochs", "3",
                 "--batch-size", "256", "--transforms", "2", "--hidden", "16,16", "--device", "cpu",
                 "--threads", "1"]) == 0
    fit = json.loads((run / "metrics.json").read_text())["fit"]
    assert fit["n_stars"] == 2000 and fit["n_members"] == 2 and fit["seconds"] > 0
    assert main(["dynamics", "accelerations", str(run), "--n-radii", "3", "--n-directions", "2",
                 "--n-velocities", "20", "--threads", "1", "--no-plots"]) == 0
    assert main(["dynamics", "density", str(run), "--n-radii", "3", "--n-directions", "1",
                 "--n-velocities", "20", "--threads", "1"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["accelerations"]["n_positions"] == 6 and m["density"]["n_positions"] == 3
    for key in ("median_rel_error", "coverage_1sigma", "median_rel_error_radial"):
        assert np.isfinite(m["accelerations"]["acc"][key])
    assert np.isfinite(m["density"]["rho"]["median_abs_rel_error"])
    import h5py

    with h5py.File(run / "density.h5") as f:
        assert f["rho_members"].shape == (2, 3) and f["rho_true"].shape == (3,)
        r = np.linalg.norm(f["positions"][...], axis=1)
    assert r.min() >= 4.6 and r.max() <= 185.0  # between the 10 % and 90 % mass radii of a = 10 kpc
    for png in ("fit_losses.png", "density_acc_profile.png", "density_profile.png", "density_error_map.png"):
        assert (run / "plots" / png).stat().st_size > 1000
    assert not (run / "plots" / "accelerations_acc_profile.png").exists()  # --no-plots
    html = (run / "report.html").read_text()
    assert "density |rho / rho_true - 1|" in html and "density_profile.png" in html
    # positions from a file; a file without z is refused with the column named
    pos = tmp_path / "pos.csv"
    pd.DataFrame({"x": [5.0, 0.0], "y": [0.0, 8.0], "z": [1.0, 0.0]}).to_csv(pos, index=False)
    assert main(["dynamics", "accelerations", str(run), "--positions", str(pos), "--n-velocities", "10",
                 "--no-plots"]) == 0
    assert json.loads((run / "metrics.json").read_text())["accelerations"]["n_positions"] == 2
    pd.DataFrame({"x": [5.0], "y": [0.0]}).to_csv(pos, index=False)
    capsys.readouterr()
    assert main(["dynamics", "accelerations", str(run), "--positions", str(pos)]) == 1
    assert "missing columns z" in capsys.readouterr().err
    # a run directory without a model
    (tmp_path / "empty").mkdir()
    assert main(["dynamics", "density", str(tmp_path / "empty")]) == 1
    assert "no fitted model" in capsys.readouterr().err
    # the smooth-potential solver: one potential per member, saved and reused while its settings stay the same
    pot = ["--solver", "potential", "--potential-stars", "300", "--potential-epochs", "2", "--threads", "1", "--no-plots"]
    assert main(["dynamics", "density", str(run), "--n-radii", "3", "--n-directions", "1", *pot]) == 0
    d = json.loads((run / "metrics.json").read_text())["density"]
    assert d["solver"] == "potential" and d["density_method"] == "laplacian" and not d["potential"]["reused"]
    assert d["potential"]["n_pairs"] == [300, 300] and np.isfinite(d["rho"]["median_abs_rel_error"])
    assert (run / "potential" / "potentials.json").exists()
    assert main(["dynamics", "accelerations", str(run), "--n-radii", "2", "--n-directions", "1", *pot]) == 0
    assert json.loads((run / "metrics.json").read_text())["accelerations"]["potential"]["reused"]
    capsys.readouterr()
    assert main(["dynamics", "accelerations", str(run), "--solver", "lsq"]) != 0


def test_gaia_command(tmp_path, capsys):
    t = tmp_path / "g.csv"
    pd.DataFrame({"ra": [10.0, 20.0], "dec": [5.0, -5.0], "parallax": [2.0, 1.0], "parallax_error": [0.01, 0.01],
                  "pmra": [1.0, 2.0], "pmdec": [0.0, 1.0], "radial_velocity": [5.0, -5.0]}).to_csv(t, index=False)
    out = tmp_path / "stars.h5"
    assert main(["dynamics", "gaia", str(t), "-o", str(out)]) == 0
    from excess.astro.dynamics.mocks import load_mock

    s = load_mock(out)
    assert s.x.shape == (2, 3) and s.spec["kind"] == "gaia"
    pd.DataFrame({"ra": [10.0], "dec": [5.0]}).to_csv(t, index=False)
    capsys.readouterr()
    assert main(["dynamics", "gaia", str(t), "-o", str(out), "--force"]) == 1  # an existing output needs --force
    assert "missing columns parallax" in capsys.readouterr().err


def test_disk_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("EXCESS_NO_PROGRESS", "1")
    stars = tmp_path / "disk.h5"
    assert main(["dynamics", "mock", "--kind", "disk", "-n", "400", "--seed", "1", "-o", str(stars)]) == 0
    run = tmp_path / "run"
    assert main(["dynamics", "fit", str(stars), "-o", str(run), "--members", "2", "--epochs", "2", "--batch-size", "128",
                 "--transforms", "1", "--hidden", "8", "--radial-scale", "none", "--vertical-scale", "profile",
                 "--device", "cpu", "--threads", "1", "--no-plots"]) == 0
    assert json.loads((run / "model" / "ensemble.json").read_text())["vertical_profile"][1] > 0  # z0 fitted, kept
    assert main(["dynamics", "density", str(run), "--n-radii", "3", "--n-directions", "2", "--n-velocities", "20",
                 "--ball-radius", "0.15", "--baryons", "mwpotential2014", "--threads", "1"]) == 0
    m = json.loads((run / "metrics.json").read_text())["density"]
    assert m["n_positions"] == 6 and m["density_method"] == "ball" and m["ball_radius_kpc_min_max"] == [0.15, 0.15]
    import h5py

    with h5py.File(run / "density.h5") as f:
        x = f["positions"][...]
    np.testing.assert_allclose(np.hypot(x[:, 0], x[:, 1]), 8.0)  # a column at the "solar" radius
    np.testing.assert_allclose(np.unique(x[:, 2]), [-1.0, 0.0, 1.0])
    assert 0.09 < m["rho"]["local_true_msun_pc3"] < 0.11 and np.isfinite(m["rho"]["local_msun_pc3"])
    assert np.isfinite(m["acc"]["vertical_median_rel_error_abs_z_ge_0.2"])
    assert [h[0] for h in m["acc"]["vertical_rel_error_by_height"]] == [-1.0, 0.0, 1.0]
    assert len(m["rho"]["by_height_msun_pc3"]) == 3 and m["rho"]["by_height_msun_pc3"][1][3] > 0.09
    assert (run / "plots" / "density_rho_z.png").stat().st_size > 1000 and (run / "report.html").exists()
    assert main(["dynamics", "density", str(run), "--ball-radius", "-1", "--n-radii", "2", "--n-directions", "1"]) != 0
