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
]


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
