"""``excess generate``: dijet events with Pythia 8 + FastJet, and signal-injected mixtures."""

from __future__ import annotations

import json

import click

from ..data.settings import DETECTORS, PRESETS


@click.group()
def generate():
    """Generate events (Pythia 8 + FastJet) and build mixed datasets."""


@generate.command("dijet")
@click.option("-n", "--n-events", type=int, required=True, help="Selected events to produce.")
@click.option("-o", "--output", type=click.Path(), required=True,
              help="A directory of chunk files (resumable), or one .h5/.parquet file.")
@click.option("--process", type=click.Choice(["qcd", "signal"]), default="qcd", show_default=True)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="lhco", show_default=True,
              help="lhco: MPI off, Delphes-CMS-like detector, WTA axes (mirrors the LHCO R&D sample); "
                   "truth: same without detector; pythia: MPI on, truth level.")
@click.option("--seed", type=int, default=1, show_default=True, help="Pythia seed of chunk 0 (chunk i uses seed + 1000 i).")
@click.option("--chunk-size", type=int, default=5000, show_default=True)
@click.option("-j", "--workers", type=int, default=None, help="Local worker processes [default: all cores].")
@click.option("--scheduler", default=None, help="dask.distributed scheduler address (runs chunks on the cluster).")
@click.option("--pthat-min", type=float, default=None, help="QCD PhaseSpace:pTHatMin in GeV [default 1000].")
@click.option("--mpi/--no-mpi", default=None, help="Multiparton interactions [preset].")
@click.option("--detector", type=click.Choice(DETECTORS), default=None, help="Detector response [preset].")
@click.option("--axes", type=click.Choice(["wta", "kt"]), default=None, help="N-subjettiness axes [wta].")
@click.option("--m-wprime", type=float, default=None, help="W' mass in GeV [3500].")
@click.option("--m-x", type=float, default=None, help="X mass in GeV [500].")
@click.option("--m-y", type=float, default=None, help="Y mass in GeV [100].")
@click.option("--extended-nsub", is_flag=True, help="Also store tau_N^beta for N <= 9, beta in {0.5, 1, 2}.")
@click.option("--pythia", "extra", multiple=True, help="Extra raw Pythia setting (repeatable), e.g. 'Tune:pp = 14'.")
@click.option("--keep-chunks", is_flag=True, help="Keep the chunk directory after merging into a single file.")
@click.option("--force", is_flag=True, help="Replace an existing single-file output (a chunk directory resumes instead).")
def dijet(n_events, output, process, preset, seed, chunk_size, workers, scheduler, pthat_min, mpi, detector, axes,
          m_wprime, m_x, m_y, extended_nsub, extra, keep_chunks, force):
    """Generate LHC Olympics-style dijet events (QCD background or W' -> X Y signal).

    Chunks already on disk are skipped: rerun the same command to resume an interrupted job.
    Prints a JSON summary on stdout; progress goes to stderr.
    """
    from ..data.generate import generate_dijet

    overrides = dict(pthat_min=pthat_min, mpi=mpi, detector=detector, axes=axes, m_wprime=m_wprime, m_x=m_x, m_y=m_y)
    if extended_nsub:
        overrides["extended_nsubjettiness"] = True
    if extra:
        overrides["extra"] = tuple(extra)
    summary = generate_dijet(output, n_events, process=process, preset=preset, seed=seed, chunk_size=chunk_size,
                             n_workers=workers, address=scheduler, keep_chunks=keep_chunks, overwrite=force,
                             **overrides)
    click.echo(json.dumps(summary.to_dict(), indent=2))


@generate.command("mix")
@click.option("-b", "--background", type=click.Path(exists=True), required=True, help="Background events (any format).")
@click.option("-s", "--signal", type=click.Path(exists=True), required=True, help="Signal events (any format).")
@click.option("-o", "--output", type=click.Path(), required=True, help="Output .h5 or .parquet.")
@click.option("--n-signal", type=int, default=None, help="Signal events to inject (over all mjj).")
@click.option("--s-over-b", type=float, default=None, help="Or: the S/B wanted inside the SR.")
@click.option("--sr", nargs=2, type=float, default=(3300.0, 3700.0), show_default=True, help="Signal region in mjj (GeV).")
@click.option("--reserve-background", type=float, default=None,
              help="Fraction of the background kept apart as a reference sample (idealized AD), written to OUTPUT with suffix '.reference'.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing output.")
def mix(background, signal, output, n_signal, s_over_b, sr, reserve_background, seed, force):
    """Inject signal into background reproducibly, keeping truth labels for evaluation."""
    from pathlib import Path

    import numpy as np

    from ..data.io import read_events, write_events
    from ..data.mix import inject_signal, split_background
    from .common import check_output

    check_output(output, force, what="event file")
    if reserve_background:
        out = Path(output)
        check_output(out.with_name(out.stem + ".reference" + out.suffix), force, what="reference file")
    rng = np.random.default_rng(seed)
    bkg = read_events(background)
    sig = read_events(signal)
    if reserve_background:
        bkg, ref = split_background(bkg, reserve_background, random_state=rng)
        out = Path(output)
        ref_path = out.with_name(out.stem + ".reference" + out.suffix)
        write_events(ref, ref_path, {"role": "reference background", "source": str(background)})
    data, info = inject_signal(bkg, sig, n_signal=n_signal, s_over_b=s_over_b, sr=tuple(sr), random_state=rng)
    write_events(data, output)
    # the injection drew from a Generator made from --seed: record the seed the user gave
    click.echo(json.dumps({"output": str(output), **info.to_dict(), "seed": seed}, indent=2))


@generate.command("convert")
@click.argument("source", type=click.Path(exists=True))
@click.argument("output", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["excess", "lhco", "cathode"]), default="excess", show_default=True,
              help="excess: .h5/.parquet event table; lhco: official feature-file layout; cathode: .npy in TeV.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
def convert(source, output, fmt, force):
    """Convert between event formats (excess HDF5/Parquet, LHCO feature file, CATHODE .npy)."""
    from ..data.io import read_events, write_events
    from ..data.lhco import write_cathode_npy, write_lhco_features
    from .common import check_output

    check_output(output, force, what="event file")
    df = read_events(source)
    if fmt == "excess":
        write_events(df, output)
    elif fmt == "lhco":
        write_lhco_features(df, output, with_label=bool((df["label"] >= 0).all()))
    else:
        write_cathode_npy(df, output, with_label=bool((df["label"] >= 0).all()))
    click.echo(json.dumps({"output": str(output), "n_events": len(df), "format": fmt}))
