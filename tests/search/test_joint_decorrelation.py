"""Issue 22, joint decorrelation: when the features' *correlations* drift with mjj, a per-feature
(quantile) decorrelation leaves the drift, a correlation-aware SR-vs-SB classifier learns it and its cut
sculpts mjj. The conditional-flow transform (``decorrelation="flow"``) is meant to remove it; at the sizes a
unit test affords it does not yet (README, "Sensitivity at the frontier"), so here it is tested for what it
guarantees: fitted only on training events, invertible, seeded, clear errors. Kept small (tiny flows)."""

import numpy as np
import pytest

from excess.errors import ConfigError, InputError, NotFittedError
from excess.search import run_scan
from excess.search.decorrelation import (ConditionalCopulaTransform, ConditionalFlowTransform, Decorrelated, make_transform,
                                         mass_weights)
from excess.search.synthetic import GaussianSRvsSB, toy_events
from excess.stats.windows import LHCO_SR, Window

FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
WINDOW = Window.around(LHCO_SR)
TINY = {"transforms": 2, "hidden": [16, 16], "epochs": 15, "batch_size": 256, "lr": 5e-3, "patience": 15, "device": "cpu"}


def _slopes(ev, decorrelation, params=None):
    r = run_scan(ev, method=GaussianSRvsSB(covariance="full"), features=FEATURES, windows=[WINDOW],
                 efficiencies=(0.1,), n_folds=2, n_workers=1, random_state=0, global_toys=0, show_progress=False,
                 decorrelation=decorrelation, decorrelation_params=params, efficiency_degree=1)
    t = r.windows[0].tests[0]
    assert t.ok, t.reason
    return t.background.efficiency_fit.z_slope


@pytest.fixture(scope="module")
def drifting():
    return toy_events(16_000, 0, joint_drift=0.6, random_state=5)


def test_joint_drift_sculpts_with_quantile(drifting):
    """The failure mode: marginals flat in mjj, correlations drifting. Quantile (per-feature)
    decorrelation leaves a steep efficiency slope for a correlation-aware SR-vs-SB scorer."""
    ev = drifting
    m = ev.mjj.to_numpy()
    lo, hi = ev[m < 3000], ev[m > 4000]  # marginals do not drift, the correlation flips sign
    assert abs(lo.mj1.median() / hi.mj1.median() - 1) < 0.1
    assert np.corrcoef(np.log(lo.mj1), lo.tau21_j1)[0, 1] < -0.2 < 0.2 < np.corrcoef(np.log(hi.mj1), hi.tau21_j1)[0, 1]
    z_quantile = _slopes(ev, "quantile")  # measured 17.9
    assert abs(z_quantile) > 5, z_quantile


class _Recorder:
    """An identity transform / a protocol method that remember the rows (column 0: an event id) they saw."""

    name = "recorder"

    def __init__(self, random_state=None):
        self.random_state = random_state

    def get_params(self, deep=False):
        return {"random_state": self.random_state}

    def set_params(self, **kw):
        self.random_state = kw.get("random_state", self.random_state)
        return self

    def fit(self, X, m, sr=None, **kw):
        self.seen_ = np.asarray(X)[:, 0].astype(int)
        return self

    def transform(self, X, m):
        return np.asarray(X, float)

    def score_samples(self, X, m):
        return np.zeros(len(X))


def test_transform_is_fitted_only_on_training_events(monkeypatch):
    import excess.search.decorrelation as dec

    rng = np.random.default_rng(0)
    m = rng.uniform(*WINDOW.fit_range, 2000)
    X = np.c_[np.arange(2000), rng.normal(size=(2000, 2))]
    train = rng.random(2000) < 0.5  # the fold's training events; the rest are scored
    is_sb = (m < LHCO_SR[0]) | (m >= LHCO_SR[1])
    recorded = {}
    monkeypatch.setattr(dec, "make_transform", lambda *a, **k: recorded.setdefault("t", _Recorder()))
    seen = {}
    for fit_on in ("window", "sidebands", "heldout"):
        recorded.clear()
        d = Decorrelated(_Recorder(), transform="flow", fit_on=fit_on, random_state=1).fit(X[train], m[train], sr=LHCO_SR)
        t_ids, m_ids = d.transform_.seen_, d.method_.seen_
        ids = np.nonzero(train)[0]
        assert set(t_ids) <= set(ids) and set(m_ids) <= set(ids)  # never a scored event
        seen[fit_on] = (set(t_ids), set(m_ids))
    assert seen["window"][0] == seen["window"][1] == set(np.nonzero(train)[0])
    assert seen["sidebands"][0] == set(np.nonzero(train & is_sb)[0])
    t_ids, m_ids = seen["heldout"]
    assert t_ids <= set(np.nonzero(train & is_sb)[0]) and not t_ids & m_ids  # disjoint, sidebands only
    assert t_ids | m_ids == set(np.nonzero(train)[0]) and 0.35 < len(t_ids) / (train & is_sb).sum() < 0.65
    assert set(np.nonzero(train & ~is_sb)[0]) <= m_ids  # the method keeps every SR event


def test_flow_transform_round_trip_shapes_and_decorrelation():
    ev = toy_events(6000, 0, joint_drift=0.6, random_state=3)
    X, m = ev[list(FEATURES)].to_numpy(), ev.mjj.to_numpy()
    keep = (m >= WINDOW.sb_lo) & (m < WINDOW.sb_hi)
    X, m = X[keep], m[keep]
    tr = ConditionalFlowTransform(**TINY, random_state=0).fit(X, m)
    U = tr.transform(X, m)
    assert U.shape == X.shape and np.isfinite(U).all()
    assert np.allclose(tr.inverse_transform(U[:200], m[:200]), X[:200], rtol=1e-3, atol=1e-3)
    Z = tr.quantile_.transform(X[:50], m[:50])  # the flow's own variables: to_base / from_base invert each other
    assert np.allclose(tr.flow_.to_base(Z, m[:50]), U[:50], atol=1e-5)
    assert np.allclose(tr.flow_.from_base(U[:50], m[:50]), Z, atol=1e-3)
    assert abs(U.mean()) < 0.1 and 0.8 < U.std() < 1.2
    # mass weights: flat in m, mean 1
    w = mass_weights(m)
    h = np.histogram(m, 10, weights=w)[0]
    assert w.mean() == pytest.approx(1.0) and h.max() / h.min() < 1.3
    # reproducible from the seed
    again = ConditionalFlowTransform(**TINY, random_state=0).fit(X, m)
    assert np.allclose(again.transform(X[:20], m[:20]), U[:20])


def test_flow_transform_bad_input():
    rng = np.random.default_rng(1)
    X, m = rng.normal(size=(300, 3)), rng.uniform(3000, 4000, 300)
    with pytest.raises(NotFittedError):
        ConditionalFlowTransform().transform(X, m)
    with pytest.raises(InputError, match="X must be"):
        ConditionalFlowTransform(**TINY).fit(X, m[:10])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        ConditionalFlowTransform(**TINY).fit(bad, m)
    with pytest.raises(InputError, match="sample_weight"):
        ConditionalFlowTransform(**TINY).fit(X, m, sample_weight=np.ones(5))
    with pytest.raises(ConfigError, match="bad parameter"):
        make_transform("flow", params={"layers": 3})
    with pytest.raises(ConfigError, match="fit_on"):
        run_scan(toy_events(3000, 0, random_state=1), method=GaussianSRvsSB(), features=FEATURES, windows=[WINDOW],
                 decorrelation="flow", decorrelation_params={"fit_on": "everything"}, show_progress=False)
    with pytest.raises(ConfigError, match="joint_drift"):
        toy_events(100, joint_drift=1.5)
    with pytest.raises(ConfigError, match="covariance"):
        GaussianSRvsSB(covariance="tied").fit(X, m, sr=(3300, 3700))
    from excess.nn.flows import ConditionalFlow

    with pytest.raises(InputError, match="sample_weight must be finite"):
        ConditionalFlow(**TINY).fit(X, m, sample_weight=-np.ones(300))
    tr = ConditionalFlowTransform(**TINY, random_state=0).fit(X, m)
    with pytest.raises(InputError, match=r"X must be \(n, 3\)"):
        tr.transform(X[:, :2], m)


# --- copula (conditional Gaussian-copula whitening): the cheap joint decorrelation -------------------------------


def _window_events(ev):
    m = ev.mjj.to_numpy()
    keep = (m >= WINDOW.sb_lo) & (m < WINDOW.sb_hi)
    return ev[list(FEATURES)].to_numpy()[keep], m[keep], ev.label.to_numpy()[keep]


def _corr(Z, mask, a=0, b=2):
    return np.corrcoef(Z[mask, a], Z[mask, b])[0, 1]


def test_copula_flattens_the_drifting_correlation(drifting):
    """Below vs above the SR, corr(mj1, tau21_j1) and corr(delta_mj, tau21_j2) flip sign after the
    per-feature quantile map; after the copula whitening they are flat (and about 0)."""
    X, m, _ = _window_events(drifting)
    lo, hi = m < LHCO_SR[0], m >= LHCO_SR[1]
    Zq = make_transform("quantile").fit(X, m).transform(X, m)
    tr = make_transform("copula").fit(X, m, sr=LHCO_SR)
    Z = tr.transform(X, m)
    for a, b in ((0, 2), (1, 3)):
        assert _corr(Zq, hi, a, b) - _corr(Zq, lo, a, b) > 0.45  # measured 0.63, 0.63
        assert abs(_corr(Z, hi, a, b) - _corr(Z, lo, a, b)) < 0.1  # measured 0.01, 0.03
        assert abs(_corr(Z, lo, a, b)) < 0.08 and abs(_corr(Z, hi, a, b)) < 0.08
    assert tr.moments_on_ == "all"
    C = tr.correlation(np.array([2900.0, 4100.0]))  # the model follows the truth, rho = 0.6 tanh((m - 3500) / 700)
    assert C[0, 0, 2] == pytest.approx(0.6 * np.tanh(-600 / 700), abs=0.08)
    assert C[1, 0, 2] == pytest.approx(0.6 * np.tanh(600 / 700), abs=0.08)
    assert np.allclose(C, np.swapaxes(C, 1, 2)) and np.allclose(np.diagonal(C, axis1=1, axis2=2), 1)
    assert np.linalg.eigvalsh(C).min() > 0.03


def test_copula_removes_the_sculpting_that_quantile_leaves(drifting):
    """The scan's sculpting diagnostic (efficiency slope / error, eff 0.1) of a correlation-aware
    SR-vs-SB scorer: steep with ``quantile``, flat with ``copula``. Both asserted: the test has power."""
    z_quantile = _slopes(drifting, "quantile")  # measured 17.9
    z_copula = _slopes(drifting, "copula")  # measured -1.7 (seeds 5-8 of this toy: -1.7, 0.8, 0.1, 1.1)
    assert abs(z_quantile) > 5, z_quantile
    assert abs(z_copula) < 3, z_copula


def test_copula_keeps_a_signal_localised_in_the_sr():
    """A signal in the SR moves the SR's correlations (S/B 0.34 here). The default degree-2 fit over the
    whole window (``moments_on="all"``, better calibrated background-only: README) follows most of it;
    fitted on the sideband events (``moments_on="sidebands"``) the whitening does not (both asserted: the
    option has an effect, and the default's cost is on record). Either way the signal stays as separable
    from the SR background as after the per-feature map: the whitening is linear at a given mass. (The
    signal's own tail in the sidebands, 9 % of it next to the SR, moves the sideband fit by 0.3 of the
    SR shift here, so the test puts the signal strictly inside the SR.)"""
    X, m, y = _window_events(toy_events(40_000, 1500, random_state=11))
    X0, m0, _ = _window_events(toy_events(40_000, 0, random_state=11))
    in_sr = (m >= LHCO_SR[0]) & (m < LHCO_SR[1])
    local = in_sr | (y == 0)  # the signal strictly inside the SR
    at = np.array([LHCO_SR[0] + 200.0])
    iu = np.triu_indices(len(FEATURES), 1)
    Zq = make_transform("quantile").fit(X, m).transform(X, m)
    signal_shift = np.abs(np.corrcoef(Zq[in_sr].T) - np.corrcoef(Zq[in_sr & (y == 0)].T))[iu].max()  # measured 0.51
    assert signal_shift > 0.3
    followed = {}
    for moments_on in ("sidebands", "all"):
        params = {"moments_on": moments_on}
        C_sig = make_transform("copula", params=params).fit(X[local], m[local], sr=LHCO_SR).correlation(at)[0]
        C_bkg = make_transform("copula", params=params).fit(X0, m0, sr=LHCO_SR).correlation(at)[0]
        followed[moments_on] = np.abs(C_sig - C_bkg)[iu].max() / signal_shift
    assert followed["sidebands"] < 0.1, followed  # measured 0.01
    assert followed["all"] > 0.5, followed  # measured 0.9

    def separation(Z):  # of the signal from the SR background (Mahalanobis distance of the means)
        s, b = in_sr & (y == 1), in_sr & (y == 0)
        d = Z[s].mean(0) - Z[b].mean(0)
        return np.sqrt(d @ np.linalg.solve(np.cov(Z[b].T), d))

    for moments_on in ("all", "sidebands"):  # the whole signal, tails included
        Z = make_transform("copula", params={"moments_on": moments_on}).fit(X, m, sr=LHCO_SR).transform(X, m)
        assert separation(Z) > 0.9 * separation(Zq)  # measured 3.68 and 3.71 (quantile: 3.75)


def test_copula_round_trip_shapes_determinism_and_wrapper():
    X, m, _ = _window_events(toy_events(6000, 0, joint_drift=0.6, random_state=3))
    tr = ConditionalCopulaTransform().fit(X, m, sr=LHCO_SR)
    U = tr.transform(X, m)
    assert U.shape == X.shape and np.isfinite(U).all()
    assert np.allclose(tr.inverse_transform(U, m), X, rtol=1e-8, atol=1e-8)
    assert abs(U.mean()) < 0.05 and 0.9 < U.std() < 1.1
    again = ConditionalCopulaTransform().fit(X, m, sr=LHCO_SR)  # deterministic: no seed
    assert np.array_equal(again.transform(X, m), U)
    plain = ConditionalCopulaTransform(remap=False).fit(X, m, sr=LHCO_SR)
    assert np.allclose(plain.inverse_transform(plain.transform(X[:100], m[:100]), m[:100]), X[:100])
    assert tr.get_params()["corr_degree"] == 2 and make_transform("copula", params={"corr_degree": 1}).corr_degree == 1
    with pytest.raises(ConfigError, match="needs the signal region"):
        ConditionalCopulaTransform(moments_on="sidebands").fit(X, m)
    # beyond the fitted masses the whitening is the edge's (constant), never an extrapolated polynomial
    far = tr.correlation(np.array([1000.0, m.min(), 9000.0, m.max()]))
    assert np.allclose(far[0], far[1]) and np.allclose(far[2], far[3])
    # the wrapper passes the SR and fits on the window's training events by default
    d = Decorrelated(GaussianSRvsSB(covariance="full"), transform="copula", transform_params={"moments_on": "sidebands"},
                     random_state=0).fit(X, m, sr=LHCO_SR)
    assert d.resolved_fit_on() == "window" and d.transform_.moments_on_ == "sidebands"
    assert d.n_transform_events_ == len(m) and np.isfinite(d.score_samples(X[:10], m[:10])).all()


def test_copula_bad_input():
    rng = np.random.default_rng(2)
    X, m = rng.normal(size=(400, 3)), rng.uniform(2800, 4200, 400)
    with pytest.raises(NotFittedError):
        ConditionalCopulaTransform().transform(X, m)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinite feature values \(first: row 7, feature column 2"):
        ConditionalCopulaTransform().fit(bad, m)
    tr = ConditionalCopulaTransform().fit(X, m, sr=LHCO_SR)
    with pytest.raises(InputError, match=r"NaN or infinite feature values \(first: row 7"):
        tr.transform(bad, m)
    m_bad = m.copy()
    m_bad[5] = np.inf
    with pytest.raises(InputError, match=r"copula decorrelation \(transform\): m \(mjj\) has 1 NaN or infinite values"):
        tr.transform(X, m_bad)
    with pytest.raises(InputError, match=r"X must be \(n, 3\)"):
        tr.transform(X[:, :2], m)
    with pytest.raises(InputError, match="both sides"):
        ConditionalCopulaTransform(moments_on="sidebands").fit(X[m < LHCO_SR[1]], m[m < LHCO_SR[1]], sr=LHCO_SR)
    with pytest.raises(ConfigError, match="moments_on"):
        ConditionalCopulaTransform(moments_on="sr").fit(X, m)
    with pytest.raises(ConfigError, match="bad parameter"):
        make_transform("copula", params={"rank": 2})
    with pytest.raises(ConfigError, match="eig_min"):
        ConditionalCopulaTransform(eig_min=0).fit(X, m)
