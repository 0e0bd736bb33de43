"""The compiled (numba) loops of the flow's fast sampling path give what its torch version gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from excess.calo.models import _fast
from excess.calo.models.flow import CaloFlow

pytest.importorskip("numba")  # a dependency of shap, hence always there; the torch version runs without it

SMALL = dict(energy_transforms=2, energy_hidden=(16,), shape_transforms=2, shape_hidden=(32,), shape_marginal_bins=4)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("bins,features", [(8, 44), (5, 3), (4, 1)])
def test_compiled_spline_inverse_equals_torch_version(bins, features):
    g = _gen(bins * 100 + features)
    phi = 2 * torch.randn(300, 3 * bins - 1, features, generator=g)
    y = 3 * torch.randn(300, features + 2, generator=g)[:, 1:-1]  # a strided view, some beyond the bound of 6
    assert _fast._compiled_loops_apply(phi, y) and _fast._numba_kernels() is not None
    out = _fast._rqs_inverse(phi.clone(), y, bins=bins, bound=6.0, slope=1e-3, loops=True)
    ref = _fast._rqs_inverse_torch(phi.clone(), y, bins=bins, bound=6.0, slope=1e-3)
    exact = _fast._rqs_inverse_torch(phi.double(), y.double(), bins=bins, bound=6.0, slope=1e-3)
    err, err_torch = (out.double() - exact).abs().max(), (ref.double() - exact).abs().max()
    assert err <= 1.5 * err_torch + 1e-6 and err < 5e-4  # float32 rounding, no more than the torch version's
    assert (out == ref).float().mean() > 0.9  # the same float32 steps: most are bit-identical
    outside = y.abs() >= 6
    assert outside.any() and torch.equal(out[outside], y[outside])


def test_compiled_affine_inverse_is_bit_identical_to_torch_version():
    g = _gen(1)
    phi = 3 * torch.randn(200, 2, 17, generator=g)
    y = torch.randn(200, 20, generator=g)[:, :17]
    out = _fast._affine_inverse(phi.clone(), y, slope=1e-3, loops=True)
    assert torch.equal(out, _fast._affine_inverse(phi.clone(), y, slope=1e-3))


def test_float64_and_compile_take_the_torch_version():
    phi, y = torch.zeros(2, 5, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)
    assert not _fast._compiled_loops_apply(phi, y)
    assert _fast._compiled_loops_apply(phi.float(), y.float())


def test_showers_for_a_seed_are_those_of_the_torch_version(mixed_data, mixed_geometry):
    """A tiny flow (one epoch: marginal splines, affine coupling layers, a small-layer spline flow): for a fixed
    seed the showers with the compiled loops are those of the torch version up to float32 rounding."""
    e, x = mixed_data
    m = CaloFlow(mixed_geometry, epochs=1, small_layer_voxels=8, small_transforms=2, small_hidden=(16,), **SMALL)
    m.fit(x[:100], e[:100], progress_bar=False)
    fast = m.sample(e[:150], random_state=4, compiled_loops=True)
    assert _fast.compiled_loops_loaded()
    ref = m.sample(e[:150], random_state=4, compiled_loops=False)
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-6)
    assert np.mean((fast > 0) == (ref > 0)) > 0.999 and np.mean(fast == ref) > 0.5 and not np.array_equal(fast, ref)
    assert np.array_equal(m.sample(e[:150], random_state=4), fast)  # loaded: the default uses them
    assert not np.allclose(m.sample(e[:150], random_state=5), fast, rtol=1e-2)  # the seed matters: the check can fail


def test_default_loads_the_loops_only_for_large_calls(mixed_data, mixed_geometry, monkeypatch):
    e, x = mixed_data
    m = CaloFlow(mixed_geometry, epochs=1, **SMALL).fit(x[:100], e[:100], progress_bar=False)
    monkeypatch.setattr(_fast, "compiled_loops_loaded", lambda: False)
    used = []
    real = _fast.inverse_sampler
    monkeypatch.setattr(_fast, "inverse_sampler", lambda flow, loops=False: used.append(loops) or real(flow, loops=loops))
    m.sample(e[:10], random_state=0)
    assert used and not any(used)
    used.clear()
    m._loops_min_elements = 10 * mixed_geometry.n_voxels
    m.sample(e[:10], random_state=0)
    assert used and all(used)


@pytest.mark.parametrize("context", [0, 3])
def test_coupling_passes_compute_only_the_hidden_units_they_need(context):
    """zuko's masked MLP: half the hidden units of a two-pass layer see the context only; the first pass computes
    just those (none without a context: its outputs are the bias), and the inverse is still zuko's (float64)."""
    import zuko

    g = _gen(context + 1)
    flow = zuko.flows.MAF(5, context, transforms=2, passes=2, hidden_features=(16, 16)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    t = flow.transform.transforms[0]
    layer = _fast._Layer(t, torch.arange(5))
    first_pass = [cuts[1] for cuts in layer.cuts]
    assert first_pass == ([8, 8] if context else [0, 0]) and all(cuts[2] == 16 for cuts in layer.cuts)
    c = torch.randn(40, context, generator=g, dtype=torch.float64)
    z = 2 * torch.randn(40, 5, generator=g, dtype=torch.float64)
    with torch.no_grad():
        ref = flow(c).transform.inv(z)
    torch.testing.assert_close(_fast.inverse_sampler(flow)(c, z), ref, atol=1e-9, rtol=1e-9)
