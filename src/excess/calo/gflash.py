"""Reference electromagnetic showers from the GFLASH parameterisation (vectorised numpy).

Geant4 cannot run here, so reference showers come from the published GFLASH parameterisation of
electromagnetic showers in sampling calorimeters:

    G. Grindhammer, M. Rudowicz, S. Peters, NIM A290 (1990) 469;
    G. Grindhammer, S. Peters, "The parameterized simulation of electromagnetic showers in
    homogeneous and sampling calorimeters", hep-ex/0001020.

What is simulated, per shower (all showers of a batch at once):

1. **Longitudinal profile.** The energy profile is a gamma distribution in depth ``t`` (units of
   the effective radiation length ``X0eff``), ``dE/dt ~ (beta t)^(alpha-1) beta exp(-beta t)/Gamma(alpha)``,
   with shower maximum ``T = (alpha-1)/beta``. ``ln T`` and ``ln alpha`` are drawn from a correlated
   bivariate normal: homogeneous-medium means ``<T_hom> = ln y - 0.812``,
   ``<alpha_hom> = 0.81 + (0.458 + 2.26/Z) ln y`` (``y = E/E_c``), shifted for the sampling structure
   ``T_sam = T_hom - 0.55/F_s - 0.69 (1 - e_hat)``, ``alpha_sam = alpha_hom - 0.476/F_s``, widths
   ``sigma(ln T) = 1/(-2.5 + 1.25 ln y)``, ``sigma(ln alpha) = 1/(-0.82 + 0.79 ln y)`` (capped at 0.5),
   correlation ``rho = 0.784 - 0.023 ln y``. Photons start at an exponentially distributed depth
   with mean ``9/7 X0`` (the conversion point); electrons at 0.
2. **Spots.** The energy is carried by ``N_spot = 10.3 / a_s * (E/GeV)^0.959`` spots (``a_s`` the
   sampling term), distributed in depth by a second gamma profile with ``T_spot = T (0.813 + 0.0019 Z)``
   and ``alpha_spot = alpha (0.844 + 0.0026 Z)``. The depth is integrated in steps of at most
   ``max_step_x0`` (as GFLASH does); each step's energy is shared by its spots.
3. **Radial profile.** Each spot's radius (units of the effective Moliere radius ``R_M``) is drawn from
   the two-component core + tail profile
   ``f(r) = p 2r R_C^2/(r^2+R_C^2)^2 + (1-p) 2r R_T^2/(r^2+R_T^2)^2``
   (inverse CDF ``r = R sqrt(u/(1-u))``), with ``R_C = z1 + z2 tau``,
   ``R_T = k1 (exp(k3 (tau-k2)) + exp(k4 (tau-k2)))``, ``p = p1 exp((p2-tau)/p3 - exp((p2-tau)/p3))``
   at the step's reduced depth ``tau = t/<t>``, plus the sampling-calorimeter corrections of
   hep-ex/0001020 (Geant4 ``GFlashSamplingShowerTuning`` coefficients). The azimuth is uniform.
4. **Sampling fluctuations.** Each spot's visible energy is gamma distributed with the shape that
   gives the calorimeter a relative resolution ``a_s / sqrt(E/GeV)`` for a fully contained shower.
   Energy outside the last radial edge or behind the last layer is lost (leakage).

Energies are reported on the calibrated scale (``sampling_fraction = 1``): a fully contained shower
has ``E_tot/E_inc = 1`` on average. Critical energies use ``E_c = 2.66 (X0 Z/A)^1.1 MeV`` with
``X0`` in g/cm^2.

Limits (read before trusting a figure):

* Electromagnetic showers only (electrons, photons); no hadrons, so the ds1-pions geometry is
  supported for shapes but not physics. The parameterisation was fitted for 1 GeV - 100 GeV and
  ``Z`` up to lead; higher energies are an extrapolation.
* No shower-axis offset or incidence angle, no magnetic field, no noise, no readout threshold
  unless ``threshold_mev`` is set; materials are a single absorber/active pair throughout
  (for the ds1-like preset the tile layer is modelled with the same material, so its energy is
  leakage-like only).
* Correlations between layers come only from the shared per-shower ``(T, alpha)`` and the
  conversion depth; GFLASH has no further correlated lateral fluctuations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .._util import check_random_state
from ..errors import ConfigError, InputError
from .geometry import CaloGeometry, load_geometry

__all__ = [
    "Material",
    "SamplingCalorimeter",
    "GFlashSimulator",
    "sample_incident_energies",
    "DS1_ENERGIES_MEV",
]

#: The 15 discrete incident energies of CaloChallenge dataset 1: 2^8 ... 2^22 MeV (256 MeV - 4.2 TeV).
DS1_ENERGIES_MEV = 2.0 ** np.arange(8, 23)

_ES = 21.2  # MeV, scale energy of the Moliere radius


@dataclass(frozen=True)
class Material:
    """One material: atomic number, mass number, radiation length (mm) and density (g/cm^3)."""

    name: str
    Z: float
    A: float
    X0_mm: float
    density: float

    @property
    def critical_energy(self) -> float:
        """MeV, ``2.66 (X0[g/cm^2] Z / A)^1.1``."""
        return 2.66 * (self.X0_mm / 10.0 * self.density * self.Z / self.A) ** 1.1


TUNGSTEN = Material("W", 74, 183.84, 3.504, 19.30)
SILICON = Material("Si", 14, 28.0855, 93.70, 2.329)
LEAD = Material("Pb", 82, 207.2, 5.613, 11.35)
LIQUID_ARGON = Material("LAr", 18, 39.948, 140.0, 1.396)


@dataclass(frozen=True)
class SamplingCalorimeter:
    """An absorber/active sampling structure with GFLASH's effective quantities."""

    absorber: Material
    active: Material
    d_absorber_mm: float
    d_active_mm: float

    @property
    def _weights(self) -> tuple[float, float]:
        m1 = self.d_absorber_mm * self.absorber.density
        m2 = self.d_active_mm * self.active.density
        return m1 / (m1 + m2), m2 / (m1 + m2)

    @property
    def Z(self) -> float:
        w1, w2 = self._weights
        return w1 * self.absorber.Z + w2 * self.active.Z

    @property
    def density(self) -> float:
        d1, d2 = self.d_absorber_mm, self.d_active_mm
        return (d1 * self.absorber.density + d2 * self.active.density) / (d1 + d2)

    @property
    def X0_mm(self) -> float:
        w1, w2 = self._weights
        rho = self.density
        return 1.0 / (w1 * rho / (self.absorber.X0_mm * self.absorber.density) + w2 * rho / (self.active.X0_mm * self.active.density))

    @property
    def _ec_over_x0(self) -> float:
        w1, w2 = self._weights
        return w1 * self.absorber.critical_energy / self.absorber.X0_mm + w2 * self.active.critical_energy / self.active.X0_mm

    @property
    def moliere_radius_mm(self) -> float:
        return _ES / self._ec_over_x0

    @property
    def critical_energy(self) -> float:
        return self.X0_mm * self._ec_over_x0

    @property
    def Fs(self) -> float:
        """Sampling frequency: ``X0eff / (d_absorber + d_active)``."""
        return self.X0_mm / (self.d_absorber_mm + self.d_active_mm)

    @property
    def ehat(self) -> float:
        """Electron/mip ratio estimate ``1 / (1 + 0.007 (Z_abs - Z_act))``."""
        return 1.0 / (1.0 + 0.007 * (self.absorber.Z - self.active.Z))

    def describe(self) -> dict:
        return {
            "Z_eff": self.Z, "X0_eff_mm": self.X0_mm, "R_M_eff_mm": self.moliere_radius_mm,
            "E_c_eff_MeV": self.critical_energy, "F_s": self.Fs, "e_hat": self.ehat,
        }


#: Si-W, two physical 1.4 mm W + 0.3 mm Si layers per readout layer (CaloChallenge ds2/ds3-like).
DS2_CALORIMETER = SamplingCalorimeter(TUNGSTEN, SILICON, 1.4, 0.3)
#: Pb-LAr (ATLAS-barrel-like), the ds1-like preset.
DS1_CALORIMETER = SamplingCalorimeter(LEAD, LIQUID_ARGON, 1.5, 4.2)
#: ds1-photons layers 0, 1, 2, 3, 12 as depth ranges in X0 (presampler incl. upstream material,
#: strips, middle, back, tile); the last range just collects leakage.
DS1_LAYER_BOUNDARIES_X0 = (0.0, 2.0, 6.3, 22.3, 24.3, 60.0)


@dataclass(frozen=True)
class GFlashSimulator:
    """Vectorised GFLASH shower simulator on a CaloChallenge voxel geometry.

    Parameters
    ----------
    geometry : CaloGeometry or str
        Voxel geometry (radii in mm).
    calorimeter : SamplingCalorimeter
        Material structure; gives ``Z``, ``X0``, ``R_M``, ``E_c``, ``F_s``, ``e_hat``.
    layer_boundaries_x0 : sequence of float
        Depth (in X0eff) of the front of each active layer and the back of the last one.
    particle : {"electron", "photon"}
        Photons start at an exponentially distributed depth (mean 9/7 X0).
    sampling_term : float
        Stochastic term ``a_s`` of the resolution ``a_s/sqrt(E/GeV)`` (GFLASH default 0.11).
    spot_factor : float
        Multiplies GFLASH's number of spots (1 = the published value); fewer spots = coarser showers.
    max_step_x0 : float
        Longest longitudinal integration step (GFLASH integrates profiles in steps).
    threshold_mev : float
        Voxels below this visible energy are set to 0 (a readout threshold; 0 = none).
    """

    geometry: CaloGeometry
    calorimeter: SamplingCalorimeter = DS2_CALORIMETER
    layer_boundaries_x0: tuple[float, ...] = ()
    particle: str = "electron"
    sampling_term: float = 0.11
    spot_factor: float = 1.0
    max_step_x0: float = 1.0
    threshold_mev: float = 0.0
    name: str = field(default="custom", compare=False)

    def __post_init__(self):
        geom = load_geometry(self.geometry)
        object.__setattr__(self, "geometry", geom)
        if self.particle not in ("electron", "photon"):
            raise ConfigError(f"particle must be 'electron' or 'photon' (GFLASH is electromagnetic), got {self.particle!r}")
        b = np.asarray(self.layer_boundaries_x0, dtype=float)
        if len(b) == 0:  # default: readout layers of two physical sampling cells each
            thick = 2 * (self.calorimeter.d_absorber_mm + self.calorimeter.d_active_mm) / self.calorimeter.X0_mm
            b = thick * np.arange(geom.n_layers + 1)
            object.__setattr__(self, "layer_boundaries_x0", tuple(float(v) for v in b))
        if len(b) != geom.n_layers + 1 or np.any(np.diff(b) <= 0) or b[0] < 0:
            raise ConfigError(
                f"layer_boundaries_x0 must be {geom.n_layers + 1} increasing depths (>= 0) for geometry "
                f"{geom.name!r}, got {self.layer_boundaries_x0!r}"
            )
        for key in ("sampling_term", "spot_factor", "max_step_x0"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0, got {getattr(self, key)!r}")
        if self.threshold_mev < 0:
            raise ConfigError(f"threshold_mev must be >= 0, got {self.threshold_mev!r}")

    # ---- presets --------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, geometry: CaloGeometry | str | None = None, **overrides) -> GFlashSimulator:
        """``"ds2-like"`` (Si-W, electrons, ds2 geometry) or ``"ds1-like"`` (Pb-LAr, photons, ds1-photons).

        ``geometry`` replaces the preset's geometry (e.g. a small regular geometry for tests; its
        layers then get the preset's per-layer thickness); ``overrides`` replace any other field.
        """
        if name == "ds2-like":
            kw = dict(geometry=load_geometry(geometry or "ds2"), calorimeter=DS2_CALORIMETER, particle="electron")
        elif name == "ds1-like":
            geom = load_geometry(geometry or "ds1-photons")
            kw = dict(geometry=geom, calorimeter=DS1_CALORIMETER, particle="photon")
            if geom.n_layers == len(DS1_LAYER_BOUNDARIES_X0) - 1:
                kw["layer_boundaries_x0"] = DS1_LAYER_BOUNDARIES_X0
            else:
                kw["layer_boundaries_x0"] = tuple(np.linspace(0.0, 25.0, geom.n_layers + 1))
        else:
            raise ConfigError(f"unknown GFLASH preset {name!r}: use 'ds1-like' or 'ds2-like'")
        kw.update(overrides)
        return cls(name=name, **kw)

    def describe(self) -> dict:
        """All parameters and the derived effective material quantities (for metadata)."""
        return {
            "name": self.name, "geometry": self.geometry.name, "particle": self.particle,
            "calorimeter": asdict(self.calorimeter), "effective": self.calorimeter.describe(),
            "layer_boundaries_x0": list(self.layer_boundaries_x0), "sampling_term": self.sampling_term,
            "spot_factor": self.spot_factor, "max_step_x0": self.max_step_x0, "threshold_mev": self.threshold_mev,
            "reference": "GFLASH: Grindhammer, Rudowicz, Peters, NIM A290 (1990) 469; hep-ex/0001020",
        }

    # ---- simulation -----------------------------------------------------------------------
    def _steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Step boundaries (X0) and the active-layer index of each step."""
        b = np.asarray(self.layer_boundaries_x0)
        edges, layer = [b[0]], []
        for i in range(len(b) - 1):
            n = max(1, int(math.ceil((b[i + 1] - b[i]) / self.max_step_x0 - 1e-9)))
            edges.extend(np.linspace(b[i], b[i + 1], n + 1)[1:])
            layer.extend([i] * n)
        return np.asarray(edges), np.asarray(layer, dtype=np.int64)

    def n_spots(self, incident_energies: np.ndarray) -> np.ndarray:
        """Expected number of spots per shower: ``10.3/a_s (E/GeV)^0.959 * spot_factor``."""
        e_gev = np.asarray(incident_energies, dtype=float) / 1000.0
        return self.spot_factor * 10.3 / self.sampling_term * e_gev**0.959

    def simulate(
        self,
        incident_energies,
        random_state: None | int | np.random.Generator = None,
        *,
        max_spots_per_chunk: int = 4_000_000,
    ) -> np.ndarray:
        """Showers (N, n_voxels) float32 in MeV for incident energies (N,) in MeV."""
        e = np.asarray(incident_energies, dtype=float).reshape(-1)
        if e.size == 0:
            return np.zeros((0, self.geometry.n_voxels), dtype=np.float32)
        if not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise InputError("incident energies must be finite and > 0 MeV")
        rng = check_random_state(random_state)
        out = np.zeros((len(e), self.geometry.n_voxels), dtype=np.float32)
        per = np.maximum(self.n_spots(e), 1.0)
        start = 0
        while start < len(e):  # chunks bounded by the number of spots
            cum = np.cumsum(per[start:])
            stop = start + max(1, int(np.searchsorted(cum, max_spots_per_chunk)))
            out[start:stop] = self._simulate_chunk(e[start:stop], rng)
            start = stop
        return out

    def _longitudinal(self, e: np.ndarray, rng: np.random.Generator):
        cal = self.calorimeter
        Z, Fs, ehat = cal.Z, cal.Fs, cal.ehat
        lny = np.log(np.maximum(e / cal.critical_energy, 1.0 + 1e-6))
        # homogeneous means, then sampling shifts (hep-ex/0001020, Geant4 GFlashSamplingShowerTuning)
        t_hom = np.maximum(lny - 0.812, 0.1)
        a_hom = np.maximum(0.81 + (0.458 + 2.26 / Z) * lny, 0.1)
        mean_ln_t = np.log(np.maximum(t_hom - 0.55 / Fs - 0.69 * (1 - ehat), 0.1))
        mean_ln_a = np.log(np.maximum(a_hom - 0.476 / Fs, 1.05))
        sig_t = np.minimum(0.5, 1.0 / np.maximum(-2.5 + 1.25 * lny, 1e-3))
        sig_a = np.minimum(0.5, 1.0 / np.maximum(-0.82 + 0.79 * lny, 1e-3))
        rho = np.clip(0.784 - 0.023 * lny, -0.99, 0.99)
        z1, z2 = rng.standard_normal(len(e)), rng.standard_normal(len(e))
        c1, c2 = np.sqrt((1 + rho) / 2), np.sqrt((1 - rho) / 2)
        T = np.maximum(np.exp(mean_ln_t + sig_t * (c1 * z1 + c2 * z2)), 0.5)
        alpha = np.maximum(np.exp(mean_ln_a + sig_a * (c1 * z1 - c2 * z2)), 1.1)
        return T, alpha, np.exp(mean_ln_a)

    def _simulate_chunk(self, e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.special import gammainc

        geom, cal = self.geometry, self.calorimeter
        n = len(e)
        Z, Fs, ehat = cal.Z, cal.Fs, cal.ehat
        T, alpha, alpha_mean = self._longitudinal(e, rng)
        beta = (alpha - 1.0) / T
        t0 = rng.exponential(9.0 / 7.0, size=n) if self.particle == "photon" else np.zeros(n)

        edges, step_layer = self._steps()
        t = np.maximum(edges[None, :] - t0[:, None], 0.0)  # (n, S+1) depth from the shower start
        cdf_e = gammainc(alpha[:, None], beta[:, None] * t)
        frac_e = np.diff(cdf_e, axis=1)  # energy fraction per step
        t_sp = np.maximum(T * (0.813 + 0.0019 * Z), 0.5)
        a_sp = np.maximum(alpha * (0.844 + 0.0026 * Z), 1.1)
        cdf_s = gammainc(a_sp[:, None], ((a_sp - 1.0) / t_sp)[:, None] * t)
        frac_s = np.clip(np.diff(cdf_s, axis=1), 0.0, None)
        n_spots = rng.poisson(self.n_spots(e))
        p_s = frac_s / np.maximum(frac_s.sum(1, keepdims=True), 1e-300)
        counts = rng.multinomial(n_spots, p_s)  # (n, S)
        counts = np.where((counts == 0) & (frac_e * e[:, None] > 1e-6), 1, counts)  # no energy without a spot

        # radial parameters at the middle of each step (reduced depth tau = t / <t>)
        t_mid = 0.5 * (t[:, 1:] + t[:, :-1])
        tau = t_mid / T[:, None] * ((alpha - 1) / alpha)[:, None] * (alpha_mean / (alpha_mean - 1))[:, None]
        lnE = np.log(e / 1000.0)[:, None]
        r_core = 0.0251 + 0.00319 * lnE + (0.1162 - 0.000381 * Z) * tau
        r_tail = (0.659 - 0.00309 * Z) * (np.exp(-2.59 * (tau - 0.645)) + np.exp((0.3585 + 0.0412 * lnE) * (tau - 0.645)))
        p3 = np.maximum(1.313 - 0.0686 * lnE, 0.1)
        arg = ((0.401 + 0.00187 * Z) - tau) / p3
        w_core = (2.632 - 0.00094 * Z) * np.exp(arg - np.exp(arg))
        # sampling-calorimeter corrections
        r_core = r_core - 0.0203 * (1 - ehat) + 0.0397 / Fs * np.exp(-tau)
        r_tail = r_tail - 0.14 * (1 - ehat) - 0.495 / Fs * np.exp(-tau)
        w_core = w_core + (1 - ehat) * (0.348 - 0.642 / Fs * np.exp(-((tau - 1) ** 2)))
        r_core = np.maximum(r_core, 1e-3)
        r_tail = np.maximum(r_tail, 1.05 * r_core)
        w_core = np.clip(w_core, 0.0, 1.0)

        # spots, step-major so that spots of one layer are contiguous
        cnt = counts.T.ravel()  # (S*n,)
        flat = np.repeat(np.arange(cnt.size), cnt)
        step_of = flat // n
        shower_of = flat % n
        spot_e = frac_e.T.ravel() * np.tile(e, frac_e.shape[1]) / np.maximum(cnt, 1)  # step energy / its spots
        spot_e = spot_e[flat]
        # sampling fluctuations: gamma per spot, shape k so that sigma/E = a_s/sqrt(E/GeV) overall
        k = (e / 1000.0) / (self.sampling_term**2 * np.maximum(n_spots, 1))
        k_spot = k[shower_of]
        spot_e = spot_e * rng.gamma(k_spot, 1.0 / k_spot)
        u1 = rng.random(flat.size)
        u2 = rng.random(flat.size)
        radius_unit = np.where(u1 < w_core.T.ravel()[flat], r_core.T.ravel()[flat], r_tail.T.ravel()[flat])
        u2 = np.minimum(u2, 1.0 - 1e-12)
        r = cal.moliere_radius_mm * radius_unit * np.sqrt(u2 / (1.0 - u2))
        phi = rng.random(flat.size)  # azimuth as a fraction of 2 pi, measured from -pi

        out = np.zeros(n * geom.n_voxels, dtype=np.float64)
        layer_of_spot = step_layer[step_of]
        bounds = np.searchsorted(layer_of_spot, np.arange(geom.n_layers + 1))
        for i, lay in enumerate(geom.active_layers):
            s = slice(bounds[i], bounds[i + 1])
            if s.start == s.stop:
                continue
            r_edges = np.asarray(lay.r_edges)
            rb = np.searchsorted(r_edges, r[s], side="right") - 1
            ok = rb < lay.n_r  # beyond the last edge: lateral leakage
            ab = np.minimum((phi[s] * lay.n_alpha).astype(np.int64), lay.n_alpha - 1)
            vox = geom.offsets[i] + ab * lay.n_r + rb
            idx = shower_of[s][ok] * geom.n_voxels + vox[ok]
            out += np.bincount(idx, weights=spot_e[s][ok], minlength=out.size)
        out = out.reshape(n, geom.n_voxels)
        if self.threshold_mev > 0:
            out[out < self.threshold_mev] = 0.0
        return out.astype(np.float32)


def sample_incident_energies(
    n: int,
    spectrum: str = "log-uniform",
    *,
    e_min: float = 1_000.0,
    e_max: float = 1_000_000.0,
    random_state: None | int | np.random.Generator = None,
) -> np.ndarray:
    """Incident energies in MeV: ``"log-uniform"`` in [e_min, e_max] (ds2/ds3), ``"discrete"`` (the
    15 ds1 values 2^8 ... 2^22 MeV, equally often, restricted to [e_min, e_max]), or a fixed value
    given as a number string (``"65536"``)."""
    rng = check_random_state(random_state)
    n = int(n)
    if n < 0:
        raise ConfigError(f"number of showers must be >= 0, got {n}")
    if not (0 < e_min <= e_max):
        raise ConfigError(f"need 0 < e_min <= e_max, got {e_min}, {e_max}")
    if spectrum == "log-uniform":
        return np.exp(rng.uniform(np.log(e_min), np.log(e_max), size=n))
    if spectrum == "discrete":
        values = DS1_ENERGIES_MEV[(DS1_ENERGIES_MEV >= e_min) & (DS1_ENERGIES_MEV <= e_max)]
        if values.size == 0:
            raise ConfigError(f"no ds1 energy in [{e_min}, {e_max}] MeV")
        return rng.choice(values, size=n)
    try:
        value = float(spectrum)
    except ValueError:
        raise ConfigError(f"energy spectrum must be 'log-uniform', 'discrete' or a number (MeV), got {spectrum!r}") from None
    if not value > 0:
        raise ConfigError(f"fixed incident energy must be > 0 MeV, got {value}")
    return np.full(n, value)
