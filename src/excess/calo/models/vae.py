"""Conditional variational autoencoder on the shared shower representation.

Encoder ``q(z | x, E_inc)`` and decoder ``p(x | z, E_inc) = N(mu(z, E_inc), diag sigma(E_inc)^2)`` are MLPs;
``ln sigma`` is linear in the condition ``ln E_inc`` per feature (sampling fluctuations shrink with
energy: a constant scale cannot describe a resolution of ``a/sqrt(E)``). Loss: the negative ELBO per feature, with a KL weight
``beta``. Sampling draws ``z ~ N(0, 1)`` and, with ``decoder_noise=True``, adds the decoder's
Gaussian noise (voxel fluctuations that are independent given the shower, as in a sampling
calorimeter); the result is clipped to ``[-clip, clip]`` and mapped back to voxel energies.
"""

from __future__ import annotations

import math

from .base import ShowerGenerator

__all__ = ["CaloVAE"]


class CaloVAE(ShowerGenerator):
    """Conditional VAE (see the module docstring). Parameters as :class:`CaloFlow` where shared."""

    name = "vae"

    def __init__(
        self,
        geometry="ds1-photons",
        *,
        latent_dim: int = 32,
        hidden: tuple[int, ...] = (512, 256),
        beta: float = 1.0,
        decoder_noise: bool = True,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        noise_mev: float = 0.01,
        clip: float = 8.0,
        sparsity_calibration: bool = True,
        random_state: int | None = 0,
        device="auto",
    ):
        self._store_params(locals())

    def _build(self, n_features, n_energy, generator):
        import torch

        from ...nn.mlp import mlp
        from ...nn.training import reset_parameters

        h = tuple(int(v) for v in self.hidden)
        k = int(self.latent_dim)
        m = torch.nn.Module()
        m.encoder = mlp((n_features + 1, *h, 2 * k), "leaky_relu")
        m.decoder = mlp((k + 1, *h[::-1], n_features), "leaky_relu")
        m.log_sigma = torch.nn.Linear(1, n_features)
        reset_parameters(m, generator)
        with torch.no_grad():
            m.log_sigma.weight.zero_()
            m.log_sigma.bias.zero_()
        return m

    def _make_optimizers(self):
        import torch

        self.optimizer_ = torch.optim.Adam(self.module_.parameters(), lr=float(self.lr))

    def _train_step(self, x, c, generator) -> float:
        import torch

        m = self.module_
        h = m.encoder(torch.cat([x, c], 1))
        mu, logvar = h.chunk(2, dim=1)
        logvar = logvar.clamp(-12, 8)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator).to(mu.device)
        xm = m.decoder(torch.cat([z, c], 1))
        ls = m.log_sigma(c).clamp(-6, 2)
        nll = (0.5 * ((x - xm) / torch.exp(ls)) ** 2 + ls + 0.5 * math.log(2 * math.pi)).sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        loss = (nll + float(self.beta) * kl).mean() / x.shape[1]
        self.optimizer_.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        self.optimizer_.step()
        return loss.item()

    def _generate(self, c, generator):
        import torch

        m = self.module_
        z = torch.randn(c.shape[0], int(self.latent_dim), generator=generator).to(c.device)
        x = m.decoder(torch.cat([z, c], 1))
        if self.decoder_noise:
            x = x + torch.exp(m.log_sigma(c).clamp(-6, 2)) * torch.randn(x.shape, generator=generator).to(x.device)
        return x.clamp(-self.clip, self.clip)
