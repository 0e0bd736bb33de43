"""The one multilayer-perceptron builder of excess.

``mlp((d_in, h1, h2, ..., d_out))`` is ``Linear -> act -> Linear -> act -> ... -> Linear`` as a
``torch.nn.Sequential`` (no activation after the last layer), so its ``state_dict`` keys are ``0.weight``,
``0.bias``, ``2.weight``, ... for every model that uses it. Weights are left at torch's default
initialisation: call :func:`~excess.nn.training.reset_parameters` with a seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError

__all__ = ["mlp", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")


LEAKY_SLOPE = 0.2
"""The default negative slope of ``leaky_relu``: the GAN literature's (DCGAN, CaloGAN), not torch's 0.01."""


def _activation(name: str, negative_slope: float = LEAKY_SLOPE):
    import torch

    if name == "relu":
        return torch.nn.ReLU()
    if name == "leaky_relu":
        return torch.nn.LeakyReLU(float(negative_slope))
    if name == "elu":
        return torch.nn.ELU()
    if name == "gelu":
        return torch.nn.GELU()
    if name == "silu":
        return torch.nn.SiLU()
    if name == "tanh":
        return torch.nn.Tanh()
    raise ConfigError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


def mlp(sizes: Sequence[int], activation: str = "relu", *, dropout: float = 0.0, dtype=None,
        negative_slope: float = LEAKY_SLOPE):
    """A dense network through the layer ``sizes`` (at least input and output).

    ``activation`` is one of :data:`ACTIVATIONS` (``negative_slope``: that of ``leaky_relu``); ``dropout`` (> 0) adds a dropout layer after each hidden
    activation (which changes the ``state_dict`` layer numbering); ``dtype`` (e.g. ``torch.float64``) casts
    the parameters.
    """
    import torch

    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ConfigError(f"an MLP needs at least an input and an output size, all >= 1; got {tuple(sizes)}")
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(_activation(activation, negative_slope))
            if dropout > 0:
                layers.append(torch.nn.Dropout(float(dropout)))
    net = torch.nn.Sequential(*layers)
    return net.to(dtype) if dtype is not None else net
