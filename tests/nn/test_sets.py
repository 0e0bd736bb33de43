"""Deep-set networks: permutation and padding invariance (PFN, EFN), IRC safety (EFN)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from excess.errors import InputError  # noqa: E402
from excess.nn.sets import energy_flow_network, particle_flow_network, set_mask  # noqa: E402
from excess.nn.training import reset_parameters, torch_generator  # noqa: E402


def _pfn(d=4, seed=0):
    net = particle_flow_network(d, (16, 16, 8), (16, 16), 1, dtype=torch.float64)
    reset_parameters(net, torch_generator(seed))
    return net.eval()


def _efn(seed=0):
    net = energy_flow_network(2, (16, 16, 8), (16, 16), 1, dtype=torch.float64)
    reset_parameters(net, torch_generator(seed))
    return net.eval()


def _batch(rng, b=5, m=7, d=4):
    x = torch.from_numpy(rng.normal(size=(b, m, d)))
    mask = torch.from_numpy(rng.random((b, m)) < 0.8)
    mask[:, 0] = True
    return x, mask


def test_pfn_permutation_invariant_and_not_constant():
    rng = np.random.default_rng(1)
    net = _pfn()
    x, mask = _batch(rng)
    out = net(x, mask)
    perm = torch.from_numpy(rng.permutation(x.shape[1]))
    assert torch.allclose(out, net(x[:, perm], mask[:, perm]), atol=1e-12)
    # the output depends on the particles (a broken network returning a constant would pass the above)
    assert out.std() > 1e-6
    assert not torch.allclose(out, net(x + 0.5, mask))


def test_pfn_padding_and_mask_invariant():
    rng = np.random.default_rng(2)
    net = _pfn()
    x, mask = _batch(rng)
    out = net(x, mask)
    # extra padding rows with garbage values, masked out
    pad = torch.from_numpy(rng.normal(size=(x.shape[0], 5, x.shape[2])))
    x2 = torch.cat([x, pad], dim=1)
    m2 = torch.cat([mask, torch.zeros(x.shape[0], 5, dtype=torch.bool)], dim=1)
    assert torch.allclose(out, net(x2, m2), atol=1e-12)
    # changing masked-out entries changes nothing; changing a real one does
    x3 = x.clone()
    x3[~mask] = 123.0
    assert torch.allclose(out, net(x3, mask), atol=1e-12)
    x4 = x.clone()
    x4[:, 0] += 1.0
    assert not torch.allclose(out, net(x4, mask))


def test_pfn_latent_shape_and_bad_input():
    net = _pfn()
    x = torch.zeros(3, 5, 4, dtype=torch.float64)
    assert net.latent(x, torch.ones(3, 5, dtype=torch.bool)).shape == (3, 8)
    with pytest.raises(InputError, match="particles must have shape"):
        net(torch.zeros(3, 5, 3, dtype=torch.float64), torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(InputError, match="mask must have shape"):
        net(x, torch.ones(3, 4, dtype=torch.bool))


def test_efn_irc_safe():
    rng = np.random.default_rng(3)
    net = _efn()
    b, m = 4, 6
    z = torch.from_numpy(rng.random((b, m)))
    z = z / z.sum(1, keepdim=True)
    p = torch.from_numpy(rng.normal(scale=0.2, size=(b, m, 2)))
    mask = torch.ones(b, m, dtype=torch.bool)
    out = net(z, p, mask)
    assert out.std() > 1e-6
    # collinear split of particle 2 into fractions 0.3 / 0.7 at the same angles
    z_split = torch.cat([z, 0.7 * z[:, 2:3]], dim=1)
    z_split[:, 2] *= 0.3
    p_split = torch.cat([p, p[:, 2:3]], dim=1)
    assert torch.allclose(out, net(z_split, p_split, torch.ones(b, m + 1, dtype=torch.bool)), atol=1e-12)
    # a zero-energy particle anywhere changes nothing, even though it is "real" (mask True)
    z0 = torch.cat([z, torch.zeros(b, 1, dtype=z.dtype)], dim=1)
    p0 = torch.cat([p, torch.from_numpy(rng.normal(size=(b, 1, 2)))], dim=1)
    assert torch.allclose(out, net(z0, p0, torch.ones(b, m + 1, dtype=torch.bool)), atol=1e-12)
    # permutation invariance and sensitivity to the angles
    perm = torch.from_numpy(rng.permutation(m))
    assert torch.allclose(out, net(z[:, perm], p[:, perm], mask), atol=1e-12)
    assert not torch.allclose(out, net(z, p * 2, mask))
    # a PFN on (z, p) is not IRC safe: the same split changes its output (the test above can fail)
    pfn = _pfn(d=3)
    x = torch.cat([z.unsqueeze(-1), p], dim=-1)
    xs = torch.cat([z_split.unsqueeze(-1), p_split], dim=-1)
    assert not torch.allclose(pfn(x, mask), pfn(xs, torch.ones(b, m + 1, dtype=torch.bool)))


def test_set_mask_numpy_and_torch():
    x = np.zeros((2, 3, 4))
    x[0, :2, 0] = 1.0
    x[1, 0, 0] = 2.0
    assert set_mask(x).tolist() == [[True, True, False], [True, False, False]]
    assert set_mask(torch.from_numpy(x)).tolist() == [[True, True, False], [True, False, False]]


def test_seeded_init_reproducible():
    a, b = _pfn(seed=5), _pfn(seed=5)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("kind", ["pfn", "efn"])
def test_sparse_path_matches_dense_formula_with_gradients(kind):
    """Phi on the real particles only (mostly padding) gives the dense masked sum, values and gradients."""
    from excess.nn import sets

    rng = np.random.default_rng(5)
    b, m = 6, 20
    mask = torch.from_numpy(rng.random((b, m)) < 0.3)
    mask[:, 0] = True
    assert mask.float().mean() < sets.SPARSE_FILL  # the sparse path is taken
    net = _pfn(d=2) if kind == "pfn" else _efn()
    x = torch.from_numpy(rng.normal(size=(b, m, 2))).requires_grad_(True)
    z = torch.from_numpy(rng.random((b, m)))
    w = mask.double() if kind == "pfn" else z * mask.double()
    dense = net.f((net.phi(x) * w.unsqueeze(-1)).sum(dim=1))
    out = net(x, mask) if kind == "pfn" else net(z, x, mask)
    assert torch.allclose(out, dense, atol=1e-12)
    g_sparse, = torch.autograd.grad(out.sum(), x)
    g_dense, = torch.autograd.grad(dense.sum(), x)
    assert torch.allclose(g_sparse, g_dense, atol=1e-12)
    assert torch.all(g_sparse[~mask] == 0) and g_sparse[mask].abs().sum() > 0
    # an empty set contributes F(0), on both paths
    mask0 = mask.clone()
    mask0[1] = False
    out0 = net(x, mask0) if kind == "pfn" else net(z, x, mask0)
    zero = net.f(torch.zeros(1, net.phi[-2].out_features, dtype=torch.float64))
    assert torch.allclose(out0[1], zero[0], atol=1e-12)
