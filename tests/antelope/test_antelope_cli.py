"""``excess antelope train | evaluate | search`` on tiny synthetic samples (read through a fake reader)."""

import json

import pytest

pytest.importorskip("torch")

from svj_toys import make_svj, write_sample  # noqa: E402

from excess.cli.main import main  # noqa: E402

P = ["--param", "pfn.phi_sizes=[8,8,6]", "--param", "pfn.f_sizes=[8]", "--param", "pfn.epochs=1",
     "--param", "vae.epochs=2", "--param", "vae.hidden=[8]", "--param", "vae.decoder_hidden=[8]",
     "--param", "vae.latent=2", "--param", "ae.epochs=2"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("svj")
    write_sample(make_svj(n_bkg=2400, points=(), seed=2), d / "qcd.npz")
    write_sample(make_svj(n_bkg=0, points=((2000.0, 0.3, 20.0), (2500.0, 0.7, 20.0)), n_sig=150, seed=3),
                 d / "sig.npz")
    return d / "qcd.npz", d / "sig.npz"


def test_cli_train_evaluate_search(files, tmp_path, fake_reader, capsys):
    qcd, sig = map(str, files)
    rc = main(["-q", "antelope", "train", qcd, sig, "-o", str(tmp_path / "m"), "--train-point", "2000,0.3",
               "--device", "cpu", *P])
    assert rc == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["n_train_qcd"] == 1200
    rc = main(["-q", "antelope", "evaluate", qcd, sig, "-o", str(tmp_path / "ev"), "--train-point", "2000,0.3",
               "--seeds", "2", "--device", "cpu", "--max-events", "400", *P])
    assert rc == 0, capsys.readouterr().err
    cap = capsys.readouterr()
    assert "ANTELOPE (total)" in cap.err and "mZ'=2500 r_inv=0.7" in cap.err
    met = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert len(met["per_seed"]["pfn"]["mZ'=2000 r_inv=0.3 m_dark=20"]["auc"]) == 2
    assert (tmp_path / "ev" / "report.html").exists() and (tmp_path / "ev" / "plots" / "auc_grid.png").exists()
    rc = main(["-q", "antelope", "search", qcd, sig, "--models", str(tmp_path / "m"), "-o", str(tmp_path / "s"),
               "--inject", "2000,0.3", "--n-signal", "60", "--efficiencies", "0.1", "--window-width", "400",
               "--window-step", "400", "--sideband-width", "400", "--anchor", "2000", "--folds", "2", "--toys", "3",
               "-j", "1", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(capsys.readouterr().out)
    assert res["excluded_training_events"] == 1200 + 75 and res["n_signal_injected"] == 60
    assert res["n_qcd"] == 1200
    assert (tmp_path / "s" / "report.html").exists()


def test_cli_bad_input(files, tmp_path, fake_reader, capsys):
    qcd, sig = map(str, files)
    rc = main(["antelope", "train", qcd, sig, "-o", str(tmp_path / "m"), "--train-point", "5000,0.1"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "unknown signal point 5000,0.1" in err and "2000,0.3,20" in err
    assert not (tmp_path / "m").exists()
    rc = main(["antelope", "train", qcd, "-o", str(tmp_path / "m"), "--train-point", "2000,0.3", "--param", "x=1"])
    assert rc == 1 and "model.key=value" in capsys.readouterr().err
    rc = main(["antelope", "search", qcd, "--models", str(tmp_path), "-o", str(tmp_path / "s"), "--background-model",
               "dijet_signal", "--signal-width", "0.7"])
    assert rc == 1 and "signal_width" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_chunk_directory_and_its_files_give_the_same_event_keys(tmp_path, fake_reader):
    """The search excludes the models' training events by file#row key: a chunk directory must give the keys
    of its chunk files (a model trained on the files, searched on the directory, must not see its events)."""
    from excess.antelope.data import load_samples

    d = tmp_path / "qcd"
    d.mkdir()
    for i, seed in enumerate((4, 5)):
        with open(d / f"chunk-{i:05d}.h5", "wb") as fh:  # np.savez would append .npz to a name
            write_sample(make_svj(n_bkg=30, points=(), seed=seed), fh)
    by_dir = load_samples([d])
    by_files = load_samples(sorted(d.glob("chunk-*.h5")))
    assert len(by_dir) == 60 and by_dir.keys() == by_files.keys()
    assert len(set(by_dir.keys())) == 60
