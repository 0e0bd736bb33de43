"""Every method end to end through make_method + cross_val_scores, and the no-fake-excess check.

(The background-only check on generated QCD is in tests/benchmarks/test_background_only.py.)"""

import numpy as np
import pytest
from anomaly_toys import SR, make_toy

from excess.anomaly import METHODS, cross_val_scores, in_sr, make_method
from excess.stats.roc import roc_auc

pytest.importorskip("torch")

# minimum SR AUC on the strong-signal toy (unsupervised baselines are weak by construction)
MIN_AUC = {"anode": 0.85, "cathode": 0.85, "ranode": 0.75, "autoencoder": 0.6, "vae": 0.55,
           "supervised": 0.9, "idealized": 0.85, "cwola": 0.85, "antelope": 0.55}


@pytest.mark.parametrize("name", METHODS)
def test_every_method_end_to_end(name, toy_signal, toy_background):
    X, m, y = toy_signal
    kw = {}
    if name == "supervised":
        kw = {"y": y}
    elif name == "idealized":
        kw = {"X_background": toy_background[0], "m_background": toy_background[1]}
    est = make_method(name, fast=True, random_state=0)
    s = cross_val_scores(est, X, m, sr=SR, n_folds=2, random_state=0, **kw)
    assert s.shape == (X.shape[0],) and np.all(np.isfinite(s))
    sr = in_sr(m, SR)
    assert roc_auc(y[sr], s[sr]) > MIN_AUC[name]


def test_flow_methods_reuse_saved_background_flow(toy_signal, tmp_path):
    from excess.anomaly.density import FAST_FLOW, make_flow

    X, m, y = toy_signal
    sb = ~in_sr(m, SR)
    make_flow(FAST_FLOW, 0).fit(X[sb], m[sb]).save(tmp_path / "bg")
    for name in ("cathode", "ranode", "anode"):
        est = make_method(name, fast=True, background_flow=str(tmp_path / "bg"))
        s = cross_val_scores(est, X, m, sr=SR, n_folds=2, random_state=1)
        assert np.all(np.isfinite(s))
        assert roc_auc(y[~sb], s[~sb]) > 0.75


def test_ranode_reports_signal_fraction(toy_signal):
    X, m, y = toy_signal
    est = make_method("ranode", fast=True, random_state=0).fit(X, m, sr=SR)
    assert 0 <= est.signal_fraction_ <= 1 and 0 < est.signal_fraction_err_ < 1
    assert est.n_signal_ == pytest.approx(est.signal_fraction_ * est.n_sr_)


def test_ranode_signal_density_is_the_mean_of_its_members(toy_signal):
    from scipy.special import logsumexp

    from excess.errors import ConfigError

    X, m, y = toy_signal
    est = make_method("ranode", fast=True, random_state=0, n_members=3).fit(X, m, sr=SR)
    assert len(est.signal_flows_) == 3 and len(est.members_) == 3
    sr = in_sr(m, SR)
    s = est.score_samples(X[sr], m[sr])
    per_member = []
    for f in est.signal_flows_:
        est.signal_flows_ = [f]
        per_member.append(est.score_samples(X[sr], m[sr]))
    np.testing.assert_allclose(s, logsumexp(per_member, axis=0) - np.log(3), rtol=1e-6, atol=1e-6)
    assert not np.allclose(per_member[0], per_member[1])  # members are trained from different seeds
    with pytest.raises(ConfigError, match="n_members"):
        make_method("ranode", fast=True, n_members=0).fit(X, m, sr=SR)


def test_fit_reproducible_and_seed_dependent(toy_signal):
    X, m, _ = toy_signal
    a = make_method("cathode", fast=True, random_state=3).fit(X, m, sr=SR).score_samples(X[:50], m[:50])
    b = make_method("cathode", fast=True, random_state=3).fit(X, m, sr=SR).score_samples(X[:50], m[:50])
    c = make_method("cathode", fast=True, random_state=4).fit(X, m, sr=SR).score_samples(X[:50], m[:50])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_background_only_no_fake_excess():
    """Without signal, CATHODE must not prefer SR data over its background samples.

    Fit on a background-only window; on independent SR background events and fresh flow samples at
    SR masses, the fraction above the samples' 80 % quantile must agree within 3 sigma (binomial).
    """
    from excess.anomaly.cathode import sample_sr_mass

    X, m, _ = make_toy(n_bkg=8000, n_sig=0, seed=11)
    est = make_method("cathode", fast=True, random_state=0,
                      flow_params={"kind": "maf", "transforms": 2, "hidden": (32, 32), "epochs": 25, "batch_size": 256,
                                   "preprocessing": "standard"})
    est.fit(X, m, sr=SR)
    Xt, mt, _ = make_toy(n_bkg=16000, n_sig=0, seed=12)
    sr = in_sr(mt, SR)
    X_data, m_data = Xt[sr], mt[sr]
    rng = np.random.default_rng(5)
    m_samp = sample_sr_mass(m_data, 4 * m_data.size, rng)
    X_samp = est.background_flow_.sample(m_samp, random_state=6)
    s_data, s_samp = est.score_samples(X_data, m_data), est.score_samples(X_samp, m_samp)
    cut = np.quantile(s_samp, 0.8)
    f_data, f_samp = np.mean(s_data > cut), np.mean(s_samp > cut)
    sigma = np.sqrt(0.2 * 0.8 * (1 / s_data.size + 1 / s_samp.size))
    assert abs(f_data - f_samp) < 3 * sigma, (f_data, f_samp, sigma)
    # and the selection does not sculpt: SR data selected fraction equals that in the SB of the test window
    assert abs(np.mean(est.score_samples(Xt[~sr], mt[~sr]) > cut) - f_samp) < 0.05


def test_ranode_signal_members_are_one_batched_model():
    """The batched members compute exactly each member flow's own log-density, and hand trained weights back."""
    import torch

    from excess.anomaly.ranode import SignalMembers
    from excess.nn.flows import build_zuko_flow
    from excess.nn.training import reset_parameters, torch_generator

    flows = []
    for k in range(3):
        f = build_zuko_flow("maf", 3, 1, 2, (8, 8))
        reset_parameters(f, torch_generator(k))
        flows.append(f)
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(40, 3, 3, generator=g), torch.randn(40, 3, 1, generator=g)
    members = SignalMembers(flows, theta0=-2.0)
    assert members.theta.shape == (3,) and members.theta.requires_grad
    with torch.no_grad():
        own = torch.stack([f(c[:, k]).log_prob(z[:, k]) for k, f in enumerate(flows)], dim=1)
        torch.testing.assert_close(members.log_prob(z, c), own, rtol=0, atol=0)
        for t in members.stacked.values():  # "train": change every member's weights
            t.add_(0.01 * torch.randn(t.shape, generator=g))
        batched = members.log_prob(z, c)
        assert not torch.allclose(batched, own)
        trained = members.unstack()
        torch.testing.assert_close(
            torch.stack([f(c[:, k]).log_prob(z[:, k]) for k, f in enumerate(trained)], dim=1), batched)
    assert not SignalMembers(flows, theta0=-2.0, learn_w=False).theta.requires_grad


def test_ranode_signal_training_stops_early(toy_signal):
    X, m, _ = toy_signal
    est = make_method("ranode", fast=True, random_state=0, n_members=2, batched_members=True,
                      signal_flow_params={"epochs": 60, "patience": 1}).fit(X, m, sr=SR)
    h = est.members_[0]["history"]
    assert h["stopped_epoch"] < 59 and len(h["val_loss"]) == h["stopped_epoch"] + 1
    assert h["best_epochs"][0] <= h["stopped_epoch"] - 1  # stopped one epoch without improvement after the best
    assert [mm["w_trained"] for mm in est.members_][0] != est.members_[1]["w_trained"]
