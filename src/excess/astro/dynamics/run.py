"""A dynamics run directory: fit -> accelerations -> density, with metrics against truth and report.html.

Layout (every file written atomically; each step adds its section to ``metrics.json`` and ``config.json``)::

    RUN_DIR/
      config.json        the resolved settings of each step, the stars file and its spec (truth, if any)
      provenance.json    versions of the packages, excess's git revision
      metrics.json       {"fit": ..., "accelerations": ..., "density": ...}
      model/             the PhaseSpaceFlow ensemble (state dicts + JSON)
      accelerations.h5   query positions, per-member accelerations [and densities], truth where known
      density.h5
      plots/*.png        training losses, profiles and maps against truth
      report.html

Query positions: for a spherical mock, ``n_radii`` radii log-spaced between the 10 % and 90 % mass radii
(the range of the benchmark) times ``n_directions`` random directions; for the disk mock, a vertical column
at the "solar" radius, ``n_radii`` heights evenly spaced in ``|z| <= 1`` kpc times ``n_directions`` azimuths
within +-0.05 rad; otherwise ``n_positions`` stars drawn from the training sample, or positions given by the
caller.

Densities: ``density_method="ball"`` (default) averages ``div a`` over a ball (Gauss's theorem, see
:mod:`.estimate`) of radius ``ball_radius``: a number in kpc, or ``"<f>r"`` for ``f`` times the distance from
the origin (default ``"0.2r"`` for spherical mocks, ``0.1`` kpc otherwise); ``"autograd"`` is the pointwise
``-div a`` by second derivatives. For spherical mocks the metrics also give the shell averages (the mean over
the ``n_directions`` directions at each radius: this uses the mock's symmetry, the estimates do not).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np

from ..._util import (atomic_path, atomic_write_json, check_random_state, check_writable, get_logger,
                      package_versions, to_jsonable)
from ...errors import InputError
from .mocks import load_mock, truth_from_spec

SOLVERS = ("least-squares", "potential")

__all__ = ["SOLVERS", "fit_run", "field_run", "write_dynamics_report", "query_positions", "compare_to_truth"]

log = get_logger(__name__)
_VERSIONS = ("numpy", "torch", "zuko", "galpy", "astropy", "scipy")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _update_json(path: Path, key: str, value) -> None:
    d = _read_json(path)
    d[key] = to_jsonable(value)
    atomic_write_json(path, d)


def fit_run(stars_path, run_dir, *, params: dict | None = None, random_state=0, threads: int | None = None,
            plots: bool = True) -> dict:
    """Train a :class:`~excess.astro.dynamics.model.PhaseSpaceFlow` on the stars in ``stars_path`` (HDF5 ``x``, ``v``)."""
    from ...nn.training import set_threads
    from ...report.figures import pyplot, save_figure
    from .model import PhaseSpaceFlow

    set_threads(threads)
    run_dir = Path(run_dir)
    stars = load_mock(stars_path)  # read and checked before the run directory exists: a bad file leaves nothing
    check_writable(run_dir)
    model = PhaseSpaceFlow(random_state=random_state)
    model.set_params(**(params or {}))
    t0 = time.perf_counter()
    model.fit(stars.x, stars.v)
    seconds = time.perf_counter() - t0
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)  # only once a result exists
    model.save(run_dir / "model")
    _update_json(run_dir / "config.json", "fit", {"stars": str(Path(stars_path).resolve()), "spec": stars.spec,
                                                   "params": model.get_params(deep=False), "seed": random_state})
    atomic_write_json(run_dir / "provenance.json", {"versions": package_versions(_VERSIONS)})
    hist = [(m[0].history_, m[1].history_) for m in model.members_]
    summary = {"n_stars": len(stars), "n_members": model.n_members_, "radial_scale_kpc": model.radial_scale_,
               "seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
               "best_val_loss_n": [h[0]["val_loss"][h[0]["best_epochs"][0]] for h in hist],
               "best_val_loss_v": [h[1]["val_loss"][h[1]["best_epochs"][0]] for h in hist],
               "epochs_run": [h[1]["stopped_epoch"] + 1 for h in hist]}
    _update_json(run_dir / "metrics.json", "fit", summary)
    if not plots:
        write_dynamics_report(run_dir)
        return summary
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, (hn, hv) in enumerate(hist):
        axes[0].plot(hn["val_loss"], color=f"C{k}", label=f"member {k}")
        axes[1].plot(hv["val_loss"], color=f"C{k}")
    axes[0].set(xlabel="epoch", ylabel="validation NLL", title="n(x)")
    axes[1].set(xlabel="epoch", ylabel="validation NLL", title="p(v | x)")
    axes[0].legend(fontsize=8)
    save_figure(fig, run_dir / "plots" / "fit_losses.png")
    write_dynamics_report(run_dir)
    return summary


def query_positions(spec: dict, x_stars: np.ndarray | None = None, *, n_radii: int = 12, n_directions: int = 4,
                    n_positions: int = 64, random_state=None) -> np.ndarray:
    """Query positions (see the module docstring)."""
    rng = check_random_state(random_state)
    if spec.get("kind") == "hernquist":
        truth = truth_from_spec(spec)
        r = np.repeat(np.geomspace(*truth.mass_radius([0.1, 0.9]), int(n_radii)), int(n_directions))
        d = rng.normal(size=(r.size, 3))
        return d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    if spec.get("kind") == "disk":
        R0 = float(spec.get("center", [8.0])[0])
        z = np.repeat(np.linspace(-1.0, 1.0, int(n_radii)), int(n_directions))
        phi = np.tile(np.linspace(-0.05, 0.05, int(n_directions)) if int(n_directions) > 1 else [0.0], int(n_radii))
        return np.column_stack([R0 * np.cos(phi), R0 * np.sin(phi), z])
    if x_stars is None:
        raise InputError("query positions need either a spherical mock spec or the stars")
    return x_stars[rng.choice(x_stars.shape[0], size=min(int(n_positions), x_stars.shape[0]), replace=False)]


def compare_to_truth(est, truth, *, what: str) -> tuple[dict, dict]:
    """Metrics of a :class:`~excess.astro.dynamics.estimate.FieldEstimate` against truth, and the truth arrays.

    Accelerations: relative error ``|a - a_true| / |a_true|`` (median, 16/84 %), and the coverage of the
    ensemble spread: the fraction of components within 1 and 2 standard deviations of the truth (0.68 and
    0.95 if the spread were the whole error); for spherical truths also the error of the radial component
    alone, ``|a_r / a_r,true - 1|``. Density: the same for ``rho / rho_true - 1``.
    """
    x = est.positions
    a_true = truth.acceleration(x)
    out = {}
    rel = np.linalg.norm(est.acc - a_true, axis=1) / np.linalg.norm(a_true, axis=1)
    z = np.abs(est.acc - a_true) / np.maximum(est.acc_std, 1e-300)
    out["acc"] = {"median_rel_error": float(np.median(rel)), "p16_rel_error": float(np.percentile(rel, 16)),
                  "p84_rel_error": float(np.percentile(rel, 84)), "coverage_1sigma": float(np.mean(z < 1)),
                  "coverage_2sigma": float(np.mean(z < 2)),
                  "median_rel_spread": float(np.median(np.linalg.norm(est.acc_std, axis=1) / np.linalg.norm(a_true, axis=1)))}
    out["acc"]["median_rel_error_members"] = [float(np.median(np.linalg.norm(a - a_true, axis=1)
                                                              / np.linalg.norm(a_true, axis=1))) for a in est.acc_members]
    kind = truth.spec.get("kind")
    shells = None
    if kind == "hernquist":
        r = np.linalg.norm(x, axis=1)
        rhat = x / r[:, None]
        ar, ar_true = (est.acc * rhat).sum(1), (a_true * rhat).sum(1)
        rel_r = np.abs(ar / ar_true - 1)
        out["acc"]["median_rel_error_radial"] = float(np.median(rel_r))
        shells = [np.flatnonzero(np.isclose(r, rr, rtol=1e-9)) for rr in np.unique(np.round(r, 9))]
        if all(len(i) > 1 for i in shells):  # shell averages over the directions at each radius
            sh = np.array([np.mean(ar[i]) / np.mean(ar_true[i]) - 1 for i in shells])
            out["acc"]["shell_median_abs_rel_error_radial"] = float(np.median(np.abs(sh)))
            out["acc"]["shell_max_abs_rel_error_radial"] = float(np.max(np.abs(sh)))
        else:
            shells = None
    if kind == "disk":
        zabs = np.abs(x[:, 2])
        sel = zabs >= 0.2 - 1e-9
        if sel.any():
            rel_z = np.abs(est.acc[sel, 2] / a_true[sel, 2] - 1)
            zz = np.abs(est.acc[sel, 2] - a_true[sel, 2]) / np.maximum(est.acc_std[sel, 2], 1e-300)
            out["acc"]["vertical_median_rel_error_abs_z_ge_0.2"] = float(np.median(rel_z))
            out["acc"]["vertical_coverage_1_2_sigma"] = [float(np.mean(zz < 1)), float(np.mean(zz < 2))]
        zs = np.unique(np.round(x[:, 2], 9))
        out["acc"]["vertical_rel_error_by_height"] = [
            [float(zz), float(np.mean(est.acc[i, 2]) / np.mean(a_true[i, 2]) - 1) if np.mean(a_true[i, 2]) else None]
            for zz in zs for i in [np.flatnonzero(np.isclose(x[:, 2], zz, atol=1e-9))]]
        Rh = x[:, :2] / np.linalg.norm(x[:, :2], axis=1, keepdims=True)
        out["acc"]["radial_R_median_rel_error"] = float(np.median(np.abs((est.acc[:, :2] * Rh).sum(1)
                                                                          / (a_true[:, :2] * Rh).sum(1) - 1)))
    arrays = {"acc_true": a_true, "acc_rel_error": rel}
    if what == "density" and est.rho is not None:
        rho_true = truth.density(x)
        ratio = est.rho / rho_true - 1
        zr = np.abs(est.rho - rho_true) / np.maximum(est.rho_std, 1e-300)
        out["rho"] = {"median_abs_rel_error": float(np.median(np.abs(ratio))), "median_rel_bias": float(np.median(ratio)),
                      "p16_rel_error": float(np.percentile(ratio, 16)), "p84_rel_error": float(np.percentile(ratio, 84)),
                      "coverage_1sigma": float(np.mean(zr < 1)), "coverage_2sigma": float(np.mean(zr < 2)),
                      "median_rel_spread": float(np.median(est.rho_std / rho_true)), "method": est.density_method}
        if shells is not None:
            sh = np.array([np.mean(est.rho[i]) / np.mean(rho_true[i]) - 1 for i in shells])
            sz = np.array([abs(np.mean(est.rho[i]) - np.mean(rho_true[i]))
                           / max(np.sqrt(np.mean(est.rho_std[i] ** 2) / len(i)), 1e-300) for i in shells])
            out["rho"].update(shell_median_abs_rel_error=float(np.median(np.abs(sh))),
                              shell_max_abs_rel_error=float(np.max(np.abs(sh))),
                              shell_coverage_1sigma=float(np.mean(sz < 1)), shell_coverage_2sigma=float(np.mean(sz < 2)),
                              shell_rel_errors=[float(e) for e in sh])
        if kind == "disk":
            out["rho"]["by_height_msun_pc3"] = [
                [float(zz), float(np.mean(est.rho[i])) * 1e-9, float(np.sqrt(np.mean(est.rho_std[i] ** 2) / len(i))) * 1e-9,
                 float(np.mean(rho_true[i])) * 1e-9]
                for zz in np.unique(np.round(x[:, 2], 9)) for i in [np.flatnonzero(np.isclose(x[:, 2], zz, atol=1e-9))]]
            loc = np.abs(x[:, 2]) <= 0.1 + 1e-9
            if loc.any():
                m_est, m_true = float(np.mean(est.rho[loc])), float(np.mean(rho_true[loc]))
                out["rho"].update(local_msun_pc3=m_est * 1e-9, local_true_msun_pc3=m_true * 1e-9,
                                  local_rel_error=m_est / m_true - 1,
                                  local_std_msun_pc3=float(np.sqrt(np.mean(est.rho_std[loc] ** 2) / loc.sum())) * 1e-9)
        arrays.update(rho_true=rho_true, rho_rel_error=ratio)
    return out, arrays


def ball_radii(ball_radius, positions: np.ndarray, spec: dict) -> np.ndarray:
    """Ball radii (kpc, one per position) from ``ball_radius``: a number (kpc), ``"<f>r"`` (f times the distance
    from the origin) or ``None`` (``"0.2r"`` for spherical mocks, 0.1 kpc otherwise)."""
    if ball_radius is None:
        ball_radius = "0.2r" if spec.get("kind") == "hernquist" else 0.1
    r = np.linalg.norm(positions, axis=1)
    if isinstance(ball_radius, str):
        txt = ball_radius.strip()
        try:
            if txt.endswith("r"):
                f = float(txt[:-1])
                if not f > 0:
                    raise ValueError
                return f * r
            ball_radius = float(txt)
        except ValueError:
            raise InputError(f"ball radius must be a length in kpc or '<fraction>r', got {ball_radius!r}") from None
    if not float(ball_radius) > 0:
        raise InputError(f"ball radius must be positive, got {ball_radius}")
    return np.full(positions.shape[0], float(ball_radius))


def field_run(run_dir, *, what: str = "accelerations", positions=None, n_radii: int = 12, n_directions: int = 4,
              n_positions: int = 64, n_velocities: int = 500, baryons: str = "none", density_method: str = "ball",
              ball_radius=None, combine: str = "accelerations", trim: float = 0.0, weights: str = "score", random_state=0,
              threads: int | None = None, plots: bool = True, solver: str = "least-squares",
              potential_velocities: str = "sampled", potential_n_velocities: int = 1,
              potential_max_stars: int | None = None, potential_params: dict | None = None) -> dict:
    """Accelerations (``what="accelerations"``) or accelerations and densities (``"density"``) of a fitted run.

    ``solver="least-squares"`` solves the Boltzmann equation at each query position (:mod:`.estimate`);
    ``"potential"`` fits one smooth potential per member to all the stars (:mod:`.potential`; ``potential_*``:
    the velocities paired with the stars, their number per star, a random subset of the stars, the
    :class:`~excess.astro.dynamics.potential.BoltzmannPotential` parameters), saved in ``RUN_DIR/potential`` and
    reused while those settings stay the same; densities are then ``lap Phi / (4 pi G)`` pointwise.
    """
    import h5py

    from ...nn.training import set_threads
    from .baryons import baryon_model
    from .estimate import estimate_field
    from .model import PhaseSpaceFlow

    if what not in ("accelerations", "density"):
        raise InputError(f"what must be 'accelerations' or 'density', got {what!r}")
    if solver not in SOLVERS:
        raise InputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    set_threads(threads)
    run_dir = Path(run_dir)
    cfg = _read_json(run_dir / "config.json").get("fit")
    if not cfg or not (run_dir / "model" / "ensemble.json").exists():
        raise InputError(f"{run_dir}: no fitted model (run `excess dynamics fit` first)")
    model = PhaseSpaceFlow.load(run_dir / "model")
    spec = cfg.get("spec", {})
    rng = check_random_state(random_state)
    if positions is None:
        x_stars = None
        if spec.get("kind") not in ("hernquist", "disk"):
            x_stars = load_mock(cfg["stars"]).x
        positions = query_positions(spec, x_stars, n_radii=n_radii, n_directions=n_directions, n_positions=n_positions,
                                    random_state=rng)
    potential = solver == "potential"
    h = ball_radii(ball_radius, positions, spec) if (what == "density" and density_method == "ball" and not potential) else None
    t0, c0 = time.perf_counter(), time.process_time()
    pot_info = None
    if potential:
        est, pot_info = _potential_field(run_dir, model, cfg, positions, density=what == "density",
                                         velocities=potential_velocities, n_velocities=potential_n_velocities,
                                         max_stars=potential_max_stars, params=potential_params, random_state=rng)
    else:
        est = estimate_field(model, positions, n_velocities=n_velocities, density=what == "density",
                             density_method=density_method, ball_radius=h, combine=combine, trim=trim,
                             weights=weights, random_state=rng)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    bary = baryon_model(baryons)
    summary = {"n_positions": int(est.positions.shape[0]), "n_velocities": int(n_velocities),
               "n_members": model.n_members_, "combine": combine, "trim": trim, "weights": weights,
               "solver": solver, "seconds": seconds, "cpu_seconds": cpu,
               "peak_rss_mb": _peak_rss_mb()}
    if pot_info is not None:
        summary["potential"] = pot_info
        summary.update(n_velocities=0, combine=None, trim=None, weights=None)
    if what == "density":
        summary["density_method"] = est.density_method
        if h is not None:
            summary["ball_radius_kpc_min_max"] = [float(h.min()), float(h.max())]
    arrays = {}
    truth = truth_from_spec(spec) if spec.get("kind") in ("hernquist", "disk") else None
    if truth is not None:
        metrics, arrays = compare_to_truth(est, truth, what=what)
        summary.update(metrics)
    if what == "density":
        rho_b = bary.density(est.positions)
        arrays["rho_baryons"] = rho_b
        summary["baryons"] = bary.to_dict()
        summary["median_rho_dm_msun_pc3"] = float(np.median(est.rho - rho_b) * 1e-9)
    with atomic_path(run_dir / f"{what}.h5", suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            for k, val in est.to_dict().items():
                if isinstance(val, np.ndarray) and val.dtype != object:
                    f.create_dataset(k, data=val)
            for k, val in arrays.items():
                f.create_dataset(k, data=val)
    _update_json(run_dir / "config.json", what, {"n_radii": n_radii, "n_directions": n_directions,
                                                  "n_positions": n_positions, "n_velocities": n_velocities,
                                                  "baryons": baryons, "density_method": density_method,
                                                  "ball_radius": ball_radius, "combine": combine, "trim": trim,
                                                  "weights": weights, "solver": solver,
                                                  "potential": None if pot_info is None else pot_info["settings"],
                                                  "seed": random_state})
    _update_json(run_dir / "metrics.json", what, summary)
    if plots:
        _field_plots(run_dir, what, est, arrays, spec)
    write_dynamics_report(run_dir)
    return summary


def _potential_field(run_dir: Path, model, cfg: dict, positions, *, density: bool, velocities: str, n_velocities: int,
                     max_stars, params, random_state):
    """Fitted (or reused) potentials of every member and their :class:`FieldEstimate` at ``positions``."""
    from .potential import estimate_field_potential, fit_potentials, load_potentials, save_potentials

    settings = to_jsonable({"velocities": velocities, "n_velocities": int(n_velocities), "max_stars": max_stars,
                            "params": params or {}})
    pot_dir = run_dir / "potential"
    pots, reused, fit_s, fit_cpu = None, False, 0.0, 0.0
    if (pot_dir / "potentials.json").exists():
        pots, saved = load_potentials(pot_dir, model)
        reused = saved == settings and len(pots) == model.n_members_
        pots = pots if reused else None
    if pots is None:
        stars = load_mock(cfg["stars"])
        t0, c0 = time.perf_counter(), time.process_time()
        pots = fit_potentials(model, stars.x, stars.v, velocities=velocities, n_velocities=n_velocities,
                              max_stars=max_stars, params=params, random_state=random_state)
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        save_potentials(pots, pot_dir, settings)
    est = estimate_field_potential(pots, positions, density=density)
    info = {"settings": settings, "reused": reused, "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu,
            "n_pairs": [p.n_pairs_ for p in pots],
            "best_val_loss": [min(p.history_.get("val_loss") or [float("nan")]) for p in pots]}
    return est, info


def _field_plots(run_dir: Path, what: str, est, arrays: dict, spec: dict) -> None:
    from ...report.figures import pyplot, save_figure

    plt = pyplot()
    x = est.positions
    if spec.get("kind") == "disk":
        _disk_plots(run_dir, what, est, arrays, plt, save_figure)
        return
    r = np.linalg.norm(x, axis=1)
    rhat = x / np.maximum(r, 1e-300)[:, None]
    a_r = -(est.acc * rhat).sum(1)
    a_r_std = np.sqrt(((est.acc_std * rhat) ** 2).sum(1))
    has_truth = "acc_true" in arrays
    fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    axes[0].errorbar(r, a_r, yerr=a_r_std, fmt="o", ms=3, label="flow ensemble (mean ± std)")
    if has_truth:
        at_r = -(arrays["acc_true"] * rhat).sum(1)
        o = np.argsort(r)
        axes[0].plot(r[o], at_r[o], "k-", label="truth (galpy)")
        axes[1].errorbar(r, a_r / at_r - 1, yerr=a_r_std / at_r, fmt="o", ms=3)
        axes[1].axhline(0, color="k", lw=1)
        axes[1].axhspan(-0.02, 0.02, color="0.85", label="±2 %")
    axes[0].set(xscale="log", yscale="log", ylabel=r"$-a_r$ [(km/s)$^2$/kpc]")
    axes[1].set(xlabel="r [kpc]", ylabel="ratio - 1")
    axes[0].legend(fontsize=9)
    save_figure(fig, run_dir / "plots" / f"{what}_acc_profile.png")
    if what == "density":
        fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        axes[0].errorbar(r, est.rho * 1e-9, yerr=est.rho_std * 1e-9, fmt="o", ms=3,
                         label="lap(Phi)/(4 pi G), ensemble" if est.density_method == "laplacian" else "-div(a)/(4 pi G), ensemble")
        if "rho_baryons" in arrays and np.any(arrays["rho_baryons"] > 0):
            axes[0].plot(r, (est.rho - arrays["rho_baryons"]) * 1e-9, "s", ms=3, mfc="none", label="minus baryons")
        if "rho_true" in arrays:
            o = np.argsort(r)
            axes[0].plot(r[o], arrays["rho_true"][o] * 1e-9, "k-", label="truth (galpy)")
            axes[1].errorbar(r, arrays["rho_rel_error"], yerr=est.rho_std / arrays["rho_true"], fmt="o", ms=3)
            axes[1].axhline(0, color="k", lw=1)
            axes[1].axhspan(-0.1, 0.1, color="0.85")
        axes[0].set(xscale="log", yscale="log", ylabel=r"$\rho$ [M$_\odot$/pc$^3$]")
        axes[1].set(xlabel="r [kpc]", ylabel="ratio - 1")
        axes[0].legend(fontsize=9)
        save_figure(fig, run_dir / "plots" / "density_profile.png")
    if has_truth:
        key = "rho_rel_error" if what == "density" else "acc_rel_error"
        vals = np.abs(arrays[key])
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        sc = ax.scatter(np.hypot(x[:, 0], x[:, 1]), x[:, 2], c=vals, cmap="viridis", s=25,
                        vmin=0, vmax=max(np.percentile(vals, 95), 1e-6))
        fig.colorbar(sc, ax=ax, label="|relative error|" + (" of rho" if what == "density" else " of a"))
        ax.set(xlabel="R [kpc]", ylabel="z [kpc]", title=f"{what}: error map (query positions)")
        save_figure(fig, run_dir / "plots" / f"{what}_error_map.png")


def _disk_plots(run_dir: Path, what: str, est, arrays: dict, plt, save_figure) -> None:
    """Vertical acceleration and density against height for the disk mock's column at the solar radius."""
    z = est.positions[:, 2]
    o = np.argsort(z)
    fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    axes[0].errorbar(z, est.acc[:, 2], yerr=est.acc_std[:, 2], fmt="o", ms=3, label="flow ensemble (mean ± std)")
    if "acc_true" in arrays:
        at = arrays["acc_true"][:, 2]
        axes[0].plot(z[o], at[o], "k-", label="truth (galpy MWPotential2014)")
        far = np.abs(z) >= 0.2
        axes[1].errorbar(z[far], est.acc[far, 2] / at[far] - 1, yerr=est.acc_std[far, 2] / np.abs(at[far]), fmt="o", ms=3)
        axes[1].axhline(0, color="k", lw=1)
        axes[1].axhspan(-0.02, 0.02, color="0.85")
    axes[0].set(ylabel=r"$a_z$ [(km/s)$^2$/kpc]", title="R = 8 kpc")
    axes[1].set(xlabel="z [kpc]", ylabel="ratio - 1 (|z| >= 0.2)")
    axes[0].legend(fontsize=9)
    save_figure(fig, run_dir / "plots" / f"{what}_az_profile.png")
    if what == "density" and est.rho is not None:
        fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        axes[0].errorbar(z, est.rho * 1e-9, yerr=est.rho_std * 1e-9, fmt="o", ms=3,
                         label="lap(Phi)/(4 pi G)" if est.density_method == "laplacian" else "ball-averaged -div(a)/(4 pi G)")
        if "rho_baryons" in arrays and np.any(arrays["rho_baryons"] > 0):
            axes[0].plot(z[o], arrays["rho_baryons"][o] * 1e-9, "--", color="0.5", label="baryon model")
        if "rho_true" in arrays:
            axes[0].plot(z[o], arrays["rho_true"][o] * 1e-9, "k-", label="truth (total)")
            axes[1].errorbar(z, arrays["rho_rel_error"], yerr=est.rho_std / arrays["rho_true"], fmt="o", ms=3)
            axes[1].axhline(0, color="k", lw=1)
            axes[1].axhspan(-0.1, 0.1, color="0.85")
        axes[0].set(ylabel=r"$\rho$ [M$_\odot$/pc$^3$]", title="R = 8 kpc")
        axes[1].set(xlabel="z [kpc]", ylabel="ratio - 1")
        axes[0].legend(fontsize=9)
        save_figure(fig, run_dir / "plots" / "density_rho_z.png")


_CAPTIONS = {
    "fit_losses.png": "Validation negative log-likelihood per epoch of each member's n(x) and p(v|x) flows.",
    "accelerations_acc_profile.png": "Radial acceleration at the query positions (ensemble mean ± member std) "
                                     "against truth; lower panel: ratio - 1 (grey band ±2 %).",
    "density_acc_profile.png": "Radial acceleration at the density step's query positions against truth.",
    "density_profile.png": "Mass density -div(a)/(4 pi G) (ensemble mean ± std) against truth; lower panel: "
                           "ratio - 1 (grey band ±10 %).",
    "accelerations_error_map.png": "|relative acceleration error| at the query positions (R, z).",
    "accelerations_az_profile.png": "Disk: vertical acceleration at R = 8 kpc against truth (ratio for |z| >= 0.2 kpc).",
    "density_az_profile.png": "Disk: vertical acceleration at R = 8 kpc against truth (ratio for |z| >= 0.2 kpc).",
    "density_rho_z.png": "Disk: ball-averaged density at R = 8 kpc against the total density of the potential.",
    "density_error_map.png": "|relative density error| at the query positions (R, z).",
}


def write_dynamics_report(run_dir) -> Path:
    """``report.html`` from what the run saved (metrics.json, config.json, provenance.json, plots/)."""
    import html

    from ...report.html import figure_gallery, page_head, pre_section, write_page

    run_dir = Path(run_dir)
    metrics = _read_json(run_dir / "metrics.json")
    cfg = _read_json(run_dir / "config.json")
    prov = _read_json(run_dir / "provenance.json")
    spec = (cfg.get("fit") or {}).get("spec", {})
    parts = page_head(f"excess dynamics: {run_dir.name}", "excess dynamics report",
                      f"run <code>{html.escape(str(run_dir))}</code> · stars: "
                      f"{html.escape(str(spec.get('kind', 'data')))} · {metrics.get('fit', {}).get('n_stars', '?')} stars")
    rows = []
    for step in ("accelerations", "density"):
        m = metrics.get(step) or {}
        if "acc" in m:
            rows.append((step, "acceleration |a - a_true| / |a_true|", m["acc"]["median_rel_error"],
                         m["acc"]["median_rel_spread"], m["acc"]["coverage_1sigma"], m["acc"]["coverage_2sigma"]))
        if "rho" in m:
            rows.append((step, "density |rho / rho_true - 1|", m["rho"]["median_abs_rel_error"],
                         m["rho"]["median_rel_spread"], m["rho"]["coverage_1sigma"], m["rho"]["coverage_2sigma"]))
    if rows:
        parts.append("<div class='box'>Against truth at the query positions (between the 10 % and 90 % mass radii for "
                     "spherical mocks). Coverage: fraction of values within 1 / 2 ensemble standard deviations of the "
                     "truth (0.68 / 0.95 if the spread were the whole error).</div>")
        parts.append("<table><tr><th class='l'>step</th><th class='l'>quantity</th><th>median rel. error</th>"
                     "<th>median rel. spread</th><th>coverage 1σ</th><th>coverage 2σ</th></tr>")
        for s, q, e, sp, c1, c2 in rows:
            parts.append(f"<tr><td class='l'>{s}</td><td class='l'>{html.escape(q)}</td><td>{e:.4f}</td><td>{sp:.4f}</td>"
                         f"<td>{c1:.2f}</td><td>{c2:.2f}</td></tr>")
        parts.append("</table>")
    if (metrics.get("density") or {}).get("baryons"):
        d = metrics["density"]
        parts.append(f"<p>Baryon model: {html.escape(json.dumps(d['baryons']))}; median dark-matter density at the "
                     f"query positions (total minus baryons): {d['median_rho_dm_msun_pc3']:.4g} Msun/pc^3.</p>")
    plots = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").exists() else []
    parts.append(figure_gallery(plots, _CAPTIONS))
    parts += [pre_section("Metrics", metrics), pre_section("Settings", cfg), pre_section("Provenance", prov)]
    return write_page(run_dir, parts)
