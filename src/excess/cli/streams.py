"""``excess streams``: the resonant search for stellar streams in Gaia patches (mock, search, survey, evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import check_output, echo_json, parse_params


@click.group()
def streams():
    """Stellar streams in Gaia: mock patches, the sliding-window search with Hough lines, evaluation."""


@streams.command()
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--center", nargs=2, type=float, default=None, help="Patch centre RA DEC in deg (default: GD-1 at phi1 = -35).")
@click.option("--radius", type=float, default=7.5, show_default=True, help="Patch radius in deg.")
@click.option("--density", type=float, default=3500.0, show_default=True, help="Background stars per deg^2 with G < 20.2.")
@click.option("--stream-fraction", type=float, default=0.0094, show_default=True,
              help="Stream stars among the cut-passing stars of the fiducial SR (GaiaCWoLa's example patch: 0.94 %).")
@click.option("--no-stream", is_flag=True, help="A stream-free patch.")
@click.option("--stream-age", type=float, default=3.0, show_default=True, help="Gyr of tidal stripping.")
@click.option("--stream-particles", type=int, default=2, show_default=True, help="gala particles released per Myr per arm.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def mock(output, center, radius, density, stream_fraction, no_stream, stream_age, stream_particles, seed, force):
    """Write a mock Gaia patch with truth labels (CSV, FITS, HDF5 or Parquet by suffix)."""
    from ..astro.streams.io import write_gaia
    from ..astro.streams.mock import MockConfig, make_mock_patch

    out = Path(output)
    if out.exists() and not force:
        click.echo(f"{out} exists: skipping (use --force to overwrite)", err=True)
        return
    cfg = MockConfig(center=tuple(center) if center else None, radius=radius, density=density,
                     stream=not no_stream, stream_fraction=stream_fraction, stream_age=stream_age,
                     stream_particles=stream_particles, seed=seed)
    patch = make_mock_patch(cfg)
    meta = patch.to_dict()
    write_gaia(patch.stars, out, metadata=meta)
    if out.suffix.lower() in (".csv", ".ecsv", ".fits", ".fit", ".gz"):
        (out.parent / (out.name + ".json")).write_text(json.dumps(meta, indent=2))
    echo_json({"output": str(out), **meta})


_SEARCH_OPTIONS = [
    click.option("--method", default="cwola", show_default=True, help="Anomaly method (see excess.anomaly.METHODS), e.g. cwola, cathode."),
    click.option("--param", "params", multiple=True, help="Method parameter key=value (JSON values), repeatable."),
    click.option("--fast", is_flag=True, help="The method's tiny settings (smoke runs)."),
    click.option("--resonant", default="mu_lam", show_default=True, help="Window coordinate (a star-table column after patch coordinates)."),
    click.option("--sr-width", type=float, default=6.0, show_default=True, help="SR width (mas/yr)."),
    click.option("--step", type=float, default=1.0, show_default=True, help="SR step (mas/yr)."),
    click.option("--sb-width", type=float, default=3.0, show_default=True, help="Sideband width on each side (mas/yr)."),
    click.option("--scan-range", nargs=2, type=float, default=None, help="First and last SR centre (default: 5th-95th percentile)."),
    click.option("--window", "windows", nargs=2, type=float, multiple=True, help="Explicit SR LO HI (repeatable; overrides the scan)."),
    click.option("--top-n", type=int, default=100, show_default=True, help="Stars per window passed to the Hough transform."),
    click.option("--threshold", default="6", show_default=True,
                 help="Line significance for a candidate, or 'auto': a quantile of the best lines of --null-run."),
    click.option("--null-run", "null_runs", multiple=True, type=click.Path(exists=True, file_okay=False),
                 help="A finished search or survey of a stream-free sky with the same settings (repeatable; "
                      "for --threshold auto)."),
    click.option("--null-quantile", type=float, default=1.0, show_default=True,
                 help="Quantile of the null runs' best line per window (1: above all of them)."),
    click.option("--n-folds", type=int, default=5, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--force", is_flag=True, help="Replace the results of an existing run directory."),
]


def _search_options(f):
    for opt in reversed(_SEARCH_OPTIONS):
        f = opt(f)
    return f


def _threshold(threshold, null_runs, null_quantile):
    """(threshold, calibration dict or None) from --threshold / --null-run / --null-quantile."""
    from ..astro.streams.threshold import calibrate_threshold

    if str(threshold).strip().lower() == "auto":
        if not null_runs:
            raise click.UsageError("--threshold auto needs --null-run RUN_DIR (a stream-free search)")
        cal = calibrate_threshold(null_runs, null_quantile)
        return cal["threshold"], cal
    if null_runs:
        raise click.UsageError("--null-run is used only with --threshold auto")
    try:
        return float(threshold), None
    except ValueError:
        raise click.BadParameter(f"{threshold!r} is neither a number nor 'auto'", param_hint="--threshold") from None


def _save_calibration(output, cal):
    if cal is None:
        return
    from .._util import atomic_write_json

    atomic_write_json(Path(output) / "threshold_calibration.json", cal)
    click.echo(f"threshold {cal['threshold']:.3f}: above the {cal['quantile']:g} quantile of the best line of "
               f"{cal['n_windows']} stream-free window(s) (median {cal['null_median']:.2f}, max {cal['null_max']:.2f})",
               err=True)


def _search_config(method, params, fast, resonant, sr_width, step, sb_width, scan_range, windows, top_n, threshold,
                   n_folds, seed):
    from ..astro.streams.search import StreamSearchConfig

    kw = {}
    if params:
        kw["method_params"] = parse_params(params)
    return StreamSearchConfig(method=method, fast=fast, resonant=resonant, sr_width=sr_width, step=step,
                              sb_width=sb_width, scan_range=tuple(scan_range) if scan_range else None,
                              windows=tuple(map(tuple, windows)) if windows else None, top_n=top_n,
                              threshold=threshold, n_folds=n_folds, seed=seed, **kw)


@streams.command()
@click.argument("input", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--center", nargs=2, type=float, default=None, help="Patch centre RA DEC in deg (default: from a mock's metadata).")
@_search_options
def search(input, output, center, force, threshold, null_runs, null_quantile, **kw):
    """Search a patch of Gaia stars for streams; writes RUN_DIR with report.html."""
    from ..astro.streams.run import run_stream_search

    threshold, cal = _threshold(threshold, null_runs, null_quantile)
    check_output(output, force, marker="search.json", what="stream search")
    cfg = _search_config(threshold=threshold, **kw)
    run = run_stream_search(input, output, cfg, center=center)
    _save_calibration(output, cal)
    click.echo(run.summary())


@streams.command()
@click.argument("input", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--center", "centers", nargs=2, type=float, multiple=True,
              help="A patch centre RA DEC in deg (repeatable).")
@click.option("--region", nargs=4, type=float, default=None,
              help="Tile RA_LO RA_HI DEC_LO DEC_HI (deg) with centres --spacing apart (added to any --center).")
@click.option("--spacing", type=float, default=10.0, show_default=True, help="Centre spacing of --region (deg).")
@click.option("--radius", type=float, default=7.5, show_default=True, help="Patch radius (deg).")
@_search_options
def survey(input, output, centers, region, spacing, radius, force, threshold, null_runs, null_quantile, **kw):
    """Search several patches of one star file and merge their protoclusters; RUN_DIR/patches/<name>/ per patch,
    RUN_DIR/report.html for the whole."""
    from ..astro.streams.survey import run_stream_survey, tile_region

    threshold, cal = _threshold(threshold, null_runs, null_quantile)
    cfg = _search_config(threshold=threshold, **kw)
    cs = [tuple(c) for c in centers]
    if region:
        cs += tile_region(region[:2], region[2:], spacing)
    if not cs:
        raise click.UsageError("give patch centres with --center RA DEC (repeatable) or --region")
    check_output(output, force, marker="survey.json", what="stream survey")
    run = run_stream_survey(input, output, cs, cfg, radius=radius)
    _save_calibration(output, cal)
    click.echo(run.summary())


@streams.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--truth", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Star table with is_stream labels (default: the run's input file).")
def evaluate(run_dir, truth):
    """Purity and completeness of a run's selected stars against mock truth; updates report.html."""
    from ..astro.streams.run import evaluate_run

    ev = evaluate_run(run_dir, truth)
    b = ev.get("best_window") or {}
    out = {"n_stream_after_cuts": ev["n_stream_after_cuts"],
           "best_window": {k: b[k] for k in ("index", "sr", "n_stream_sr", "top100", "top250", "line") if k in b},
           "protoclusters": ev["protoclusters"]}
    echo_json(out)
