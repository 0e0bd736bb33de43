"""What every command group of the CLI shares: JSON on stdout and ``key=value`` options."""

from __future__ import annotations

import json

import click

__all__ = ["echo_json", "parse_params", "check_output"]


def echo_json(obj) -> None:
    """Print ``obj`` (dataclasses, numpy values and paths included) as indented JSON on stdout."""
    from .._util import to_jsonable

    click.echo(json.dumps(to_jsonable(obj), indent=2))


def parse_params(items, *, option: str = "--param", tuples: bool = False) -> dict:
    """``key=value`` pairs: values parsed as JSON (numbers, lists, booleans), else kept as strings; dashes in keys
    become underscores; ``tuples=True`` turns lists into tuples (constructor arguments such as layer sizes)."""
    from ..errors import ConfigError

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{option} expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            val = json.loads(v)
        except ValueError:
            val = v
        out[k.strip().replace("-", "_")] = tuple(val) if tuples and isinstance(val, list) else val
    return out


def check_output(path, force: bool, marker: str | None = None, what: str = "output"):
    """Before the work: ``path`` can be written (nothing in the way), and a finished output there (the file
    itself, or ``path/marker`` for a directory output) is not replaced without ``--force``. Raises
    :class:`~excess.errors.OutputError` naming the path and what to do; creates nothing."""
    from pathlib import Path

    from .._util import check_writable
    from ..errors import OutputError

    path = Path(path)
    check_writable(path)
    done = path / marker if marker else path
    if done.exists() and not force:
        raise OutputError(f"{path}: a finished {what} exists here; pass --force to replace it or choose another "
                          "output path")
    return path
