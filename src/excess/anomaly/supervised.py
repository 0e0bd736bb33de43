"""Fully supervised classifier: signal vs background labels in the SR (the upper bound of performance)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._classifier import ClassifierMethod
from .base import WindowData

__all__ = ["Supervised"]


class Supervised(ClassifierMethod):
    """Signal (``y=1``) vs background (``y=0``) classifier trained on the SR events of the window.

    Parameters
    ----------
    classifier : "hgb" or "mlp" (or an estimator)
    classifier_params : dict of hyperparameters for the classifier
    sr_only : train on SR events only (default) or on every event passed
    random_state : seed
    device : where an MLP classifier trains ("auto": CUDA when present; HGB ignores it)
    """

    name = "supervised"
    needs_labels = True

    def __init__(self, classifier="hgb", classifier_params=None, sr_only: bool = True, random_state=None,
                 device="auto"):
        super().__init__(classifier, classifier_params, random_state, device)
        self.sr_only = sr_only

    def _training_set(self, data: WindowData, rng):
        mask = data.is_sr if self.sr_only else np.ones_like(data.is_sr)
        y = data.y[mask]
        if y.min() == y.max():
            raise InputError(f"supervised: the training events contain only label {int(y[0])}; need signal and background")
        return data.X[mask], y
