"""Mock stellar samples with known truth, drawn with galpy (Bovy 2015, ApJS 216, 29).

* ``hernquist``: an isotropic Hernquist sphere (``galpy.df.isotropicHernquistdf``), total mass ``mass`` [Msun]
  and scale radius ``a`` [kpc]; the stars trace the mass. Truth: galpy's forces and density of the same
  ``HernquistPotential`` (cross-checked in the tests against :class:`~excess.astro.dynamics.analytic.HernquistSphere`).

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
           "MOCK_KINDS"]

MOCK_KINDS = ("hernquist",)
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


def make_mock(kind: str, n: int, random_state=None, **params) -> Mock:
    if kind == "hernquist":
        return hernquist_mock(n, random_state=random_state, **params)
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
