"""Accelerations and densities from a fitted :class:`~excess.astro.dynamics.model.PhaseSpaceFlow`, per member.

At each query position, each member draws ``n_velocities`` velocities from its own ``p(v | x)``, solves the
Boltzmann equation for ``a`` by least squares (:func:`~excess.astro.dynamics.boltzmann.accelerations_at`) and,
if asked, differentiates it for ``rho = -div(a) / (4 pi G)``. The ensemble mean is the estimate and the
members' standard deviation its uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._util import check_random_state, progress, spawn_seeds
from ...errors import ConfigError
from .model import check_phase_space

__all__ = ["FieldEstimate", "estimate_field"]


@dataclass(frozen=True)
class FieldEstimate:
    """Per-member accelerations (M, P, 3) in (km/s)^2/kpc and densities (M, P) in Msun/kpc^3 (or None)."""

    positions: np.ndarray
    acc_members: np.ndarray
    rho_members: np.ndarray | None = None
    n_velocities: int = 0

    @property
    def acc(self) -> np.ndarray:
        return self.acc_members.mean(axis=0)

    @property
    def acc_std(self) -> np.ndarray:
        return self.acc_members.std(axis=0, ddof=1) if self.acc_members.shape[0] > 1 else np.zeros_like(self.acc)

    @property
    def rho(self) -> np.ndarray | None:
        return None if self.rho_members is None else self.rho_members.mean(axis=0)

    @property
    def rho_std(self) -> np.ndarray | None:
        if self.rho_members is None:
            return None
        return self.rho_members.std(axis=0, ddof=1) if self.rho_members.shape[0] > 1 else np.zeros_like(self.rho)

    def to_dict(self) -> dict:
        return {"positions": self.positions, "acc": self.acc, "acc_std": self.acc_std, "acc_members": self.acc_members,
                "rho": self.rho, "rho_std": self.rho_std, "rho_members": self.rho_members,
                "n_velocities": self.n_velocities}


def estimate_field(model, x, *, n_velocities: int = 500, density: bool = True, batch_evaluations: int = 100_000,
                   random_state=None) -> FieldEstimate:
    """Accelerations (and densities) at positions ``x`` (P, 3) kpc for every member of ``model``.

    ``batch_evaluations`` bounds the flow evaluations (positions x velocities) per autograd pass (memory).
    Runs on the model's ``device`` (float64 inputs; the flows themselves compute in float32).
    """
    import torch

    from ...nn.device import resolve_device
    from .boltzmann import accelerations_at, density_at

    x, _ = check_phase_space(x, who="query positions")
    n_v = int(n_velocities)
    if n_v < 3:
        raise ConfigError(f"n_velocities must be >= 3 for the least-squares solve, got {n_v}")
    rng = check_random_state(random_state)
    device = resolve_device(getattr(model, "device", "cpu"))
    M, P = model.n_members_, x.shape[0]
    chunk = max(1, int(batch_evaluations) // n_v)
    acc = np.empty((M, P, 3))
    rho = np.empty((M, P)) if density else None
    steps = [(m, i) for m in range(M) for i in range(0, P, chunk)]
    seeds = spawn_seeds(rng, len(steps))
    for (m, i), seed in progress(list(zip(steps, seeds)), desc="accelerations", leave=False):
        xs = x[i : i + chunk]
        v = model.sample_velocities(xs, n_v, member=m, random_state=seed)
        xt, vt = torch.as_tensor(xs, device=device), torch.as_tensor(v, device=device)
        log_f = model.log_f_fn(m)
        if density:
            a, r = density_at(log_f, xt, vt)
            rho[m, i : i + chunk] = r.cpu().numpy()
        else:
            a = accelerations_at(log_f, xt, vt).detach()
        acc[m, i : i + chunk] = a.cpu().numpy()
    return FieldEstimate(positions=x, acc_members=acc, rho_members=rho, n_velocities=n_v)
