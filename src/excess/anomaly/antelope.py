"""ANTELOPE in the anomaly API: a VAE on the PFN latent space, scored by its loss (``make_method("antelope")``).

Two ways in, one estimator:

* **sets**: ``fit(tracks, m, sr=..., mask=None)`` with zero-padded track sets ``(N, M, 8)``
  (:mod:`excess.antelope.sets`) and ``pfn=`` the path of a saved, trained
  :class:`~excess.antelope.models.PFNClassifier` (``excess antelope train`` writes one): the frozen PFN maps
  each event to its latent vector, the VAE works there.
* **feature matrix**: ``fit(Z, m, sr=...)`` with ``Z`` ``(N, L)`` the PFN latent already computed (columns
  ``pfn_0 ...`` of an event table, :func:`excess.antelope.search.add_latent_columns`). This is how ANTELOPE
  runs in the search machinery (:func:`excess.search.run_scan`, which scans feature columns): the PFN is
  applied once per event, not once per window and fold.

The VAE is either trained in each fit on the window's events (``train_on="sb"``, the default: the sidebands,
where a localised signal is not; ``"sr"`` or ``"all"``), or frozen: ``vae=`` the path of a saved
:class:`~excess.antelope.models.AntelopeVAE` trained on a background sample (the paper's setting; ``fit`` then
trains nothing). Models are given as paths, not objects, so that the estimator clones and pickles to executor
workers cheaply and ``sklearn.base.clone`` cannot reset a fitted model. Score: ``sigmoid(log10(loss))`` of the
``total`` (MSE + KL), ``kl`` or ``reconstruction`` loss; higher = more anomalous.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np

from .._util import check_random_state, spawn_seeds
from ..errors import ConfigError, FitError, InputError
from ._device import fit_device
from .base import AnomalyMethod, check_features, check_sr, in_sr

__all__ = ["AntelopeAD"]


class AntelopeAD(AnomalyMethod):
    """ANTELOPE's VAE score on the PFN latent space (see the module docstring)."""

    name = "antelope"
    min_sr = 20
    FAST_PARAMS: ClassVar[dict] = {"vae_params": {"epochs": 5, "batch_size": 128}}

    def __init__(self, pfn: str | os.PathLike | None = None, vae: str | os.PathLike | None = None,
                 vae_params: dict | None = None, train_on: str = "sb", score: str = "total", random_state=None,
                 device="auto"):
        self.pfn = pfn
        self.vae = vae
        self.vae_params = vae_params
        self.train_on = train_on
        self.score = score
        self.random_state = random_state
        self.device = device

    @property
    def uses_sb(self) -> bool:  # type: ignore[override]
        return self.vae is None and self.train_on == "sb"

    def _requires_sb(self) -> bool:
        return self.uses_sb

    def _load(self, path, what, cls):
        from ..nn.io import load_model

        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"{self.name}: {what} must be the path of a saved model (excess.nn.io), got "
                              f"{type(path).__name__}")
        model = load_model(path, device=self.device)
        if not isinstance(model, cls):
            raise InputError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def _features(self, X, mask, name: str) -> np.ndarray:
        """The latent matrix: the frozen PFN applied to sets (3-d input), or ``X`` itself (2-d)."""
        if isinstance(X, (list, tuple)) or np.ndim(X) == 3:
            from ..antelope.models import PFNClassifier

            if self.pfn is None:
                raise ConfigError(f"{self.name}: track sets need pfn= (the path of a trained PFN); or pass the PFN "
                                  "latent as a feature matrix")
            if getattr(self, "_pfn_model", None) is None:
                self._pfn_model = self._load(self.pfn, "pfn", PFNClassifier)
            return self._pfn_model.latent(X, mask)
        if mask is not None:
            raise InputError(f"{self.name}: mask= goes with track sets (N, M, 8), not with a feature matrix")
        return check_features(X, name=name)[0]

    def fit(self, X, m, *, sr, mask=None, y=None, X_background=None, m_background=None):
        """Fit on the window's events (sets or PFN-latent features) with ``sr=(lo, hi)``; returns ``self``."""
        from ..antelope.models import SCORES, AntelopeVAE

        if self.score not in SCORES:
            raise ConfigError(f"{self.name}: score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.train_on not in ("sb", "sr", "all"):
            raise ConfigError(f"{self.name}: train_on must be 'sb', 'sr' or 'all', got {self.train_on!r}")
        sr = check_sr(sr)
        Z, m = check_features(self._features(X, mask, "X"), m)
        is_sr = in_sr(m, sr)
        self.device_ = fit_device(self)
        if self.vae is not None:
            self.model_ = self._load(self.vae, "vae", AntelopeVAE)
            if self.model_.n_features_in_ != Z.shape[1]:
                raise InputError(f"{self.name}: the VAE {self.vae} was trained on {self.model_.n_features_in_} latent "
                                 f"features, got {Z.shape[1]}")
        else:
            rows = {"sb": ~is_sr, "sr": is_sr, "all": np.ones_like(is_sr)}[self.train_on]
            need = self.min_sb if self.train_on == "sb" else self.min_sr
            if rows.sum() < max(need, 20):
                raise InputError(f"{self.name}: {int(rows.sum())} training events in the {self.train_on.upper()} of "
                                 f"{sr}, need >= {max(need, 20)}")
            (seed,) = spawn_seeds(check_random_state(self.random_state), 1)
            params = dict(self.vae_params or {})
            if "device" in params or "random_state" in params:
                raise ConfigError(f"{self.name}: vae_params: device and random_state are the method's parameters")
            try:
                vae = AntelopeVAE(**params, random_state=seed, device=self.device)
            except TypeError as exc:
                raise ConfigError(f"{self.name}: bad vae_params {self.vae_params!r}: {exc}") from None
            self.model_ = vae.fit(Z[rows])
        self.sr_ = sr
        self.n_features_in_ = Z.shape[1]
        self.n_sr_, self.n_sb_ = int(is_sr.sum()), int((~is_sr).sum())
        self.is_fitted_ = True
        return self

    def score_samples(self, X, m, mask=None) -> np.ndarray:
        """Anomaly score per event (``sigmoid(log10(loss))``), higher = more anomalous; always finite."""
        self._check_fitted()
        Z, _ = check_features(self._features(X, mask, "X"), m, n_features=self.n_features_in_)
        s = self.model_.score_samples(Z, self.score)
        if not np.all(np.isfinite(s)):
            raise FitError(f"{self.name}: {int(np.sum(~np.isfinite(s)))} scores are not finite (training diverged?)")
        return s

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_pfn_model", None)  # reloaded from the path where needed
        return state
