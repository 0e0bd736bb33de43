"""Idealized anomaly detection: SR data vs a true background sample in the SR.

The best a weakly supervised method can do with a perfect background model (available in simulation
only): the classifier learns ``p_data / p_bg`` in the SR.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._classifier import ClassifierMethod
from .base import WindowData, in_sr

__all__ = ["Idealized"]


class Idealized(ClassifierMethod):
    """Classifier SR data (1) vs true SR background (0); needs ``X_background``/``m_background`` in fit."""

    name = "idealized"
    needs_background = True

    def _training_set(self, data: WindowData, rng):
        ref = data.X_background[in_sr(data.m_background, data.sr)]
        if ref.shape[0] < self.min_sr:
            raise InputError(
                f"idealized: the background sample has {ref.shape[0]} events in the SR {data.sr}, need >= {self.min_sr}"
            )
        X = np.concatenate([data.X_sr, ref])
        y = np.r_[np.ones(data.n_sr, np.int64), np.zeros(ref.shape[0], np.int64)]
        return X, y
