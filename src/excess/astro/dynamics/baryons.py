"""Baryon models to subtract from the total density for the dark-matter density.

``"mwpotential2014"``: the bulge and stellar disk of galpy's ``MWPotential2014`` (Bovy 2015, ApJS 216, 29,
table 1; ``R0 = 8 kpc``, ``v_c(R0) = 220 km/s``): a power-law bulge with exponential cut-off
(``alpha = 1.8``, ``r_c = 1.9 kpc``, 5 % of the radial force at ``R0``) and a Miyamoto-Nagai disk
(``a = 3 kpc``, ``b = 0.28 kpc``, 60 % of the radial force at ``R0``); its NFW halo (``a = 16 kpc``, 35 %)
is the dark matter. The same potential makes the disk-like truth, so the subtraction is exact there; for the
real Milky Way it is one documented model among several (e.g. McKee, Parravano & Hollenbach 2015, ApJ 814,
13, used by Lim et al. 2023 for the solar neighbourhood), and its uncertainty is not propagated here.

``"none"``: no baryons (e.g. the Hernquist mock, where all the mass is the tracer's).
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from .mocks import GalpyTruth

__all__ = ["BARYON_MODELS", "BaryonModel", "baryon_model"]

BARYON_MODELS = ("none", "mwpotential2014")


class BaryonModel:
    """``density(x)`` of the baryons in Msun/kpc^3 at positions ``x`` (n, 3) kpc; ``spec`` documents it."""

    def __init__(self, name: str, truth: GalpyTruth | None, spec: dict):
        self.name = name
        self._truth = truth
        self.spec = spec

    def density(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._truth is None:
            return np.zeros(x.shape[0])
        return self._truth.density(x)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.spec}


def baryon_model(name: str) -> BaryonModel:
    if name == "none":
        return BaryonModel("none", None, {"source": "no baryons"})
    if name == "mwpotential2014":
        from galpy.potential import MWPotential2014

        spec = {"source": "Bovy 2015, ApJS 216, 29 (galpy MWPotential2014 bulge + Miyamoto-Nagai disk)",
                "bulge": {"alpha": 1.8, "rc_kpc": 1.9, "normalize": 0.05},
                "disk": {"a_kpc": 3.0, "b_kpc": 0.28, "normalize": 0.6}, "R0_kpc": 8.0, "v0_kms": 220.0}
        return BaryonModel(name, GalpyTruth(MWPotential2014[0] + MWPotential2014[1], {"kind": "baryons"}), spec)
    raise ConfigError(f"unknown baryon model {name!r}; known: {', '.join(BARYON_MODELS)}")
