"""Invertible shower representation shared by the generative models (CaloFlow-style).

A shower of ``L`` layers and ``V`` voxels with incident energy ``E_inc`` becomes ``L + V`` numbers:

* ``L`` energy variables: ``u_0 = E_tot / (u_max E_inc)`` and ``u_l = E_l / sum_{j >= l} E_j`` for
  ``l = 0 .. L-2`` (each in [0, 1]; the last layer's energy is what remains);
* ``V`` shape variables: voxel energies divided by their layer's energy (each layer sums to 1),
  dequantised by adding uniform noise in ``[0, noise_mev)`` MeV to every voxel before normalising,
  so that empty voxels become a continuous density;

each mapped through ``logit(delta + (1 - 2 delta) u)`` and standardised per dimension. The inverse
renormalises each layer's voxel fractions, multiplies by the layer energies, and zeroes voxels
below ``noise_mev`` (the threshold that undoes the dequantisation). The conditioning is the
standardised ``ln E_inc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._util import check_random_state
from ..errors import NotFittedError
from .geometry import CaloGeometry

__all__ = ["ShowerPreprocessor"]

_DELTA = 1e-6


def _logit(u):
    u = _DELTA + (1 - 2 * _DELTA) * np.clip(u, 0.0, 1.0)
    return np.log(u) - np.log1p(-u)


def _expit(y):
    u = 1.0 / (1.0 + np.exp(-y))
    return np.clip((u - _DELTA) / (1 - 2 * _DELTA), 0.0, 1.0)


@dataclass
class ShowerPreprocessor:
    """Fit on training showers, then ``transform`` / ``inverse`` (numpy, float32)."""

    geometry: CaloGeometry
    noise_mev: float = 0.01

    # ---- fitting ----------------------------------------------------------------------------
    def fit(self, showers, incident_energies, random_state=None) -> ShowerPreprocessor:
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        ratio = np.asarray(showers, dtype=np.float64).sum(1) / e
        self.u_max_ = float(max(1.2 * ratio.max(), 1e-3))
        le = np.log(e)
        self.cond_mean_, self.cond_std_ = float(le.mean()), float(le.std() + 1e-6)
        raw = self._raw(showers, e, check_random_state(random_state))
        self.mean_ = raw.mean(0)
        self.std_ = raw.std(0) + 1e-3
        return self

    def _check(self):
        if not hasattr(self, "mean_"):
            raise NotFittedError("ShowerPreprocessor is not fitted")

    @property
    def n_energy(self) -> int:
        return self.geometry.n_layers

    @property
    def n_features(self) -> int:
        return self.geometry.n_layers + self.geometry.n_voxels

    def condition(self, incident_energies) -> np.ndarray:
        self._check()
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1, 1)
        return ((np.log(e) - self.cond_mean_) / self.cond_std_).astype(np.float32)

    def _raw(self, showers, e, rng) -> np.ndarray:
        g = self.geometry
        x = np.asarray(showers, dtype=np.float64)
        layer_e = g.layer_sums(x)  # (N, L)
        u = np.empty_like(layer_e)
        u[:, 0] = layer_e.sum(1) / (self.u_max_ * e)
        rest = np.cumsum(layer_e[:, ::-1], axis=1)[:, ::-1]  # sum_{j >= l} E_j
        with np.errstate(invalid="ignore", divide="ignore"):
            u[:, 1:] = np.where(rest[:, :-1] > 0, layer_e[:, :-1] / rest[:, :-1], 0.0)
        xn = x + rng.uniform(0.0, self.noise_mev, size=x.shape)
        ln = g.layer_sums(xn)
        frac = xn / np.repeat(ln, g.layer_sizes, axis=1)
        return np.concatenate([_logit(u), _logit(frac)], axis=1)

    # ---- mapping ----------------------------------------------------------------------------
    def transform(self, showers, incident_energies, random_state=None) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, L+V), condition (N, 1)), float32."""
        self._check()
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        raw = self._raw(showers, e, check_random_state(random_state))
        return ((raw - self.mean_) / self.std_).astype(np.float32), self.condition(e)

    def energy_ratio(self, features_energy0) -> np.ndarray:
        """``E_tot / E_inc`` from the first (standardised) feature."""
        return _expit(np.asarray(features_energy0, dtype=np.float64) * self.std_[0] + self.mean_[0]) * self.u_max_

    def inverse(self, features, incident_energies) -> np.ndarray:
        """Showers (N, V) float32 in MeV from features (N, L+V)."""
        self._check()
        g = self.geometry
        f = np.asarray(features, dtype=np.float64) * self.std_ + self.mean_
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        L = g.n_layers
        u = _expit(f[:, :L])
        e_tot = u[:, 0] * self.u_max_ * e
        layer_e = np.empty((len(e), L))
        rest = e_tot.copy()
        for i in range(L - 1):
            layer_e[:, i] = u[:, i + 1] * rest
            rest = rest - layer_e[:, i]
        layer_e[:, L - 1] = np.maximum(rest, 0.0)
        frac = _expit(f[:, L:])
        norm = np.repeat(np.maximum(g.layer_sums(frac), 1e-12), g.layer_sizes, axis=1)
        x = frac / norm * np.repeat(layer_e, g.layer_sizes, axis=1)
        x[x < self.noise_mev] = 0.0
        return x.astype(np.float32)

    # ---- persistence --------------------------------------------------------------------------
    def state(self) -> dict:
        self._check()
        return {"noise_mev": self.noise_mev, "u_max_": self.u_max_, "cond_mean_": self.cond_mean_,
                "cond_std_": self.cond_std_, "mean_": self.mean_.tolist(), "std_": self.std_.tolist()}

    @classmethod
    def from_state(cls, geometry: CaloGeometry, state: dict) -> ShowerPreprocessor:
        p = cls(geometry, float(state["noise_mev"]))
        p.u_max_, p.cond_mean_, p.cond_std_ = float(state["u_max_"]), float(state["cond_mean_"]), float(state["cond_std_"])
        p.mean_, p.std_ = np.asarray(state["mean_"]), np.asarray(state["std_"])
        return p
