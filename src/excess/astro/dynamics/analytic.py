"""Analytic isotropic equilibria (Hernquist 1990; Plummer 1911 / Dejonghe 1987) with their potential,
acceleration, density and distribution function ``f(E)`` written in torch, for checks that need no training.

Units as in :mod:`~excess.astro.dynamics.units` (kpc, km/s, Msun; ``G`` from there). Both models are
spherical with total mass ``mass`` and scale radius ``a``.

Hernquist (ApJ 356, 359 (1990), eqs. 2, 3, 17), with ``q = sqrt(-E a / (G M))``, ``v_g = sqrt(G M / a)``::

    Phi = -G M / (r + a),   rho = M a / (2 pi r (r + a)^3),   M(<r) = M r^2 / (r + a)^2
    f(E) = M / (8 sqrt(2) pi^3 a^3 v_g^3) (1 - q^2)^(-5/2)
           [3 arcsin q + q (1 - q^2)^(1/2) (1 - 2 q^2) (8 q^4 - 8 q^2 - 3)]

Plummer: ``Phi = -G M / sqrt(r^2 + a^2)``, ``rho = 3 M a^2 / (4 pi (r^2 + a^2)^(5/2))``,
``f(E) = 24 sqrt(2) a^2 / (7 pi^3 G^5 M^4) (-E)^(7/2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from .units import G

__all__ = ["HernquistSphere", "PlummerSphere"]


def _r(x):
    x = np.asarray(x, dtype=np.float64)
    return x, np.sqrt(np.sum(x * x, axis=-1))


@dataclass(frozen=True)
class _Sphere:
    mass: float = 1e12
    a: float = 10.0

    def __post_init__(self):
        if not (self.mass > 0 and self.a > 0):
            raise ConfigError(f"{type(self).__name__} needs mass > 0 and a > 0, got mass={self.mass}, a={self.a}")

    def acceleration(self, x) -> np.ndarray:
        """``-grad Phi`` (n, 3) in (km/s)^2/kpc."""
        x, r = _r(x)
        return -(self._g_over_r(r))[..., None] * x

    def to_dict(self) -> dict:
        return {"model": type(self).__name__, "mass": self.mass, "a": self.a}


@dataclass(frozen=True)
class HernquistSphere(_Sphere):
    """Isotropic Hernquist sphere (the model of the galpy mock)."""

    def potential(self, x):
        _, r = _r(x)
        return -G * self.mass / (r + self.a)

    def _g_over_r(self, r):
        return G * self.mass / (r + self.a) ** 2 / r

    def density(self, x) -> np.ndarray:
        _, r = _r(x)
        return self.mass * self.a / (2 * math.pi * r * (r + self.a) ** 3)

    def enclosed_mass(self, r) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64)
        return self.mass * r**2 / (r + self.a) ** 2

    def mass_radius(self, fraction) -> np.ndarray:
        """Radius enclosing ``fraction`` of the mass: ``a sqrt(q) / (1 - sqrt(q))``."""
        s = np.sqrt(np.asarray(fraction, dtype=np.float64))
        return self.a * s / (1 - s)

    def log_df(self, x, v):
        """``log f(x, v)`` (torch; per unit phase-space volume, normalised to the total mass); ``-inf`` if unbound."""
        import torch

        r = torch.linalg.vector_norm(x, dim=-1)
        E = 0.5 * (v * v).sum(-1) - G * self.mass / (r + self.a)
        vg = math.sqrt(G * self.mass / self.a)
        q2 = torch.clamp(-E * self.a / (G * self.mass), min=0.0)
        q = torch.sqrt(q2)
        one = 1 - q2
        bracket = 3 * torch.asin(q) + q * torch.sqrt(one) * (1 - 2 * q2) * (8 * q2 * q2 - 8 * q2 - 3)
        norm = self.mass / (8 * math.sqrt(2) * math.pi**3 * self.a**3 * vg**3)
        return math.log(norm) - 2.5 * torch.log(one) + torch.log(bracket)


@dataclass(frozen=True)
class PlummerSphere(_Sphere):
    """Isotropic Plummer sphere."""

    def potential(self, x):
        _, r = _r(x)
        return -G * self.mass / np.sqrt(r**2 + self.a**2)

    def _g_over_r(self, r):
        return G * self.mass / (r**2 + self.a**2) ** 1.5

    def density(self, x) -> np.ndarray:
        _, r = _r(x)
        return 3 * self.mass * self.a**2 / (4 * math.pi * (r**2 + self.a**2) ** 2.5)

    def enclosed_mass(self, r) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64)
        return self.mass * r**3 / (r**2 + self.a**2) ** 1.5

    def mass_radius(self, fraction) -> np.ndarray:
        q = np.asarray(fraction, dtype=np.float64) ** (2.0 / 3.0)
        return self.a * np.sqrt(q / (1 - q))

    def log_df(self, x, v):
        import torch

        r = torch.linalg.vector_norm(x, dim=-1)
        E = 0.5 * (v * v).sum(-1) - G * self.mass / torch.sqrt(r * r + self.a**2)
        norm = 24 * math.sqrt(2) * self.a**2 / (7 * math.pi**3 * G**5 * self.mass**4)
        return math.log(norm) + 3.5 * torch.log(-E)
