"""Resonant anomaly detection: every method behind one estimator protocol.

>>> from excess.anomaly import make_method, cross_val_scores, METHODS
>>> method = make_method("cathode", random_state=0)          # doctest: +SKIP
>>> scores = cross_val_scores(method, X, m, sr=(3300, 3700))  # doctest: +SKIP

Methods (``METHODS``):

============  ====================================================================================
supervised    signal vs background labels (upper bound; needs ``y``)
idealized     SR data vs a true SR background sample (needs ``X_background``, ``m_background``)
cwola         classifier SR vs SB
anode         conditional flows for SR data and SB background; score = log density ratio
cathode       SB flow sampled into the SR; classifier data vs samples
ranode        frozen SB background flow + learnable signal fraction and signal flow on SR data
autoencoder   reconstruction error of an autoencoder trained on SR data (unsupervised)
vae           variational autoencoder (latent norm or reconstruction error)
antelope      VAE loss on a PFN's latent space of track sets (ANTELOPE; sets or PFN-latent columns)
============  ====================================================================================

Importing this package does not import torch.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import AnomalyMethod, WindowData, check_features, check_sr, check_window, cross_val_scores, in_sr

__all__ = [
    "METHODS",
    "make_method",
    "get_method_class",
    "AnomalyMethod",
    "WindowData",
    "cross_val_scores",
    "check_features",
    "check_sr",
    "check_window",
    "in_sr",
]

# name -> (module, class)
_REGISTRY: dict[str, tuple[str, str]] = {
    "supervised": ("excess.anomaly.supervised", "Supervised"),
    "idealized": ("excess.anomaly.idealized", "Idealized"),
    "cwola": ("excess.anomaly.cwola", "CWoLa"),
    "anode": ("excess.anomaly.anode", "ANODE"),
    "cathode": ("excess.anomaly.cathode", "CATHODE"),
    "ranode": ("excess.anomaly.ranode", "RANODE"),
    "autoencoder": ("excess.anomaly.autoencoder", "AutoencoderAD"),
    "vae": ("excess.anomaly.autoencoder", "VAEAD"),
    "antelope": ("excess.anomaly.antelope", "AntelopeAD"),
}
METHODS: tuple[str, ...] = tuple(_REGISTRY)


def get_method_class(name: str) -> type[AnomalyMethod]:
    """The estimator class registered under ``name``."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown anomaly method {name!r}; known methods: {', '.join(METHODS)}")
    module, cls = _REGISTRY[key]
    return getattr(importlib.import_module(module), cls)


def make_method(name: str, *, fast: bool = False, **params) -> AnomalyMethod:
    """Construct an anomaly method by name.

    ``fast=True`` starts from the method's tiny ``FAST_PARAMS`` (for tests and smoke runs); explicit
    ``params`` override them. Unknown parameter names raise :class:`~excess.errors.ConfigError`.
    """
    cls = get_method_class(name)
    kw = {**(cls.fast_params(params) if fast else {}), **params}
    valid = set(cls._get_param_names())
    unknown = set(kw) - valid
    if unknown:
        raise ConfigError(f"{name}: unknown parameter(s) {sorted(unknown)}; valid: {sorted(valid)}")
    return cls(**kw)
