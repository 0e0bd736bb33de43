from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from excess.calo.models import get_model_class, load_model
from excess.calo.models._fast import inverse_sampler
from excess.calo.models.flow import CaloFlow, _coupling_flow
from excess.calo.preprocessing import ShowerPreprocessor
from excess.errors import ConfigError, NotFittedError

SMALL = {
    "flow": dict(energy_transforms=2, energy_hidden=(16,), shape_transforms=2, shape_hidden=(32,)),
    "vae": dict(latent_dim=4, hidden=(32,)),
    "wgan": dict(latent_dim=4, hidden=(32,), critic_hidden=(32,), n_critic=2),
}


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), spline=st.booleans(), features=st.integers(1, 6),
       marginal_bins=st.sampled_from([0, 4]))
def test_coupling_flow_invertible_and_logprob_matches_autograd(seed, spline, features, marginal_bins):
    flow = _coupling_flow(features, 2, 3, (16,), spline, 6, _gen(seed), marginal_bins=marginal_bins, marginal_hidden=(8,))
    g = _gen(seed + 1)
    x = torch.randn(4, features, generator=g, dtype=torch.float64)
    c = torch.randn(4, 2, generator=g, dtype=torch.float64)
    flow = flow.double()
    # perturb the (zero-init-free) weights so the transforms are far from identity
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    dist = flow(c)
    z = dist.transform(x)
    torch.testing.assert_close(dist.transform.inv(z), x, atol=1e-6, rtol=1e-6)
    lp = dist.log_prob(x)
    for i in range(len(x)):
        f = lambda xi: flow(c[i : i + 1]).transform(xi[None])[0]  # noqa: E731
        jac = torch.autograd.functional.jacobian(f, x[i])
        ref = torch.distributions.Normal(0.0, 1.0).log_prob(f(x[i])).sum() + torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(lp[i], ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("block,marginal_bins", [("shower", 0), ("layer", 0), ("shower", 4)])
def test_caloflow_logprob_is_the_joint_density(tiny_data, tiny_geometry, block, marginal_bins):
    """log p(u, v | E) of both stages equals the change of variables of the joint map (autograd)."""
    e, x = tiny_data
    m = CaloFlow(tiny_geometry, block=block, shape_marginal_bins=marginal_bins, **SMALL["flow"])
    m.preprocessor_ = ShowerPreprocessor(tiny_geometry).fit(x, e, 0)
    m.module_ = m._build(m.preprocessor_.n_features, m.preprocessor_.n_energy, _gen(0)).double()
    f, c = m.preprocessor_.transform(x[:2], e[:2], 0)
    f, c = torch.as_tensor(f, dtype=torch.float64), torch.as_tensor(c, dtype=torch.float64)
    L = m.preprocessor_.n_energy

    def joint(xi, ci):
        e_part = xi[None, :L]
        z1 = m.module_["energy"](ci[None]).transform(e_part)
        ctx = m._shape_context(ci[None], e_part)
        v = xi[None, L:]
        if block == "layer":
            v = v.reshape(L, -1)
        z2 = m.module_["shape"](ctx).transform(v)
        return torch.cat([z1.reshape(-1), z2.reshape(-1)])

    lp = m.log_prob(f, c)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda xi: joint(xi, c[i]), f[i])
        ref = torch.distributions.Normal(0.0, 1.0).log_prob(joint(f[i], c[i])).sum() + torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(lp[i], ref, atol=1e-6, rtol=1e-6)


def test_preprocessor_round_trip(tiny_data, tiny_geometry):
    e, x = tiny_data
    p = ShowerPreprocessor(tiny_geometry, noise_mev=1e-4).fit(x, e, 0)
    f, c = p.transform(x, e, 1)
    assert f.shape == (len(e), 63) and c.shape == (len(e), 1)
    assert abs(f.mean()) < 0.1
    back = p.inverse(f, e)
    np.testing.assert_allclose(back.sum(1), x.sum(1), rtol=1e-3)
    np.testing.assert_allclose(tiny_geometry.layer_sums(back), tiny_geometry.layer_sums(x), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(back, x, rtol=0.02, atol=0.05)
    np.testing.assert_allclose(p.energy_ratio(f[:, 0]), x.sum(1) / e, rtol=1e-3)


@pytest.mark.parametrize("name", ["flow", "vae", "wgan"])
def test_fit_sample_save_load(tiny_data, tiny_geometry, tmp_path, name):
    e, x = tiny_data
    cls = get_model_class(name)
    m = cls(tiny_geometry, epochs=2, batch_size=128, random_state=3, **SMALL[name])
    assert m.get_params()["epochs"] == 2 and not hasattr(m, "module_")  # __init__ only stores
    with pytest.raises(NotFittedError):
        m.sample([1000.0])
    assert m.fit(x, e) is m
    assert len(m.history_) == 2 and m.best_epoch_ in (1, 2)
    assert m.preprocessor_.thresholds_.shape[0] == 3  # sparsity calibration ran (per layer x energy bin)
    assert all(np.isfinite(h["loss"]) and h["chi2_etot"] >= 0 for h in m.history_)
    s = m.sample(e[:50], batch_size=16, random_state=5)
    assert s.shape == (50, 60) and (s >= 0).all() and np.isfinite(s).all()
    ratio = s.sum(1) / e[:50]
    assert 0.3 < np.median(ratio) < 2.0
    m.save(tmp_path / name)
    m2 = load_model(tmp_path / name)
    assert type(m2) is cls and m2.get_params()["epochs"] == 2
    np.testing.assert_array_equal(m2.sample(e[:50], batch_size=16, random_state=5), s)
    # a fixed seed reproduces the training
    m3 = cls(tiny_geometry, epochs=2, batch_size=128, random_state=3, **SMALL[name]).fit(x, e)
    np.testing.assert_array_equal(m3.sample(e[:50], batch_size=16, random_state=5), s)


def test_bad_params(tiny_geometry):
    with pytest.raises(ConfigError):
        get_model_class("diffusion")
    with pytest.raises(ConfigError):
        CaloFlow(tiny_geometry).set_params(n_layers=3)
    with pytest.raises(ConfigError, match="equal size"):
        CaloFlow("ds1-photons", block="layer")._block_mode()


def test_threshold_calibration_restores_sparsity(tiny_data, tiny_geometry):
    e, x = tiny_data
    p = ShowerPreprocessor(tiny_geometry).fit(x, e, 0)
    rng = np.random.default_rng(0)
    smeared = x + rng.uniform(0.0, 0.5, size=x.shape) * (x == 0)  # a model that fills empty voxels
    assert (smeared == 0).mean() < 0.01 < 0.3 < (x == 0).mean()
    p.calibrate_thresholds(smeared, x, e, n_bins=3)
    assert p.thresholds_.shape == (3, 3)
    out = p._threshold(smeared.copy(), e, tiny_geometry.layer_sums(smeared))
    np.testing.assert_allclose((out == 0).mean(), (x == 0).mean(), atol=0.02)
    q = ShowerPreprocessor.from_state(tiny_geometry, p.get_state())
    np.testing.assert_array_equal(q.thresholds_, p.thresholds_)


def test_threshold_keeps_a_faint_layer_in_its_hottest_voxel(tiny_data, tiny_geometry):
    e, x = tiny_data
    g = tiny_geometry
    p = ShowerPreprocessor(g, noise_mev=0.01, relative_noise=None).fit(x, e, 0)
    p.thresholds_, p.threshold_log_e_ = np.full((g.n_layers, 1), 1.0), np.zeros(1)  # 1 MeV everywhere
    p.layer_floors_ = np.full((g.n_layers, 1), 1e-4)  # layers of <= 1e-4 E_inc = 1 MeV are empty
    sl = g.layer_slice(1)
    faint = np.zeros((3, g.n_voxels))
    faint[:, sl] = 0.4  # every voxel of layer 1 below threshold ...
    faint[:, sl.start + 2] = 0.6  # ... the hottest one too
    layer_e = g.layer_sums(faint)
    layer_e[2, 1] = 0.5  # ... and for the third shower the layer's energy is below the floor
    out = p._threshold(faint.copy(), np.full(3, 1e4), layer_e)
    np.testing.assert_allclose(g.layer_sums(out)[:2, 1], layer_e[:2, 1])  # energy kept ...
    assert np.all(np.count_nonzero(out[:2, sl], axis=1) == 1) and np.all(out[:2, sl.start + 2] > 0)  # ... in one voxel
    assert not out[2].any()  # at the floor: empty
    assert not out[:, : sl.start].any() and not out[:, sl.stop :].any()  # empty layers stay empty


@pytest.mark.parametrize("relative_noise", [1e-3, None])
def test_hit_pattern_of_a_faint_layer_survives_the_round_trip(tiny_data, tiny_geometry, relative_noise):
    """A layer of ~1 keV in two voxels: relative dequantisation keeps which voxels are hit; absolute
    noise of 0.01 MeV per voxel drowns them."""
    e, x = tiny_data
    g = tiny_geometry
    p = ShowerPreprocessor(g, noise_mev=0.01, relative_noise=relative_noise).fit(x, e, 0)
    showers = x[:50].astype(np.float64).copy()
    sl = g.layer_slice(2)
    showers[:, sl] = 0.0
    showers[:, sl.start + 3] = 6e-4
    showers[:, sl.start + 11] = 4e-4  # 1 keV in two voxels
    f, _ = p.transform(showers, e[:50], 1)
    back = p.inverse(f, e[:50])
    same = np.array_equal(back[:, sl] > 0, showers[:, sl] > 0)
    assert same == (relative_noise is not None)
    if relative_noise is not None:
        np.testing.assert_allclose(back[:, sl], showers[:, sl], rtol=0.02)
        np.testing.assert_allclose(back.sum(1), showers.sum(1), rtol=1e-3)


def test_layer_floors_restore_the_fraction_of_empty_layers(tiny_geometry):
    """An energy stage that never gives exactly zero: the calibrated floors empty as many layers as the reference has."""
    g = tiny_geometry
    rng = np.random.default_rng(2)
    n = 3000
    e = np.repeat([1e3, 1e4, 1e5], n // 3)
    ref = rng.exponential(1.0, size=(n, g.n_voxels))
    empty = rng.random((n, g.n_layers)) < np.array([0.3, 0.05, 0.0])  # layer 0 empty in 30 %, layer 1 in 5 %
    for i in range(g.n_layers):
        ref[empty[:, i], g.layer_slice(i)] = 0.0
    gen = rng.exponential(1.0, size=(n, g.n_voxels))
    for i in range(g.n_layers):  # the model's "empty" layers: faint, not zero
        gen[empty[:, i], g.layer_slice(i)] *= 1e-6
    p = ShowerPreprocessor(g).fit(ref, e, 0).calibrate_thresholds(gen, ref, e)
    assert p.layer_floors_.shape == (g.n_layers, 3)
    out = p._threshold(gen.copy(), e, g.layer_sums(gen))
    np.testing.assert_allclose((g.layer_sums(out) <= 0).mean(0), (g.layer_sums(ref) <= 0).mean(0), atol=0.01)
    q = ShowerPreprocessor.from_state(g, p.get_state())
    np.testing.assert_array_equal(q.layer_floors_, p.layer_floors_)


def test_threshold_calibration_is_per_energy_for_discrete_energies(tiny_simulator, tiny_geometry):
    rng = np.random.default_rng(5)
    levels = np.array([1e3, 1e4, 1e5])
    e = np.repeat(levels, 200)
    x = tiny_simulator.simulate(e, rng)
    smeared = x + rng.uniform(0.0, 0.5, size=x.shape) * (x == 0)
    p = ShowerPreprocessor(tiny_geometry).fit(x, e, 0).calibrate_thresholds(smeared, x, e, n_bins=2)
    np.testing.assert_allclose(np.exp(p.threshold_log_e_), levels, rtol=1e-9)  # one set per energy
    out = p._threshold(smeared.copy(), e, tiny_geometry.layer_sums(smeared))
    for level in levels:
        m = e == level
        np.testing.assert_allclose((out[m] == 0).mean(), (x[m] == 0).mean(), atol=0.02)


def test_flow_keeps_energy_stage_at_best_chi2_and_shape_stage_at_best_likelihood(tiny_data, tiny_geometry):
    """The E_tot/E_inc chi2 cannot judge the shape flow: it is kept at its own best validation epoch."""
    e, x = tiny_data
    scripted = iter([3.0, 1.0, 2.0])  # epoch 2 has the best validation loss
    snapshots = {}

    class Scripted(CaloFlow):
        def _validation_loss(self, x_val, c_val):
            snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in self.module_.state_dict().items()}
            return next(scripted)

    m = Scripted(tiny_geometry, epochs=3, batch_size=64, random_state=1, sparsity_calibration=False, **SMALL["flow"])
    m.fit(x[:300], e[:300], progress_bar=False)
    assert [h["val_loss"] for h in m.history_] == [3.0, 1.0, 2.0] and m.best_validation_loss_epoch_ == 2
    state = m.module_.state_dict()
    for k, v in state.items():
        want = snapshots[2 if k.startswith("shape.") else m.best_epoch_][k]
        torch.testing.assert_close(v, want, rtol=0, atol=0)
    assert any(not torch.equal(snapshots[1][k], snapshots[2][k]) for k in state if k.startswith("shape."))


@pytest.mark.parametrize("marginal_bins", [0, 8])
def test_layer_flow_generation_in_chunks_is_identical(tiny_data, tiny_geometry, marginal_bins):
    e, x = tiny_data
    m = CaloFlow(tiny_geometry, block="layer", epochs=1, shape_marginal_bins=marginal_bins, **SMALL["flow"])
    m.fit(x[:200], e[:200], progress_bar=False)
    a = m.sample(e[:40], random_state=1)
    m._max_rows = 50  # force several shape-flow passes (zuko path)
    m._chunk_elements = 50 * 4  # and several chunks of the fast path (layers of 4 voxels)
    b = m.sample(e[:40], random_state=1)
    if marginal_bins:  # float32 rounding of the spline's network differs with the batch shape
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    else:
        np.testing.assert_array_equal(b, a)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), spline=st.booleans(), features=st.integers(2, 7),
       marginal_bins=st.sampled_from([0, 3]), hidden=st.sampled_from([(16,), (8, 8)]), transforms=st.integers(1, 3))
def test_fast_inverse_equals_zuko(seed, spline, features, marginal_bins, hidden, transforms):
    """The fast sampling path inverts every transform exactly as zuko does, also beyond the spline's bound."""
    flow = _coupling_flow(features, 3, transforms, hidden, spline, 5, _gen(seed), marginal_bins=marginal_bins, marginal_hidden=(8,))
    g = _gen(seed + 1)
    flow = flow.double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    c = torch.randn(64, 3, generator=g, dtype=torch.float64)
    z = 3 * torch.randn(64, features, generator=g, dtype=torch.float64)  # some beyond the bound of 6
    with torch.no_grad():
        ref = flow(c).transform.inv(z)
    out = inverse_sampler(flow)(c, z)
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)


def test_fast_inverse_rejects_what_it_does_not_know():
    flow = _coupling_flow(1, 2, 2, (8,), True, 4, _gen(0))  # one feature: zuko's element-wise transform
    with pytest.raises(NotImplementedError):
        inverse_sampler(flow)


@pytest.mark.parametrize("block", ["shower", "layer"])
def test_flow_fast_sampling_matches_zuko_and_follows_weight_updates(tiny_data, tiny_geometry, block):
    e, x = tiny_data
    m = CaloFlow(tiny_geometry, block=block, epochs=1, shape_marginal_bins=4, **SMALL["flow"])
    m.fit(x[:200], e[:200], progress_bar=False)
    c = torch.as_tensor(m.preprocessor_.condition(e[:50]))
    with torch.no_grad():
        slow = m._generate(c, _gen(3), fast=False)
        torch.testing.assert_close(m._generate(c, _gen(3)), slow, atol=2e-4, rtol=1e-4)
        for p in m.module_.parameters():  # an in-place update (as an optimiser step) must not leave stale weights
            p.mul_(1.1)
        slow2 = m._generate(c, _gen(3), fast=False)
        assert not torch.allclose(slow2, slow)
        torch.testing.assert_close(m._generate(c, _gen(3)), slow2, atol=2e-4, rtol=1e-4)


def test_small_layers_get_their_own_flow(mixed_data, mixed_geometry, tmp_path):
    """Layers of <= small_layer_voxels voxels: a separate flow; the joint density, fast sampling,
    save/load and the best-epoch bookkeeping cover it."""
    e, x = mixed_data
    m = CaloFlow(mixed_geometry, epochs=2, small_layer_voxels=8, small_transforms=2, small_hidden=(16,),
                 shape_marginal_bins=4, **SMALL["flow"])
    m.fit(x[:300], e[:300], progress_bar=False)
    assert set(m.module_) == {"energy", "shape", "small"}
    np.testing.assert_array_equal(m.small_index_.numpy(), np.arange(5))
    assert len(m.main_index_) == 40
    # log p = log p(u|E) + log p(main|u,E) + log p(small|u,E): the change of variables of the joint map
    mod = m.module_.double()
    f, c = m.preprocessor_.transform(x[:2], e[:2], 0)
    f, c = torch.as_tensor(f, dtype=torch.float64), torch.as_tensor(c, dtype=torch.float64)
    L = m.preprocessor_.n_energy

    def joint(xi, ci):
        e_part = xi[None, :L]
        ctx = m._shape_context(ci[None], e_part)
        v = xi[None, L:]
        return torch.cat([mod["energy"](ci[None]).transform(e_part).reshape(-1),
                          mod["shape"](ctx).transform(v[:, m.main_index_]).reshape(-1),
                          mod["small"](ctx).transform(v[:, m.small_index_]).reshape(-1)])

    lp = m.log_prob(f, c)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda xi: joint(xi, c[i]), f[i])
        ref = torch.distributions.Normal(0.0, 1.0).log_prob(joint(f[i], c[i])).sum() + torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(lp[i], ref, atol=1e-6, rtol=1e-6)
    mod.float()
    cond = torch.as_tensor(m.preprocessor_.condition(e[:50]))
    with torch.no_grad():
        torch.testing.assert_close(m._generate(cond, _gen(2)), m._generate(cond, _gen(2), fast=False), atol=2e-4, rtol=1e-4)
    a = m.sample(e[:20], random_state=3)
    b = load_model(m.save(tmp_path / "m")).sample(e[:20], random_state=3)
    np.testing.assert_array_equal(a, b)


def test_saved_flow_without_small_layer_key_loads_as_one_flow(mixed_data, mixed_geometry, tmp_path):
    import json

    e, x = mixed_data
    m = CaloFlow(mixed_geometry, epochs=1, small_layer_voxels=0, **SMALL["flow"]).fit(x[:200], e[:200], progress_bar=False)
    d = m.save(tmp_path / "old")
    meta = json.loads((d / "model.json").read_text())
    del meta["params"]["small_layer_voxels"]  # as written before the parameter existed
    (d / "model.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(load_model(d).sample(e[:10], random_state=1), m.sample(e[:10], random_state=1))


@pytest.mark.slow  # torch.compile takes 1-3 min on 2 cores
def test_compiled_sampling_matches_eager(mixed_data, mixed_geometry):
    e, x = mixed_data
    m = CaloFlow(mixed_geometry, epochs=1, small_layer_voxels=8, small_transforms=1, small_hidden=(8,),
                 shape_marginal_bins=4, **SMALL["flow"]).fit(x[:200], e[:200], progress_bar=False)
    eager = m.sample(e[:30], random_state=4)
    np.testing.assert_allclose(m.sample(e[:30], random_state=4, compile=True), eager, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(m.sample(e[:30], random_state=4), eager)  # and back


def test_compile_is_refused_by_models_without_it(tiny_data, tiny_geometry):
    e, x = tiny_data
    m = get_model_class("vae")(tiny_geometry, epochs=1, **SMALL["vae"]).fit(x[:100], e[:100], progress_bar=False)
    with pytest.raises(ConfigError, match="flow model only"):
        m.sample(e[:5], compile=True)


@pytest.mark.parametrize("block_columns", [1, 7, 1024])
def test_fast_inverse_in_feature_blocks_equals_zuko(monkeypatch, block_columns):
    """The fast path's column layouts and output blocks (down to one feature per block) change nothing:
    float64 equal to zuko's inverse, through a marginal spline, spline and affine coupling layers."""
    from excess.calo.models import _fast

    monkeypatch.setattr(_fast._Layer, "block_columns", block_columns)
    g = _gen(5)
    for spline in (False, True):
        flow = _coupling_flow(9, 2, 3, (16,), spline, 5, _gen(4), marginal_bins=4, marginal_hidden=(8,)).double()
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        c = torch.randn(50, 2, generator=g, dtype=torch.float64)
        z = 3 * torch.randn(50, 9, generator=g, dtype=torch.float64)
        with torch.no_grad():
            ref = flow(c).transform.inv(z)
        torch.testing.assert_close(inverse_sampler(flow)(c, z), ref, atol=1e-9, rtol=1e-9)


def test_flow_samples_for_a_seed_match_zuko_in_float32(mixed_data, mixed_geometry, monkeypatch):
    """A trained tiny flow (marginal splines, small-layer flow): for a fixed seed the fast path's showers are
    zuko's up to float32 rounding, with one or many output blocks."""
    from excess.calo.models import _fast

    e, x = mixed_data
    m = CaloFlow(mixed_geometry, epochs=1, small_layer_voxels=8, small_transforms=2, small_hidden=(16,),
                 shape_marginal_bins=4, **SMALL["flow"]).fit(x[:200], e[:200], progress_bar=False)
    cond = torch.as_tensor(m.preprocessor_.condition(e[:80]))
    with torch.no_grad():
        ref = m._generate(cond, _gen(9), fast=False)
        fast = m._generate(cond, _gen(9))
        torch.testing.assert_close(fast, ref, atol=2e-4, rtol=1e-4)
        monkeypatch.setattr(_fast._Layer, "block_columns", 5)
        m._fast_cache_ = None  # rebuild the samplers with the new blocks
        torch.testing.assert_close(m._generate(cond, _gen(9)), fast, atol=1e-5, rtol=1e-5)
    assert not torch.equal(ref, m._generate(cond, _gen(10), fast=False))  # the seed matters: the check can fail
