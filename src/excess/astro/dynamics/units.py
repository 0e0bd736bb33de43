"""Units of the dynamics wing, defined once: positions in kpc, velocities in km/s, masses in Msun.

Accelerations are in (km/s)^2 / kpc, densities in Msun / kpc^3. The constants are CODATA 2018 / IAU 2015
values (the ones astropy 5+ uses): G = 6.67430e-11 m^3 kg^-1 s^-2, Msun = 1.988409870698051e30 kg,
pc = 3.0856775814913673e16 m, c = 299792458 m/s, 1 GeV = 1.602176634e-10 J.
"""

from __future__ import annotations

import math

__all__ = ["G", "MSUN_KPC3_TO_MSUN_PC3", "MSUN_PC3_TO_GEV_CM3", "MSUN_KPC3_TO_GEV_CM3",
           "density_from_divergence", "ACC_UNIT", "DENSITY_UNIT"]

_G_SI = 6.67430e-11
_MSUN_KG = 1.988409870698051e30
_PC_M = 3.0856775814913673e16
_C_M_S = 299792458.0
_GEV_J = 1.602176634e-10

#: Newton's constant in kpc (km/s)^2 / Msun (about 4.3009e-6)
G = _G_SI * _MSUN_KG / (_PC_M * 1e3) / 1e6
MSUN_KPC3_TO_MSUN_PC3 = 1e-9
#: 1 Msun/pc^3 in GeV/cm^3 (about 37.97)
MSUN_PC3_TO_GEV_CM3 = _MSUN_KG * _C_M_S**2 / _GEV_J / (_PC_M * 100.0) ** 3
MSUN_KPC3_TO_GEV_CM3 = MSUN_PC3_TO_GEV_CM3 * MSUN_KPC3_TO_MSUN_PC3
ACC_UNIT = "(km/s)^2/kpc"
DENSITY_UNIT = "Msun/kpc^3"


def density_from_divergence(div_a):
    """Poisson's equation ``rho = -div(a) / (4 pi G)``: Msun/kpc^3 from ``div a`` in (km/s)^2/kpc^2.

    Works on numpy arrays and torch tensors alike.
    """
    return -div_a / (4.0 * math.pi * G)
