"""A tiny end-to-end run of `excess tag electrons`: simulate, train one epoch, evaluate, impact."""

import json

import numpy as np
import pandas as pd
import pytest

from excess.cli.main import main


def _run(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out) if out.out.strip().startswith("{") else out.out


def test_simulate_train_evaluate_impact(tmp_path, capsys, higgsino_dir):
    gun, wenu, hig = tmp_path / "gun", tmp_path / "wenu", higgsino_dir
    _run(["-q", "tag", "electrons", "simulate", "--process", "gun", "-n", "1200", "--seed", "3", "--pileup-mu", "20",
          "-o", str(gun)], capsys)
    assert json.loads((gun / "manifest.json").read_text())["settings"]["pileup_mu"] == 20.0
    s = _run(["-q", "tag", "electrons", "simulate", "--process", "wenu", "-n", "40", "--chunk-size", "40",
              "--no-mpi", "--seed", "4", "-o", str(wenu)], capsys)
    assert s["n_tracks"] > 500
    run = tmp_path / "run"
    t = _run(["-q", "tag", "electrons", "train", "-i", str(gun), "-i", str(wenu), "--model", "dnn", "--epochs", "1",
              "--batch-size", "32", "--hidden", "16,16", "--min-tracks", "5", "--device", "cpu", "-o", str(run)], capsys)
    assert (run / "models" / "dnn" / "state_dict.pt").exists() and t["models"]["dnn"]["train_s"] > 0
    ev = tmp_path / "eval"
    e = _run(["-q", "tag", "electrons", "evaluate", "-m", str(run / "models" / "dnn"), "-i", str(gun), "-i", str(wenu),
              "--no-shap", "-o", str(ev)], capsys)
    assert 0.5 < e["auc"]["dnn"] <= 1.0
    metrics = json.loads((ev / "metrics.json").read_text())
    effs = metrics["models"]["dnn"]["efficiency"]
    assert {x["category"] for x in effs} >= {"trt_calo", "combined"}
    assert all(0 <= x["efficiency"] <= 1 for x in effs if x["efficiency"] is not None)
    assert (ev / "report.html").stat().st_size > 1000 and (ev / "plots" / "roc_dnn.png").exists()
    assert "shap" not in metrics["models"]["dnn"]
    imp = tmp_path / "impact"
    r = _run(["-q", "tag", "electrons", "impact", "-m", str(run / "models" / "dnn"), "-s", str(hig), "-b", str(wenu),
              "-o", str(imp)], capsys)
    assert r["points"][0]["m_chi20"] == 153.0 and set(r["points"][0]) >= {"tagger", "no_tagger", "threshold_4p5"}
    assert "Impact on the mock higgsino" in (imp / "report.html").read_text()


def test_user_table_reader_and_errors(tmp_path, toy, capsys):
    train, test = toy
    # a user's Parquet file with other column names and integer categories
    user = test.rename(columns={"e_over_p": "EoverP", "f_ht": "fHT"}).copy()
    user["category"] = pd.Categorical(user["category"], ["trt_calo", "notrt_calo", "trt_nocalo", "notrt_nocalo"]).codes
    user = user.drop(columns=["origin"])
    path = tmp_path / "user.parquet"
    user.to_parquet(path)
    from excess.tagging.io import read_track_table

    df = read_track_table(path, columns={"e_over_p": "EoverP", "f_ht": "fHT"})
    assert set(df["category"]) <= {"trt_calo", "notrt_calo", "trt_nocalo", "notrt_nocalo"}
    assert np.allclose(df["e_over_p"].dropna(), test["e_over_p"].dropna())
    # errors: one clear line each
    run = tmp_path / "r"
    assert main(["-q", "tag", "electrons", "train", "-i", str(path), "-o", str(run)]) == 1
    assert "missing variable(s) ['f_ht', 'e_over_p'] needed by category 'trt_calo'" in capsys.readouterr().err
    assert main(["-q", "tag", "electrons", "train", "-i", str(path), "--column", "e_over_p=nope", "-o", str(run)]) == 1
    assert "column(s) ['nope']" in capsys.readouterr().err
    bad = test.copy()
    bad["category"] = bad["category"].replace("trt_calo", "both")
    bad.to_parquet(tmp_path / "bad.parquet")
    assert main(["-q", "tag", "electrons", "train", "-i", str(tmp_path / "bad.parquet"), "-o", str(run)]) == 1
    assert "unknown category name(s) ['both']" in capsys.readouterr().err
    with pytest.raises(Exception, match="unsupported track-table format"):
        read_track_table(tmp_path / "user.parquet.txt") if (tmp_path / "user.parquet.txt").write_text("x") else None
