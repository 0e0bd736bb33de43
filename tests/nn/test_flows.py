"""Flows, preprocessing, classifiers and autoencoders: properties and save/load round trips."""

import os

import numpy as np
import pytest

os.environ.setdefault("EXCESS_NO_PROGRESS", "1")
torch = pytest.importorskip("torch")

from excess.errors import ConfigError, InputError, NotFittedError  # noqa: E402
from excess.nn.autoencoders import VAE, Autoencoder  # noqa: E402
from excess.nn.classifiers import HGBEnsemble, MLPClassifier, balanced_weights, make_classifier  # noqa: E402
from excess.nn.flows import ConditionalFlow  # noqa: E402
from excess.nn.io import load_model, save_model  # noqa: E402
from excess.nn.preprocessing import QuantileScaler, make_scaler, scaler_from_state  # noqa: E402


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    c = rng.uniform(3000, 4000, 2000)
    X = np.c_[rng.normal((c - 3500) / 500, 1.0), rng.gamma(2.0, 1.0 + (c - 3000) / 1000), rng.uniform(0, 1, c.size)]
    return X, c


@pytest.fixture(scope="module", params=[("nsf", "logit", "constant"), ("maf", "logit", "constant"),
                                        ("maf", "quantile", "cosine")], ids=str)
def flow(request, data):
    X, c = data
    kind, pre, schedule = request.param
    return ConditionalFlow(kind=kind, preprocessing=pre, lr_schedule=schedule, transforms=2, hidden=(16, 16), epochs=4, batch_size=256,
                           random_state=0).fit(X, c)


@pytest.mark.parametrize("kind", ["logit", "standard", "quantile"])
def test_preprocessing_jacobian_matches_autograd(data, kind):
    X, _ = data
    sc = make_scaler(kind).fit(X)
    x = torch.tensor(X[:5], dtype=torch.float64)
    z, logdet = sc.forward_torch(x)
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda v: sc.forward_torch(v[None])[0][0], x[i])
        assert logdet[i].item() == pytest.approx(torch.linalg.slogdet(J)[1].item(), abs=1e-8)
    zn, ldn = sc.transform(X[:5])
    np.testing.assert_allclose(zn, z.numpy(), atol=1e-10)
    np.testing.assert_allclose(ldn, logdet.numpy(), atol=1e-10)
    np.testing.assert_allclose(sc.inverse_transform(zn), X[:5], rtol=1e-8, atol=1e-8)
    # out-of-box values stay finite
    z_out, ld_out = sc.transform(X[:2] + 1e3)
    assert np.all(np.isfinite(z_out)) and np.all(np.isfinite(ld_out))
    # state round trip
    back = scaler_from_state(sc.get_state())
    assert type(back) is type(sc)
    np.testing.assert_allclose(back.transform(X[:5])[0], zn)


def test_quantile_scaler_gaussianises_and_is_a_density():
    rng = np.random.default_rng(3)
    X = np.c_[rng.gamma(1.5, 2.0, 20000), rng.beta(5, 1, 20000)]  # skewed, hard upper edge
    sc = QuantileScaler().fit(X)
    z, _ = sc.transform(X)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-6)
    for j in range(2):  # marginals are standard normal (skew ~ 0, kurtosis ~ 3)
        assert abs(np.mean(z[:, j] ** 3)) < 0.05 and abs(np.mean(z[:, j] ** 4) - 3) < 0.25
    # the 1-d density p(x) = phi(z(x)) |dz/dx| integrates to 1 over the box
    one = QuantileScaler().fit(X[:, :1])
    lo, hi = one.knots_[0, 0], one.knots_[0, -1]
    grid = np.linspace(lo, hi, 200001)[:, None]
    zg, ldg = one.transform(grid)
    dens = np.exp(-0.5 * zg[:, 0] ** 2 - 0.5 * np.log(2 * np.pi) + ldg)
    assert np.trapezoid(dens, grid[:, 0]) == pytest.approx(1.0, abs=2e-3)
    with pytest.raises(InputError, match="constant columns"):
        QuantileScaler().fit(np.c_[X[:, 0], np.ones(len(X))])


def test_quantile_scaler_samples_stay_in_the_training_range_and_keep_the_tails():
    """Gaussian draws mapped back must not leave the training range (a data-vs-samples classifier would
    rank the emptied data tails first) and must reproduce the extreme tail fractions."""
    rng = np.random.default_rng(4)
    X = np.c_[np.abs(rng.normal(0, 100, 200000)), rng.beta(2, 5, 200000)]  # hard lower edge at 0 with density
    sc = QuantileScaler().fit(X)
    Xs = sc.inverse_transform(rng.normal(size=(400000, 2)))
    outside = (Xs < X.min(axis=0)) | (Xs > X.max(axis=0))
    assert outside.mean() < 1e-4
    for lo, hi in [(0.0, 0.5), (300.0, np.inf)]:  # the lowest 0.4 % and the top 0.3 % of feature 0
        f_data = np.mean((X[:, 0] >= lo) & (X[:, 0] < hi))
        f_samp = np.mean((Xs[:, 0] >= lo) & (Xs[:, 0] < hi))
        assert f_samp == pytest.approx(f_data, rel=0.15)


def test_unknown_preprocessing_is_a_config_error():
    with pytest.raises(ConfigError, match="preprocessing must be one of"):
        make_scaler("boxcox")


def test_flow_invertible(flow, data):
    X, c = data
    z, _ = flow.to_latent(X[:200])
    zt, ct = torch.as_tensor(z, dtype=torch.float32), flow.context_tensor(c[:200, None])
    t = flow.flow_(ct).transform
    with torch.no_grad():
        back = t.inv(t(zt))
    np.testing.assert_allclose(back.numpy(), z, atol=2e-4)


def test_flow_log_prob_includes_jacobian(flow, data):
    """log p(x) computed through the flow + preprocessing equals the autograd change of variables."""
    X, c = data
    x = torch.tensor(X[:8], dtype=torch.float64)
    z, logdet_pre = flow.scaler_.forward_torch(x)
    ct = flow.context_tensor(c[:8, None])
    dist = flow.flow_(ct)
    with torch.no_grad():
        lz = dist.log_prob(z.float()).double()
    expected = lz + logdet_pre
    np.testing.assert_allclose(flow.log_prob(X[:8], c[:8]), expected.numpy(), rtol=1e-5, atol=1e-4)
    # flow Jacobian vs autograd: log p_z(z) = log N(f(z)) + log|det df/dz|
    for i in range(3):
        zi = z[i].float()
        t = flow.flow_(ct[i : i + 1]).transform
        J = torch.autograd.functional.jacobian(lambda v: t(v[None])[0], zi)
        u = t(zi[None])[0]
        ref = torch.distributions.Normal(0, 1).log_prob(u).sum() + torch.linalg.slogdet(J)[1]
        assert lz[i].item() == pytest.approx(ref.item(), abs=1e-3)


@pytest.mark.parametrize("pre", ["logit", "quantile"])
def test_flow_density_normalised_in_original_variables(pre):
    """A 1-d flow fitted to a known density integrates to one in x (the Jacobian is right)."""
    rng = np.random.default_rng(3)
    X = rng.gamma(3.0, 2.0, size=(3000, 1))
    c = rng.uniform(0, 1, 3000)
    f = ConditionalFlow(kind="nsf", preprocessing=pre, transforms=2, hidden=(16, 16), epochs=15, random_state=1).fit(X, c)
    lo, hi = f.scaler_.lo_[0], f.scaler_.hi_[0]
    grid = np.linspace(lo + 1e-6, hi - 1e-6, 20000)
    dens = np.exp(f.log_prob(grid[:, None], np.full(grid.size, 0.5)))
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=0.03)
    from scipy.stats import gamma

    truth = gamma.logpdf(X[:500, 0], 3.0, scale=2.0)
    assert np.mean(f.log_prob(X[:500], c[:500])) == pytest.approx(np.mean(truth), abs=0.1)


def test_flow_sampling_reproducible(flow, data):
    _, c = data
    a = flow.sample(c[:100], random_state=5)
    b = flow.sample(c[:100], random_state=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, flow.sample(c[:100], random_state=6))
    assert np.all(a >= flow.scaler_.lo_) and np.all(a <= flow.scaler_.hi_)


def test_flow_fit_reproducible(data):
    X, c = data
    kw = dict(kind="maf", transforms=1, hidden=(8,), epochs=2, random_state=11)
    a = ConditionalFlow(**kw).fit(X, c).log_prob(X[:10], c[:10])
    b = ConditionalFlow(**kw).fit(X, c).log_prob(X[:10], c[:10])
    np.testing.assert_array_equal(a, b)


def test_flow_save_load_round_trip(flow, data, tmp_path):
    X, c = data
    flow.save(tmp_path / "flow")
    assert (tmp_path / "flow" / "hyperparameters.json").is_file()
    loaded = ConditionalFlow.load(tmp_path / "flow")
    np.testing.assert_allclose(loaded.log_prob(X[:50], c[:50]), flow.log_prob(X[:50], c[:50]), rtol=1e-6)
    np.testing.assert_array_equal(loaded.sample(c[:20], random_state=1), flow.sample(c[:20], random_state=1))
    assert loaded.get_params() == flow.get_params()


def test_flow_errors(data):
    X, c = data
    with pytest.raises(ConfigError, match="unknown flow kind"):
        ConditionalFlow(kind="glow").fit(X, c)
    with pytest.raises(ConfigError, match="lr_schedule"):
        ConditionalFlow(lr_schedule="step").fit(X, c)
    with pytest.raises(ConfigError, match="preprocessing must be one of"):
        ConditionalFlow(preprocessing="boxcox").fit(X, c)
    with pytest.raises(InputError, match="mismatched lengths"):
        ConditionalFlow(epochs=1).fit(X, c[:-1])
    with pytest.raises(NotFittedError):
        ConditionalFlow().log_prob(X, c)
    with pytest.raises(InputError, match="not a saved model"):
        load_model("/nonexistent/dir")


def test_classifiers(data):
    X, _ = data
    y = (X[:, 0] + 0.5 * np.random.default_rng(1).normal(size=X.shape[0]) > 0.8).astype(int)
    from excess.stats.roc import roc_auc

    for clf in (HGBEnsemble(n_members=2, max_iter=20, random_state=0),
                MLPClassifier(hidden=(16,), epochs=30, n_best=2, random_state=0)):
        p = clf.fit(X, y).predict_proba(X)
        assert p.shape == (X.shape[0], 2) and np.allclose(p.sum(1), 1)
        assert roc_auc(y, p[:, 1]) > 0.8
    w = balanced_weights(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum()) and w.mean() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="unknown classifier"):
        make_classifier("svm")


def test_mlp_save_load(data, tmp_path):
    X, _ = data
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier(hidden=(8,), epochs=3, n_best=2, random_state=0).fit(X, y)
    save_model(clf, tmp_path / "mlp")
    np.testing.assert_allclose(load_model(tmp_path / "mlp").predict_proba(X[:20]), clf.predict_proba(X[:20]))


@pytest.mark.parametrize("cls", [Autoencoder, VAE])
def test_autoencoders(cls, data, tmp_path):
    X, _ = data
    ae = cls(hidden=(8,), latent=2, epochs=3, random_state=0).fit(X)
    err = ae.reconstruction_error(X)
    assert err.shape == (X.shape[0],) and np.all(np.isfinite(err))
    # a far outlier reconstructs worse than typical events
    assert ae.reconstruction_error(X[:1] + 20 * X.std(0))[0] > np.median(err)
    save_model(ae, tmp_path / "ae")
    np.testing.assert_allclose(load_model(tmp_path / "ae").reconstruction_error(X[:10]), err[:10], rtol=1e-6)
