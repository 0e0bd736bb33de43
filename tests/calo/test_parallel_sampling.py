"""The flow's fast sampling path runs its chunks on several threads when torch has several: same showers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excess.calo.models.flow import CaloFlow, _map_chunks

SMALL = dict(energy_transforms=2, energy_hidden=(16,), shape_transforms=2, shape_hidden=(32,))


def test_map_chunks_keeps_order_and_thread_count():
    old = torch.get_num_threads()
    chunks = [(torch.full((3, 1), float(i)), torch.ones(3, 2) * i) for i in range(7)]
    out = _map_chunks(lambda c, z: c + z, chunks, 3)
    assert [float(o[0, 0]) for o in out] == [2.0 * i for i in range(7)]
    assert torch.get_num_threads() == old


@pytest.mark.parametrize("block", ["shower", "layer"])
def test_threaded_chunks_give_the_same_showers(tiny_data, tiny_geometry, block):
    e, x = tiny_data
    m = CaloFlow(tiny_geometry, block=block, epochs=1, **SMALL)
    m.fit(x[:200], e[:200], progress_bar=False)
    m._chunk_elements = 30 * 4  # many chunks
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = m.sample(e[:60], random_state=3)
        torch.set_num_threads(2)
        b = m.sample(e[:60], random_state=3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)
    # float32 matrix products may round differently with the thread count; nothing else differs
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    assert np.mean((a > 0) == (b > 0)) > 0.999


def test_timing_reports_cpu_time(tiny_data, tiny_geometry):
    from excess.calo.timing import time_generation

    e, x = tiny_data
    m = CaloFlow(tiny_geometry, epochs=1, **SMALL)
    m.fit(x[:100], e[:100], progress_bar=False)
    res = time_generation(m, energies=e, batch_sizes=(10,), threads=1, repeats=1, min_seconds=0.0, random_state=0)
    row = res.rows[0]
    assert row.model_cpu_ms_per_shower > 0 and row.to_dict()["model_cpu_ms_per_shower"] == row.model_cpu_ms_per_shower
    assert "model CPU" in res.format_table()
