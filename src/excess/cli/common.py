"""What every command group of the CLI shares: JSON on stdout and ``key=value`` options."""

from __future__ import annotations

import json

import click

__all__ = ["echo_json", "parse_params"]


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
