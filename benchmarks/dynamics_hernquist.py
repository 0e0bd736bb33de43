"""Accelerations and density of an isotropic Hernquist sphere recovered from its stars (flows + Boltzmann).

Steps (the library calls behind ``excess dynamics mock | fit | density``, in one run directory):

1. galpy mock: ``--n-stars`` stars of an isotropic Hernquist sphere (M = 1e12 Msun, a = 10 kpc);
2. fit: a :class:`~excess.astro.dynamics.model.PhaseSpaceFlow` ensemble of ``--members`` members
   (MAF, SiLU, radial compression at the median radius), ``--epochs`` cosine-annealed epochs;
3. density: at ``--n-radii`` radii log-spaced between the 10 % and 90 % mass radii (4.6-185 kpc) times
   ``--n-directions`` random directions, ``--n-velocities`` velocities per position from each member's
   p(v|x), least-squares accelerations and -div(a)/(4 pi G) by autograd.

Prints the median relative acceleration error, the median |rho/rho_true - 1|, the ensemble-spread
coverage (fraction of values within 1 and 2 member standard deviations of the truth), wall times and
peak memory (max RSS of this process). Goals (issue 19): <= 2 % acceleration error, density within 10 %;
An et al. (arXiv:2106.05981) reach sub-percent with 1M stars and 20 flows.

Reproduce (the numbers in the README):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dynamics_hernquist.py --n-stars 100000 \
        --members 4 --epochs 60 --n-velocities 1000 --out runs/dynamics_hernquist

One torch thread: on the shared two cores (load 7-12) two threads were many times slower than one
(OpenMP threads spin while waiting for a core).

The run directory holds report.html with the profile plots against truth.

``--diagnose`` (with ``--reuse`` it needs no training) splits the shared radial bias between the two halves of
``f = n(x) p(v|x)``: at the benchmark's radii x directions, each member's least-squares accelerations with
(flow n + flow p), (true n + flow p: the velocity half's error alone) and (flow n + true p: the density half's
error alone; analytic isotropic Hernquist ``f(E)``, unbound flow velocities halved), the shell-averaged radial bias
of the members' mean per radius, and the second velocity moments ``<v_r^2>``, ``<v_t^2>/2`` of the flow's
``p(v|x)`` and of the stars within 0.1 dex of each radius against the analytic dispersion (Hernquist 1990, eq. 10).
Prints a table and stores it in ``benchmark.json`` under ``"diagnosis"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def hernquist_sigma2(truth, r):
    """1D velocity dispersion^2 of the isotropic Hernquist sphere (Hernquist 1990, eq. 10), (km/s)^2."""
    import numpy as np

    from excess.astro.dynamics.units import G

    r, a, M = np.asarray(r, dtype=np.float64), truth.a, truth.mass
    q = r / a
    return G * M / (12 * a) * (12 * q * (1 + q) ** 3 * np.log((r + a) / r) - q / (1 + q) * (25 + 52 * q + 42 * q**2 + 12 * q**3))


def decompose(model, truth, x_stars, v_stars, *, n_radii=12, n_directions=8, n_velocities=1000, seed=5) -> list[dict]:
    """Per radius: radial bias of the members' mean acceleration with each half of f swapped for the truth,
    and the flow's and the stars' second velocity moments against the truth (see the module docstring)."""
    import numpy as np
    import torch

    from excess.astro.dynamics.boltzmann import accelerations_at

    T = truth
    radii = np.geomspace(*T.mass_radius([0.1, 0.9]), n_radii)
    r = np.repeat(radii, n_directions)
    d = np.random.default_rng(seed).normal(size=(r.size, 3))
    x = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    rhat = x / r[:, None]
    a_true_r = (T.acceleration(x) * rhat).sum(1)
    xt = torch.as_tensor(x)

    def tlogn(X):  # log of the true n(x) up to a constant
        rr = torch.linalg.vector_norm(X, dim=-1)
        return -torch.log(rr) - 3 * torch.log(rr + T.a)

    def tlogp(X, V):  # log of the true p(v | x) up to a constant
        return T.log_df(X, V) - tlogn(X)

    combos = ("flow n + flow p", "true n + flow p", "flow n + true p")
    acc = {c: [] for c in combos}
    mom = []
    for m in range(model.n_members_):
        nf = model.members_[m][0]

        def logn(X, nf=nf):
            y, ld = model._compress(X)
            return nf.log_prob_torch(y) + ld

        def logp(X, V, m=m, logn=logn):
            return model.log_f_torch(X, V, m) - logn(X)

        v = model.sample_velocities(x, n_velocities, member=m, random_state=seed + 100 + m)
        vr = (v * rhat[:, None, :]).sum(-1)
        s2r = (vr**2).mean(1) - vr.mean(1) ** 2
        mom.append((s2r, ((v**2).sum(-1).mean(1) - (v.mean(1) ** 2).sum(-1) - s2r) / 2))
        unbound = 0.5 * (v**2).sum(-1) + T.potential(x)[:, None] >= 0
        vb = np.where(unbound[..., None], 0.5 * v, v)  # the analytic f vanishes for unbound velocities
        for c, f, vv in ((combos[0], lambda X, V: logn(X) + logp(X, V), v),
                         (combos[1], lambda X, V: tlogn(X) + logp(X, V), v),
                         (combos[2], lambda X, V: logn(X) + tlogp(X, V), vb)):
            a = accelerations_at(f, xt, torch.as_tensor(vv)).detach().numpy()
            acc[c].append((a * rhat).sum(1))
    s2 = hernquist_sigma2(T, radii)
    rs = np.linalg.norm(x_stars, axis=1)
    vrs = (v_stars * x_stars).sum(1) / rs
    vts = (v_stars**2).sum(1) - vrs**2
    rows = []
    for j, rr in enumerate(radii):
        i = slice(j * n_directions, (j + 1) * n_directions)
        row = {"r_kpc": float(rr)}
        for c in combos:
            row[c] = float(np.mean(np.mean(acc[c], 0)[i]) / np.mean(a_true_r[i]) - 1)
            row[c + " (members)"] = [float(np.mean(a[i]) / np.mean(a_true_r[i]) - 1) for a in acc[c]]
        row["flow <v_r^2>"] = float(np.mean([np.mean(s[0][i]) for s in mom]) / s2[j] - 1)
        row["flow <v_t^2>/2"] = float(np.mean([np.mean(s[1][i]) for s in mom]) / s2[j] - 1)
        sel = np.abs(np.log10(rs / rr)) < 0.1
        row["stars <v_r^2>"] = float(np.mean(vrs[sel] ** 2) / np.mean(hernquist_sigma2(T, rs[sel])) - 1)
        row["stars <v_t^2>/2"] = float(np.mean(vts[sel]) / 2 / np.mean(hernquist_sigma2(T, rs[sel])) - 1)
        rows.append(row)
    keys = [k for k in rows[0] if k != "r_kpc" and not k.endswith("(members)")]
    print("relative to truth (%), shell means over directions; members' mean acceleration")
    print(" r/kpc " + "".join(f"{k:>17s}" for k in keys))
    for row in rows:
        print(f"{row['r_kpc']:6.1f} " + "".join(f"{100 * row[k]:+17.1f}" for k in keys))
    print("median |.| " + "".join(f"{100 * np.median([abs(row[k]) for row in rows]):17.2f}" for k in keys))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-stars", type=int, default=100_000)
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--transforms", type=int, default=4)
    p.add_argument("--velocity-kind", default=None, choices=["maf", "nsf"], help="kind of the velocity flow (default maf)")
    p.add_argument("--bins", type=int, default=8, help="spline bins (nsf)")
    p.add_argument("--hidden", default="64,64")
    p.add_argument("--n-radii", type=int, default=12)
    p.add_argument("--n-directions", type=int, default=4)
    p.add_argument("--n-velocities", type=int, default=1000)
    p.add_argument("--radial-scale", default="profile", help="'profile', 'auto' or a length in kpc")
    p.add_argument("--velocity-scale", default="auto", choices=["auto", "none"])
    p.add_argument("--velocity-degree", default="bic", help="degree of s(r) in log r: 'bic' or an integer (3: first version)")
    p.add_argument("--combine", default="accelerations", choices=["gradients", "accelerations"])
    p.add_argument("--density-method", default="ball", choices=["ball", "autograd"])
    p.add_argument("--ball-radius", default="0.2r")
    p.add_argument("--trim", type=float, default=0.0, help="fraction of velocity tails dropped per position")
    p.add_argument("--weights", default="score", choices=["score", "velocity"],
                   help="Boltzmann solve: least squares (score) or the model's Jeans equation (velocity)")
    p.add_argument("--solver", default="least-squares", choices=["least-squares", "potential"],
                   help="least squares at each position, or one smooth potential per member fitted to all stars")
    p.add_argument("--potential-stars", type=int, default=None, help="--solver potential: stars drawn for the fit (default all)")
    p.add_argument("--potential-velocities", default="sampled", choices=["sampled", "observed"])
    p.add_argument("--potential-epochs", type=int, default=None, help="--solver potential: epochs (default the estimator's)")
    p.add_argument("--resample", default="none", choices=["none", "bootstrap"],
                   help="bootstrap: each member trained on its own bootstrap resample of the stars")
    p.add_argument("--jobs", type=int, default=1, help="members trained in parallel processes")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reuse", action="store_true",
                   help="evaluate the model already fitted in --out again (fit figures from its benchmark.json)")
    p.add_argument("--diagnose", action="store_true",
                   help="also split the radial bias between n(x) and p(v|x) (see the module docstring)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dynamics_hernquist")
    args = p.parse_args(argv)

    from excess.astro.dynamics.mocks import hernquist_mock, save_mock
    from excess.astro.dynamics.run import field_run, fit_run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prev = json.loads((out / "benchmark.json").read_text()) if args.reuse else None
    if prev is None:
        t0 = time.perf_counter()
        mock = hernquist_mock(args.n_stars, mass=1e12, a=10.0, random_state=args.seed)
        stars = save_mock(mock, out / "stars.h5")
        t_mock = time.perf_counter() - t0
        params = dict(n_members=args.members, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      transforms=args.transforms, velocity_kind=args.velocity_kind, bins=args.bins, hidden=tuple(int(h) for h in args.hidden.split(",")),
                      radial_scale=args.radial_scale if args.radial_scale in ("profile", "auto") else float(args.radial_scale),
                      velocity_scale=None if args.velocity_scale == "none" else args.velocity_scale,
                      velocity_degree=None if args.velocity_degree == "bic" else int(args.velocity_degree), n_jobs=args.jobs,
                      resample=None if args.resample == "none" else args.resample,
                      device="cpu")
        c0, ch0 = time.process_time(), _children_cpu()
        fit = fit_run(stars, out, params=params, random_state=args.seed, threads=args.threads)
        cpu_fit = time.process_time() - c0 + _children_cpu() - ch0
    else:
        t_mock, cpu_fit = prev["seconds_mock"], prev["cpu_seconds_fit"]
        fit = {"seconds": prev["seconds_fit"]}
    dens = field_run(out, what="density", n_radii=args.n_radii, n_directions=args.n_directions,
                     n_velocities=args.n_velocities, density_method=args.density_method, ball_radius=args.ball_radius,
                     combine=args.combine, trim=args.trim, weights=args.weights, random_state=args.seed + 1,
                     threads=args.threads, solver=args.solver, potential_velocities=args.potential_velocities,
                     potential_max_stars=args.potential_stars,
                     potential_params=None if args.potential_epochs is None else {"epochs": args.potential_epochs})
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0 if prev is None else \
        prev["peak_rss_mb_training_workers"]
    res = {
        "n_stars": args.n_stars, "members": args.members, "epochs": args.epochs, "transforms": args.transforms,
        "hidden": args.hidden, "velocity_kind": args.velocity_kind or "maf",
        "velocity_degree": args.velocity_degree, "resample": args.resample,
        "positions": dens["n_positions"], "velocities_per_position": args.n_velocities,
        "acc_median_rel_error": dens["acc"]["median_rel_error"],
        "acc_median_rel_error_radial_component": dens["acc"]["median_rel_error_radial"],
        "acc_rel_error_p16_p84": [dens["acc"]["p16_rel_error"], dens["acc"]["p84_rel_error"]],
        "acc_median_rel_spread": dens["acc"]["median_rel_spread"],
        "acc_coverage_1_2_sigma": [dens["acc"]["coverage_1sigma"], dens["acc"]["coverage_2sigma"]],
        "acc_median_rel_error_members": dens["acc"]["median_rel_error_members"],
        "acc_shell_median_abs_rel_error_radial": dens["acc"].get("shell_median_abs_rel_error_radial"),
        "solver": args.solver, "potential": dens.get("potential"),
        "density_method": dens.get("density_method", args.density_method), "ball_radius": args.ball_radius, "combine": args.combine, "trim": args.trim, "weights": args.weights,
        "rho_median_abs_rel_error": dens["rho"]["median_abs_rel_error"],
        "rho_shell_median_abs_rel_error": dens["rho"].get("shell_median_abs_rel_error"),
        "rho_shell_rel_errors": dens["rho"].get("shell_rel_errors"),
        "rho_shell_max_abs_rel_error": dens["rho"].get("shell_max_abs_rel_error"),
        "rho_shell_coverage_1_2_sigma": [dens["rho"].get("shell_coverage_1sigma"), dens["rho"].get("shell_coverage_2sigma")],
        "rho_median_rel_bias": dens["rho"]["median_rel_bias"],
        "rho_median_rel_spread": dens["rho"]["median_rel_spread"],
        "rho_coverage_1_2_sigma": [dens["rho"]["coverage_1sigma"], dens["rho"]["coverage_2sigma"]],
        "seconds_mock": t_mock, "seconds_fit": fit["seconds"], "cpu_seconds_fit": cpu_fit,
        "seconds_accelerations_and_density": dens["seconds"], "cpu_seconds_accelerations_and_density": dens["cpu_seconds"],
        "peak_rss_mb": dens["peak_rss_mb"], "peak_rss_mb_training_workers": rss_children, "load_average": os.getloadavg(), "machine": platform.processor() or platform.machine(),
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "report": str(out / "report.html"),
    }
    if args.diagnose:
        from excess.astro.dynamics.analytic import HernquistSphere
        from excess.astro.dynamics.mocks import load_mock
        from excess.astro.dynamics.model import PhaseSpaceFlow

        stars_all = load_mock(out / "stars.h5")
        res["diagnosis"] = decompose(PhaseSpaceFlow.load(out / "model"), HernquistSphere(1e12, 10.0), stars_all.x,
                                     stars_all.v, n_radii=args.n_radii, n_directions=args.n_directions,
                                     n_velocities=args.n_velocities, seed=args.seed + 5)
    (out / "benchmark.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
