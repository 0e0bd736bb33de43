"""Small shared helpers: atomic writes, random-state handling, progress bars, logging."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write_json",
    "check_random_state",
    "spawn_seeds",
    "progress",
    "set_quiet",
    "is_quiet",
    "get_logger",
    "to_jsonable",
    "package_versions",
    "ensure_dir",
    "check_writable",
    "read_json",
]

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Globally silence progress bars (the CLI's ``--quiet``)."""
    global _QUIET
    _QUIET = bool(quiet)


def is_quiet() -> bool:
    """Whether progress bars are silenced (``set_quiet``, the CLI's ``--quiet``)."""
    return _QUIET


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``excess`` namespace (configured by the CLI, silent by default in libraries)."""
    return logging.getLogger(name if name.startswith("excess") else f"excess.{name}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Nothing half-written is ever left under the final name: on any exception (including
    ``KeyboardInterrupt``) the temporary file is removed.
    """
    path = Path(path)
    if path.is_dir():
        from .errors import OutputError

        raise OutputError(f"{path}: is a directory, cannot write a file there; choose another output path")
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=suffix if suffix is not None else ".tmp", dir=path.parent
        )
    except OSError as exc:
        from .errors import OutputError

        raise OutputError(f"{path}: cannot write here ({exc.strerror or exc}); choose another output path or fix "
                          "the folder's permissions") from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; finished files get the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and dataclasses into JSON-serialisable objects."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return to_jsonable(obj.to_dict())
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def package_versions(modules) -> dict:
    """``{"excess": ..., "python": ..., module: installed version or None}`` for provenance records."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from ._version import __version__

    out = {"excess": __version__, "python": platform.python_version()}
    for mod in modules:
        try:
            out[mod] = version(mod)
        except PackageNotFoundError:
            out[mod] = None
    return out


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
    return path


def check_random_state(random_state: None | int | np.random.Generator) -> np.random.Generator:
    """Turn ``None``, an int seed or a Generator into a ``numpy.random.Generator``.

    Never touches numpy's global state.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}")


def spawn_seeds(random_state: None | int | np.random.Generator, n: int) -> list[int]:
    """Draw ``n`` independent integer seeds (for workers, folds, ensemble members)."""
    rng = check_random_state(random_state)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]


def progress(iterable=None, *, total: int | None = None, desc: str | None = None, disable: bool | None = None, **kw):
    """A tqdm progress bar on stderr; disabled by ``--quiet`` or ``EXCESS_NO_PROGRESS=1``."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = _QUIET or os.environ.get("EXCESS_NO_PROGRESS", "") not in ("", "0")
    return tqdm(iterable, total=total, desc=desc, disable=disable, file=sys.stderr, dynamic_ncols=True, **kw)


def check_writable(path: str | os.PathLike) -> Path:
    """Check, creating nothing, that ``path`` (a file or folder to be written) can be created: its nearest existing
    ancestor is a writable folder. Raises :class:`~excess.errors.OutputError` naming the path; run it before the
    work, so that hours of computing are not lost on a typo in ``-o``."""
    from .errors import OutputError

    path = Path(path)
    if path.exists() and path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder is not writable; choose another output path or fix its permissions")
    for p in path.parents:
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{path}: {p} is a file, not a folder; choose another output path")
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"{path}: folder {p} is not writable; choose another output path or fix its "
                                  "permissions")
            break
    return path


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` (and its parents), or raise :class:`~excess.errors.OutputError` naming the
    path and why (a file in the way, no permission, a read-only file system)."""
    from .errors import OutputError

    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise OutputError(f"{path}: {p} is a file, not a folder; choose another output path")
        if p.exists():
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create this folder ({exc.strerror or exc}); choose another output path "
                          "or fix the permissions") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder is not writable; choose another output path or fix its permissions")
    return path


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """JSON of ``path``; a missing or corrupt file is an :class:`~excess.errors.InputError` naming it."""
    from .errors import InputError

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read this {what} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); the {what} is damaged or was not finished: "
                         "rerun the step that writes it") from None
