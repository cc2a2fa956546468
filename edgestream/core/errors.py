"""Error hierarchy.

Every error edgestream raises on purpose derives from :class:`EdgestreamError`, so callers
(and the CLI, which maps them to exit codes) can tell a user mistake from a bug. Messages
follow one shape: what was wrong (argument, rule, value received) and how to fix it.
"""

from __future__ import annotations


class EdgestreamError(Exception):
    """Base class of all deliberate edgestream errors."""


class ConfigError(EdgestreamError, ValueError):
    """A user-supplied value, file or option breaks a rule (CLI exit code 2)."""


class ValidationError(ConfigError):
    """A pipeline graph does not fit together (rates, channel counts, windows, dtypes)."""


class UnknownNameError(ConfigError, KeyError):
    """A name was looked up in a registry and not found."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StreamError(EdgestreamError, RuntimeError):
    """A stream could not be found, opened, or delivered data that breaks its declared shape."""


class StateError(EdgestreamError, RuntimeError):
    """Recurrent state does not match the model or stream it is used with."""


class DataError(EdgestreamError, ValueError):
    """Samples violate a rule (non-finite values, wrong channel count, ...)."""
