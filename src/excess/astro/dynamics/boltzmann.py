"""The steady-state collisionless Boltzmann equation, solved for the acceleration field, and Poisson's equation.

For a phase-space density ``f(x, v)`` in equilibrium in a potential ``Phi`` (acceleration ``a = -grad Phi``)::

    v . grad_x f + a . grad_v f = 0          (for every v at each x)

Dividing by ``f`` gives the same equation in ``log f`` (whose normalisation drops out)::

    r_i(a) = v_i . grad_x log f(x, v_i) + a . grad_v log f(x, v_i) = 0

At a position ``x``, with velocities ``v_i`` (i = 1..N) drawn from the model's ``p(v | x)``, the acceleration is
the least-squares solution (An, Naik et al. 2021, arXiv:2106.05981; LocalFlows ``cbe.py``)::

    a(x) = -(sum_i g_v,i g_v,i^T)^-1  sum_i (v_i . g_x,i) g_v,i,     g = grad log f(x, v_i)

``weights="velocity"`` (:func:`solve_accelerations`) instead projects the residuals on ``w_i = v_i - <v>``
(an instrumental-variable solve, ``a = -(sum w_i g_v,i^T)^-1 sum (v_i . g_x,i) w_i``). It too is exact for an
exact ``f`` (every residual vanishes), and with velocities drawn from the model's own ``p(v | x)`` it is, by
Stein's identity ``<w g_v^T> = -I``, the first velocity moment of the Boltzmann equation, i.e. the Jeans
equation of the model: it uses only the model's ``n``, mean velocity and velocity dispersion tensor (and their
gradients), not the shape of ``p(v | x)``, whose score ``g_v`` the least-squares weights need to be right.

We use ``log f`` rather than ``f`` (which weights each velocity's equation by ``1/f^2``): for an exact
equilibrium both give the exact ``a`` (every residual vanishes there), and the log form keeps the rows of
comparable size. With the ``v_i`` held fixed, ``a(x)`` is a smooth function of ``x``; its divergence by
automatic differentiation gives the mass density ``rho = -div(a) / (4 pi G)``
(:func:`~excess.astro.dynamics.units.density_from_divergence`).

The divergence of a noisy field is noisier still; :func:`ball_divergence` instead averages it over a ball of
radius ``h`` by Gauss's theorem, ``<div a>_ball = (3 / h) <a . n>_sphere``, with the sphere average taken on
the 12 vertices of an icosahedron (exact for spherical harmonics up to degree 5): a smoothed density from
first derivatives only, biased by ``~ (h^2 / 10) lap(rho)`` (a few per cent for ``h`` a fifth of the scale on
which the density changes).

``log_f`` below is any callable ``log_f(x, v) -> (n,)`` on torch tensors ``x, v`` of shape ``(n, 3)``
(an analytic distribution function or a trained flow); everything is batched over positions.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import InputError
from .units import density_from_divergence

__all__ = ["log_f_gradients", "boltzmann_residual", "solve_accelerations", "SOLVE_WEIGHTS", "accelerations_at", "divergence",
           "density_at", "ICOSAHEDRON", "ball_stencil", "ball_divergence"]


def _check_shapes(x, v, min_velocities: int = 3):
    if x.ndim != 2 or x.shape[-1] != 3:
        raise InputError(f"positions must have shape (P, 3), got {tuple(x.shape)}")
    if v.ndim != 3 or v.shape[0] != x.shape[0] or v.shape[-1] != 3:
        raise InputError(f"velocities must have shape (P, N, 3) with P = {x.shape[0]}, got {tuple(v.shape)}")
    if v.shape[1] < min_velocities:
        raise InputError(f"the least-squares solve needs at least 3 velocities per position, got {v.shape[1]}")


def log_f_gradients(log_f: Callable, x, v, *, create_graph: bool = False):
    """``(grad_x log f, grad_v log f)`` at ``(x_p, v_pi)``, each of shape ``(P, N, 3)``.

    ``x``: (P, 3) positions (if it requires grad and ``create_graph`` is set, the gradients stay
    differentiable with respect to it); ``v``: (P, N, 3) velocities, treated as constants.
    """
    import torch

    _check_shapes(x, v, min_velocities=1)
    P, N, _ = v.shape
    dx = torch.zeros((P, N, 3), dtype=x.dtype, device=x.device, requires_grad=True)
    xs = x[:, None, :] + dx
    vs = v.detach().to(x.dtype).requires_grad_(True)
    lf = log_f(xs.reshape(P * N, 3), vs.reshape(P * N, 3))
    gx, gv = torch.autograd.grad(lf.sum(), (dx, vs), create_graph=create_graph)
    return gx, gv


def boltzmann_residual(grad_x, grad_v, v, a):
    """``v . grad_x log f + a . grad_v log f`` per velocity: shape (P, N) from (P, N, 3) inputs and ``a`` (P, 3)."""
    return (v * grad_x).sum(-1) + (a[:, None, :] * grad_v).sum(-1)


SOLVE_WEIGHTS = ("score", "velocity")


def solve_accelerations(grad_x, grad_v, v, weights: str = "score"):
    """``a`` (P, 3) from the residuals at each position: ``weights="score"`` is the least-squares solution
    (``sum_i residual_i^2`` minimal, rows weighted by ``g_v``); ``"velocity"`` the solution of
    ``sum_i (v_i - <v>) residual_i = 0`` (the model's Jeans equation; see the module docstring)."""
    import torch

    if weights == "score":
        W = grad_v
    elif weights == "velocity":
        W = v - v.mean(1, keepdim=True)
    else:
        raise InputError(f"weights must be one of {', '.join(SOLVE_WEIGHTS)}, got {weights!r}")
    A = torch.einsum("pni,pnj->pij", W, grad_v)
    b = torch.einsum("pn,pni->pi", (v * grad_x).sum(-1), W)
    return -torch.linalg.solve(A, b)


def accelerations_at(log_f: Callable, x, v, *, create_graph: bool = False, weights: str = "score"):
    """Accelerations (P, 3) at positions ``x`` (P, 3) from velocities ``v`` (P, N, 3) sampled there."""
    _check_shapes(x, v)
    gx, gv = log_f_gradients(log_f, x, v, create_graph=create_graph)
    return solve_accelerations(gx, gv, v.to(gx.dtype), weights=weights)


def divergence(field: Callable, x):
    """``div field`` at each row of ``x`` (P, 3) by autograd; ``field(x) -> (P, 3)`` must act row-wise.

    Returns ``(field(x), div)`` detached, shapes (P, 3) and (P,).
    """
    import torch

    xr = x.detach().clone().requires_grad_(True)
    out = field(xr)
    div = torch.zeros(x.shape[0], dtype=out.dtype, device=out.device)
    for k in range(x.shape[-1]):
        (g,) = torch.autograd.grad(out[:, k].sum(), xr, retain_graph=k < x.shape[-1] - 1)
        div = div + g[:, k]
    return out.detach(), div.detach()


def density_at(log_f: Callable, x, v, *, weights: str = "score"):
    """``(a, rho)`` at positions ``x`` (P, 3) with velocities ``v`` (P, N, 3) held fixed: the acceleration
    in (km/s)^2/kpc and the total mass density ``-div(a) / (4 pi G)`` in Msun/kpc^3."""
    a, div = divergence(lambda xr: accelerations_at(log_f, xr, v, create_graph=True, weights=weights), x)
    return a, density_from_divergence(div)


def _icosahedron():
    import numpy as np

    g = (1 + 5**0.5) / 2
    pts = []
    for a in (-1.0, 1.0):
        for b in (-g, g):
            pts += [(0.0, a, b), (a, b, 0.0), (b, 0.0, a)]
    pts = np.array(pts)
    return pts / np.linalg.norm(pts, axis=1, keepdims=True)


#: unit vectors to the 12 vertices of a regular icosahedron
ICOSAHEDRON = _icosahedron()


def ball_stencil(x, h):
    """Points ``x + h n_j`` (P, 12, 3) on the sphere of radius ``h`` (P,) around each row of ``x`` (P, 3)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    h = np.broadcast_to(np.asarray(h, dtype=np.float64), (x.shape[0],))
    return x[:, None, :] + h[:, None, None] * ICOSAHEDRON[None]


def ball_divergence(acc_on_stencil, h):
    """Ball-averaged ``div a`` (P,) from accelerations (..., P, 12, 3) on :func:`ball_stencil` points (numpy)."""
    import numpy as np

    h = np.asarray(h, dtype=np.float64)
    return 3.0 / h * np.mean(np.sum(acc_on_stencil * ICOSAHEDRON, axis=-1), axis=-1)
