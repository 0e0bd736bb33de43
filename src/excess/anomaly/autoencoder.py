"""Unsupervised baselines: autoencoder reconstruction error and VAE latent norm / reconstruction error.

The model is trained on the SR events of the window (``train_on="sr"``) or on every event passed
(``"all"``); signal is rare, so the model learns the background and reconstructs signal worse. These
methods do not use the SB or a background model: they look for "rare", not for "more than expected".
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._util import spawn_seeds
from ..errors import ConfigError
from ._device import fit_device, with_device
from .base import AnomalyMethod

__all__ = ["AutoencoderAD", "VAEAD"]

FAST_AE = {"epochs": 8, "hidden": (16,), "batch_size": 128}


class AutoencoderAD(AnomalyMethod):
    """Score = reconstruction error of an autoencoder trained on SR data.

    Parameters
    ----------
    model_params : dict for :class:`~excess.nn.autoencoders.Autoencoder`
    train_on : "sr" or "all"
    random_state : seed
    device : where the model trains and evaluates ("auto": CUDA when present, else CPU)
    """

    name = "autoencoder"
    FAST_PARAMS: ClassVar[dict] = {"model_params": FAST_AE}
    _scores = ("reconstruction",)

    def __init__(self, model_params: dict | None = None, train_on: str = "sr", random_state=None, device="auto"):
        self.model_params = model_params
        self.train_on = train_on
        self.random_state = random_state
        self.device = device

    def _model_params(self) -> dict:
        return with_device(self.model_params, self.device, "model_params")

    def _model(self, seed):
        from ..nn.autoencoders import Autoencoder

        return Autoencoder(**self._model_params(), random_state=seed)

    def _fit(self, data, rng):
        if self.train_on not in ("sr", "all"):
            raise ConfigError(f"train_on must be 'sr' or 'all', got {self.train_on!r}")
        if getattr(self, "score", "reconstruction") not in self._scores:
            raise ConfigError(f"score must be one of {self._scores}, got {self.score!r}")
        self.device_ = fit_device(self)
        (seed,) = spawn_seeds(rng, 1)
        X = data.X_sr if self.train_on == "sr" else data.X
        try:
            self.model_ = self._model(seed).fit(X)
        except TypeError as exc:
            raise ConfigError(f"bad model_params {self.model_params!r}: {exc}") from None

    def _score(self, X, m):
        return self.model_.reconstruction_error(X)


class VAEAD(AutoencoderAD):
    """Score = latent-mean norm (default), reconstruction error or KL of a VAE trained on SR data."""

    name = "vae"
    _scores = ("latent", "reconstruction", "kl")

    def __init__(self, model_params: dict | None = None, train_on: str = "sr", score: str = "latent",
                 random_state=None, device="auto"):
        super().__init__(model_params, train_on, random_state, device)
        self.score = score

    def _model(self, seed):
        from ..nn.autoencoders import VAE

        return VAE(**self._model_params(), random_state=seed)

    def _score(self, X, m):
        if self.score == "latent":
            return self.model_.latent_norm(X)
        if self.score == "kl":
            return self.model_.kl(X)
        return self.model_.reconstruction_error(X)
