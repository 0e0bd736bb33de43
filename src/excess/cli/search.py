"""``excess search``, ``excess report`` and ``excess demo``."""

from __future__ import annotations

import json
import sys

import click

from ..nn.device import DEVICE_HELP  # no torch import


def _run(cfg, output, resume, quiet_json=False):
    from .._util import is_quiet
    from ..workflow import run_search

    from ..errors import EXIT_NO_RESULT, EXIT_OK

    outcome = run_search(cfg, output=output, resume=resume, show_progress=not is_quiet(), argv=sys.argv)
    click.echo(outcome.summary(), err=True)
    click.echo(json.dumps(outcome.to_dict(), indent=2))
    # exit 3: the search ran to the end, but no window gave a result (the reasons are printed above)
    return EXIT_OK if outcome.best_window is not None else EXIT_NO_RESULT


@click.command("search")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set method.name=cathode --set scan.n_folds=3 (repeatable).")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None, help="Run directory [run.output].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run: finished windows and folds are skipped.")
@click.option("--scheduler", default=None, help="dask.distributed scheduler address (overrides run.scheduler).")
@click.option("-j", "--workers", type=int, default=None, help="Local worker processes (overrides run.workers).")
@click.option("--device", default=None, metavar="DEVICE", help=DEVICE_HELP + " Overrides run.device.")
@click.option("--check", is_flag=True, help="Validate the config, print the resolved version and exit.")
def search(config, overrides, output, resume, scheduler, workers, device, check):
    """Run a resonant anomaly search described by CONFIG (YAML).

    Writes a run directory with config.yaml, provenance.json, metrics.json, predictions.h5,
    plots/ and report.html; prints a JSON summary on stdout.
    """
    from ..config import load_config

    ov = list(overrides)
    if scheduler:
        ov.append(f"run.scheduler={scheduler}")
    if workers:
        ov.append(f"run.workers={workers}")
    if device:
        ov.append(f"run.device={device}")
    cfg = load_config(config, ov)
    if check:
        import yaml

        click.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), nl=False)
        return 0
    return _run(cfg, output, resume)


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=True))
def report(run_dir):
    """Regenerate RUN_DIR/report.html (and its plots) from the saved results."""
    from pathlib import Path

    from ..report.html import write_report

    path = write_report(Path(run_dir))
    click.echo(str(path))


@click.command("demo")
@click.option("-o", "--output", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--method", default="cwola", show_default=True, help="Anomaly method of the demo search.")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming an earlier demo run.")
@click.option("--device", default="auto", show_default=True, metavar="DEVICE", help=DEVICE_HELP)
def demo(output, method, fresh, device):
    """Run the complete search on the packaged LHCO-like dataset with an injected signal (make demo)."""
    import shutil
    from pathlib import Path

    from ..config import DEMO_CONFIG, parse_config

    raw = json.loads(json.dumps(DEMO_CONFIG))
    raw["method"]["name"] = method
    raw["run"]["output"] = output
    raw["run"]["device"] = device
    cfg = parse_config(raw, "demo config")
    if fresh and Path(output).exists():
        shutil.rmtree(output)
    click.echo("excess demo: a sliding-window resonant anomaly search (method %s) on the packaged LHCO-like dataset." % method,
               err=True)
    return _run(cfg, output, resume=True)
