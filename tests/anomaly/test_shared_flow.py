"""One sideband flow per group of folds (flow_groups): the out-of-fold rule, determinism, validation."""

import numpy as np
import pytest
from anomaly_toys import make_toy

from excess.anomaly import cross_val_scores, make_method
from excess.anomaly.base import (AnomalyMethod, FoldGroupJob, FoldJob, fold_tasks, in_sr, run_fold_task,
                                 stratified_folds)
from excess.anomaly.density import DEFAULT_FLOW_GROUPS
from excess.errors import ConfigError, InputError

SR = (3300.0, 3700.0)


class _Spy(AnomalyMethod):
    """Records the ids (column 0) of every event any of its models was fitted on; scores an event 1 if a
    model that scores it saw it (the shared stage or the fold's own fit), else 0."""

    name = "spy"

    def __init__(self, groups=2, random_state=None):
        self.groups = groups
        self.random_state = random_state

    def fold_groups(self, n_folds, n_sb=None):
        if self.groups is None:
            return None
        return [tuple(int(k) for k in a) for a in np.array_split(np.arange(n_folds), self.groups)]

    def fit_shared(self, X, m, *, sr):
        sb = ~in_sr(np.asarray(m), sr)  # like the density methods: the shared stage sees sidebands only
        return frozenset(np.asarray(X)[sb, 0].tolist())

    def set_shared(self, shared):
        self.shared_ = shared

    def _fit(self, data, rng):
        self.seen_ = frozenset(data.X[:, 0].tolist()) | getattr(self, "shared_", frozenset())

    def _score(self, X, m):
        return np.array([float(i in self.seen_) for i in X[:, 0]])


def _window(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.uniform(2800, 4200, n)
    X = np.c_[np.arange(n, dtype=float), rng.normal(size=n)]
    return X, m


@pytest.mark.parametrize("groups", [None, 1, 2, 3, 5])
def test_no_model_scoring_an_event_saw_it(groups):
    X, m = _window()
    s = cross_val_scores(_Spy(groups), X, m, sr=SR, n_folds=5, random_state=1)
    assert s.shape == (X.shape[0],)
    assert not s.any(), f"{int(s.sum())} events were scored by a model that saw them"


def test_the_spy_can_fail():
    """A shared stage fitted on the whole window (the leak the rule forbids) is caught by the spy."""
    X, m = _window()
    fold = stratified_folds(in_sr(m, SR), 5, np.random.default_rng(0))
    est = _Spy()
    est.set_shared(est.fit_shared(X, m, sr=SR))  # all sidebands, fold 0's included
    est.fit(X[fold != 0], m[fold != 0], sr=SR)
    s = est.score_samples(X[fold == 0], m[fold == 0])
    np.testing.assert_array_equal(s, ~in_sr(m[fold == 0], SR))


def test_fold_tasks_groups_and_resume():
    X, m = _window(500)
    fold = stratified_folds(in_sr(m, SR), 5, np.random.default_rng(0))
    seeds = list(range(10, 15))
    tasks = fold_tasks(_Spy(2), X, m, fold, seeds, SR, {})
    assert [ks for ks, _ in tasks] == [(0, 1, 2), (3, 4)]
    assert all(isinstance(j, FoldGroupJob) for _, j in tasks)
    assert tasks[0][1].seeds == (10, 11, 12)  # the folds keep their per-fold seeds
    # resuming with folds 1 and 4 left: the group jobs score only those, the shared stage stays out of the group
    part = fold_tasks(_Spy(2), X, m, fold, seeds, SR, {}, todo=[1, 4])
    assert [(j.group, j.todo) for _, j in part] == [((0, 1, 2), (1,)), ((3, 4), (4,))]
    assert part[0][1].shared_seed == tasks[0][1].shared_seed
    out = run_fold_task(part[0][1])
    assert len(out) == 1 and out[0].scores.shape == ((fold == 1).sum(),) and not out[0].scores.any()
    # without groups: one FoldJob per fold, as before
    plain = fold_tasks(_Spy(None), X, m, fold, seeds, SR, {})
    assert [ks for ks, _ in plain] == [(k,) for k in range(5)] and all(isinstance(j, FoldJob) for _, j in plain)
    with pytest.raises(ConfigError, match="not all in the group"):
        run_fold_task(FoldGroupJob(_Spy(), X, m, fold, (0, 1), (2,), (1,), 1, SR))


def _count_flow_fits(monkeypatch):
    from excess.nn.flows import ConditionalFlow

    seen = []
    fit = ConditionalFlow.fit

    def spy(self, X, c):
        seen.append((np.asarray(X).copy(), np.asarray(c).copy()))
        return fit(self, X, c)

    monkeypatch.setattr(ConditionalFlow, "fit", spy)
    return seen


def test_cathode_shares_the_sideband_flow_out_of_fold(monkeypatch):
    X, m, _ = make_toy(n_bkg=800, n_sig=40, seed=3)
    X = np.c_[X, np.arange(X.shape[0]) / X.shape[0]]  # an id column (also a feature)
    seen = _count_flow_fits(monkeypatch)
    tiny = {"classifier_params": {"n_members": 1, "max_iter": 10}}
    est = make_method("cathode", fast=True, flow_groups=2, **tiny)
    s1 = cross_val_scores(est, X, m, sr=SR, n_folds=5, random_state=4)
    assert len(seen) == 2  # one flow per group, not one per fold
    fold = stratified_folds(in_sr(m, SR), 5, np.random.default_rng(4))
    for (Xf, mf), group in zip(seen, [(0, 1, 2), (3, 4)]):
        ids = set(np.round(Xf[:, -1] * X.shape[0]).astype(int))
        assert not (in_sr(mf, SR)).any()  # the flow saw sidebands only, never an SR event
        assert ids == set(np.nonzero(~in_sr(m, SR) & ~np.isin(fold, group))[0])  # those of the other folds
    # deterministic with a seed; one flow per fold (the old layout) gives other scores
    seen.clear()
    np.testing.assert_array_equal(s1, cross_val_scores(est, X, m, sr=SR, n_folds=5, random_state=4))
    seen.clear()
    s_old = cross_val_scores(make_method("cathode", fast=True, flow_groups=None, **tiny), X, m, sr=SR, n_folds=5,
                             random_state=4)
    assert len(seen) == 5 and not np.allclose(s_old, s1)


def test_ranode_and_anode_share_the_flow(monkeypatch):
    X, m, _ = make_toy(n_bkg=1200, n_sig=60, seed=5)
    seen = _count_flow_fits(monkeypatch)
    s = cross_val_scores(make_method("ranode", fast=True, n_members=1, flow_groups=2), X, m, sr=SR, n_folds=3, random_state=0)
    assert np.isfinite(s).all()
    assert len(seen) == 2  # flow_groups=2 of 3 folds: groups (0, 1) and (2,)
    seen.clear()
    cross_val_scores(make_method("anode", fast=True, flow_groups=2), X, m, sr=SR, n_folds=3, random_state=0)
    assert len(seen) == 2 + 3  # 2 shared SB flows + one SR flow per fold


@pytest.mark.parametrize("bad", [0, 1, -2, 2.5, "2", "Auto", True])
def test_flow_groups_validation(bad):
    X, m, _ = make_toy(n_bkg=600, n_sig=0, seed=6)
    with pytest.raises(ConfigError, match="flow_groups"):
        cross_val_scores(make_method("cathode", fast=True, flow_groups=bad), X, m, sr=SR, n_folds=5)


def test_flow_groups_fall_back_to_one_flow_per_fold():
    est = make_method("cathode", fast=True, flow_groups=5)
    assert est.fold_groups(5) is None and est.fold_groups(3) is None
    assert make_method("cathode", fast=True, flow_groups=2).fold_groups(5) == [(0, 1, 2), (3, 4)]
    assert make_method("cathode", fast=True, flow_groups=3).fold_groups(5) == [(0, 1), (2, 3), (4,)]
    assert make_method("cathode", fast=True).flow_groups == DEFAULT_FLOW_GROUPS
    assert make_method("cathode", fast=True, flow_groups=None).fold_groups(5) is None
    assert make_method("cathode", fast=True, background_flow="some/flow").fold_groups(5) is None


def test_auto_flow_groups_share_only_in_large_sidebands(monkeypatch):
    import excess.anomaly.density as density

    est = make_method("cathode", fast=True, flow_groups="auto")
    n = density.AUTO_GROUPS_MIN_SB
    assert est.fold_groups(5) is None and est.fold_groups(5, n_sb=n - 1) is None  # unknown or small: per fold
    assert est.fold_groups(5, n_sb=n) == [(0, 1, 2), (3, 4)]
    # through cross_val_scores: the window's sideband count decides
    X, m, _ = make_toy(n_bkg=800, n_sig=40, seed=3)
    n_sb = int((~in_sr(m, SR)).sum())
    seen = _count_flow_fits(monkeypatch)
    tiny = {"classifier_params": {"n_members": 1, "max_iter": 10}}
    for threshold, flows in ((n_sb + 1, 5), (n_sb, 2)):
        monkeypatch.setattr(density, "AUTO_GROUPS_MIN_SB", threshold)
        seen.clear()
        cross_val_scores(make_method("cathode", fast=True, flow_groups="auto", **tiny), X, m, sr=SR, n_folds=5,
                         random_state=0)
        assert len(seen) == flows


def test_too_few_sideband_events_for_a_shared_flow():
    rng = np.random.default_rng(0)
    m = np.r_[rng.uniform(3300, 3700, 400), rng.uniform(2800, 3300, 30)]
    X = rng.normal(size=(m.size, 2))
    est = make_method("cathode", fast=True)
    with pytest.raises(InputError, match="too few sideband events"):
        est.fit_shared(X, m, sr=SR)


def test_scan_refuses_a_bad_flow_groups_before_any_work():
    import pandas as pd

    from excess.search import run_scan

    X, m, _ = make_toy(n_bkg=600, n_sig=0, seed=7)
    events = pd.DataFrame(X, columns=["mj1", "delta_mj", "tau21_j1", "tau21_j2"]).assign(mjj=m)
    with pytest.raises(ConfigError, match="flow_groups"):
        run_scan(events, method="cathode", method_params={"flow_groups": 1}, windows=[SR], n_workers=1,
                 show_progress=False)
