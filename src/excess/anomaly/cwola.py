"""CWoLa hunting: a classifier of SR vs SB events (Collins, Howe, Nachman 2018).

Without signal, SR and SB are indistinguishable in features uncorrelated with ``m`` and the classifier
learns nothing; with signal it learns ``p_sig / p_bg``. The features must not be correlated with ``m``
(otherwise the classifier learns ``m`` and sculpts the spectrum). Use :func:`cross_val_scores` so
every event is scored by a classifier that never saw it.
"""

from __future__ import annotations

import numpy as np

from ._classifier import ClassifierMethod
from .base import WindowData

__all__ = ["CWoLa"]


class CWoLa(ClassifierMethod):
    """Classifier SR (1) vs SB (0) on the window's events (class-balanced)."""

    name = "cwola"
    uses_sb = True
    trains_sr_vs_sb = True  # learns any mjj correlation: the scan decorrelates its features by default
    min_sb = 20

    def _training_set(self, data: WindowData, rng):
        return data.X, data.is_sr.astype(np.int64)
