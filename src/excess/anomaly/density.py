"""Shared pieces of the density-based methods (ANODE, CATHODE, R-ANODE): the sideband background flow,
its default and fast settings."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util import spawn_seeds
from ..errors import ConfigError, InputError
from ._device import with_device

__all__ = ["DEFAULT_FLOW", "FAST_FLOW", "DEFAULT_FLOW_GROUPS", "AUTO_GROUPS_MIN_SB", "make_flow", "background_flow", "SharedBackgroundFlow"]

#: sideband flows per window under out-of-fold scoring (:class:`SharedBackgroundFlow`); None: one per fold.
#: "auto": two groups where the sidebands are large (:data:`AUTO_GROUPS_MIN_SB`), one flow per fold below.
#: Two groups everywhere lowered CATHODE's max SIC beyond the seeds' spread on a 60k-event sample (each
#: group flow saw 9-14k events), but on the 1M generated sample the full 13-window CATHODE scan with two
#: groups took 5.4x less CPU than one flow per fold and kept its sensitivity (README, "Speed of the search").
DEFAULT_FLOW_GROUPS = "auto"

#: ``flow_groups="auto"``: two groups in a window whose sidebands hold at least this many events (each
#: group flow then trains on >= 40 % of them), one flow per fold below. Where the flows are cheap (few
#: sideband events) nothing is saved by sharing and each flow would see too few events; where they
#: are expensive (the low-mass windows of a large sample) each group flow still sees tens of thousands.
AUTO_GROUPS_MIN_SB = 100_000

# fast mode (tests, quick looks): a constant learning rate; a cosine schedule over 8 epochs undertrains
FAST_FLOW: dict[str, Any] = {"kind": "maf", "transforms": 2, "hidden": (16, 16), "epochs": 8, "batch_size": 256,
                             "lr_schedule": "constant"}
# Marginal Gaussianisation + a wider MAF: in the background-only check on 150k generated QCD events
# this lowered the SR data-vs-samples excess (see the issue-3 notes). The cosine schedule runs the 40
# epochs to convergence (12 s/epoch on 865k SB events on 2 cores); early stopping rarely triggers.
DEFAULT_FLOW: dict[str, Any] = {"kind": "maf", "preprocessing": "quantile", "transforms": 6, "hidden": (128, 128),
                                "epochs": 40, "batch_size": 1024, "lr": 1e-3, "lr_schedule": "cosine", "patience": 10}


def make_flow(flow_params: dict | None, seed: int, device="auto"):
    """The SB/SR flow of the density methods: :data:`DEFAULT_FLOW` updated by ``flow_params``, on ``device``."""
    from ..nn.flows import ConditionalFlow

    params = with_device({**DEFAULT_FLOW, **(flow_params or {})}, device, "flow_params")
    try:
        return ConditionalFlow(**params, random_state=seed)
    except TypeError as exc:
        raise ConfigError(f"bad flow_params {flow_params!r}: {exc}") from None


def background_flow(est, data, rng: np.random.Generator):
    """The SB background flow of ``est``, on ``est.device``: loaded from ``est.background_flow`` (a saved
    model) or fitted.

    Loading a flow trained once on the full sideband lets :func:`cross_val_scores` refit only the
    cheap parts per fold (the CATHODE paper's set-up); note that the SB events are then not
    out-of-fold for the flow.
    """
    (seed,) = spawn_seeds(rng, 1)
    shared = getattr(est, "shared_background_", None)
    if shared is not None:  # fitted once for a group of folds, on other folds' sidebands (run_fold_group)
        if shared.n_features_in_ != data.X.shape[1]:
            raise InputError(f"the shared background flow has {shared.n_features_in_} features, X has {data.X.shape[1]}")
        return shared
    if est.background_flow is not None:
        from ..nn.flows import ConditionalFlow

        flow = ConditionalFlow.load(est.background_flow)
        if flow.n_features_in_ != data.X.shape[1]:
            raise InputError(f"background_flow has {flow.n_features_in_} features, X has {data.X.shape[1]}")
        return flow.set_params(device=est.device)  # a saved flow carries no device: it computes on est's
    if data.n_sb < est.min_sb:
        raise InputError(f"{est.name}: too few sideband events to train the background flow: {data.n_sb}")
    return make_flow(est.flow_params, seed, est.device).fit(data.X_sb, data.m_sb)


class SharedBackgroundFlow:
    """Mixin of the density methods: one sideband flow shared by a group of folds.

    Out-of-fold scoring of a window (:func:`~excess.anomaly.cross_val_scores`, the scan) with
    ``flow_groups = g`` (2 <= g < n_folds) splits the folds into ``g`` groups; the group's sideband flow
    is trained on the sideband events of the folds *outside* the group, and each fold of the group fits
    the rest of the method (CATHODE's classifier, R-ANODE's signal model, ANODE's SR flow) on the other
    folds as before. So no model that scores an event, SR or SB, has seen it: the SB events of fold k,
    from which fold k's cut thresholds are taken, were not in the flow that generated the classifier's
    background samples. ``g`` flows per window instead of ``n_folds``, each on ``(1 - |group|/k)`` of
    the sidebands instead of ``(k-1)/k``: with 2 groups of 5 folds, 4x less flow training, but each flow
    sees 40 or 60 % of the sidebands instead of 80 %. ``flow_groups=None`` or >= n_folds trains one
    flow per fold; ``"auto"`` 2 groups in a window with at least :data:`AUTO_GROUPS_MIN_SB` sideband
    events and one flow per fold below (the default is :data:`DEFAULT_FLOW_GROUPS`); a saved
    ``background_flow`` is used as given (not out-of-fold for SB events, see :func:`background_flow`).
    """

    def fold_groups(self, n_folds: int, n_sb: int | None = None) -> list[tuple[int, ...]] | None:
        """The groups of folds sharing one SB flow, or None (one flow per fold); ``n_sb``: the window's
        sideband events (``flow_groups="auto"`` decides on it; unknown: one flow per fold)."""
        g = self.flow_groups
        if g is None:
            return None
        if isinstance(g, str) and g == "auto":
            if n_sb is None or int(n_sb) < AUTO_GROUPS_MIN_SB:
                return None
            g = 2
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 2:
            raise ConfigError(f"flow_groups must be an integer >= 2, 'auto' or None (one flow per fold), got {g!r}")
        if self.background_flow is not None or int(g) >= int(n_folds):
            return None
        return [tuple(int(k) for k in a) for a in np.array_split(np.arange(int(n_folds)), int(g))]

    def fit_shared(self, X, m, *, sr):
        from .._util import check_random_state
        from .base import check_features, check_sr, in_sr

        X, m = check_features(X, m)
        is_sr = in_sr(m, check_sr(sr))
        n_sb = int((~is_sr).sum())
        if n_sb < self.min_sb:
            raise InputError(f"{self.name}: too few sideband events outside a fold group to train the shared "
                             f"background flow: {n_sb}, need >= {self.min_sb} (lower flow_groups or n_folds)")
        (seed,) = spawn_seeds(check_random_state(self.random_state), 1)
        return make_flow(self.flow_params, seed, self.device).fit(X[~is_sr], m[~is_sr])

    def set_shared(self, shared) -> None:
        self.shared_background_ = shared
