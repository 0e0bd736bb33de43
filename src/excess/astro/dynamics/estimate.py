"""Accelerations and densities from a fitted :class:`~excess.astro.dynamics.model.PhaseSpaceFlow`, per member.

At each query position velocities are drawn from the model's ``p(v | x)`` and the Boltzmann equation is solved
for ``a`` by least squares (:func:`~excess.astro.dynamics.boltzmann.solve_accelerations`). Two ways to combine
the ensemble (``combine``):

* ``"accelerations"`` (default): each member draws its own ``n_velocities`` and solves alone; the estimate is
  the mean of the members' accelerations;
* ``"gradients"``: the velocities come from the mixture of the members (``n_velocities / M`` from each), every
  member's ``grad log f`` is taken at the same ``(x, v_i)``, and the gradients are averaged before one
  least-squares solve (the gradient of the average ``log f``, i.e. of the members' geometric mean); each
  member's own solve at the same velocities gives the spread. On the Hernquist benchmark this was better for
  the first (log-map) model (9.5 % against 10.7 %) and worse for the current one (4.9 % against 3.7 %).

Densities (``density_method``): ``"autograd"`` differentiates the solve with the velocities held fixed,
``rho = -div(a) / (4 pi G)`` at the point (second derivatives of the flows, noisy); ``"ball"`` averages the
divergence over a ball of radius ``ball_radius`` by Gauss's theorem
(:func:`~excess.astro.dynamics.boltzmann.ball_divergence`: accelerations on 12 points of the sphere, the
velocities of the centre reused there, so their sampling noise largely cancels) — a smoothed density, from
first derivatives only. The uncertainty is the members' standard deviation (``acc_std``, ``rho_std``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._util import check_random_state, progress, spawn_seeds
from ...errors import ConfigError
from .model import check_phase_space

__all__ = ["FieldEstimate", "estimate_field", "trim_velocities", "COMBINE_MODES", "DENSITY_METHODS"]

COMBINE_MODES = ("gradients", "accelerations")
DENSITY_METHODS = ("autograd", "ball")


@dataclass(frozen=True)
class FieldEstimate:
    """Per-member accelerations (M, P, 3) in (km/s)^2/kpc and densities (M, P) in Msun/kpc^3 (or None), and the
    combined estimate (``acc``, ``rho``: the gradient-averaged solve, or the members' mean)."""

    positions: np.ndarray
    acc_members: np.ndarray
    rho_members: np.ndarray | None = None
    n_velocities: int = 0
    acc_combined: np.ndarray | None = None
    rho_combined: np.ndarray | None = None
    combine: str = "accelerations"
    density_method: str = "autograd"
    ball_radius: np.ndarray | None = None

    @property
    def acc(self) -> np.ndarray:
        return self.acc_members.mean(axis=0) if self.acc_combined is None else self.acc_combined

    @property
    def acc_std(self) -> np.ndarray:
        return self.acc_members.std(axis=0, ddof=1) if self.acc_members.shape[0] > 1 else np.zeros_like(self.acc)

    @property
    def rho(self) -> np.ndarray | None:
        if self.rho_members is None:
            return None
        return self.rho_members.mean(axis=0) if self.rho_combined is None else self.rho_combined

    @property
    def rho_std(self) -> np.ndarray | None:
        if self.rho_members is None:
            return None
        return self.rho_members.std(axis=0, ddof=1) if self.rho_members.shape[0] > 1 else np.zeros_like(self.rho)

    def to_dict(self) -> dict:
        return {"positions": self.positions, "acc": self.acc, "acc_std": self.acc_std, "acc_members": self.acc_members,
                "rho": self.rho, "rho_std": self.rho_std, "rho_members": self.rho_members,
                "n_velocities": self.n_velocities, "ball_radius": self.ball_radius}


def trim_velocities(v: np.ndarray, fraction: float) -> np.ndarray:
    """Drop the ``fraction`` of velocities (P, N, 3) farthest from their mean (Mahalanobis, per position).

    The Boltzmann equation holds for every velocity, so a selection that depends on ``v`` alone leaves the
    exact solution unchanged; it removes the tails, where the flow saw few stars and ``grad_v log f`` is
    large and poorly learned, and which otherwise dominate the least-squares sums.
    """
    if not fraction:
        return v
    P, N, _ = v.shape
    keep = max(3, int(round(N * (1.0 - float(fraction)))))
    d = v - v.mean(axis=1, keepdims=True)
    cov = np.einsum("pni,pnj->pij", d, d) / N + 1e-12 * np.eye(3)
    m2 = np.einsum("pni,pij,pnj->pn", d, np.linalg.inv(cov), d)
    idx = np.argsort(m2, axis=1)[:, :keep]
    return np.take_along_axis(v, idx[..., None], axis=1)


def estimate_field(model, x, *, n_velocities: int = 500, density: bool = True, density_method: str = "autograd",
                   ball_radius=None, combine: str = "accelerations", trim: float = 0.0, batch_evaluations: int | None = None,
                   weights: str = "score", random_state=None) -> FieldEstimate:
    """Accelerations (and densities) at positions ``x`` (P, 3) kpc for every member of ``model``.

    ``trim``: fraction of the sampled velocities dropped at each position (:func:`trim_velocities`).
    ``weights``: ``"score"`` (least squares) or ``"velocity"`` (the model's Jeans equation), see
    :func:`~excess.astro.dynamics.boltzmann.solve_accelerations`.
    ``ball_radius``: kpc, a number or one per position (``density_method="ball"`` only). ``batch_evaluations``
    bounds the flow evaluations (positions x stencil points x velocities) per autograd pass, i.e. the memory:
    by default 100,000 for first derivatives and 20,000 for the second derivatives of ``"autograd"`` densities.
    Runs on the model's ``device`` (float64 inputs; the flows themselves compute in float32).
    """
    import torch

    from ...nn.device import resolve_device
    from .boltzmann import SOLVE_WEIGHTS, ball_divergence, ball_stencil, density_at, log_f_gradients, solve_accelerations
    from .units import density_from_divergence

    x, _ = check_phase_space(x, who="query positions")
    n_v = int(n_velocities)
    if n_v < 3:
        raise ConfigError(f"n_velocities must be >= 3 for the least-squares solve, got {n_v}")
    if combine not in COMBINE_MODES:
        raise ConfigError(f"combine must be one of {', '.join(COMBINE_MODES)}, got {combine!r}")
    if weights not in SOLVE_WEIGHTS:
        raise ConfigError(f"weights must be one of {', '.join(SOLVE_WEIGHTS)}, got {weights!r}")
    if not 0.0 <= float(trim) < 0.9:
        raise ConfigError(f"trim must be in [0, 0.9), got {trim}")
    if density_method not in DENSITY_METHODS:
        raise ConfigError(f"density_method must be one of {', '.join(DENSITY_METHODS)}, got {density_method!r}")
    M, P = model.n_members_, x.shape[0]
    ball = density and density_method == "ball"
    h = None
    if ball:
        if ball_radius is None:
            raise ConfigError("density_method='ball' needs ball_radius (kpc)")
        h = np.broadcast_to(np.asarray(ball_radius, dtype=np.float64), (P,)).copy()
        if not np.all(np.isfinite(h) & (h > 0)):
            raise ConfigError("ball_radius must be positive and finite")
    second = density and not ball
    if batch_evaluations is None:
        batch_evaluations = 20_000 if second else 100_000
    rng = check_random_state(random_state)
    device = resolve_device(getattr(model, "device", "cpu"))
    K = 13 if ball else 1  # centre (+ 12 icosahedron points)
    per_member = max(1, n_v // M) if combine == "gradients" else n_v
    n_eval = per_member * M if combine == "gradients" else n_v
    chunk = max(1, int(batch_evaluations) // (n_eval * K))
    acc = np.empty((M, P, 3))
    rho = np.empty((M, P)) if density else None
    acc_c = np.empty((P, 3)) if combine == "gradients" else None
    rho_c = np.empty(P) if (combine == "gradients" and ball) else None
    starts = list(range(0, P, chunk))
    seeds = spawn_seeds(rng, len(starts) * M)
    log_fs = [model.log_f_fn(m) for m in range(M)]
    for j, i in enumerate(progress(starts, desc="accelerations", leave=False)):
        xs = x[i : i + chunk]
        p = xs.shape[0]
        if combine == "gradients":
            v_all = np.concatenate([model.sample_velocities(xs, per_member, member=m, random_state=seeds[j * M + m])
                                    for m in range(M)], axis=1)
            vs = [trim_velocities(v_all, trim)] * M
        else:
            vs = [trim_velocities(model.sample_velocities(xs, n_v, member=m, random_state=seeds[j * M + m]), trim)
                  for m in range(M)]
        pts = xs[:, None, :] if not ball else np.concatenate([xs[:, None, :], ball_stencil(xs, h[i : i + chunk])], 1)
        pts_t = torch.as_tensor(pts.reshape(p * K, 3), device=device)
        gx_sum = gv_sum = None
        for m in range(M):
            vt = torch.as_tensor(vs[m], device=device)
            if second:
                a_m, r_m = density_at(log_fs[m], torch.as_tensor(xs, device=device), vt, weights=weights)
                rho[m, i : i + p] = r_m.cpu().numpy()
                a_m = a_m.cpu().numpy()
                if combine == "gradients":  # first derivatives for the combined solve
                    gx, gv = log_f_gradients(log_fs[m], pts_t, vt)
            else:
                vk = vt.repeat_interleave(K, dim=0)  # the centre's velocities at every stencil point
                gx, gv = log_f_gradients(log_fs[m], pts_t, vk)
                a_m = solve_accelerations(gx, gv, vk, weights=weights).detach().cpu().numpy().reshape(p, K, 3)
                if ball:
                    rho[m, i : i + p] = density_from_divergence(ball_divergence(a_m[:, 1:], h[i : i + p]))
                a_m = a_m[:, 0]
            acc[m, i : i + p] = a_m
            if combine == "gradients":
                gx_sum = gx.detach() if gx_sum is None else gx_sum + gx.detach()
                gv_sum = gv.detach() if gv_sum is None else gv_sum + gv.detach()
        if combine == "gradients":
            vk = torch.as_tensor(vs[0], device=device).repeat_interleave(K, dim=0)
            a_c = solve_accelerations(gx_sum / M, gv_sum / M, vk.to(gx_sum.dtype), weights=weights).cpu().numpy().reshape(p, K, 3)
            acc_c[i : i + p] = a_c[:, 0]
            if ball:
                rho_c[i : i + p] = density_from_divergence(ball_divergence(a_c[:, 1:], h[i : i + p]))
    return FieldEstimate(positions=x, acc_members=acc, rho_members=rho, n_velocities=n_eval, acc_combined=acc_c,
                         rho_combined=rho_c, combine=combine, density_method=density_method if density else "none",
                         ball_radius=h)
