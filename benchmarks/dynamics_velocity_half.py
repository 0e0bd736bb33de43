"""The velocity half alone: one member's p(v|x) flow trained on a Hernquist mock, accelerations with the true n(x).

The diagnosis (benchmarks/dynamics_diagnosis.py) found that with the analytic n(x) the flows' error is that of
p(v|x); this trains only that flow (the ``velocity_flow`` of member ``--member`` of a
:class:`~excess.astro.dynamics.model.PhaseSpaceFlow` with ``radial_scale="profile"``, ``velocity_scale="auto"``,
same seeds as a full fit), so that options of the velocity half can be compared at half the training cost.
At 12 radii log-spaced between the 10 % and 90 % mass radii x 3 random directions, ``--nv`` velocities from the
flow (two draws), least-squares accelerations of ``log n_true + log p_flow``: prints the median vector and radial
errors and the mean radial bias per radius, and appends them to ``--log`` (JSON lines).

``--instrument v`` replaces the least-squares solve (normal equations weighted by ``g_v = grad_v log f``) by the
instrumental-variable solve ``a = -(sum w_i g_v,i^T)^-1 sum (v_i . g_x,i) w_i`` with ``w_i = v_i - <v>`` (the
Jeans-like weighting: exact for an exact ``f`` as well, but its matrix is not inflated by errors of ``g_v``).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_velocity_half.py --n-stars 30000 --epochs 30 --degree 3
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_velocity_half.py --n-stars 30000 --epochs 30 --degree bic
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dynamics_hernquist.hernquist_sigma2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-stars", type=int, default=100_000)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--degree", default="bic", help="velocity_degree: 'bic' or an integer")
    p.add_argument("--velocity-kind", default=None, choices=["maf", "nsf"])
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--nv", type=int, default=1000)
    p.add_argument("--member", type=int, default=0)
    p.add_argument("--members", type=int, default=4, help="ensemble size whose seeds are reproduced")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--instrument", default="gv", choices=["gv", "v"],
                   help="gv: least squares (the library's solve); v: instrumental variables w = v - <v>")
    p.add_argument("--transforms", type=int, default=4)
    p.add_argument("--hidden", default="64,64")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay of the velocity flow")
    p.add_argument("--context", default="y", choices=["y", "none"],
                   help="none: an unconditional velocity flow p'(v / s(r)) (isotropic, shape fixed; a diagnostic)")
    p.add_argument("--log", default=None, help="append the result as a JSON line")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from excess._util import check_random_state, spawn_seeds
    from excess.astro.dynamics.analytic import HernquistSphere
    from excess.astro.dynamics.boltzmann import log_f_gradients, solve_accelerations
    from excess.astro.dynamics.mocks import hernquist_mock
    from excess.astro.dynamics.model import PhaseSpaceFlow, _fit_dispersion_profile
    from excess.nn.flows import ConditionalFlow

    mock = hernquist_mock(args.n_stars, mass=1e12, a=10.0, random_state=args.seed)
    x, v = mock.x, mock.v
    deg = None if args.degree == "bic" else int(args.degree)
    m = PhaseSpaceFlow(n_members=args.members, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       radial_scale="profile", velocity_scale="auto", velocity_kind=args.velocity_kind, transforms=args.transforms,
                       hidden=tuple(int(h) for h in args.hidden.split(",")),
                       velocity_degree=deg, device="cpu")
    seeds = spawn_seeds(check_random_state(args.seed), 2 * args.members)  # as PhaseSpaceFlow.fit
    m.radial_scale_, m.vertical_profile_ = m._resolve_scale(x), None
    m.velocity_coef_, m.velocity_range_ = _fit_dispersion_profile(x, v, degree="bic" if deg is None else deg)
    y, vs = m._compress_np(x), m._scaled_velocities_np(x, v)
    c0 = time.process_time()
    kw = m._flow_kwargs(seeds[2 * args.member + 1], m.preprocessing, velocity=True)
    vf = ConditionalFlow(**kw, weight_decay=args.weight_decay).fit(vs, y if args.context == "y" else None)

    def ctx(yy):
        return yy if args.context == "y" else None
    cpu = time.process_time() - c0

    T = HernquistSphere(1e12, 10.0)
    r = np.repeat(np.geomspace(*T.mass_radius([0.1, 0.9]), 12), 3)
    d = np.random.default_rng(5).normal(size=(r.size, 3))
    xq = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    a_true, rhat = T.acceleration(xq), xq / r[:, None]

    def log_f(X, V):  # true log n (up to a constant) + the flow's log p(v | x)
        yy, _ = m._compress(X)
        ls = m._velocity_log_scale(X)
        rr = torch.linalg.vector_norm(X, dim=-1)
        return -torch.log(rr) - 3 * torch.log(rr + T.a) + vf.log_prob_torch(V / torch.exp(ls)[:, None], ctx(yy)) - 3 * ls

    from dynamics_hernquist import hernquist_sigma2

    def sigma2_true(rr):
        return hernquist_sigma2(T, rr)

    xr = np.repeat(xq, args.nv, axis=0)
    out = {}
    for s in (1, 2):
        vv = m._scaled_velocities_np(xr, vf.sample(m._compress_np(xr) if args.context == 'y' else np.empty((len(xr), 0)), random_state=s), inverse=True)
        vt = torch.as_tensor(vv.reshape(len(xq), args.nv, 3))
        gx, gv = log_f_gradients(log_f, torch.as_tensor(xq), vt)
        gx, gv = gx.detach(), gv.detach()
        for inst in ("gv", "v"):  # least squares, and the instrumental-variable (Jeans-weighted) solve
            if inst == "gv":
                acc = solve_accelerations(gx, gv, vt).numpy()
            else:
                w = vt - vt.mean(1, keepdim=True)
                acc = -torch.linalg.solve(torch.einsum("pni,pnj->pij", w, gv),
                                          torch.einsum("pn,pni->pi", (vt * gx).sum(-1), w)).numpy()
            rb = (acc * rhat).sum(1) / (a_true * rhat).sum(1) - 1
            key = f"draw{s}" if inst == args.instrument else f"draw{s}_{inst}"
            out[key] = {"vec": float(np.median(np.linalg.norm(acc - a_true, axis=1) / np.linalg.norm(a_true, axis=1))),
                        "radial": float(np.median(np.abs(rb))),
                        "radial_bias_by_radius": [round(float(b), 4) for b in rb.reshape(12, 3).mean(1)]}
        vn = vt.numpy()
        vr = (vn * rhat[:, None, :]).sum(-1)
        s2r = vr.var(1)
        s2t = (vn.var(1).sum(-1) - s2r) / 2
        s2 = sigma2_true(np.linalg.norm(xq, axis=1))
        out[f"draw{s}_moments"] = {"sigma_r2_rel": [round(float(b), 4) for b in (s2r / s2 - 1).reshape(12, 3).mean(1)],
                                   "sigma_t2_rel": [round(float(b), 4) for b in (s2t / s2 - 1).reshape(12, 3).mean(1)]}
    res = {**vars(args), "degree_used": len(m.velocity_coef_) - 1, "cpu_seconds_fit": cpu,
           "best_epochs": vf.history_["best_epochs"], "val_loss": min(vf.history_["val_loss"]), **out,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "command": "python " + " ".join(sys.argv)}
    print(json.dumps(res, indent=1))
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
