"""Torch helpers of the calo models: seeded generators and initialisation without global state."""

from __future__ import annotations

import math

import numpy as np

from .._util import check_random_state


def torch_generator(random_state):
    """A ``torch.Generator`` seeded from ``random_state`` (int, None or numpy Generator)."""
    import torch

    rng = check_random_state(random_state)
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def init_linear_(module, generator) -> None:
    """Re-initialise every ``nn.Linear`` (including zuko's masked ones) in ``module`` from ``generator``.

    Same distribution as torch's default (uniform +-1/sqrt(fan_in) for weights and biases), but
    drawn from a local generator, so no global seed is ever set.
    """
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                bound = 1.0 / math.sqrt(max(m.in_features, 1))
                m.weight.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=generator)


def set_threads(n: int | None) -> None:
    """Limit torch's intra-op threads (``None`` leaves torch's default, which honours OMP_NUM_THREADS)."""
    if n:
        import torch

        torch.set_num_threads(int(n))


def as_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()
