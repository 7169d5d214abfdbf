"""Errors whose message is one line for the user, raised deep in a sweep and caught by the CLI.

They live apart from the modules that raise them (which import Ray, MLflow and torch) so that the
CLI catches them without importing those first: a mistyped flag is answered at once.
"""


class UsageError(ValueError):
    """Bad input from the user; the message is one line saying what is wrong and how to fix it."""


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached at start; the message is one line for a user."""


class RegistryError(RuntimeError):
    """The model registry refused or is unreachable; the message is one line for a user."""


class SweepFailed(RuntimeError):
    """A task's sweep produced no trial that finished well; the message is one line for a user."""


class SweepInterrupted(Exception):
    """The user interrupted the sweep; what was done is recorded and the summary printed."""
