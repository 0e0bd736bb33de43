"""Where the Hernquist accelerations lose accuracy: each half of f = n(x) p(v|x) swapped for the analytic one.

For members of a fitted PhaseSpaceFlow (a run's ``model/`` directory, e.g. from benchmarks/dynamics_hernquist.py),
at 12 radii between the 10 % and 90 % mass radii x 3 random directions, with ``N`` velocities from each member's
p(v|x) (unbound ones, where the analytic f vanishes, are halved), prints the median vector and radial errors of
the least-squares accelerations for: flow n + flow p, true n + flow p, flow n + true p, true n + true p; the
change when the velocities are redrawn; and the radial and tangential errors of grad log n. The README's
diagnosis paragraph quotes these numbers.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_diagnosis.py runs/dynamics_hernquist/model 1000 0,1
"""
import math
import sys

import numpy as np
import torch

from excess.astro.dynamics.model import PhaseSpaceFlow
from excess.astro.dynamics.analytic import HernquistSphere
from excess.astro.dynamics.boltzmann import accelerations_at, log_f_gradients, solve_accelerations
torch.set_num_threads(1)
model = PhaseSpaceFlow.load(sys.argv[1]); NV = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
T = HernquistSphere(1e12, 10.0)
rng = np.random.default_rng(5)
r = np.repeat(np.geomspace(*T.mass_radius([0.1, 0.9]), 12), 3)
d = rng.normal(size=(r.size, 3)); x = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
a_true = T.acceleration(x); rhat = x / r[:, None]
xt = torch.as_tensor(x)
def parts(m):
    nf, vf = model.members_[m]
    def logn(x):
        y, ld = model._compress(x); return nf.log_prob_torch(y) + ld
    def logp(x, v):
        return model.log_f_torch(x, v, m) - logn(x)
    return logn, logp
def tlogn(x):
    r = torch.linalg.vector_norm(x, dim=-1); a = T.a
    return torch.log(T.mass * a / (2 * math.pi * r * (r + a) ** 3) / T.mass)
def tlogp(x, v):
    r = torch.linalg.vector_norm(x, dim=-1); a = T.a
    return T.log_df(x, v) - torch.log(T.mass * a / (2 * math.pi * r * (r + a) ** 3))
def err(a):
    rel = np.linalg.norm(a - a_true, axis=1) / np.linalg.norm(a_true, axis=1)
    rr = np.abs((a * rhat).sum(1) / (a_true * rhat).sum(1) - 1)
    rs = (a * rhat).sum(1) / (a_true * rhat).sum(1) - 1
    return f"vec {100*np.median(rel):5.2f}%  radial {100*np.median(rr):5.2f}%  radial bias {100*np.median(rs):+5.2f}%"
def acc(logf, v):
    return accelerations_at(logf, xt, torch.as_tensor(v)).detach().numpy()
M = model.n_members_; MEMBERS = [int(k) for k in sys.argv[3].split(",")]
res = {}
for m in MEMBERS:
    logn, logp = parts(m)
    v = model.sample_velocities(x, NV, member=m, random_state=1)
    v2 = model.sample_velocities(x, NV, member=m, random_state=2)
    # true-f velocities (bound check) : keep flow velocities for all variants, drop unbound for true p
    E = 0.5 * (v**2).sum(-1) + T.potential(x)[:, None]
    print(f"member {m}: unbound fraction of flow velocities {np.mean(E >= 0):.4f}")
    v = np.where((E < 0)[..., None], v, v * 0.5)
    for name, f in [("flow n + flow p", lambda X, V: logn(X) + logp(X, V)),
                    ("true n + flow p", lambda X, V: tlogn(X) + logp(X, V)),
                    ("flow n + true p", lambda X, V: logn(X) + tlogp(X, V)),
                    ("true n + true p", lambda X, V: tlogn(X) + tlogp(X, V))]:
        a = acc(f, v); res.setdefault(name, []).append(a); print(f"  {name:18s} {err(a)}")
    a2 = acc(lambda X, V: logn(X) + logp(X, V), v2)
    print(f"  velocity-seed change: median |a1-a2|/|a| {100*np.median(np.linalg.norm(res['flow n + flow p'][-1]-a2,axis=1)/np.linalg.norm(a_true,axis=1)):.2f}%")
    # tangential gradient of log n vs radial
    X = xt.clone().requires_grad_(True); g, = torch.autograd.grad(logn(X).sum(), X); g = g.numpy()
    gt = (g * rhat).sum(1); gtan = np.linalg.norm(g - gt[:, None] * rhat, axis=1)
    X2 = xt.clone().requires_grad_(True); g2, = torch.autograd.grad(tlogn(X2).sum(), X2); g2 = (g2.numpy() * rhat).sum(1)
    print(f"  grad log n: median |radial/true-1| {100*np.median(np.abs(gt/g2-1)):.2f}%, median |tangential|/|true| {100*np.median(gtan/np.abs(g2)):.2f}%")
for name, lst in res.items():
    print(f"ensemble mean of a, {name:18s} {err(np.mean(lst, 0))}")
print("command: python " + " ".join(sys.argv))
