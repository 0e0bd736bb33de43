"""Issue 20 in the newer wings (``tag electrons``, ``jets``, ``dynamics``, ``streams``) and ``generate mix|convert``:
one test per defect found by ``scripts/wing_probes.py``. The CLI runs in process; every failure here happens
before any training, so the tests are fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from excess.cli.main import main
from excess.data.io import write_events
from excess.data.tracks import TRACK_FEATURES
from excess.search.synthetic import toy_events


def _excess(capsys, *args):
    rc = main(["--quiet", *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, err


def _tracks(path, n=40):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f: rng.uniform(1, 3, n) for f in TRACK_FEATURES})
    df["category"], df["label"] = "notrt_nocalo", np.arange(n) % 2
    df.to_parquet(path)
    return path


def _npz(path, keys=("X", "y"), n=20):
    rng = np.random.default_rng(0)
    np.savez(path, **dict(zip(keys, (np.abs(rng.normal(size=(n, 4, 4))), np.arange(n) % 2))))
    return path


def _refused(rc, err, path):
    assert rc == 1
    assert f"{path}: a finished" in err and "--force" in err


def test_tag_train_corrupt_parquet_names_the_file(tmp_path, capsys):
    bad = tmp_path / "t.parquet"
    bad.write_bytes(b"not parquet\n" * 4)
    rc, err = _excess(capsys, "tag", "electrons", "train", "-i", bad, "-o", tmp_path / "out")
    assert rc == 1 and f"{bad}: not a readable Parquet file" in err and "ArrowInvalid" not in err
    assert not (tmp_path / "out").exists()


def test_tag_train_failure_leaves_no_output_directory(tmp_path, capsys):
    rc, err = _excess(capsys, "tag", "electrons", "train", "-i", _tracks(tmp_path / "t.parquet"), "-o", tmp_path / "o")
    assert rc == 1 and "category 'trt_calo'" in err  # the per-category DNN needs every category
    assert not (tmp_path / "o").exists()


def test_inclusive_tagger_accepts_a_table_without_absent_feature_blocks():
    from excess.tagging.electrons import ALL_FEATURES, CATEGORIES, inclusive_matrix

    df = pd.DataFrame({f: np.ones(3) for f in TRACK_FEATURES})
    df["category"] = "notrt_nocalo"
    X = inclusive_matrix(df)  # was a KeyError on the TRT and calorimeter columns
    assert X.shape == (3, len(ALL_FEATURES) + len(CATEGORIES)) and np.isfinite(X).all()


@pytest.mark.parametrize("cmd,marker", [
    (["tag", "electrons", "train", "-i", "{tracks}", "-o", "{out}"], "training.json"),
    (["tag", "electrons", "evaluate", "-m", "{model}", "-i", "{tracks}", "-o", "{out}"], "metrics.json"),
    (["tag", "jets", "train", "{npz}", "-o", "{out}"], "hyperparameters.json"),
    (["dynamics", "fit", "{stars}", "-o", "{out}"], "model"),
    (["streams", "search", "{stars}", "-o", "{out}"], "search.json"),
])
def test_finished_output_directory_needs_force(tmp_path, capsys, cmd, marker):
    out = tmp_path / "out"
    out.mkdir()
    (out / marker).write_text("finished")
    (tmp_path / "model").mkdir()
    names = {"tracks": _tracks(tmp_path / "t.parquet"), "npz": _npz(tmp_path / "qg.npz"), "out": out,
             "model": tmp_path / "model", "stars": tmp_path / "stars.h5"}
    (tmp_path / "stars.h5").write_text("x")
    rc, err = _excess(capsys, *[a.format(**names) for a in cmd])
    _refused(rc, err, out)
    assert (out / marker).read_text() == "finished"


def test_dynamics_mock_refuses_an_existing_file_without_force(tmp_path, capsys):
    out = tmp_path / "s.h5"
    out.write_text("keep me")
    rc, err = _excess(capsys, "dynamics", "mock", "-n", "5", "-o", out)
    _refused(rc, err, out)
    assert out.read_text() == "keep me"
    rc, _ = _excess(capsys, "dynamics", "mock", "-n", "5", "-o", out, "--force")
    assert rc == 0 and out.read_bytes()[:4] == b"\x89HDF"


def test_dynamics_gaia_refuses_an_existing_file_before_reading(tmp_path, capsys):
    out = tmp_path / "s.h5"
    out.write_text("keep me")
    table = tmp_path / "g.csv"
    table.write_text("ra,dec\n1,2\n")
    rc, err = _excess(capsys, "dynamics", "gaia", table, "-o", out)
    _refused(rc, err, out)


def test_dynamics_fit_bad_stars_leave_no_run_directory(tmp_path, capsys):
    bad = tmp_path / "s.h5"
    bad.write_bytes(b"\x00garbage\n" * 4)
    rc, err = _excess(capsys, "dynamics", "fit", bad, "-o", tmp_path / "run")
    assert rc == 1 and f"{bad}:" in err
    assert not (tmp_path / "run").exists()


def test_jets_npz_messages_name_the_file_once(tmp_path, capsys):
    f = _npz(tmp_path / "qg.npz", keys=("X", "z"))
    rc, err = _excess(capsys, "tag", "jets", "train", f, "-o", tmp_path / "m")
    assert rc == 1 and "needs arrays 'X' and 'y'" in err and "not a readable" not in err
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"\x00garbage\n" * 4)
    rc, err = _excess(capsys, "tag", "jets", "train", bad, "-o", tmp_path / "m")
    assert rc == 1 and f"{bad}: not a readable .npz file" in err and "pickle" not in err


@pytest.mark.parametrize("cmd", [
    ["tag", "electrons", "simulate", "-n", "5", "-o", "{out}"],
    ["tag", "jets", "generate", "-n", "4", "-o", "{out}"],
    ["tag", "jets", "evaluate", "{npz}", "-o", "{out}", "-t", "hgb", "--seeds", "1"],
    ["streams", "search", "{csv}", "-o", "{out}"],
])
def test_output_under_a_file_is_refused_before_the_work(tmp_path, capsys, cmd):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "g.csv").write_text("ra,dec\n1,2\n")
    out = tmp_path / "afile" / "out"
    names = {"out": out, "npz": _npz(tmp_path / "qg.npz"), "csv": tmp_path / "g.csv"}
    rc, err = _excess(capsys, *[a.format(**names) for a in cmd])
    assert rc == 1 and f"{out}: {tmp_path / 'afile'} is a file, not a folder" in err


@pytest.mark.parametrize("which", ["mix", "convert"])
def test_generate_mix_and_convert_need_force_to_overwrite(tmp_path, capsys, which):
    write_events(toy_events(300, 10, random_state=0), tmp_path / "b.h5")
    out = tmp_path / "out.h5"
    out.write_text("keep me")
    args = (["generate", "mix", "-b", tmp_path / "b.h5", "-s", tmp_path / "b.h5", "-o", out, "--n-signal", "3"]
            if which == "mix" else ["generate", "convert", tmp_path / "b.h5", out])
    rc, err = _excess(capsys, *args)
    _refused(rc, err, out)
    assert out.read_text() == "keep me"
    rc, _ = _excess(capsys, *args, "--force")
    assert rc == 0 and out.read_bytes()[:4] == b"\x89HDF"
