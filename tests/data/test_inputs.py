"""excess search inputs: a user's ROOT / Parquet file with a column mapping and unit scaling."""

import numpy as np
import pandas as pd
import pytest

from excess.data.inputs import load_events
from excess.errors import InputError


@pytest.fixture
def user_columns():
    rng = np.random.default_rng(0)
    n = 500
    return {
        "Mjj_TeV": rng.uniform(2.8, 5.0, n),
        "mj_light": rng.uniform(0.02, 0.3, n),
        "dmj": rng.uniform(0.0, 0.5, n),
        "t21a": rng.uniform(0.1, 0.9, n),
        "t21b": rng.uniform(0.1, 0.9, n),
    }


MAPPING = {"mjj": "Mjj_TeV", "mj1": "mj_light", "delta_mj": "dmj", "tau21_j1": "t21a", "tau21_j2": "t21b"}


@pytest.mark.parametrize("kind", ["ttree", "rntuple"])
def test_root_with_mapping(tmp_path, user_columns, kind):
    import uproot

    path = tmp_path / "user.root"
    with uproot.recreate(path) as f:
        if kind == "ttree":
            f.mktree("Events", {k: "f8" for k in user_columns}).extend(user_columns)
        else:
            f["Events"] = user_columns  # uproot >= 5.4 writes an RNTuple
    df = load_events(path, tree="Events", columns=MAPPING, scale_to_gev=1000.0)
    np.testing.assert_allclose(df["mjj"], user_columns["Mjj_TeV"] * 1000.0)
    np.testing.assert_allclose(df["mj2"], (user_columns["mj_light"] + user_columns["dmj"]) * 1000.0)
    np.testing.assert_allclose(df["tau21_j1"], user_columns["t21a"])
    assert (df["label"] == -1).all()
    with pytest.raises(InputError, match="no tree 'Nope'"):
        load_events(path, tree="Nope", columns=MAPPING)


def test_parquet_with_mapping_and_missing_column(tmp_path, user_columns):
    path = tmp_path / "user.parquet"
    pd.DataFrame(user_columns).to_parquet(path)
    df = load_events(path, columns=MAPPING, scale_to_gev=1000.0, max_events=100)
    assert df["mjj"].min() > 2000 and len(df) == 100
    bad = dict(MAPPING, mjj="M_jj")
    with pytest.raises(InputError, match=r"column\(s\) \['M_jj'\]"):
        load_events(path, columns=bad)
