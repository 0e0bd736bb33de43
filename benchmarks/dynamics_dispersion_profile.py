"""How much of the Hernquist acceleration error the velocity scaling's dispersion profile s(r) alone explains.

``velocity_scale="auto"`` divides velocities by a polynomial profile s(r) in log r; the velocity flow then has to
learn the remaining x-dependence, and in practice inherits most of the profile's slope error. This script needs
no training: for galpy Hernquist mocks (M = 1e12 Msun, a = 10 kpc) it fits s(r) with a fixed cubic (the first
version) and with the degree chosen by BIC (the default), and prints at 7 radii between the 10 % and 90 % mass
radii the error of the isotropic Jeans acceleration ``a_r = -(s^2 / r) (d ln n / d ln r + d ln s^2 / d ln r)``
with the true n(r) and the fitted s(r), and of the density ``(1 / (4 pi G r^2)) d(r^2 |a_r|) / dr`` from it.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_dispersion_profile.py --n-stars 30000,100000,300000
"""
import argparse
import math
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-stars", default="30000,100000,300000")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from excess.astro.dynamics.mocks import hernquist_mock
    from excess.astro.dynamics.model import _fit_dispersion_profile
    from excess.astro.dynamics.units import G

    a, M = 10.0, 1e12
    s = np.sqrt([0.1, 0.9])
    rr = np.geomspace(*(a * s / (1 - s)), 7)
    a_true = G * M / (rr + a) ** 2
    rho_true = M * a / (2 * math.pi * rr * (rr + a) ** 3)
    print("radii [kpc]:", " ".join(f"{r:.1f}" for r in rr))
    for n in (int(k) for k in args.n_stars.split(",")):
        mock = hernquist_mock(n, mass=M, a=a, random_state=args.seed)
        for deg in (3, "bic"):
            coef, _ = _fit_dispersion_profile(mock.x, mock.v, degree=deg)
            dcoef = np.polyder(coef)

            def acc(r):
                u = np.log(r)
                return np.exp(np.polyval(coef, u)) / r * (1 + 3 * r / (r + a) - np.polyval(dcoef, u))

            h = 1e-4
            rho = ((rr * (1 + h)) ** 2 * acc(rr * (1 + h)) - (rr * (1 - h)) ** 2 * acc(rr * (1 - h))) / (2 * h * rr) \
                / (4 * math.pi * G * rr**2)
            print(f"{n:7d} stars, degree {deg!s:>3} -> {len(coef) - 1}: a_r error "
                  + " ".join(f"{e:+.3f}" for e in acc(rr) / a_true - 1)
                  + " | rho error " + " ".join(f"{e:+.2f}" for e in rho / rho_true - 1))
    print("command: python " + " ".join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
