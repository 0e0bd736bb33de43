"""Shared pieces of the density-based methods (ANODE, CATHODE, R-ANODE): the sideband background flow,
its default and fast settings."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util import spawn_seeds
from ..errors import ConfigError, InputError
from ._device import with_device

__all__ = ["DEFAULT_FLOW", "FAST_FLOW", "make_flow", "background_flow"]

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
    if est.background_flow is not None:
        from ..nn.flows import ConditionalFlow

        flow = ConditionalFlow.load(est.background_flow)
        if flow.n_features_in_ != data.X.shape[1]:
            raise InputError(f"background_flow has {flow.n_features_in_} features, X has {data.X.shape[1]}")
        return flow.set_params(device=est.device)  # a saved flow carries no device: it computes on est's
    if data.n_sb < est.min_sb:
        raise InputError(f"{est.name}: too few sideband events to train the background flow: {data.n_sb}")
    return make_flow(est.flow_params, seed, est.device).fit(data.X_sb, data.m_sb)
