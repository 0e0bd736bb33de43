"""Invertible shower representation shared by the generative models (CaloFlow-style).

A shower of ``L`` layers and ``V`` voxels with incident energy ``E_inc`` becomes ``L + V`` numbers:

* ``L`` energy variables: ``u_0 = E_tot / (u_max E_inc)`` and ``u_l = E_l / sum_{j >= l} E_j`` for
  ``l = 0 .. L-2`` (each in [0, 1]; the last layer's energy is what remains);
* ``V`` shape variables: voxel energies divided by their layer's energy (each layer sums to 1),
  dequantised by adding uniform noise in ``[0, s)`` MeV to every voxel before normalising, so that
  empty voxels become a continuous density; the scale ``s`` is ``noise_mev``, or
  ``relative_noise`` times the layer's energy if that is smaller (a faint layer's hit pattern
  would drown in absolute noise);

each mapped through ``logit(delta + (1 - 2 delta) u)`` and standardised per dimension. The inverse
renormalises each layer's voxel fractions, multiplies by the layer energies, zeroes voxels
below the noise scale ``s`` (the threshold that undoes the dequantisation) and rescales each layer back to
its energy; a layer whose voxels all fall below the threshold keeps its energy in its hottest voxel.
The conditioning is the standardised ``ln E_inc``.

Sparsity calibration (optional, fitted on training showers after the model): generative models
smear the gap between empty and non-empty voxels, so generated showers come out too dense (or, where
the reference has deposits below ``noise_mev``, too sparse). For each layer and each incident energy
(or, for continuous energies, each of a few bins in ``ln E_inc``),
:meth:`ShowerPreprocessor.calibrate_thresholds` picks the output threshold (in units of ``s``) at which the generated
fraction of empty voxels equals the training showers'; thresholds are interpolated in ``ln E_inc``,
and each layer is rescaled after thresholding so that its energy is unchanged. In the same way it
picks, per layer and energy, the floor (a fraction of ``E_inc``) at or below which the energy
stage's layer energy means an empty layer, so that the fraction of empty *layers* matches too: the
energy stage cannot put a point mass at zero, and a layer whose voxels all fall below the voxel
threshold keeps its energy in its hottest voxel rather than vanishing.
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
    relative_noise: float | None = 1e-3

    def _noise_scale(self, layer_e) -> np.ndarray:
        """(N, L) dequantisation scale (MeV) of each layer's voxels: ``noise_mev``, or, with
        ``relative_noise``, at most that fraction of the layer's energy, so that the hit pattern of
        a faint layer (GFLASH's ds1 back layers hold ~1 keV at 256 MeV) is not drowned in the noise.
        ``None`` (models saved before it existed) keeps ``noise_mev`` everywhere."""
        scale = np.full(np.shape(layer_e), float(self.noise_mev))
        if self.relative_noise is not None:
            le = np.asarray(layer_e, dtype=np.float64)
            scale = np.where(le > 0, np.minimum(scale, float(self.relative_noise) * le), scale)
        return scale

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
        xn = x + rng.uniform(0.0, 1.0, size=x.shape) * np.repeat(self._noise_scale(layer_e), g.layer_sizes, axis=1)
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
        """Showers (N, V) float32 in MeV from features (N, L+V).

        The voxel part is computed in float32, in place and layer by layer (it is a sizeable part
        of a fast model's generation time); the energy part in float64.
        """
        self._check()
        g = self.geometry
        f = np.asarray(features)
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        L = g.n_layers
        u = _expit(f[:, :L].astype(np.float64) * self.std_[:L] + self.mean_[:L])
        e_tot = u[:, 0] * self.u_max_ * e
        layer_e = np.empty((len(e), L))
        rest = e_tot.copy()
        for i in range(L - 1):
            layer_e[:, i] = u[:, i + 1] * rest
            rest = rest - layer_e[:, i]
        layer_e[:, L - 1] = np.maximum(rest, 0.0)
        x = f[:, L:].astype(np.float32) * self.std_[L:].astype(np.float32)  # a new array, then in place
        x += self.mean_[L:].astype(np.float32)
        np.negative(x, out=x)  # expit(y) = 1 / (1 + exp(-y)), then undo the delta of the logit
        np.exp(x, out=x)
        x += 1.0
        np.reciprocal(x, out=x)
        x -= np.float32(_DELTA)
        x *= np.float32(1.0 / (1 - 2 * _DELTA))
        np.clip(x, 0.0, 1.0, out=x)
        for i in range(L):  # voxel fractions -> MeV: each layer renormalised to its energy
            xs = x[:, g.layer_slice(i)]
            norm = np.maximum(xs.sum(1, dtype=np.float64), 1e-12)
            xs *= (layer_e[:, i] / norm).astype(np.float32)[:, None]
        return self._threshold(x, e, layer_e)

    def _interp_layers(self, table, e):
        """Per-layer values of a (L, K) calibration table at incident energies ``e``: (N, L)."""
        le = np.log(e)
        return np.stack([np.interp(le, self.threshold_log_e_, table[i]) for i in range(self.geometry.n_layers)], axis=1)

    def _threshold(self, x, e, layer_e):
        """Zero the voxels below the output threshold and rescale each layer to its energy ``layer_e``.

        A layer is empty when its energy is at most its calibrated floor (``layer_floors_`` times
        ``E_inc``; 0 without calibration); otherwise it keeps its energy, in its hottest voxel if all
        its voxels fall below the threshold. (Thresholding voxels alone emptied faint layers, such as
        ds1's 5-voxel back layers at low energy or ds2's first layer, several times as often as
        in the reference.)
        """
        g = self.geometry
        floors = getattr(self, "layer_floors_", None)
        floor = np.zeros((len(e), g.n_layers)) if floors is None else self._interp_layers(floors, e) * e[:, None]
        layer_e = np.where(layer_e > floor, layer_e, 0.0)
        scale = self._noise_scale(layer_e)
        if getattr(self, "thresholds_", None) is None:
            t = scale
        elif self.relative_noise is None:  # thresholds in MeV (models saved before relative_noise)
            t = self._interp_layers(self.thresholds_, e)
        else:  # thresholds in units of each layer's dequantisation scale
            t = self._interp_layers(self.thresholds_, e) * scale
        for i in range(g.n_layers):  # layer by layer, in place (views)
            xs = x[:, g.layer_slice(i)]
            hottest = np.argmax(xs, axis=1)
            xs[xs < t[:, i : i + 1].astype(xs.dtype)] = 0.0
            kept = xs.sum(1, dtype=np.float64)
            rows = np.flatnonzero((kept <= 0) & (layer_e[:, i] > 0))
            xs[rows, hottest[rows]] = layer_e[rows, i]
            kept[rows] = layer_e[rows, i]
            xs *= np.where(kept > 0, layer_e[:, i] / np.maximum(kept, 1e-300), 0.0).astype(xs.dtype)[:, None]
        return x

    def calibrate_thresholds(self, generated, reference, incident_energies, n_bins: int = 6) -> ShowerPreprocessor:
        """Fit per-layer, per-energy-bin output thresholds and layer floors (see the module docstring).

        Thresholds are in units of each layer's noise scale (in MeV without ``relative_noise``);
        floors are fractions of ``E_inc``. Discrete incident energies (at most ``4 * n_bins`` distinct values, as in dataset 1) get one
        threshold set per energy; otherwise the energies are split into ``n_bins`` quantile bins.

        ``generated`` must be *unthresholded* model output (as :meth:`ShowerGenerator.calibrate_sparsity`
        draws it, with all thresholds at 0) for the same incident energies as the ``reference`` training
        showers. The thresholds may lie below the noise scale: the model's smallest outputs then become the
        small deposits the reference has, rather than empty voxels.
        """
        g = self.geometry
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        le = np.log(e)
        values, which = np.unique(le, return_inverse=True)
        n_groups = len(values)
        if n_groups > 4 * n_bins:  # continuous energies: quantile bins in ln E_inc
            edges = np.unique(np.quantile(le, np.linspace(0, 1, n_bins + 1)))
            which = np.clip(np.searchsorted(edges, le, side="right") - 1, 0, len(edges) - 2)
            n_groups = len(edges) - 1
        gen_layers = g.layer_sums(generated)  # unthresholded: the energy stage's layer energies
        unit = np.ones_like(gen_layers) if self.relative_noise is None else self._noise_scale(gen_layers)
        gen_layers = gen_layers / e[:, None]
        ref_layers = g.layer_sums(reference)
        centres, thr, floors = [], [], []
        for k in range(n_groups):
            m = which == k
            if not m.any():
                continue
            centres.append(float(np.median(le[m])))
            row, frow = [], []
            for i in range(g.n_layers):
                sl = g.layer_slice(i)
                target = float((reference[m][:, sl] <= 0).mean())
                vals = (generated[m][:, sl] / unit[m][:, i : i + 1]).ravel()
                row.append(float(np.quantile(vals, target)) if target > 0 else 0.0)
                empty = float((ref_layers[m, i] <= 0).mean())
                frow.append(float(np.quantile(gen_layers[m, i], empty)) if empty > 0 else 0.0)
            thr.append(row)
            floors.append(frow)
        self.threshold_log_e_ = np.asarray(centres)
        self.thresholds_ = np.asarray(thr).T  # (L, K)
        self.layer_floors_ = np.asarray(floors).T  # (L, K), fractions of E_inc
        return self

    # ---- persistence --------------------------------------------------------------------------
    def get_state(self) -> dict:
        self._check()
        d = {"noise_mev": self.noise_mev, "relative_noise": self.relative_noise, "u_max_": self.u_max_, "cond_mean_": self.cond_mean_,
             "cond_std_": self.cond_std_, "mean_": self.mean_.tolist(), "std_": self.std_.tolist()}
        if getattr(self, "thresholds_", None) is not None:
            d["thresholds_"] = self.thresholds_.tolist()
            d["threshold_log_e_"] = self.threshold_log_e_.tolist()
        if getattr(self, "layer_floors_", None) is not None:
            d["layer_floors_"] = self.layer_floors_.tolist()
        return d

    @classmethod
    def from_state(cls, geometry: CaloGeometry, state: dict) -> ShowerPreprocessor:
        rel = state.get("relative_noise")  # absent from files saved before it existed: absolute noise only
        p = cls(geometry, float(state["noise_mev"]), None if rel is None else float(rel))
        p.u_max_, p.cond_mean_, p.cond_std_ = float(state["u_max_"]), float(state["cond_mean_"]), float(state["cond_std_"])
        p.mean_, p.std_ = np.asarray(state["mean_"]), np.asarray(state["std_"])
        if "thresholds_" in state:
            p.thresholds_ = np.asarray(state["thresholds_"], dtype=float)
            p.threshold_log_e_ = np.asarray(state["threshold_log_e_"], dtype=float)
        if "layer_floors_" in state:
            p.layer_floors_ = np.asarray(state["layer_floors_"], dtype=float)
        return p
