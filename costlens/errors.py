"""User-facing errors: each carries a one-line message; the CLI prints it and exits 2."""

from __future__ import annotations


class CostlensError(Exception):
    """Base of every error costlens shows to a user as one line (exit code 2)."""

    exit_code = 2


class UnknownModelError(CostlensError):
    """A model name that is neither in the zoo nor an importable path."""


class InputShapeError(CostlensError):
    """A malformed or impossible ``--input``/``--batch``."""


class ModelError(CostlensError):
    """The model could not be built, imported, or run on the given input."""


class ProfileFileError(CostlensError):
    """A saved profile that cannot be read: missing, not JSON, or a foreign schema."""


class OutputError(CostlensError):
    """A report or profile that cannot be written where the user asked."""


class CostlensWarning(UserWarning):
    """Something the user should know that does not stop the work (one line)."""
