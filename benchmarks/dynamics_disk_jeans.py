"""Why the flows missed the disk's a_z: the isothermal Jeans estimate with a Gaussian versus a sech^2 n(z).

For the disk mock (a file written by ``excess dynamics mock --kind disk`` or benchmarks/dynamics_disk.py), the
stars with ``|R - 8| < 0.5`` kpc give ``<v_z^2>`` and two fits of the vertical profile: a Gaussian (what an
affine MAF's conditional densities are close to) and the sech^2 profile of ``vertical_scale="profile"``. The
isothermal Jeans equation ``a_z = <v_z^2> d ln n / dz`` then shows the error pattern each profile alone
produces, against the potential's true ``a_z`` at R = 8 kpc. No training; seconds.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_disk_jeans.py runs/dynamics_disk/stars.h5
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv=None) -> int:
    from excess.astro.dynamics.mocks import load_mock
    from excess.astro.dynamics.model import _fit_vertical_profile

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    m = load_mock(argv[0])
    R = np.hypot(m.x[:, 0], m.x[:, 1])
    sel = np.abs(R - 8.0) < 0.5
    z, vz = m.x[sel, 2], m.v[sel, 2]
    zc, z0 = _fit_vertical_profile(z)
    sg, s2 = z.std(), np.mean(vz**2)
    print(f"{sel.sum()} stars with |R - 8| < 0.5 kpc: sech^2 fit zc = {zc:.4f}, z0 = {z0:.4f} kpc; "
          f"Gaussian sigma = {sg:.3f} kpc; <v_z^2> = {s2:.1f} (km/s)^2")
    zq = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    at = m.truth.acceleration(np.column_stack([8 + 0 * zq, 0 * zq, zq]))[:, 2]
    ag = -s2 * (zq - z.mean()) / sg**2
    ase = -s2 * np.tanh((zq - zc) / (2 * z0)) / z0
    for q, t, g, s in zip(zq, at, ag, ase):
        print(f"z = {q:.1f} kpc: true a_z {t:8.1f}   Jeans, Gaussian n {g:8.1f} ({g / t - 1:+.0%})   "
              f"Jeans, sech^2 n {s:8.1f} ({s / t - 1:+.0%})")
    print("command: python " + " ".join([sys.argv[0], *argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
