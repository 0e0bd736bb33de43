"""Generation chunks run unchanged on a dask.distributed cluster (in-process LocalCluster here)."""

import numpy as np
import pandas as pd

from excess.data.generate import generate_dijet
from excess.data.io import read_events


def test_generate_on_local_cluster(tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        s = generate_dijet(tmp_path / "dask", 60, process="signal", seed=8, chunk_size=30, address=client)
    assert s.n_chunks == 2
    local = generate_dijet(tmp_path / "local", 60, process="signal", seed=8, chunk_size=30, n_workers=1)
    assert local.n_chunks == 2
    a, b = read_events(tmp_path / "dask"), read_events(tmp_path / "local")
    pd.testing.assert_frame_equal(a, b)  # same seeds, same events, whichever executor ran them
    assert np.isfinite(a["mjj"]).all()
