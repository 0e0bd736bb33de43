"""The smooth-potential fit's own error: fitted to the analytic Hernquist f's exact grad log f (no flows).

Takes ``N_STARS`` random stars of a Hernquist run directory's ``stars.h5`` (M = 1e12 Msun, a = 10 kpc), their own
velocities, the exact ``grad log f`` of the isotropic Hernquist ``f(E)``, the run's flow position map, and the
default :class:`~excess.astro.dynamics.potential.BoltzmannPotential`; prints the median vector acceleration error
at 12 radii between the 10 % and 90 % mass radii x 4 directions, the radial bias and the density error per radius.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_potential_exact.py runs/dynamics_hernquist 30000 60
"""
import sys
import time

import numpy as np
import torch

from excess.astro.dynamics.analytic import HernquistSphere
from excess.astro.dynamics.boltzmann import log_f_gradients
from excess.astro.dynamics.mocks import load_mock
from excess.astro.dynamics.model import PhaseSpaceFlow
from excess.astro.dynamics.potential import BoltzmannPotential, _position_map

run, n, ep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
T = HernquistSphere(1e12, 10.0)
s = load_mock(f"{run}/stars.h5")
rng = np.random.default_rng(0)
i = rng.choice(len(s.x), n, replace=False)
x, v = s.x[i], s.v[i]
model = PhaseSpaceFlow.load(f"{run}/model")
gx, gv = log_f_gradients(T.log_df, torch.as_tensor(x), torch.as_tensor(v)[:, None, :])
gx, gv = gx[:, 0].numpy(), gv[:, 0].numpy()
ok = np.isfinite(gx).all(1) & np.isfinite(gv).all(1)
t = time.process_time()
p = BoltzmannPotential(epochs=ep, random_state=1, device="cpu").fit(x[ok], v[ok], gx[ok], gv[ok],
                                                                   position_map=_position_map(model))
print("cpu", time.process_time() - t, "val", min(p.history_["val_loss"]))
r = np.repeat(np.geomspace(*T.mass_radius([0.1, 0.9]), 12), 4)
d = rng.normal(size=(r.size, 3))
q = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
a, rho = p.acceleration_and_density(q)
at = T.acceleration(q)
rh = q / r[:, None]
print("median vec err", np.median(np.linalg.norm(a - at, axis=1) / np.linalg.norm(at, axis=1)))
print("radial bias % per radius", np.round(100 * ((a * rh).sum(1) / (at * rh).sum(1) - 1).reshape(12, 4).mean(1), 1))
print("rho % per radius", np.round(100 * (rho / T.density(q) - 1).reshape(12, 4).mean(1)))
