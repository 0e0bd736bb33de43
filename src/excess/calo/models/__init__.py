"""Conditional generative models of calorimeter showers: flow (zuko), VAE, WGAN-GP.

Importing this package registers every model in :data:`MODEL_REGISTRY` (``base`` never imports a subclass).
Torch is not imported here.
"""

from __future__ import annotations

from .base import MODEL_REGISTRY, ShowerGenerator, load_model
from .flow import CaloFlow
from .vae import CaloVAE
from .wgan import CaloWGAN

__all__ = ["ShowerGenerator", "CaloFlow", "CaloVAE", "CaloWGAN", "MODEL_REGISTRY", "load_model", "get_model_class"]


def get_model_class(name: str) -> type:
    """``"flow"``, ``"vae"`` or ``"wgan"``."""
    from ...errors import ConfigError

    if name not in MODEL_REGISTRY:
        raise ConfigError(f"unknown model {name!r}: use one of {sorted(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[name]
