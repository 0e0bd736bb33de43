"""CATHODE (Hallin et al. 2022): sample the SB background model into the SR, then classify data vs samples.

1. a conditional flow ``p_bg(x | m)`` is trained on the sidebands;
2. ``m`` values for the samples are drawn from a KDE of the SR ``m`` values; ``oversample`` x n_SR
   background samples are drawn from the flow at those ``m``;
3. a classifier (HGB ensemble by default, or the MLP with best-epoch ensembling) separates SR data (1)
   from samples (0); its probability is the anomaly score (monotone in ``p_data / p_bg``).

With :func:`~excess.anomaly.cross_val_scores` every event is scored by a model fitted on the other
folds; with ``flow_groups=2`` one SB flow serves a group of folds, trained on the sidebands of the
folds outside the group (:class:`~excess.anomaly.density.SharedBackgroundFlow`), the
classifier stays k-fold. ``background_flow=<saved flow dir>`` reuses one SB flow for all folds (the paper's set-up; the
classifiers are still k-fold), which is ~k x cheaper.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._util import spawn_seeds
from ..errors import ConfigError
from ._classifier import FAST_CLASSIFIER, ClassifierMethod
from .density import DEFAULT_FLOW_GROUPS, FAST_FLOW, SharedBackgroundFlow, background_flow

__all__ = ["CATHODE", "sample_sr_mass"]


def sample_sr_mass(m_sr: np.ndarray, n: int, rng: np.random.Generator, bandwidth=None) -> np.ndarray:
    """Draw ``n`` resonant-feature values from a Gaussian KDE of ``m_sr``, reflected into the SR range."""
    from scipy.stats import gaussian_kde

    lo, hi = float(np.min(m_sr)), float(np.max(m_sr))
    kde = gaussian_kde(m_sr, bw_method=bandwidth)
    out = kde.resample(n, seed=rng).ravel()
    # reflect the tails back into [lo, hi] (the SR m distribution has hard edges)
    out = np.where(out < lo, 2 * lo - out, out)
    out = np.where(out > hi, 2 * hi - out, out)
    return np.clip(out, lo, hi)


class CATHODE(SharedBackgroundFlow, ClassifierMethod):
    """SB flow -> SR samples -> classifier SR data vs samples.

    Parameters
    ----------
    flow_params : dict for :class:`~excess.nn.flows.ConditionalFlow`
    classifier, classifier_params : "hgb" (default) or "mlp" and their hyperparameters
    oversample : samples per SR data event (default 4)
    kde_bandwidth : bandwidth rule for the SR ``m`` KDE (scipy ``bw_method``; None = Scott)
    background_flow : path of a saved SB flow to reuse instead of training one
    flow_groups : under out-of-fold scoring, SB flows per window, each shared by a group of folds and
        trained on the sidebands of the other folds (2: ~4x less flow training); None: one per fold;
        "auto": 2 in windows with >= ``AUTO_GROUPS_MIN_SB`` sideband events, else one per fold
        (default :data:`~excess.anomaly.density.DEFAULT_FLOW_GROUPS`;
        :class:`~excess.anomaly.density.SharedBackgroundFlow`)
    random_state : seed
    device : where the flow (training and sampling) and an MLP classifier compute ("auto": CUDA when
        present, else CPU; :mod:`excess.nn.device`)
    """

    name = "cathode"
    uses_sb = True
    min_sr = 50
    min_sb = 50
    FAST_PARAMS: ClassVar[dict] = {"flow_params": FAST_FLOW, "oversample": 2}

    @classmethod
    def fast_params(cls, params):
        fast = super().fast_params(params)
        fast.update({"flow_params": FAST_FLOW, "oversample": 2})
        return fast

    def _requires_sb(self) -> bool:
        return self.background_flow is None

    def _uses_torch(self) -> bool:
        return True  # the background flow

    def __init__(self, flow_params: dict | None = None, classifier="hgb", classifier_params=None,
                 oversample: float = 4.0, kde_bandwidth=None, background_flow: str | None = None,
                 random_state=None, device="auto", flow_groups: int | str | None = DEFAULT_FLOW_GROUPS):
        super().__init__(classifier, classifier_params, random_state, device)
        self.flow_params = flow_params
        self.oversample = oversample
        self.kde_bandwidth = kde_bandwidth
        self.background_flow = background_flow
        self.flow_groups = flow_groups

    def _training_set(self, data, rng):
        if not self.oversample > 0:
            raise ConfigError(f"oversample must be > 0, got {self.oversample}")
        self.background_flow_ = background_flow(self, data, rng)
        n_samples = int(round(self.oversample * data.n_sr))
        s_kde, s_flow = spawn_seeds(rng, 2)
        m_samples = sample_sr_mass(data.m_sr, n_samples, np.random.default_rng(s_kde), self.kde_bandwidth)
        X_samples = self.background_flow_.sample(m_samples, random_state=s_flow)
        self.samples_ = (X_samples, m_samples)
        X = np.concatenate([data.X_sr, X_samples])
        y = np.r_[np.ones(data.n_sr, np.int64), np.zeros(n_samples, np.int64)]
        return X, y
