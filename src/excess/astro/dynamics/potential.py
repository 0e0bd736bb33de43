"""A smooth gravitational potential fitted to the steady-state Boltzmann equation ("Deep Potential").

Green & Ting (2020, arXiv:2011.04673) and Green, Ting & Kamdar (2023, arXiv:2205.02244): instead of solving
for the acceleration at each query position separately (:mod:`.boltzmann`), fit one smooth potential
``Phi_theta(x)`` (an :func:`excess.nn.mlp.mlp` with SiLU activations) to the collisionless Boltzmann equation
over all stars at once. With ``g = grad log f`` of the trained flows at pairs ``(x_i, v_i)``::

    r_i(theta) = v_i . g_x,i  -  grad Phi_theta(x_i) . g_v,i          (zero for every pair in equilibrium)

``a = -grad Phi`` is curl-free by construction, and the density ``rho = lap Phi / (4 pi G)`` comes from the
Laplacian of a smooth network by autograd (no noisy divergence of per-position solutions).

Residual normalisation: each residual is divided by ``s_i = |v_i| |g_x,i|`` (floored at 1e-3 of its median),
a per-pair scale from the data alone (independent of ``theta``, so an exact equilibrium still has zero loss).
For an isotropic ``f(E)`` the two terms of ``r_i`` both have magnitude ``|f'/f| |v| |grad Phi|`` and ``s_i``
is exactly that, so ``r_i / s_i`` is a dimensionless difference of direction cosines: every star counts the same
whatever its distance, and a relative error ``e`` of ``grad Phi`` costs ``~e^2``. The loss is the mean of
``(r_i / s_i)^2`` plus, as in Green & Ting, a mild penalty on negative densities,
``laplacian_penalty * <relu(-lap Phi) / (|v| |g_x|)^2>`` on 256 stars per batch (zero when the density is
positive, so it does not bias a correct potential; ``(|v| |g_x|)^2`` again a data-only scale of ``lap Phi``).

The network sees the positions through a fixed smooth map (by default that of the flows,
:meth:`~excess.astro.dynamics.model.PhaseSpaceFlow`'s radial or vertical map), standardised; its output is
multiplied by the stars' mean ``|v|^2 / 3``. Trained with the substrate's loop
(:func:`excess.nn.training.fit_torch`: Adam, cosine-annealed rate, best validation epoch kept).

:func:`fit_potentials` fits one potential per ensemble member (on that member's ``grad log f``, computed once and
cached), so the uncertainty is still the members' spread; :func:`estimate_field_potential` evaluates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator

from ..._util import check_random_state, get_logger, spawn_seeds
from ...errors import ConfigError, InputError, NotFittedError

__all__ = ["BoltzmannPotential", "fit_potentials", "estimate_field_potential", "save_potentials", "load_potentials",
           "POTENTIAL_VELOCITIES"]

log = get_logger(__name__)

#: velocities paired with the stars' positions: drawn from the member's ``p(v | x)``, or the stars' own
POTENTIAL_VELOCITIES = ("sampled", "observed")


def _check_pairs(x, v, grad_x, grad_v):
    arrs = []
    for name, a in (("positions", x), ("velocities", v), ("grad_x log f", grad_x), ("grad_v log f", grad_v)):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 3:
            raise InputError(f"{name} must have shape (n, 3), got {a.shape}")
        if arrs and a.shape[0] != arrs[0].shape[0]:
            raise InputError(f"{name} has {a.shape[0]} rows, the positions {arrs[0].shape[0]}")
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            raise InputError(f"{name}: {int(bad.sum())} rows with NaN or infinite values (first at row {int(np.argmax(bad))})")
        arrs.append(a)
    if arrs[0].shape[0] < 20:
        raise InputError(f"a potential fit needs at least 20 (x, v) pairs, got {arrs[0].shape[0]}")
    return arrs


class _PotentialNet:
    """Builds the torch module ``Phi(x) = scale * mlp((map(x) - mean) / std)`` (map outside the state dict)."""

    @staticmethod
    def build(hidden, activation):
        import torch

        from ...nn.mlp import mlp

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.body = mlp((3, *hidden, 1), activation)
                self.register_buffer("mean", torch.zeros(3))
                self.register_buffer("std", torch.ones(3))
                self.register_buffer("scale", torch.ones(()))
                self.position_map = None

            def forward(self, x):
                y = x if self.position_map is None else self.position_map(x)
                y = ((y - self.mean.to(y.dtype)) / self.std.to(y.dtype)).to(self.mean.dtype)
                return (self.scale * self.body(y)[:, 0]).to(x.dtype)

        return Net()


def _grad_phi(net, x, create_graph):
    import torch

    xr = x if x.requires_grad else x.detach().requires_grad_(True)
    phi = net(xr)
    (g,) = torch.autograd.grad(phi.sum(), xr, create_graph=create_graph)
    return xr, g


def _laplacian(net, x, create_graph):
    """``(grad Phi, lap Phi)`` at rows of ``x`` by autograd."""
    import torch

    xr, g = _grad_phi(net, x, create_graph=True)
    lap = torch.zeros(x.shape[0], dtype=g.dtype, device=g.device)
    for k in range(3):
        (h,) = torch.autograd.grad(g[:, k].sum(), xr, create_graph=create_graph, retain_graph=True)
        lap = lap + h[:, k]
    return g, lap


class BoltzmannPotential(BaseEstimator):
    """A potential ``Phi(x)`` fitted to the Boltzmann residuals of ``(x, v)`` pairs with known ``grad log f``.

    Parameters
    ----------
    hidden, activation : the MLP (smooth activations: its Laplacian is the density)
    epochs, batch_size, lr, lr_schedule, patience, validation_fraction : training (the substrate's
        :func:`~excess.nn.training.fit_torch`; best validation epoch kept)
    laplacian_penalty : weight of the penalty on negative ``lap Phi`` (module docstring; 0 switches it off)
    random_state, device : one seed; torch device ("auto")

    ``fit(x, v, grad_x, grad_v, position_map=None)``; then :meth:`acceleration`, :meth:`density`, :meth:`potential`
    (numpy in, numpy out; kpc, (km/s)^2/kpc, Msun/kpc^3). ``position_map``: a smooth torch map of positions
    (n, 3) -> (n, 3) the network sees instead of ``x`` (not saved: pass it again to :meth:`set_position_map`).
    """

    def __init__(self, hidden: tuple[int, ...] = (128, 128, 128), activation: str = "silu", epochs: int = 60,
                 batch_size: int = 512, lr: float = 1e-2, lr_schedule: str = "cosine", patience: int | None = None,
                 validation_fraction: float = 0.1, laplacian_penalty: float = 1.0, random_state=None,
                 device: str = "auto"):
        self.hidden = hidden
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.laplacian_penalty = laplacian_penalty
        self.random_state = random_state
        self.device = device

    def _build(self):
        if self.activation in ("relu", "leaky_relu"):
            raise ConfigError(f"activation {self.activation!r} is piecewise linear (zero Laplacian); use 'silu', "
                              "'gelu', 'tanh' or 'elu'")
        return _PotentialNet.build(tuple(int(h) for h in self.hidden), self.activation)

    def fit(self, x, v, grad_x, grad_v, position_map: Callable | None = None) -> BoltzmannPotential:
        import torch

        from ...nn.device import resolve_device
        from ...nn.training import fit_torch, reset_parameters, torch_generator, train_val_split

        x, v, gx, gv = _check_pairs(x, v, grad_x, grad_v)
        if not float(self.laplacian_penalty) >= 0:
            raise ConfigError(f"laplacian_penalty must be >= 0, got {self.laplacian_penalty}")
        if int(self.epochs) < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        rng = check_random_state(self.random_state)
        s_init, s_split, s_loop = spawn_seeds(rng, 3)
        net = self._build()
        reset_parameters(net, torch_generator(s_init))
        net.position_map = position_map
        with torch.no_grad():
            y = torch.as_tensor(x) if position_map is None else position_map(torch.as_tensor(x))
            y = y.numpy()
        net.mean.copy_(torch.as_tensor(y.mean(0), dtype=torch.float32))
        net.std.copy_(torch.as_tensor(np.maximum(y.std(0), 1e-12), dtype=torch.float32))
        v2 = float(np.mean(np.sum(v * v, axis=1)) / 3.0)
        if not v2 > 0:
            raise InputError("velocities are all zero: the Boltzmann equation carries no information on the potential")
        net.scale.copy_(torch.tensor(v2))
        s = np.linalg.norm(v, axis=1) * np.linalg.norm(gx, axis=1)
        s = np.maximum(s, 1e-3 * max(float(np.median(s)), 1e-300))
        lhs = np.sum(v * gx, axis=1)
        tr, va = train_val_split(x.shape[0], float(self.validation_fraction), np.random.default_rng(s_split))
        data = [torch.as_tensor(a) for a in (x, gv, lhs, s)]
        lam = float(self.laplacian_penalty)
        n_lap = 256

        def loss_fn(module, xb, gvb, lhsb, sb):
            if lam > 0 and module.training:
                k = min(n_lap, xb.shape[0])
                g, lap = _laplacian(module, xb[:k], create_graph=True)
                if k < xb.shape[0]:
                    _, g2 = _grad_phi(module, xb[k:], create_graph=True)
                    g = torch.cat([g, g2])
                pen = lam * torch.mean(torch.relu(-lap) / sb[:k] ** 2)
            else:
                with torch.enable_grad():
                    _, g = _grad_phi(module, xb, create_graph=module.training)
                pen = 0.0
            r = (lhsb - (g * gvb).sum(1)) / sb
            return torch.mean(r * r) + pen

        device = resolve_device(self.device)
        res = fit_torch(net, loss_fn, [d[tr] for d in data], [d[va] for d in data] if va.size else None,
                        epochs=int(self.epochs), batch_size=int(self.batch_size), lr=float(self.lr),
                        patience=self.patience, generator=torch_generator(s_loop), desc="potential",
                        lr_schedule=self.lr_schedule, device=device)
        self.net_ = net.to("cpu").eval()
        self.history_ = res.to_dict()
        self.n_pairs_ = int(x.shape[0])
        return self

    def _check(self):
        if not hasattr(self, "net_"):
            raise NotFittedError("BoltzmannPotential is not fitted; call fit(x, v, grad_x, grad_v) first")

    def set_position_map(self, position_map: Callable | None) -> BoltzmannPotential:
        self._check()
        self.net_.position_map = position_map
        return self

    def _eval(self, x, what: str, batch: int = 4096) -> np.ndarray:
        import torch

        from ..dynamics.model import check_phase_space

        self._check()
        x, _ = check_phase_space(x, who="query positions")
        out = []
        for i in range(0, x.shape[0], batch):
            xb = torch.as_tensor(x[i : i + batch])
            if what == "potential":
                with torch.no_grad():
                    out.append(self.net_(xb).numpy())
            elif what == "acceleration":
                out.append(-_grad_phi(self.net_, xb, create_graph=False)[1].detach().numpy())
            else:
                g, lap = _laplacian(self.net_, xb, create_graph=False)
                out.append(np.column_stack([-g.detach().numpy(), lap.detach().numpy()]))
        return np.concatenate(out) if out else np.empty((0,) if what == "potential" else (0, 3))

    def potential(self, x) -> np.ndarray:
        """``Phi`` (n,) in (km/s)^2, up to an additive constant."""
        return self._eval(x, "potential")

    def acceleration(self, x) -> np.ndarray:
        """``a = -grad Phi`` (n, 3) in (km/s)^2/kpc."""
        return self._eval(x, "acceleration")

    def acceleration_and_density(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(a, rho)``: (n, 3) in (km/s)^2/kpc and ``lap Phi / (4 pi G)`` (n,) in Msun/kpc^3."""
        from .units import density_from_divergence

        out = self._eval(x, "laplacian")
        return out[:, :3], density_from_divergence(-out[:, 3])

    def density(self, x) -> np.ndarray:
        return self.acceleration_and_density(x)[1]

    # persistence (excess.nn.io): the network's state dict; the position map is the caller's to set again
    def _get_state(self):
        self._check()
        return dict(self.net_.state_dict()), {"n_pairs": self.n_pairs_, "history": self.history_}

    def _set_state(self, tensors, meta):
        net = self._build()
        net.load_state_dict(tensors)
        self.net_ = net.eval()
        self.n_pairs_ = int(meta.get("n_pairs", 0))
        self.history_ = meta.get("history", {})


def member_pairs(model, member: int, x: np.ndarray, v: np.ndarray | None, *, velocities: str = "sampled",
                 n_velocities: int = 1, batch: int = 20_000, random_state=None):
    """``(x, v, grad_x log f, grad_v log f)`` of one member at the stars' positions: ``n_velocities`` velocities
    per star drawn from the member's ``p(v | x)`` (``"sampled"``), or the stars' own ``v`` (``"observed"``)."""
    import torch

    from .boltzmann import log_f_gradients

    if velocities == "observed":
        if v is None:
            raise InputError("velocities='observed' needs the stars' velocities")
        xs, vs = x, v[:, None, :]
    elif velocities == "sampled":
        xs = x
        vs = model.sample_velocities(x, int(n_velocities), member=member, random_state=random_state)
    else:
        raise ConfigError(f"velocities must be one of {', '.join(POTENTIAL_VELOCITIES)}, got {velocities!r}")
    log_f = model.log_f_fn(member)
    per = max(1, batch // vs.shape[1])
    gxs, gvs = [], []
    for i in range(0, xs.shape[0], per):
        gx, gv = log_f_gradients(log_f, torch.as_tensor(xs[i : i + per]), torch.as_tensor(vs[i : i + per]))
        gxs.append(gx.detach().numpy())
        gvs.append(gv.detach().numpy())
    n = vs.shape[1]
    return (np.repeat(xs, n, axis=0), vs.reshape(-1, 3), np.concatenate(gxs).reshape(-1, 3),
            np.concatenate(gvs).reshape(-1, 3))


def _position_map(model):
    """The flows' fixed position map (radial or vertical) without its Jacobian, as a torch callable."""
    return lambda x: model._compress(x)[0]


def fit_potentials(model, x, v=None, *, velocities: str = "sampled", n_velocities: int = 1, max_stars: int | None = None,
                   params: dict | None = None, random_state=None) -> list[BoltzmannPotential]:
    """One :class:`BoltzmannPotential` per member of a fitted
    :class:`~excess.astro.dynamics.model.PhaseSpaceFlow`, trained on that member's ``grad log f`` at the stars
    ``x`` (n, 3) kpc (with ``n_velocities`` velocities per star from its ``p(v | x)``, or the stars' own ``v``);
    ``max_stars`` draws that many of the stars at random (``None``: all); ``params`` go to each potential."""
    from .model import check_phase_space

    x, v = check_phase_space(x, v)
    if velocities not in POTENTIAL_VELOCITIES:
        raise ConfigError(f"velocities must be one of {', '.join(POTENTIAL_VELOCITIES)}, got {velocities!r}")
    if int(n_velocities) < 1:
        raise ConfigError(f"n_velocities must be >= 1, got {n_velocities}")
    rng = check_random_state(random_state)
    if max_stars is not None and int(max_stars) < x.shape[0]:
        idx = rng.choice(x.shape[0], size=int(max_stars), replace=False)
        x, v = x[idx], (None if v is None else v[idx])
    out = []
    for m in range(model.n_members_):
        s_pairs, s_fit = spawn_seeds(rng, 2)
        xp, vp, gx, gv = member_pairs(model, m, x, v, velocities=velocities, n_velocities=n_velocities,
                                      random_state=s_pairs)
        pot = BoltzmannPotential(random_state=s_fit, device=getattr(model, "device", "auto"))
        pot.set_params(**(params or {}))
        out.append(pot.fit(xp, vp, gx, gv, position_map=_position_map(model)))
        log.info("potential of member %d: best validation loss %.4g", m,
                 min(out[-1].history_.get("val_loss") or [math.nan]))
    return out


def save_potentials(potentials, path, settings: dict | None = None):
    """``path/member00``, ... (:func:`excess.nn.io.save_model`) and ``path/potentials.json`` (count, settings)."""
    from pathlib import Path

    from ..._util import atomic_write_json, to_jsonable
    from ...nn.io import save_model

    path = Path(path)
    for k, p in enumerate(potentials):
        save_model(p, path / f"member{k:02d}")
    atomic_write_json(path / "potentials.json", {"n_members": len(potentials), "settings": to_jsonable(settings or {})})
    return path


def load_potentials(path, model) -> tuple[list[BoltzmannPotential], dict]:
    """The potentials saved by :func:`save_potentials`, with ``model``'s position map attached, and their settings."""
    import json
    from pathlib import Path

    from ...nn.io import load_model

    path = Path(path)
    meta_file = path / "potentials.json"
    if not meta_file.is_file():
        raise InputError(f"{path}: no saved potentials (potentials.json)")
    meta = json.loads(meta_file.read_text())
    pots = [load_model(path / f"member{k:02d}").set_position_map(_position_map(model)) for k in range(int(meta["n_members"]))]
    return pots, meta.get("settings", {})


def estimate_field_potential(potentials, x, *, density: bool = True):
    """A :class:`~excess.astro.dynamics.estimate.FieldEstimate` from fitted potentials (one per member):
    ``a = -grad Phi`` and, with ``density``, ``rho = lap Phi / (4 pi G)`` pointwise (``density_method="laplacian"``)."""
    from .estimate import FieldEstimate
    from .model import check_phase_space

    x, _ = check_phase_space(x, who="query positions")
    if not len(potentials):
        raise ConfigError("no potentials to evaluate")
    accs, rhos = [], []
    for p in potentials:
        if density:
            a, r = p.acceleration_and_density(x)
            rhos.append(r)
        else:
            a = p.acceleration(x)
        accs.append(a)
    return FieldEstimate(positions=x, acc_members=np.stack(accs), rho_members=np.stack(rhos) if density else None,
                         n_velocities=0, density_method="laplacian" if density else "none")
