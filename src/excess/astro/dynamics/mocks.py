"""Mock stellar samples with known truth, drawn with galpy (Bovy 2015, ApJS 216, 29).

* ``hernquist``: an isotropic Hernquist sphere (``galpy.df.isotropicHernquistdf``), total mass ``mass`` [Msun]
  and scale radius ``a`` [kpc]; the stars trace the mass. Truth: galpy's forces and density of the same
  ``HernquistPotential`` (cross-checked in the tests against :class:`~excess.astro.dynamics.analytic.HernquistSphere`).
* ``disk``: a quasi-isothermal disk (Binney & McMillan 2011; ``galpy.df.quasiisothermaldf`` with
  ``actionAngleStaeckel(delta=0.45)``) of tracer stars in galpy's ``MWPotential2014`` (Bovy 2015: power-law
  bulge with exponential cut-off + Miyamoto-Nagai disk + NFW halo; R0 = 8 kpc, v_c = 220 km/s), stars kept in
  a ball of ``radius`` kpc around the "Sun" at (R0, 0, 0). Defaults: radial scale length ``hr = R0/3``
  (2.67 kpc), ``sigma_R(R0) = 0.2 v_c`` (44 km/s), ``sigma_z(R0) = 0.1 v_c`` (22 km/s), dispersion scale
  lengths ``hsr = hsz = R0`` (galpy's documented example). Truth: the potential's forces and its total
  density (the stars are tracers, not the mass). Drawn by rejection from the DF itself (see :func:`disk_mock`).

galpy draws from numpy's *global* generator; :func:`_galpy_seed` seeds it from ``random_state`` for the
draw and restores the caller's global state afterwards, so nothing outside changes.

A mock is saved as HDF5 (``x``, ``v`` in kpc and km/s; attribute ``spec`` = the JSON of its kind and
parameters), from which :func:`truth_from_spec` rebuilds the truth.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._util import atomic_path, check_random_state, spawn_seeds
from ...errors import ConfigError, InputError
from .model import check_phase_space

__all__ = ["Mock", "GalpyTruth", "hernquist_mock", "make_mock", "truth_from_spec", "save_mock", "load_mock",
           "MOCK_KINDS", "disk_mock"]

MOCK_KINDS = ("hernquist", "disk")
_RO, _VO = 8.0, 220.0  # galpy's natural units (kpc, km/s): only a choice of scale, results are physical


@contextlib.contextmanager
def _galpy_seed(seed: int):
    state = np.random.get_state()
    np.random.seed(int(seed) % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


class GalpyTruth:
    """True accelerations [(km/s)^2/kpc], densities [Msun/kpc^3] and mass radii of a galpy potential."""

    def __init__(self, potential, spec: dict):
        self.potential = potential
        self.spec = spec

    def _cyl(self, x):
        x, _ = check_phase_space(x, who="truth positions")
        R = np.hypot(x[:, 0], x[:, 1])
        phi = np.arctan2(x[:, 1], x[:, 0])
        return x, R / _RO, x[:, 2] / _RO, phi

    def acceleration(self, x) -> np.ndarray:
        from galpy.potential import evaluateRforces, evaluatezforces

        x, R, z, phi = self._cyl(x)
        scale = _VO**2 / _RO
        FR = np.asarray(evaluateRforces(self.potential, R, z, phi=phi, use_physical=False)) * scale
        Fz = np.asarray(evaluatezforces(self.potential, R, z, phi=phi, use_physical=False)) * scale
        return np.column_stack([FR * np.cos(phi), FR * np.sin(phi), Fz])

    def density(self, x) -> np.ndarray:
        from galpy.potential import evaluateDensities
        from galpy.util.conversion import dens_in_msolpc3

        x, R, z, phi = self._cyl(x)
        d = np.asarray(evaluateDensities(self.potential, R, z, phi=phi, use_physical=False))
        return d * dens_in_msolpc3(_VO, _RO) * 1e9

    def mass_radius(self, fraction) -> np.ndarray:
        """Radius enclosing ``fraction`` of the total mass (Hernquist: analytic)."""
        if self.spec["kind"] != "hernquist":
            raise ConfigError(f"mass radii are defined for the spherical mocks, not {self.spec['kind']!r}")
        s = np.sqrt(np.asarray(fraction, dtype=np.float64))
        return self.spec["a"] * s / (1 - s)


@dataclass(frozen=True)
class Mock:
    """Stars (positions ``x`` kpc, velocities ``v`` km/s) with the spec of the model that made them."""

    x: np.ndarray
    v: np.ndarray
    spec: dict = field(default_factory=dict)

    @property
    def truth(self) -> GalpyTruth:
        return truth_from_spec(self.spec)

    def __len__(self) -> int:
        return self.x.shape[0]


def _hernquist_potential(mass: float, a: float):
    from galpy.potential import HernquistPotential
    from galpy.util.conversion import mass_in_msol

    # galpy's Hernquist amplitude is twice the total mass (natural units: mass / mass_in_msol)
    return HernquistPotential(amp=2.0 * mass / mass_in_msol(_VO, _RO), a=a / _RO)


def truth_from_spec(spec: dict) -> GalpyTruth:
    kind = spec.get("kind")
    if kind == "hernquist":
        return GalpyTruth(_hernquist_potential(float(spec["mass"]), float(spec["a"])), spec)
    if kind == "disk":
        from galpy.potential import MWPotential2014

        return GalpyTruth(MWPotential2014, spec)
    raise ConfigError(f"unknown mock kind {kind!r}; known: {', '.join(MOCK_KINDS)}")


def hernquist_mock(n: int, *, mass: float = 1e12, a: float = 10.0, random_state=None) -> Mock:
    """``n`` stars of an isotropic Hernquist sphere (galpy ``isotropicHernquistdf``)."""
    from galpy.df import isotropicHernquistdf

    n = int(n)
    if n < 1:
        raise ConfigError(f"a mock needs n >= 1 stars, got {n}")
    if not (mass > 0 and a > 0):
        raise ConfigError(f"hernquist mock needs mass > 0 and a > 0, got mass={mass}, a={a}")
    (seed,) = spawn_seeds(check_random_state(random_state), 1)
    pot = _hernquist_potential(mass, a)
    df = isotropicHernquistdf(pot=pot)
    with _galpy_seed(seed):
        o = df.sample(n=n)
    x = np.column_stack([o.x(use_physical=False), o.y(use_physical=False), o.z(use_physical=False)]) * _RO
    v = np.column_stack([o.vx(use_physical=False), o.vy(use_physical=False), o.vz(use_physical=False)]) * _VO
    return Mock(x=x, v=v, spec={"kind": "hernquist", "mass": float(mass), "a": float(a), "n": n, "seed": seed,
                                "source": "galpy isotropicHernquistdf"})


def _disk_df(hr: float, sr: float, sz: float, hsr: float, hsz: float):
    from galpy.actionAngle import actionAngleStaeckel
    from galpy.df import quasiisothermaldf
    from galpy.potential import MWPotential2014

    aA = actionAngleStaeckel(pot=MWPotential2014, delta=0.45, c=True)
    return quasiisothermaldf(hr / _RO, sr / _VO, sz / _VO, hsr / _RO, hsz / _RO, pot=MWPotential2014, aA=aA,
                             cutcounter=True)


def disk_mock(n: int, *, radius: float = 2.0, hr: float = _RO / 3, sr: float = 0.2 * _VO, sz: float = 0.1 * _VO,
              hsr: float = _RO, hsz: float = _RO, batch: int = 20_000, random_state=None) -> Mock:
    """``n`` stars of a quasi-isothermal disk in ``MWPotential2014`` within ``radius`` kpc of (8, 0, 0) kpc.

    Lengths in kpc, dispersions in km/s (see the module docstring). Rejection sampling from the DF: positions
    are proposed inside the ball with density ``q(x) ~ exp(-R / hr - |z| / 0.3 kpc)``, velocities
    (v_R, v_phi, v_z) Gaussian around (0, 190, 0) km/s with 1.25 times the DF's dispersions at R (exponential in
    R as the DF's; 1.25 sigma_R for v_phi); a proposal is kept with probability ``f / (c q)``, where ``c`` is 1.5 times the largest
    ``f / q`` of a pilot batch; whenever a proposal exceeds ``c``, ``c`` is raised to 1.5 times that ratio and
    the sample is started again (so every kept star was drawn under an envelope that held; the largest
    ``f / (c q)`` seen and the number of restarts are kept in the spec).
    """
    n = int(n)
    if n < 1:
        raise ConfigError(f"a mock needs n >= 1 stars, got {n}")
    if not (radius > 0 and hr > 0 and sr > 0 and sz > 0 and hsr > 0 and hsz > 0):
        raise ConfigError("disk mock needs positive radius, hr, sr, sz, hsr and hsz")
    rng = check_random_state(random_state)
    (seed,) = spawn_seeds(rng, 1)
    rng = np.random.default_rng(seed)
    qdf = _disk_df(hr, sr, sz, hsr, hsz)
    zs = 0.3
    batch = min(int(batch), max(2000, 8 * n))  # proposals per round (about 10 % are kept)

    def propose(m):
        xy = rng.uniform(-radius, radius, (m, 2))
        z = rng.laplace(0.0, zs, m)
        x = np.column_stack([_RO + xy[:, 0], xy[:, 1], z])
        x = x[np.sum((x - [_RO, 0, 0]) ** 2, axis=1) < radius**2]
        R = np.hypot(x[:, 0], x[:, 1])
        keep = rng.uniform(size=len(x)) < np.exp(-(R - (_RO - radius)) / hr)  # q(x) ~ exp(-R/hr) in R
        x, R = x[keep], R[keep]
        s_r = 1.25 * sr * np.exp(-(R - _RO) / hsr)
        s_t, s_z = s_r, 1.25 * sz * np.exp(-(R - _RO) / hsz)  # v_phi: wide, the DF has a long low-v_phi tail
        mu = np.array([0.0, 190.0, 0.0])
        sig = np.column_stack([s_r, s_t, s_z])
        w = rng.normal(mu, sig)  # (v_R, v_phi, v_z)
        log_q = -R / hr - np.abs(x[:, 2]) / zs - np.sum(np.log(sig) + 0.5 * ((w - mu) / sig) ** 2, axis=1)
        with np.errstate(all="ignore"):
            log_f = np.asarray(qdf(R / _RO, w[:, 0] / _VO, w[:, 1] / _VO, x[:, 2] / _RO, w[:, 2] / _VO, log=True),
                               dtype=float)
        log_f[~np.isfinite(log_f)] = -np.inf
        return x, R, w, log_f - log_q

    _, _, _, pilot = propose(int(batch))
    log_c = float(np.max(pilot)) + np.log(1.5)
    xs, ws, worst, tried, restarts = [], [], -np.inf, 0, 0
    while sum(len(a) for a in xs) < n:
        x, R, w, log_ratio = propose(int(batch))
        tried += len(x)
        if len(x) and float(np.max(log_ratio)) > log_c:  # envelope too low: raise it and start again (exactness)
            if restarts >= 5:
                raise ConfigError("disk mock: the rejection envelope keeps being exceeded; the proposal does not "
                                  "cover this DF")
            log_c, xs, ws, worst, restarts = float(np.max(log_ratio)) + np.log(1.5), [], [], -np.inf, restarts + 1
            continue
        worst = max(worst, float(np.max(log_ratio, initial=-np.inf)) - log_c)
        keep = np.log(rng.uniform(size=len(x))) < log_ratio - log_c
        phi = np.arctan2(x[keep, 1], x[keep, 0])
        c, s = np.cos(phi), np.sin(phi)
        wk = w[keep]
        xs.append(x[keep])
        ws.append(np.column_stack([wk[:, 0] * c - wk[:, 1] * s, wk[:, 0] * s + wk[:, 1] * c, wk[:, 2]]))
    x, v = np.concatenate(xs)[:n], np.concatenate(ws)[:n]
    return Mock(x=x, v=v, spec={"kind": "disk", "potential": "MWPotential2014", "R0": _RO, "vc0": _VO,
                                "center": [_RO, 0.0, 0.0], "radius": float(radius), "hr": float(hr), "sr": float(sr),
                                "sz": float(sz), "hsr": float(hsr), "hsz": float(hsz), "n": n, "seed": seed,
                                "acceptance": n / max(tried, 1), "max_acceptance_ratio": float(np.exp(worst)),
                                "envelope_restarts": restarts,
                                "source": "galpy quasiisothermaldf + actionAngleStaeckel(delta=0.45), MWPotential2014"})


def make_mock(kind: str, n: int, random_state=None, **params) -> Mock:
    if kind == "hernquist":
        return hernquist_mock(n, random_state=random_state, **params)
    if kind == "disk":
        return disk_mock(n, random_state=random_state, **params)
    raise ConfigError(f"unknown mock kind {kind!r}; known: {', '.join(MOCK_KINDS)}")


def save_mock(mock: Mock, path) -> Path:
    import h5py

    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("x", data=mock.x)
            f.create_dataset("v", data=mock.v)
            f.attrs["spec"] = json.dumps(mock.spec)
    return path


def load_mock(path) -> Mock:
    """Stars from an HDF5 file with datasets ``x`` and ``v`` (n, 3); ``spec`` (truth) is optional."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("x", "v") if k not in f]
            if missing:
                raise InputError(f"{path}: missing datasets {', '.join(missing)} (need x and v, shape (n, 3))")
            x, v = f["x"][...], f["v"][...]
            spec = json.loads(f.attrs.get("spec", "{}"))
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    x, v = check_phase_space(x, v, who=f"{path}: x")
    return Mock(x=x, v=v, spec=spec)
