"""Shared machinery of the classifier-based methods (supervised, idealized AD, CWoLa, CATHODE)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._util import spawn_seeds
from ._device import fit_device, with_device
from .base import AnomalyMethod, WindowData

__all__ = ["ClassifierMethod"]

FAST_CLASSIFIER = {"hgb": {"n_members": 2, "max_iter": 30}, "mlp": {"epochs": 20, "n_best": 2, "hidden": (16, 16), "batch_size": 128}}


class ClassifierMethod(AnomalyMethod):
    """A method whose score is a classifier's probability of the "anomalous" class.

    Subclasses implement ``_training_set(data, rng) -> (X, y)`` with ``y = 1`` for the class whose
    excess is searched for (SR data) and ``y = 0`` for the reference.

    ``device`` (default "auto", see :mod:`excess.nn.device`) is where the MLP classifier trains (and any
    torch model of the subclass, e.g. CATHODE's flow); the default HGB ensemble is CPU trees and ignores it.
    """

    FAST_PARAMS: ClassVar[dict[str, Any]] = {"classifier_params": FAST_CLASSIFIER["hgb"]}

    @classmethod
    def fast_params(cls, params):
        clf = params.get("classifier", "hgb")
        fast = dict(cls.FAST_PARAMS)
        fast["classifier_params"] = dict(FAST_CLASSIFIER.get(clf, {})) if isinstance(clf, str) else None
        return fast

    def __init__(self, classifier: str = "hgb", classifier_params: dict | None = None, random_state=None,
                 device="auto"):
        self.classifier = classifier
        self.classifier_params = classifier_params
        self.random_state = random_state
        self.device = device

    def _classifier_uses_torch(self) -> bool:
        """Whether the classifier takes a device (the torch MLP, or an estimator with a ``device`` parameter)."""
        if isinstance(self.classifier, str):
            return self.classifier == "mlp"
        return hasattr(self.classifier, "get_params") and "device" in self.classifier.get_params(deep=False)

    def _uses_torch(self) -> bool:
        return self._classifier_uses_torch()

    def _make_classifier(self, seed: int):
        from ..nn.classifiers import make_classifier

        params = with_device(self.classifier_params, self.device, "classifier_params")
        if not self._classifier_uses_torch():
            del params["device"]  # HGB: CPU trees
        return make_classifier(self.classifier, random_state=seed, **params)

    def _fit_classifier(self, Xc: np.ndarray, yc: np.ndarray, rng: np.random.Generator) -> None:
        (seed,) = spawn_seeds(rng, 1)
        self.classifier_ = self._make_classifier(seed).fit(Xc, yc)

    def _fit(self, data: WindowData, rng: np.random.Generator) -> None:
        self.device_ = fit_device(self, self._uses_torch())
        Xc, yc = self._training_set(data, rng)
        self.n_train_ = {"positive": int(yc.sum()), "negative": int((yc == 0).sum())}
        self._fit_classifier(Xc, yc, rng)

    def _training_set(self, data: WindowData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def _score(self, X: np.ndarray, m: np.ndarray) -> np.ndarray:
        return self.classifier_.predict_proba(X)[:, 1]

    def predict_proba(self, X, m=None) -> np.ndarray:
        """Classifier probabilities (n, 2) of (reference, anomalous)."""
        self._check_fitted()
        return self.classifier_.predict_proba(np.asarray(X, dtype=np.float64))
