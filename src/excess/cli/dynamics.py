"""``excess dynamics``: dark matter from stellar kinematics (flows -> Boltzmann -> accelerations -> density)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import check_output, echo_json


@click.group()
def dynamics():
    """Dark matter from stellar kinematics: mocks, Gaia DR3, flow fit, accelerations, density."""


@dynamics.command()
@click.option("--kind", type=click.Choice(["hernquist", "disk"]), default="hernquist", show_default=True,
              help="hernquist: isotropic sphere; disk: quasi-isothermal disk in MWPotential2014 near R = 8 kpc.")
@click.option("-n", "--n-stars", type=click.IntRange(1), required=True)
@click.option("--mass", type=float, default=1e12, show_default=True, help="Hernquist total mass [Msun].")
@click.option("--scale-radius", type=float, default=10.0, show_default=True, help="Hernquist scale radius a [kpc].")
@click.option("--radius", type=float, default=2.0, show_default=True,
              help="Disk: radius [kpc] of the ball around (8, 0, 0) kpc that holds the stars.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Stars (HDF5) to write.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
def mock(kind, n_stars, mass, scale_radius, radius, seed, output, force):
    """Draw a mock with known truth (galpy)."""
    from ..astro.dynamics.mocks import make_mock, save_mock

    check_output(output, force, what="star file")
    params = dict(mass=mass, a=scale_radius) if kind == "hernquist" else dict(radius=radius)
    m = make_mock(kind, n_stars, random_state=seed, **params)
    save_mock(m, output)
    echo_json({"output": output, **m.spec})


@dynamics.command()
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--min-parallax-over-error", type=float, default=5.0, show_default=True)
@click.option("--max-ruwe", type=float, default=1.4, show_default=True, help="Applied when the file has a ruwe column.")
@click.option("--max-distance", type=float, default=None, help="Maximum distance from the Sun [kpc].")
@click.option("--drop-invalid", is_flag=True, help="Drop rows with NaN or non-positive parallaxes instead of failing.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Stars (HDF5) to write.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
def gaia(table, min_parallax_over_error, max_ruwe, max_distance, drop_invalid, output, force):
    """Convert a Gaia DR3 table with radial velocities to Galactocentric stars (astropy)."""
    from ..astro.dynamics.gaia import read_gaia
    from ..astro.dynamics.mocks import Mock, save_mock

    check_output(output, force, what="star file")
    s = read_gaia(table, min_parallax_over_error=min_parallax_over_error, max_ruwe=max_ruwe,
                  max_distance_kpc=max_distance, drop_invalid=drop_invalid)
    save_mock(Mock(x=s.x, v=s.v, spec={"kind": "gaia", "source": str(table), "counts": s.counts, "solar": s.solar}), output)
    echo_json({"output": output, "counts": s.counts, "solar": s.solar})


@dynamics.command()
@click.argument("stars", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("--members", type=click.IntRange(1), default=4, show_default=True, help="Ensemble size.")
@click.option("--epochs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=1024, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--transforms", type=click.IntRange(1), default=4, show_default=True)
@click.option("--hidden", default="64,64", show_default=True, help="Hidden layer sizes, comma separated.")
@click.option("--radial-scale", default="auto", show_default=True,
              help="Radial map of positions: 'auto' (log compression at the median radius), 'profile' (fitted Dehnen "
                   "profile), 'none' (local samples), or a length in kpc.")
@click.option("--velocity-scale", type=click.Choice(["none", "auto"]), default="none", show_default=True,
              help="'auto': velocities divided by a fitted dispersion profile s(r) before the velocity flow.")
@click.option("--velocity-degree", default="bic", show_default=True,
              help="Degree of s(r)'s polynomial in log r: 'bic' (chosen in 1..8 by the Bayesian information "
                   "criterion) or an integer (3: the first version).")
@click.option("--vertical-scale", type=click.Choice(["none", "profile"]), default="none", show_default=True,
              help="'profile': heights mapped through a fitted sech^2 profile to a Gaussian coordinate (local disk "
                   "samples; with --radial-scale none).")
@click.option("--resample", type=click.Choice(["none", "bootstrap"]), default="none", show_default=True,
              help="'bootstrap': each member trained on its own bootstrap resample of the stars (the spread then "
                   "includes the stars' sampling noise).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="Members trained in parallel.")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads.")
@click.option("--no-plots", is_flag=True, help="Skip the loss-curve PNG.")
@click.option("--force", is_flag=True, help="Replace the fitted model of an existing run directory.")
def fit(stars, output, members, epochs, batch_size, lr, transforms, hidden, radial_scale, velocity_scale, velocity_degree,
        vertical_scale, resample, jobs, device, seed, threads, no_plots, force):
    """Train an ensemble of flows f(x, v) = n(x) p(v|x) on the stars; writes RUN_DIR/model and report.html."""
    from ..astro.dynamics.run import fit_run
    from ..errors import ConfigError

    try:
        hid = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        raise ConfigError(f"--hidden expects comma-separated integers, got {hidden!r}") from None
    if velocity_degree == "bic":
        vdeg = None
    else:
        try:
            vdeg = int(velocity_degree)
        except ValueError:
            raise ConfigError(f"--velocity-degree expects 'bic' or an integer, got {velocity_degree!r}") from None
    check_output(output, force, marker="model", what="fit (model/)")
    rs = None if radial_scale == "none" else (radial_scale if radial_scale in ("auto", "profile") else _float(radial_scale))
    params = dict(n_members=members, epochs=epochs, batch_size=batch_size, lr=lr, transforms=transforms, hidden=hid,
                  radial_scale=rs, velocity_scale=None if velocity_scale == "none" else velocity_scale,
                  velocity_degree=vdeg, vertical_scale=None if vertical_scale == "none" else vertical_scale,
                  resample=None if resample == "none" else resample, n_jobs=jobs, device=device)
    echo_json(fit_run(stars, output, params=params, random_state=seed, threads=threads, plots=not no_plots))


def _float(s: str) -> float:
    from ..errors import ConfigError

    try:
        return float(s)
    except ValueError:
        raise ConfigError(f"--radial-scale must be 'auto', 'profile', 'none' or a number, got {s!r}") from None


def _field_options(f):
    for opt in reversed([
        click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path)),
        click.option("--positions", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="CSV with columns x, y, z [kpc] (default: a radial profile for spherical mocks, else stars)."),
        click.option("--n-radii", type=click.IntRange(1), default=12, show_default=True),
        click.option("--n-directions", type=click.IntRange(1), default=4, show_default=True),
        click.option("--n-positions", type=click.IntRange(1), default=64, show_default=True),
        click.option("--n-velocities", type=click.IntRange(3), default=500, show_default=True,
                     help="Velocities sampled per position for the least-squares solve."),
        click.option("--combine", type=click.Choice(["gradients", "accelerations"]), default="accelerations",
                     show_default=True, help="Ensemble: average the members' grad log f before one solve, or average "
                                             "the members' accelerations."),
        click.option("--trim", type=click.FloatRange(0.0, 0.9, max_open=True), default=0.0, show_default=True,
                     help="Fraction of the sampled velocities farthest from their mean dropped at each position."),
        click.option("--weights", type=click.Choice(["score", "velocity"]), default="score", show_default=True,
                     help="Rows of the Boltzmann solve: score = least squares (weights grad_v log f); velocity = "
                          "weights v - <v>, the model's Jeans equation (needs only its velocity moments)."),
        click.option("--solver", type=click.Choice(["least-squares", "potential"]), default="least-squares",
                     show_default=True, help="least-squares: solve the Boltzmann equation at each query position; "
                                             "potential: fit one smooth potential per member to all stars (Deep "
                                             "Potential; a = -grad Phi, rho = lap Phi / (4 pi G)), kept in RUN_DIR/potential."),
        click.option("--potential-velocities", type=click.Choice(["sampled", "observed"]), default="sampled",
                     show_default=True, help="--solver potential: velocities paired with the stars' positions (drawn "
                                             "from each member's p(v|x), or the stars' own)."),
        click.option("--potential-stars", type=click.IntRange(20), default=None,
                     help="--solver potential: fit on this many stars drawn at random [default: all]."),
        click.option("--potential-epochs", type=click.IntRange(1), default=None,
                     help="--solver potential: training epochs of each potential [default: 60]."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--threads", type=click.IntRange(1), default=None),
        click.option("--no-plots", is_flag=True, help="Skip the PNGs (metrics and report only)."),
    ]):
        f = opt(f)
    return f


def _read_positions(path):
    if path is None:
        return None
    import pandas as pd

    from ..errors import InputError

    df = pd.read_csv(path)
    missing = [c for c in ("x", "y", "z") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)} (need x, y, z in kpc)")
    return df[["x", "y", "z"]].to_numpy(dtype=float)


@dynamics.command()
@_field_options
def accelerations(run_dir, positions, n_radii, n_directions, n_positions, n_velocities, combine, trim, weights,
                  solver, potential_velocities, potential_stars, potential_epochs, seed, threads, no_plots):
    """Accelerations from the Boltzmann equation at query positions (vs truth for mocks)."""
    from ..astro.dynamics.run import field_run

    echo_json(field_run(run_dir, what="accelerations", positions=_read_positions(positions), n_radii=n_radii,
                         n_directions=n_directions, n_positions=n_positions, n_velocities=n_velocities,
                         combine=combine, trim=trim, weights=weights, random_state=seed, threads=threads,
                         plots=not no_plots, **_solver_kwargs(solver, potential_velocities, potential_stars,
                                                              potential_epochs)))


def _solver_kwargs(solver, velocities, stars, epochs) -> dict:
    return {"solver": solver, "potential_velocities": velocities, "potential_max_stars": stars,
            "potential_params": None if epochs is None else {"epochs": epochs}}


@dynamics.command()
@_field_options
@click.option("--baryons", type=click.Choice(["none", "mwpotential2014"]), default="none", show_default=True,
              help="Baryon model subtracted for the dark-matter density.")
@click.option("--method", "density_method", type=click.Choice(["ball", "autograd"]), default="ball",
              show_default=True, help="ball: -div(a)/(4 pi G) averaged over a ball by Gauss's theorem (first "
                                      "derivatives); autograd: pointwise, by second derivatives.")
@click.option("--ball-radius", default=None,
              help="Ball radius: kpc, or '<f>r' for f times the galactocentric distance [default: 0.2r for spherical "
                   "mocks, 0.1 kpc otherwise].")
def density(run_dir, positions, n_radii, n_directions, n_positions, n_velocities, combine, trim, weights, solver,
            potential_velocities, potential_stars, potential_epochs, seed, threads, no_plots, baryons, density_method,
            ball_radius):
    """Mass density -div(a)/(4 pi G) (and minus a baryon model) at query positions."""
    from ..astro.dynamics.run import field_run

    echo_json(field_run(run_dir, what="density", positions=_read_positions(positions), n_radii=n_radii,
                         n_directions=n_directions, n_positions=n_positions, n_velocities=n_velocities,
                         baryons=baryons, density_method=density_method, ball_radius=ball_radius, combine=combine,
                         trim=trim, weights=weights, random_state=seed, threads=threads, plots=not no_plots,
                         **_solver_kwargs(solver, potential_velocities, potential_stars, potential_epochs)))
