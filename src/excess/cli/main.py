"""The ``excess`` command line: a thin layer over the library.

Subcommands live one group per file in this package and are imported lazily, so
``excess --help`` does not import torch, Pythia or FastJet.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from .._version import __version__

# name -> (module, attribute, one-line help shown by `excess --help` without importing it)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("excess.cli.generate", "generate", "Generate events (Pythia 8 + FastJet) and build mixed datasets."),
    "validate": ("excess.cli.validate", "validate", "Compare generated samples with reference files."),
    "search": ("excess.cli.search", "search", "Run a resonant anomaly search from a YAML config."),
    "report": ("excess.cli.search", "report", "Regenerate the HTML report of a run directory."),
    "demo": ("excess.cli.search", "demo", "Run the complete search on the embedded default (make demo)."),
    "calo": ("excess.cli.calo", "calo", "Fast calorimeter simulation: simulate, train, generate, evaluate."),
    "dynamics": ("excess.cli.dynamics", "dynamics", "Dark matter from stellar kinematics: flows, accelerations, density."),
    "benchmark": ("excess.cli.benchmark", "benchmark", "Benchmarks of anomaly methods (max SIC tables)."),
    "tag": ("excess.cli.tag", "tag", "Supervised identification: low-pT electron taggers, q/g jet taggers and b-taggers (tag electrons | tag jets | tag btag)."),
    "streams": ("excess.cli.streams", "streams", "Stellar streams in Gaia: mock patches, sliding-window search, evaluation."),
    "antelope": ("excess.cli.antelope", "antelope", "ANTELOPE on semi-visible jets: PFN + VAE score, evaluation, mT search."),
    "svj": ("excess.cli.svj", "svj", "Semi-visible jets: Hidden Valley signal and QCD samples with per-jet tracks."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx, name):
        if name not in SUBCOMMANDS:
            return None
        module, attr, _ = SUBCOMMANDS[name]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:  # the command group is not implemented in this build
                return None
            raise
        return getattr(mod, attr, None)

    def format_commands(self, ctx, formatter):
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="excess")
@click.option("--debug", is_flag=True, help="Show full stack traces on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, warnings and errors only.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug messages).")
@click.pass_context
def cli(ctx, debug, quiet, verbose):
    """excess: model-agnostic searches for new physics with machine learning."""
    from .._util import set_quiet

    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    set_quiet(quiet)
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("excess").setLevel(level)
    logging.getLogger("numexpr").setLevel(logging.WARNING)


def main(argv=None) -> int:
    """Entry point: one-line errors (full traceback with --debug), non-zero exit on failure."""
    from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, ExcessError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="excess", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"Interrupted. {_how_to_continue(args)}", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ExcessError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    except OSError as exc:  # a file system refusal not caught where it happened: still name the path
        if debug:
            raise
        where = exc.filename or "a file"
        click.echo(f"error: {where}: {exc.strerror or exc}; check the path and its permissions", err=True)
        return EXIT_ERROR
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            raise
        click.echo(f"error: internal error ({type(exc).__name__}: {exc}); this is a bug in excess: please report it "
                   "with the output of --debug", err=True)
        return EXIT_ERROR
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK


def _how_to_continue(args: list[str]) -> str:
    """What a user does after Ctrl-C, per command: finished steps are on disk in every resumable one."""
    words = [a for a in args if not a.startswith("-")]
    cmd = words[0] if words else ""
    if cmd in ("search", "demo"):
        return ("Finished windows and folds are saved: rerun the same command with --resume to continue"
                + (" (excess demo resumes by itself)." if cmd == "demo" else "."))
    if cmd == "generate":
        return "Finished chunks are saved: rerun the same command to continue."
    return "Outputs are written atomically: nothing half-written was left; rerun the command."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
