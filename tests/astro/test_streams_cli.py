"""A tiny end-to-end run of ``excess streams mock | search | evaluate``."""

import json

from excess.cli.main import main


def test_streams_cli_end_to_end(tmp_path, capsys):
    mock = tmp_path / "patch.parquet"
    # the same small mock as test_streams_mock (the gala stream is cached in-process)
    rc = main(["-q", "streams", "mock", str(mock), "--density", "12", "--stream-age", "1", "--stream-particles", "1",
               "--stream-fraction", "0.3", "--seed", "3"])
    assert rc == 0 and mock.exists()
    meta = json.loads(capsys.readouterr().out)
    lo, hi = meta["fiducial_sr"]
    run = tmp_path / "run"
    rc = main(["-q", "streams", "search", str(mock), "-o", str(run), "--fast", "--window", str(lo - 1), str(hi + 1),
               "--sb-width", "3", "--top-n", "30", "--n-folds", "3", "--threshold", "4"])
    assert rc == 0
    assert "protocluster" in capsys.readouterr().out
    for f in ("config.json", "provenance.json", "search.json", "selected.csv", "report.html", "plots/scan.png",
              "plots/best_window_sky.png", "plots/best_window_pm.png", "plots/best_window_cmd.png"):
        assert (run / f).exists(), f
    d = json.loads((run / "search.json").read_text())
    assert len(d["windows"]) == 1 and d["windows"][0]["line"]["significance"] == d["best_window"]["line"]["significance"]
    rc = main(["-q", "streams", "evaluate", str(run)])
    assert rc == 0
    ev = json.loads(capsys.readouterr().out)
    top = ev["best_window"]["top100"] if "top100" in ev["best_window"] else None
    assert top is None  # only 30 stars were kept per window
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["n_stream_after_cuts"] > 10 and saved["best_window"]["n_stream_sr"] > 0
    assert "Against truth" in (run / "report.html").read_text()
    # errors are one line with a non-zero exit code
    bad = tmp_path / "bad.csv"
    bad.write_text("ra,dec\n1,2\n")
    assert main(["streams", "search", str(bad), "-o", str(tmp_path / "r2"), "--center", "1", "2"]) == 1
    assert "missing Gaia column" in capsys.readouterr().err
