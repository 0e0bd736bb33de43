"""Deep-set networks on variable-length sets of particles (Komiske, Metodiev, Thaler, JHEP 01 (2019) 121).

* :func:`particle_flow_network` (PFN): ``F( sum_i mask_i * Phi(x_i) )`` -- a per-particle network ``Phi``, a
  masked sum over the set, and a network ``F`` on the latent sum. Any per-particle features (kinematics,
  particle id, track parameters): the building block of the jet taggers and of ANTELOPE's track sets.
* :func:`energy_flow_network` (EFN): ``F( sum_i z_i * Phi(p_i) )`` with energy (pT) fractions ``z_i`` and
  angular coordinates ``p_i`` only. Linear in ``z`` and blind to the angles of zero-energy particles, it is
  infrared and collinear safe: a collinear split (``z -> z_a + z_b`` at the same ``p``) and an added
  zero-``z`` particle leave the output unchanged.

Inputs are zero-padded batches: ``x`` of shape ``(B, M, d)``, a boolean (or 0/1) ``mask`` ``(B, M)`` marking
the real particles (``z`` of padding is ignored through the mask as well). Both networks are permutation
invariant over the particle axis and invariant to the amount of padding; ``Phi`` runs on the real
particles only when padding dominates (:func:`_masked_sum`). They are plain ``torch.nn.Module``
objects with ``forward`` and ``latent`` (the summed representation), built from :func:`~excess.nn.mlp.mlp`
(``Phi`` keeps an activation after its last layer, as in the paper); initialise them with
:func:`~excess.nn.training.reset_parameters`. Torch is imported lazily.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ..errors import ConfigError, InputError

__all__ = ["particle_flow_network", "energy_flow_network", "set_mask"]


def _phi(d_in: int, sizes: Sequence[int], activation: str, dropout: float, dtype):
    import torch

    from .mlp import _activation, mlp

    if not sizes:
        raise ConfigError("phi_sizes needs at least one layer")
    # Phi ends in an activation too: its outputs are summed, a final non-linearity keeps the latent
    # representation from collapsing to a linear function of the summed inputs
    net = mlp((d_in, *sizes), activation, dropout=dropout, dtype=dtype)
    return torch.nn.Sequential(*net, _activation(activation))


def _f(latent: int, sizes: Sequence[int], n_out: int, activation: str, dropout: float, dtype):
    from .mlp import mlp

    return mlp((latent, *sizes, n_out), activation, dropout=dropout, dtype=dtype)


# below this fraction of real (unmasked) particles, Phi runs on the real particles only and their outputs
# are scattered into the sums (index_add); above it the dense padded batch is cheaper
SPARSE_FILL = 0.8


def _masked_sum(phi, x, mask, weight=None):
    """``sum_i mask_i [weight_i] Phi(x_i)`` over the particle axis: ``(B, M, d) -> (B, L)``.

    Jets are mostly padding (q/g: ~30 % of the 112 slots are real), so ``Phi`` is evaluated on the real
    particles only when they fill less than :data:`SPARSE_FILL` of the batch: the same sum (up to the
    order of the floating-point additions), with gradients, at a fraction of the cost.
    """
    import torch

    m = mask if mask.dtype == torch.bool else mask != 0
    b_size, n_slots = m.shape
    n_real = int(m.sum())
    if n_real >= SPARSE_FILL * b_size * n_slots:
        h = phi(x)
        w = m.to(h.dtype) if weight is None else weight * m.to(weight.dtype)
        return (h * w.unsqueeze(-1)).sum(dim=1)
    b, i = m.nonzero(as_tuple=True)
    h = phi(x[b, i])
    if weight is not None:
        h = h * weight[b, i].unsqueeze(-1)
    return h.new_zeros((b_size, h.shape[-1])).index_add(0, b, h)


def _check(x, mask, d: int, name: str):
    if x.dim() != 3 or x.shape[-1] != d:
        raise InputError(f"{name}: particles must have shape (batch, particles, {d}), got {tuple(x.shape)}")
    if mask.shape != x.shape[:2]:
        raise InputError(f"{name}: mask must have shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")


@functools.cache
def _classes():
    import torch

    class ParticleFlowNetwork(torch.nn.Module):
        """``F(sum_i mask_i Phi(x_i))``; ``forward(x, mask) -> (B, n_out)``, ``latent(x, mask) -> (B, L)``."""

        def __init__(self, n_features, phi_sizes, f_sizes, n_out, activation, dropout, dtype):
            super().__init__()
            self.n_features = int(n_features)
            self.phi = _phi(self.n_features, phi_sizes, activation, dropout, dtype)
            self.f = _f(int(phi_sizes[-1]), f_sizes, n_out, activation, dropout, dtype)

        def latent(self, x, mask):
            _check(x, mask, self.n_features, "PFN")
            return _masked_sum(self.phi, x, mask)

        def forward(self, x, mask):
            return self.f(self.latent(x, mask))

    class EnergyFlowNetwork(torch.nn.Module):
        """``F(sum_i z_i Phi(p_i))``; ``forward(z, p, mask) -> (B, n_out)``, ``latent(z, p, mask) -> (B, L)``."""

        def __init__(self, n_angular, phi_sizes, f_sizes, n_out, activation, dropout, dtype):
            super().__init__()
            self.n_angular = int(n_angular)
            self.phi = _phi(self.n_angular, phi_sizes, activation, dropout, dtype)
            self.f = _f(int(phi_sizes[-1]), f_sizes, n_out, activation, dropout, dtype)

        def latent(self, z, p, mask):
            _check(p, mask, self.n_angular, "EFN")
            if z.shape != mask.shape:
                raise InputError(f"EFN: z must have shape {tuple(mask.shape)}, got {tuple(z.shape)}")
            return _masked_sum(self.phi, p, mask, z)

        def forward(self, z, p, mask):
            return self.f(self.latent(z, p, mask))

    return ParticleFlowNetwork, EnergyFlowNetwork


def particle_flow_network(
    n_features: int,
    phi_sizes: Sequence[int] = (100, 100, 128),
    f_sizes: Sequence[int] = (100, 100, 100),
    n_out: int = 1,
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    dtype=None,
):
    """A PFN on ``n_features`` per-particle features; ``phi_sizes[-1]`` is the latent dimension.

    Defaults are EnergyFlow's example PFN (Phi 100-100-128, F 100-100-100). ``forward(x, mask)`` returns
    ``(B, n_out)`` (logits for a classifier).
    """
    if n_features < 1 or n_out < 1:
        raise ConfigError(f"n_features and n_out must be >= 1, got {n_features}, {n_out}")
    return _classes()[0](n_features, tuple(phi_sizes), tuple(f_sizes), int(n_out), activation, dropout, dtype)


def energy_flow_network(
    n_angular: int = 2,
    phi_sizes: Sequence[int] = (100, 100, 128),
    f_sizes: Sequence[int] = (100, 100, 100),
    n_out: int = 1,
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    dtype=None,
):
    """An IRC-safe EFN on ``n_angular`` angular coordinates per particle (e.g. centred ``(y, phi)``).

    ``forward(z, p, mask)`` with energy fractions ``z`` ``(B, M)`` and angles ``p`` ``(B, M, n_angular)``.
    """
    if n_angular < 1 or n_out < 1:
        raise ConfigError(f"n_angular and n_out must be >= 1, got {n_angular}, {n_out}")
    return _classes()[1](n_angular, tuple(phi_sizes), tuple(f_sizes), int(n_out), activation, dropout, dtype)


def set_mask(x, *, column: int = 0):
    """The mask of a zero-padded particle array: rows whose ``column`` (the pT by convention) is non-zero.

    Works on numpy arrays and torch tensors of shape ``(..., M, d)``.
    """
    return x[..., column] != 0
