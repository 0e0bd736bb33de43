"""Event I/O and the official LHCO / CATHODE formats (files built here, no downloads)."""

import h5py
import numpy as np
import pandas as pd
import pytest

from excess.data.io import read_events, write_events
from excess.data.lhco import LHCO_JET_COLUMNS, _read_pandas_fixed_h5py, write_cathode_npy, write_lhco_features
from excess.data.mix import inject_signal, split_background
from excess.errors import ConfigError, InputError


@pytest.fixture
def table(signal_events, qcd_events):
    return pd.concat([signal_events.iloc[:50], qcd_events.iloc[:150]], ignore_index=True)


@pytest.mark.parametrize("suffix", [".h5", ".parquet"])
def test_roundtrip(tmp_path, table, suffix):
    path = write_events(table, tmp_path / f"ev{suffix}", {"note": "x"})
    back = read_events(path)
    pd.testing.assert_frame_equal(back, table, check_dtype=True)
    assert back.attrs["excess"]["note"] == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lhco_feature_file(tmp_path, table):
    """The official R&D layout (pandas fixed HDF5 via PyTables) reads into the same event table."""
    path = write_lhco_features(table, tmp_path / "events_anomalydetection_v2.features.h5")
    with h5py.File(path) as f:  # really a pandas table
        assert "df" in f and "block0_values" in f["df"]
    raw = pd.read_hdf(path)
    assert list(raw.columns) == [*LHCO_JET_COLUMNS, "label"]
    back = read_events(path)
    for col in ("mjj", "mj1", "mj2", "delta_mj", "tau21_j1", "tau21_j2", "jet1_pt", "jet2_eta"):
        np.testing.assert_allclose(back[col], table[col], rtol=2e-3, atol=2e-3, err_msg=col)
    np.testing.assert_array_equal(back["label"], table["label"])
    # the h5py fallback (no PyTables) reads the same numbers
    np.testing.assert_allclose(_read_pandas_fixed_h5py(path)["mj1"], raw["mj1"])


def test_lhco_black_box_has_no_label(tmp_path, table):
    path = write_lhco_features(table, tmp_path / "events_LHCO2020_BlackBox1.features.h5", with_label=False)
    back = read_events(path)
    assert (back["label"] == -1).all()
    assert back.attrs["excess"]["has_labels"] is False


def test_lhco_wrong_columns(tmp_path):
    path = tmp_path / "other.h5"
    pd.DataFrame({"pxj1": [1.0], "foo": [2.0]}).to_hdf(path, key="df", format="fixed")
    with pytest.raises(InputError, match="missing column"):
        read_events(path)


def test_cathode_npy(tmp_path, table):
    path = write_cathode_npy(table, tmp_path / "innerdata.npy")
    arr = np.load(path)
    assert arr.shape == (len(table), 6)
    assert np.median(arr[:, 0]) < 10  # TeV
    back = read_events(path)
    np.testing.assert_allclose(back["mjj"], table["mjj"], rtol=1e-5)
    np.testing.assert_allclose(back["mj2"], table["mj2"], rtol=1e-4, atol=1e-2)
    np.testing.assert_array_equal(back["label"], table["label"])


def test_cathode_bad_input(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((4, 3)))
    with pytest.raises(InputError, match="5 or 6 columns"):
        read_events(tmp_path / "a.npy")
    gev = np.column_stack([np.full(4, 3500.0), np.ones((4, 5))])
    np.save(tmp_path / "b.npy", gev)
    with pytest.raises(InputError, match="looks like GeV"):
        read_events(tmp_path / "b.npy")
    bad = np.ones((4, 6))
    bad[2, 1] = np.nan
    np.save(tmp_path / "c.npy", bad)
    with pytest.raises(InputError, match="non-finite"):
        read_events(tmp_path / "c.npy")


def test_read_errors(tmp_path, table):
    with pytest.raises(InputError, match="no such file"):
        read_events(tmp_path / "missing.h5")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="unsupported input format"):
        read_events(tmp_path / "x.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no chunk"):
        read_events(tmp_path / "empty")
    p = write_events(table, tmp_path / "t.h5")
    with pytest.raises(InputError, match="missing column"):
        read_events(p, columns=["mjj", "nope"])


def test_inject_signal(signal_events, qcd_events):
    data, info = inject_signal(qcd_events, signal_events, n_signal=40, random_state=1)
    assert len(data) == len(qcd_events) + 40
    assert int(data["label"].sum()) == 40 == info.n_signal
    again, _ = inject_signal(qcd_events, signal_events, n_signal=40, random_state=1)
    pd.testing.assert_frame_equal(data, again)
    sr = (3300.0, 3700.0)
    data2, info2 = inject_signal(qcd_events, signal_events, s_over_b=0.2, sr=sr, random_state=2)
    in_sr = lambda d: ((d.mjj >= sr[0]) & (d.mjj < sr[1])).to_numpy()  # noqa: E731
    f_sig, n_b = in_sr(signal_events).mean(), int(in_sr(qcd_events).sum())
    assert info2.n_signal == round(0.2 * n_b / f_sig)
    # realised S/B: binomial in the number of picked signal events inside the SR (4 sigma)
    sd = np.sqrt(info2.n_signal * f_sig * (1 - f_sig)) / n_b
    assert abs(info2.s_over_b_sr - 0.2) < 4 * sd + 1e-9
    with pytest.raises(InputError, match="only"):
        inject_signal(qcd_events, signal_events, n_signal=10_000)
    with pytest.raises(ConfigError, match="exactly one"):
        inject_signal(qcd_events, signal_events)
    rest, ref = split_background(qcd_events, 0.25, random_state=0)
    assert len(ref) == round(0.25 * len(qcd_events)) and len(rest) + len(ref) == len(qcd_events)
