"""ANODE (Nachman & Shih 2020): the likelihood ratio of two conditional density estimates.

``p_data(x | m)`` is learned on the SR, ``p_bg(x | m)`` on the SB and interpolated into the SR;
the score is ``log p_data(x | m) - log p_bg(x | m)`` (both in the original variables).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._util import spawn_seeds
from ._device import fit_device
from .base import AnomalyMethod
from .density import DEFAULT_FLOW_GROUPS, FAST_FLOW, SharedBackgroundFlow, background_flow, make_flow

__all__ = ["ANODE"]


class ANODE(SharedBackgroundFlow, AnomalyMethod):
    """Score = ``log p_SR(x|m) - log p_SB(x|m)`` from two conditional flows.

    Parameters
    ----------
    flow_params : dict for :class:`~excess.nn.flows.ConditionalFlow` (both flows)
    background_flow : path of a saved SB flow to reuse instead of training one
    flow_groups : under out-of-fold scoring, SB flows per window, each shared by a group of folds and
        trained on the sidebands of the other folds (2: ~4x less flow training); None: one per fold;
        "auto": 2 in windows with >= ``AUTO_GROUPS_MIN_SB`` sideband events, else one per fold
        (default :data:`~excess.anomaly.density.DEFAULT_FLOW_GROUPS`;
        :class:`~excess.anomaly.density.SharedBackgroundFlow`)
    random_state : seed
    device : where both flows train and evaluate ("auto": CUDA when present, else CPU)
    """

    name = "anode"
    uses_sb = True
    min_sr = 50
    min_sb = 50
    FAST_PARAMS: ClassVar[dict] = {"flow_params": FAST_FLOW}

    def _requires_sb(self) -> bool:
        return self.background_flow is None

    def __init__(self, flow_params: dict | None = None, background_flow: str | None = None, random_state=None,
                 device="auto", flow_groups: int | str | None = DEFAULT_FLOW_GROUPS):
        self.flow_groups = flow_groups
        self.flow_params = flow_params
        self.background_flow = background_flow
        self.random_state = random_state
        self.device = device

    def _fit(self, data, rng):
        self.device_ = fit_device(self)
        self.background_flow_ = background_flow(self, data, rng)
        (seed,) = spawn_seeds(rng, 1)
        self.data_flow_ = make_flow(self.flow_params, seed, self.device).fit(data.X_sr, data.m_sr)

    def _score(self, X, m):
        return self.data_flow_.log_prob(X, m) - self.background_flow_.log_prob(X, m)
