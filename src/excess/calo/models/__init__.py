"""Conditional generative models of calorimeter showers: flow (zuko), VAE, WGAN-GP."""

from __future__ import annotations

from .base import MODEL_REGISTRY, ShowerGenerator, load_model

__all__ = ["ShowerGenerator", "MODEL_REGISTRY", "load_model", "get_model_class"]


def get_model_class(name: str) -> type:
    """``"flow"``, ``"vae"`` or ``"wgan"``."""
    from ...errors import ConfigError
    from . import flow, vae, wgan  # noqa: F401  (registration)

    if name not in MODEL_REGISTRY:
        raise ConfigError(f"unknown model {name!r}: use one of {sorted(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[name]
