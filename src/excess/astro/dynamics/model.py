"""An ensemble of normalizing flows for the stellar phase-space density ``f(x, v) = n(x) p(v | x)``.

Each member is two :class:`~excess.nn.flows.ConditionalFlow`: an unconditional flow for the number density
of stars ``n(x)`` and a conditional flow for the velocity distribution ``p(v | x)`` (Buckley, Lim, Putney &
Shih 2022, arXiv:2205.01129; An, Naik et al. 2021, arXiv:2106.05981). Members differ only in their seeds;
their spread is the ensemble uncertainty.

Positions can first pass through a fixed radial compression (``radial_scale = s``)::

    y = x h(r) / r,   h(r) = s log(1 + r / s),   log|dy/dx| = -log(1 + r/s) + 2 log(h(r) / r)

which maps the power-law tails of a halo (stars out to hundreds of scale radii) to a compact cloud that
a flow learns well; ``n(x) = n_Y(y(x)) |dy/dx|`` keeps the density exact in ``x``, and ``p(v | x)`` is
conditioned on ``y(x)`` (any smooth function of ``x`` is a valid context). ``radial_scale=None`` is the
identity (local samples, e.g. a box around the Sun); ``"auto"`` uses the median stellar radius.

``radial_scale="profile"`` instead fits a Dehnen (1993) mass profile ``M(<r) ~ (r / (r + s))^k`` (``k = 3 -
gamma``) to the stars' radii by maximum likelihood and maps ``r`` to ``rho = atanh((M(<r) / M)^(1/3))``: if
the fit were exact, ``y`` would follow the fixed smooth distribution with ``M(<rho) = tanh(rho)^3`` (a flat
core and an exponential tail), so the flow only learns departures from the fitted profile (anisotropy
included; nothing spherical is imposed on ``f``, the map is only a change of variables). On the Hernquist
benchmark it lowers the error of ``grad log n`` several-fold (README).

``vertical_scale="profile"`` (for a local disk sample, with ``radial_scale=None``) fits a sech^2 vertical
profile ``n(z) ~ sech^2((z - z_c) / (2 z_0))`` to the stars' heights by maximum likelihood and maps ``z`` to
``u = Phi^-1(F(z))``, ``F(z) = 1 / (1 + exp(-(z - z_c) / z_0))`` its cumulative distribution and ``Phi`` the
standard normal's::

    log|du/dz| = log sigmoid(t) + log sigmoid(-t) - log z_0 + u^2 / 2 + log(2 pi) / 2,   t = (z - z_c) / z_0

so that an exact profile would give the flow a Gaussian coordinate. An affine MAF's conditional densities are
close to Gaussian: fitted directly to a sech^2 disk, its ``d log n / dz`` is too shallow near the plane and too
steep above it (the disk benchmark's ``a_z`` was 33 % low at 0.2 kpc and up to 39 % high at 1 kpc); after the
map it only learns the departures from the fitted profile. ``x`` and ``y`` pass unchanged.

``velocity_scale="auto"`` divides velocities by a smooth dispersion profile ``s(r)`` (a polynomial in ``log r``
fitted to ``<|v|^2> / 3`` in 30 radial quantile bins; ``r`` from the origin, clamped to the fitted range) before
the velocity flow: ``p(v | x) = p'(v / s(r) | y) / s(r)^3``, so the flow sees velocity distributions that vary
little with position and the ``x``-derivative of ``log p`` (which the Boltzmann equation needs) comes mostly
from the smooth ``s(r)``. ``None`` (the default) keeps raw velocities. The polynomial's degree
(``velocity_degree``) is by default the one in 1..8 that minimises the Bayesian information criterion of the
binned dispersions (each bin weighted by the variance of its log mean square), so it grows with the number of
stars as the data resolve more of the profile. The flow inherits the profile's slope errors: on 100,000
Hernquist stars a cubic's ``d log s^2 / d log r`` is off by 0.03 at the 10 % mass radius, which alone (true
``n``, the Jeans equation with ``s(r)``) puts the radial acceleration 4 % high there, the bias pattern the
flows showed; the BIC picks degree 4 there (1.9 %), 6 for 300,000 stars (0.7 %).

Derivatives of ``log f`` (for the Boltzmann equation) come from :meth:`PhaseSpaceFlow.log_f_torch` by autograd;
smooth activations (``activation="silu"``, the default here) keep second derivatives smooth.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator

from ..._util import check_random_state, get_logger, spawn_seeds
from ...errors import ConfigError, InputError, NotFittedError

__all__ = ["PhaseSpaceFlow", "check_phase_space", "vertical_map_torch", "vertical_unmap_np"]

log = get_logger(__name__)


def check_phase_space(x, v=None, *, who: str = "positions") -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (n, 3) [and ``v`` (n, 3)] as finite float arrays, or an :class:`InputError` saying what is wrong."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise InputError(f"{who} must have shape (n, 3), got {x.shape}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(f"{who}: {int(bad.sum())} rows with NaN or infinite values (first at row {int(np.argmax(bad))})")
    if v is not None:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != x.shape:
            raise InputError(f"velocities must have the positions' shape {x.shape}, got {v.shape}")
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            raise InputError(f"velocities: {int(bad.sum())} rows with NaN or infinite values "
                             f"(first at row {int(np.argmax(bad))})")
    return x, v


def _fit_dehnen(r: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(s, k)`` of ``M(<r) ~ (r / (r + s))^k`` (Dehnen 1993, ``k = 3 - gamma``, 0.2 < k <= 3)."""
    from scipy.optimize import minimize

    r = np.maximum(np.asarray(r, dtype=np.float64), 1e-12)

    def nll(p):
        s, k = math.exp(p[0]), 0.2 + 2.8 / (1 + math.exp(-p[1]))
        # dM/dr / M = k (r/(r+s))^(k-1) s / (r+s)^2
        return -np.mean(math.log(k) + (k - 1) * np.log(r / (r + s)) + math.log(s) - 2 * np.log(r + s))

    res = minimize(nll, [math.log(np.median(r)), 0.0], method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    return float(math.exp(res.x[0])), float(0.2 + 2.8 / (1 + math.exp(-res.x[1])))


def _fit_vertical_profile(z: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(z_c, z_0)`` of ``n(z) ~ sech^2((z - z_c) / (2 z_0))`` (a logistic distribution)."""
    from scipy.optimize import minimize

    z = np.asarray(z, dtype=np.float64)
    med = float(np.median(z))
    s0 = max(float(np.median(np.abs(z - med))) / math.log(3.0), 1e-6)  # the logistic's MAD is z_0 log 3

    def nll(p):
        t = (z - p[0]) / math.exp(p[1])
        return float(np.mean(np.logaddexp(0.0, t) + np.logaddexp(0.0, -t))) + p[1]

    res = minimize(nll, [med, math.log(s0)], method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12})
    return float(res.x[0]), float(math.exp(res.x[1]))


def vertical_map_torch(z, zc: float, z0: float):
    """``(u, log|du/dz|)``: heights ``z`` (torch) to ``u = Phi^-1(F(z))`` through the sech^2 profile ``(zc, z0)``.

    Both tails are computed from the small side of ``F`` (``F`` or ``1 - F``), so the map keeps its precision
    far from the plane; ``|z - zc| / z0`` is clamped at 300 (float64).
    """
    import torch
    import torch.nn.functional as F

    t = ((z - zc) / z0).clamp(-300.0, 300.0)
    pos = t > 0
    tp = torch.where(pos, t, torch.zeros_like(t))  # each branch sees only finite arguments (safe gradients)
    tn = torch.where(pos, torch.zeros_like(t), t)
    u = torch.where(pos, -torch.special.ndtri(torch.sigmoid(-tp)), torch.special.ndtri(torch.sigmoid(tn)))
    logdet = F.logsigmoid(t) + F.logsigmoid(-t) - math.log(z0) + 0.5 * u * u + 0.5 * math.log(2 * math.pi)
    return u, logdet


def vertical_unmap_np(u: np.ndarray, zc: float, z0: float) -> np.ndarray:
    """Inverse of :func:`vertical_map_torch`: ``z = zc + z0 logit(Phi(u))``."""
    from scipy.special import log_ndtr

    u = np.asarray(u, dtype=np.float64)
    return zc + z0 * (log_ndtr(u) - log_ndtr(-u))


def _fit_dispersion_profile(x: np.ndarray, v: np.ndarray, bins: int = 30, degree=3, max_degree: int = 8):
    """Polynomial in ``u = log r`` for ``log(<|v - <v>|^2> / 3)`` in radial quantile bins: (coefficients, (u_lo, u_hi)).

    ``(u_lo, u_hi)`` are the mean ``log r`` of the innermost and outermost bins: the profile is evaluated with ``u``
    clamped to them (constant beyond), where the polynomial is constrained by data. (Clamping to the extreme radii
    instead let a high degree run away between the outermost bin's centre and the farthest star: with 1,000,000
    Hernquist stars the BIC's degree 8 gave ``log s`` down to -11,000 at 13 Mpc, i.e. infinite scaled velocities.)

    ``degree``: an integer, or ``"bic"``: the degree in ``1..max_degree`` that minimises the Bayesian information
    criterion ``chi^2 + (degree + 1) log(bins)``, with each bin's ``chi^2`` weight the delta-method variance of
    its log mean square, ``var(|d|^2) / (n_b <|d|^2>^2)`` (the smoothest polynomial the binned dispersions allow).
    """
    u = np.log(np.maximum(np.linalg.norm(x, axis=1), 1e-12))
    edges = np.quantile(u, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, bins - 1)
    uc, ls, var, nb = [], [], [], []
    for b in range(bins):
        sel = idx == b
        if sel.sum() < 10:
            continue
        vb = v[sel]
        d2 = np.sum((vb - vb.mean(0)) ** 2, axis=1)
        m2 = max(float(np.mean(d2)), 1e-300)
        uc.append(u[sel].mean())
        ls.append(math.log(m2 / 3.0))
        var.append(max(float(np.var(d2)), 1e-12 * m2 * m2) / (sel.sum() * m2 * m2))
        nb.append(float(sel.sum()))
    uc, ls, var = np.array(uc), np.array(ls), np.array(var)
    # a fixed degree keeps the first version's weights sqrt(n_b) (same coefficients as before)
    w = 1.0 / np.sqrt(var) if degree == "bic" else np.sqrt(np.array(nb))
    if degree == "bic":
        degrees = range(1, min(int(max_degree), len(uc) - 2) + 1)
    else:
        degrees = [int(degree)]
    if not len(degrees) or len(uc) <= max(degrees):
        need = 10 * (max(3, max(degrees, default=3)) + 1)
        raise InputError(f"velocity_scale='auto' needs at least {need} stars spread in radius")
    best = None
    for d in degrees:
        coef = np.polyfit(uc, ls, deg=d, w=w)  # w multiplies the residuals
        chi2 = float(np.sum((np.polyval(coef, uc) - ls) ** 2 / var))
        score = chi2 + (d + 1) * math.log(len(uc))
        if best is None or score < best[0]:
            best = (score, coef)
    return [float(c) for c in best[1]], (float(uc.min()), float(uc.max()))


def _fit_member(x_flow_kwargs, v_flow_kwargs, y, v, weight=None):
    """Train one member (top level so that an executor can run it in another process); ``weight``: per-star
    counts of a bootstrap resample (``None``: every star once)."""
    from ...nn.flows import ConditionalFlow

    n_flow = ConditionalFlow(**x_flow_kwargs).fit(y, None, sample_weight=weight)
    v_flow = ConditionalFlow(**v_flow_kwargs).fit(v, y, sample_weight=weight)
    return n_flow, v_flow


class PhaseSpaceFlow(BaseEstimator):
    """Ensemble of flow models of ``f(x, v)`` (positions in kpc, velocities in km/s).

    Parameters
    ----------
    n_members : ensemble size (members differ in their seeds)
    kind, transforms, hidden, bins, activation, preprocessing : flow architecture (both flows of a member;
        see :class:`~excess.nn.flows.ConditionalFlow`); "quantile" preprocessing is refused (piecewise-linear,
        its second derivatives vanish)
    radial_scale : ``None`` (no compression), ``"auto"`` (median radius), a length in kpc (log compression), or
        ``"profile"`` (fitted Dehnen-profile map, see the module docstring)
    velocity_kind : flow kind of the velocity flow p(v | x) when it differs from ``kind`` (``None``: the same)
    vertical_scale : ``None`` or ``"profile"`` (heights mapped through a fitted sech^2 profile to a Gaussian
        coordinate, see the module docstring; local disk samples, needs ``radial_scale=None``)
    velocity_scale : ``None`` or ``"auto"`` (velocities divided by a fitted dispersion profile s(r))
    velocity_degree : degree of that profile's polynomial in ``log r``: ``None`` (default) chooses it in 1..8 by
        the Bayesian information criterion on the binned dispersions; an integer fixes it (3: the first version)
    epochs, batch_size, lr, lr_schedule, patience, validation_fraction : training; by default the learning rate
        is cosine-annealed over all ``epochs`` with no early stopping (``patience=None``; stopping early leaves the
        rate high: on the Hernquist benchmark the n(x) flows stopped at ~25 of 60 epochs and the members'
        validation losses spread by 0.05 nats), and the best epoch on the validation split is kept
    resample : ``None`` (every member sees all stars) or ``"bootstrap"``: each member is trained on its own
        bootstrap resample of the stars (multinomial counts as likelihood weights), so that the members' spread
        includes the sampling noise of the stars, which members trained on the same stars share (the fixed
        radial map and dispersion profile are fitted once, on all stars)
    n_jobs : members trained in parallel through :func:`excess.executor.get_executor` (1 = in this process)
    random_state : one seed; each member's flows get their own seeds drawn from it
    device : torch device for training and evaluation ("auto")
    """

    def __init__(self, n_members: int = 4, kind: str = "maf", transforms: int = 4, hidden: tuple[int, ...] = (64, 64),
                 bins: int = 8, activation: str = "silu", preprocessing: str = "standard", radial_scale=None,
                 velocity_scale=None, vertical_scale=None, velocity_kind=None, velocity_degree=None,
                 epochs: int = 50, batch_size: int = 1024, lr: float = 1e-3, lr_schedule: str = "cosine",
                 patience: int | None = None, validation_fraction: float = 0.2, resample=None, n_jobs: int = 1,
                 random_state=None, device: str = "auto"):
        self.n_members = n_members
        self.kind = kind
        self.transforms = transforms
        self.hidden = hidden
        self.bins = bins
        self.activation = activation
        self.preprocessing = preprocessing
        self.radial_scale = radial_scale
        self.velocity_scale = velocity_scale
        self.vertical_scale = vertical_scale
        self.velocity_kind = velocity_kind
        self.velocity_degree = velocity_degree
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.resample = resample
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.device = device

    # -- the fixed radial compression ------------------------------------------------------------
    def _resolve_scale(self, x) -> float:
        s = self.radial_scale
        self.radial_profile_ = None
        if s is None:
            return 0.0
        if isinstance(s, str):
            if s == "profile":
                self.radial_profile_ = _fit_dehnen(np.linalg.norm(x, axis=1))
                return float(self.radial_profile_[0])
            if s != "auto":
                raise ConfigError(f"radial_scale must be None, 'auto', 'profile' or a length in kpc, got {s!r}")
            return float(np.median(np.linalg.norm(x, axis=1)))
        s = float(s)
        if not s > 0:
            raise ConfigError(f"radial_scale must be positive, got {s}")
        return s

    def _compress(self, x):
        """``(y, log|dy/dx|)`` for torch tensors ``x`` (n, 3)."""
        import torch

        s = self.radial_scale_
        vp = getattr(self, "vertical_profile_", None)
        if vp is not None:
            u, logdet = vertical_map_torch(x[:, 2], *vp)
            return torch.cat([x[:, :2], u[:, None]], dim=1), logdet
        if not s:
            return x, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        r = torch.linalg.vector_norm(x, dim=-1).clamp_min(1e-12 * s)
        if getattr(self, "radial_profile_", None) is not None:
            s, k = self.radial_profile_
            lw = -(k / 3.0) * torch.log1p(s / r)  # log w, w = (M(<r)/M)^(1/3) = (r/(r+s))^(k/3)
            one_m_w2 = -torch.expm1(2.0 * lw)
            w = torch.exp(lw)
            rho = torch.atanh(w.clamp(max=1 - 1e-15))
            log_drho = math.log(k / 3.0) + lw + math.log(s) - torch.log(r) - torch.log(r + s) - torch.log(one_m_w2)
            return x * (rho / r)[:, None], log_drho + 2 * torch.log(rho / r)
        u = r / s
        ratio = torch.log1p(u) / u  # h(r) / r
        return x * ratio[:, None], -torch.log1p(u) + 2 * torch.log(ratio)

    def _velocity_log_scale(self, x):
        """``log s(r)`` (torch, (n,)) of the fitted dispersion profile, or ``None`` without velocity scaling."""
        import torch

        coef = getattr(self, "velocity_coef_", None)
        if coef is None:
            return None
        lo, hi = self.velocity_range_
        u = torch.log(torch.linalg.vector_norm(x, dim=-1).clamp_min(1e-12)).clamp(lo, hi)
        out = torch.zeros_like(u)
        for c in coef:  # Horner, highest power first
            out = out * u + c
        return 0.5 * out

    def _scaled_velocities_np(self, x: np.ndarray, v: np.ndarray, inverse: bool = False) -> np.ndarray:
        import torch

        with torch.no_grad():
            ls = self._velocity_log_scale(torch.as_tensor(x, dtype=torch.float64))
        if ls is None:
            return v
        f = np.exp(ls.numpy())[:, None]
        return v * f if inverse else v / f

    def _compress_np(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self._compress(torch.as_tensor(x, dtype=torch.float64))[0].numpy()

    # -- estimator API ---------------------------------------------------------------------------
    def _flow_kwargs(self, seed: int, preprocessing: str, velocity: bool = False) -> dict:
        kind = (self.velocity_kind or self.kind) if velocity else self.kind
        return dict(kind=kind, transforms=self.transforms, hidden=tuple(self.hidden), bins=self.bins,
                    activation=self.activation, preprocessing=preprocessing, epochs=self.epochs,
                    batch_size=self.batch_size, lr=self.lr, lr_schedule=self.lr_schedule, patience=self.patience,
                    validation_fraction=self.validation_fraction, random_state=seed, device=self.device)

    def fit(self, x, v) -> PhaseSpaceFlow:
        """Train ``n_members`` members on stars at positions ``x`` (n, 3) kpc with velocities ``v`` (n, 3) km/s."""
        from ...executor import get_executor

        x, v = check_phase_space(x, v)
        if int(self.n_members) < 1:
            raise ConfigError(f"n_members must be >= 1, got {self.n_members}")
        if self.preprocessing == "quantile":
            raise ConfigError("preprocessing='quantile' is piecewise linear (zero second derivatives); "
                              "use 'standard' or 'logit' for derivatives of f")
        if x.shape[0] < 20:
            raise InputError(f"a phase-space flow needs at least 20 stars, got {x.shape[0]}")
        if self.resample not in (None, "bootstrap"):
            raise ConfigError(f"resample must be None or 'bootstrap', got {self.resample!r}")
        rng = check_random_state(self.random_state)
        seeds = spawn_seeds(rng, 2 * int(self.n_members))
        weights = [None] * int(self.n_members)
        if self.resample == "bootstrap":  # drawn after the flows' seeds: those stay what they are without resampling
            n = x.shape[0]
            weights = [np.random.default_rng(s).multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
                       for s in spawn_seeds(rng, int(self.n_members))]
        self.radial_scale_ = self._resolve_scale(x)
        self.vertical_profile_ = None
        if self.vertical_scale is not None:
            if self.vertical_scale != "profile":
                raise ConfigError(f"vertical_scale must be None or 'profile', got {self.vertical_scale!r}")
            if self.radial_scale_:
                raise ConfigError("vertical_scale='profile' is for local disk samples: use it with radial_scale=None")
            self.vertical_profile_ = _fit_vertical_profile(x[:, 2])
        self.velocity_coef_, self.velocity_range_ = None, None
        if self.velocity_scale is not None:
            if self.velocity_scale != "auto":
                raise ConfigError(f"velocity_scale must be None or 'auto', got {self.velocity_scale!r}")
            deg = self.velocity_degree
            if deg is not None and not (isinstance(deg, (int, np.integer)) and 1 <= deg <= 8):
                raise ConfigError(f"velocity_degree must be None (chosen by BIC) or an integer in 1..8, got {deg!r}")
            self.velocity_coef_, self.velocity_range_ = _fit_dispersion_profile(x, v, degree="bic" if deg is None else deg)
        y = self._compress_np(x)
        vs = self._scaled_velocities_np(x, v)
        if not np.all(np.isfinite(vs)):
            bad = int(np.argmax(~np.isfinite(vs).all(axis=1)))
            raise InputError(f"the fitted dispersion profile s(r) gives a non-finite scaled velocity for star {bad} "
                             f"(r = {np.linalg.norm(x[bad]):.4g} kpc); fit with velocity_scale=None or a lower velocity_degree")
        tasks = [(self._flow_kwargs(seeds[2 * k], self.preprocessing), self._flow_kwargs(seeds[2 * k + 1], self.preprocessing, velocity=True),
                  y, vs, weights[k]) for k in range(int(self.n_members))]
        with get_executor(n_workers=int(self.n_jobs)) as ex:
            members = ex.map(_fit_member, tasks)
        self.members_ = [tuple(m) for m in members]
        self.n_stars_ = int(x.shape[0])
        return self

    def _check(self):
        if not hasattr(self, "members_"):
            raise NotFittedError("PhaseSpaceFlow is not fitted; call fit(x, v) first")

    @property
    def n_members_(self) -> int:
        self._check()
        return len(self.members_)

    def log_f_torch(self, x, v, member: int = 0):
        """``log f(x, v) = log n(x) + log p(v | x)`` of one member on torch tensors, differentiable in ``x`` and ``v``.

        Normalised to one star (``n`` integrates to 1); the Boltzmann solution does not depend on it.
        """
        import torch

        self._check()
        n_flow, v_flow = self.members_[member]
        y, logdet = self._compress(x)
        ls = self._velocity_log_scale(x)
        if ls is None:
            return n_flow.log_prob_torch(y) + logdet + v_flow.log_prob_torch(v, y)
        return n_flow.log_prob_torch(y) + logdet + v_flow.log_prob_torch(v / torch.exp(ls)[:, None], y) - 3 * ls

    def log_f_fn(self, member: int = 0):
        """``log_f(x, v)`` of one member as a callable for :mod:`~excess.astro.dynamics.boltzmann`."""
        self._check()
        if not 0 <= member < len(self.members_):
            raise ConfigError(f"member must be in [0, {len(self.members_)}), got {member}")
        return lambda x, v: self.log_f_torch(x, v, member)

    def log_prob(self, x, v) -> np.ndarray:
        """``log f(x, v)`` of the ensemble (the mixture of the members' densities), per star."""
        import torch

        self._check()
        x, v = check_phase_space(x, v)
        xt, vt = torch.as_tensor(x), torch.as_tensor(v)
        with torch.no_grad():
            lps = torch.stack([self.log_f_torch(xt, vt, k) for k in range(len(self.members_))])
        return (torch.logsumexp(lps, 0) - math.log(lps.shape[0])).numpy()

    def sample_velocities(self, x, n_per_position: int, member: int = 0, random_state=None) -> np.ndarray:
        """``(P, n_per_position, 3)`` velocities drawn from one member's ``p(v | x)`` at each position."""
        self._check()
        x, _ = check_phase_space(x)
        n = int(n_per_position)
        if n < 1:
            raise ConfigError(f"n_per_position must be >= 1, got {n}")
        xr = np.repeat(x, n, axis=0)
        v = self.members_[member][1].sample(self._compress_np(xr), random_state=random_state)
        return self._scaled_velocities_np(xr, v, inverse=True).reshape(x.shape[0], n, 3)

    def sample(self, n: int, member: int = 0, random_state=None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` stars ``(x, v)`` drawn from one member's ``f``."""
        self._check()
        rng = check_random_state(random_state)
        sx, sv = spawn_seeds(rng, 2)
        n_flow, v_flow = self.members_[member]
        y = n_flow.sample(np.empty((int(n), 0)), random_state=sx)
        v = v_flow.sample(y, random_state=sv)
        x = self._expand_np(y)
        return x, self._scaled_velocities_np(x, v, inverse=True)

    def _expand_np(self, y: np.ndarray) -> np.ndarray:
        """Inverse of the position map (radial: ``r = s (exp(|y| / s) - 1)``; vertical: :func:`vertical_unmap_np`)."""
        vp = getattr(self, "vertical_profile_", None)
        if vp is not None:
            return np.column_stack([y[:, :2], vertical_unmap_np(y[:, 2], *vp)])
        s = self.radial_scale_
        if not s:
            return y
        rho = np.linalg.norm(y, axis=1)
        if getattr(self, "radial_profile_", None) is not None:  # invert rho = atanh((r / (r + s))^(k/3))
            s, k = self.radial_profile_
            q = np.tanh(rho) ** (3.0 / k)
            r = s * q / np.maximum(1 - q, 1e-300)
        else:
            r = s * np.expm1(rho / s)
        return y * np.where(rho > 0, r / np.maximum(rho, 1e-300), 1.0)[:, None]

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path):
        """A directory with ``ensemble.json`` and one saved flow per member and role (state dicts + JSON)."""
        from pathlib import Path

        from ..._util import atomic_write_json, to_jsonable

        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for k, (n_flow, v_flow) in enumerate(self.members_):
            n_flow.save(path / f"member{k:02d}_n")
            v_flow.save(path / f"member{k:02d}_v")
        atomic_write_json(path / "ensemble.json", {"class": "excess.astro.dynamics.model.PhaseSpaceFlow",
                                                   "params": to_jsonable(self.get_params(deep=False)),
                                                   "radial_scale": self.radial_scale_, "n_stars": self.n_stars_,
                                                   "radial_profile": self.radial_profile_,
                                                   "vertical_profile": getattr(self, "vertical_profile_", None),
                                                   "velocity_coef": self.velocity_coef_,
                                                   "velocity_range": self.velocity_range_,
                                                   "n_members": len(self.members_)})
        return path

    @classmethod
    def load(cls, path) -> PhaseSpaceFlow:
        import json
        from pathlib import Path

        from ...nn.flows import ConditionalFlow

        path = Path(path)
        meta_file = path / "ensemble.json"
        if not meta_file.is_file():
            raise InputError(f"{path} is not a saved PhaseSpaceFlow (no ensemble.json)")
        try:
            meta = json.loads(meta_file.read_text())
            params = {k: tuple(p) if isinstance(p, list) else p for k, p in meta["params"].items()}
            obj = cls(**params)
            obj.radial_scale_ = float(meta["radial_scale"])
            rp, vc, vr = meta.get("radial_profile"), meta.get("velocity_coef"), meta.get("velocity_range")
            obj.radial_profile_ = None if rp is None else (float(rp[0]), float(rp[1]))
            vp = meta.get("vertical_profile")
            obj.vertical_profile_ = None if vp is None else (float(vp[0]), float(vp[1]))
            obj.velocity_coef_ = None if vc is None else [float(c) for c in vc]
            obj.velocity_range_ = None if vr is None else (float(vr[0]), float(vr[1]))
            obj.n_stars_ = int(meta["n_stars"])
            n = int(meta["n_members"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{meta_file}: not a valid PhaseSpaceFlow description ({exc})") from None
        obj.members_ = [(ConditionalFlow.load(path / f"member{k:02d}_n"), ConditionalFlow.load(path / f"member{k:02d}_v"))
                        for k in range(n)]
        return obj
