"""Named exceptions of excess.

Every error a user can trigger with bad input derives from :class:`ExcessError`, so the
CLI can print one clear line (and a stack trace only with ``--debug``).
"""

from __future__ import annotations

__all__ = [
    "ExcessError",
    "InputError",
    "ConfigError",
    "GenerationError",
    "FitError",
    "NotFittedError",
    "NonFiniteError",
    "OutputError",
    "RunDirectoryError",
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_NO_RESULT",
    "EXIT_INTERRUPTED",
]

# Exit codes of the ``excess`` command (documented in the README, "What excess promises when things go wrong").
EXIT_OK = 0  #: finished; a search found results
EXIT_ERROR = 1  #: an error (bad input, config, output path, generator failure); one line on stderr
EXIT_USAGE = 2  #: bad command-line usage (unknown option, missing argument), from click
EXIT_NO_RESULT = 3  #: a search ran to the end but no window produced a result (the reasons are printed)
EXIT_INTERRUPTED = 130  #: Ctrl-C; finished steps are kept (``--resume`` continues a search)


class ExcessError(Exception):
    """Base class of all errors raised by excess on purpose."""


class InputError(ExcessError, ValueError):
    """Bad input data: a missing file, column or key, NaN rows, wrong shapes, wrong units."""


class ConfigError(ExcessError, ValueError):
    """An invalid setting: unknown key, wrong type, value out of range, unknown method name."""


class GenerationError(ExcessError, RuntimeError):
    """The event generator failed (e.g. ``Pythia.init()`` returned False)."""


class FitError(ExcessError, RuntimeError):
    """A fit did not converge or cannot be performed (too few events, empty sidebands)."""


class NotFittedError(ExcessError, AttributeError):
    """An estimator was used before ``fit``."""


class NonFiniteError(InputError):
    """NaN or inf values in input columns; ``counts`` maps each column to its number of bad values."""

    def __init__(self, message: str, counts: dict[str, int] | None = None, n_rows: int = 0):
        super().__init__(message)
        self.counts = dict(counts or {})
        self.n_rows = int(n_rows)


class OutputError(ExcessError, OSError):
    """An output cannot be written: a path under a file, no permission, or an existing output without ``--force``."""


class RunDirectoryError(InputError):
    """A run directory that is not one (no ``metrics.json``), or whose saved files are unreadable."""
