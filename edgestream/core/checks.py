"""Input checks shared by every public boundary.

Each helper raises a :class:`~edgestream.core.errors.ConfigError` (or the class passed as
``error``) whose message names the argument, states the rule, echoes the value received and,
where we know one, suggests a fix::

    sfreq must be a positive number of Hz; got -1. Pass the sampling rate of the stream, e.g. sfreq=250.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from edgestream.core.errors import ConfigError, DataError, UnknownNameError


class described(str):
    """A description of a received value, echoed without quotes (e.g. ``described("shape (3, 4)")``)."""

    def __repr__(self) -> str:
        return str(self)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(name: str, rule: str, value: Any, fix: str | None = None, error: type[Exception] = ConfigError):
    """Raise ``error`` with the standard message shape."""
    message = f"{name} must {rule}; got {_short(value)}."
    if fix:
        message += f" {fix}"
    raise error(message)


def check_type(value: Any, types: type | tuple[type, ...], name: str, fix: str | None = None) -> Any:
    """Return ``value`` if it is an instance of ``types``; otherwise raise.

    ``bool`` is refused where a number is expected, because ``True`` silently passing as 1
    hides configuration mistakes.
    """
    types_t = types if isinstance(types, tuple) else (types,)
    numeric = any(t in (int, float) for t in types_t)
    if isinstance(value, types_t) and not (numeric and isinstance(value, bool) and bool not in types_t):
        return value
    names = " or ".join(t.__name__ for t in types_t)
    fail(name, f"be of type {names} (not {type(value).__name__})", value, fix)


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
    fix: str | None = None,
) -> float | int:
    """Check a finite number, optionally an integer, inside ``[low, high]``."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        fail(name, f"be {kind}", value, fix)
    if not math.isfinite(float(value)):
        fail(name, "be finite", value, fix)
    lo_ok = low is None or (value >= low if low_inclusive else value > low)
    hi_ok = high is None or (value <= high if high_inclusive else value < high)
    if not (lo_ok and hi_ok):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        fail(name, f"lie in {span}", value, fix)
    return int(value) if integer else float(value)


def check_positive(value: Any, name: str, *, integer: bool = False, fix: str | None = None) -> float | int:
    """Check a strictly positive finite number."""
    return check_number(value, name, low=0, low_inclusive=False, integer=integer, fix=fix)


def check_value(value: Any, allowed: Iterable[Any], name: str, fix: str | None = None) -> Any:
    """Check that ``value`` is one of ``allowed``; suggest close matches for strings."""
    allowed = list(allowed)
    if value in allowed:
        return value
    hint = fix
    if hint is None and isinstance(value, str):
        close = difflib.get_close_matches(value, [str(a) for a in allowed], n=3)
        if close:
            hint = "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    fail(name, "be one of " + ", ".join(repr(a) for a in allowed), value, hint)


def check_keys(config: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse unknown keys in a configuration mapping (typos must not pass silently)."""
    allowed = sorted(allowed)
    for key in config:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=3)
            hint = ("Did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}; allowed keys are {', '.join(allowed) or '(none)'}. {hint}".rstrip()
            )


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    """Build the error for a failed registry lookup, listing close matches."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    message = f"unknown {kind} {name!r}."
    if close:
        message += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    message += f" Known {kind}s: {', '.join(known) if known else '(none registered)'}."
    return UnknownNameError(message)


def check_array(
    data: Any,
    name: str,
    *,
    ndim: int | None = None,
    n_channels: int | None = None,
    finite: bool = True,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Convert ``data`` to an array of ``dtype`` and check dimensions, channel count, finiteness.

    Non-finite samples raise :class:`DataError` naming how many and where the first one is,
    rather than letting NaN propagate silently into filter state.
    """
    try:
        arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        fail(name, f"be numeric and convertible to {np.dtype(dtype).name}", described(type(data).__name__), str(exc), DataError)
    if ndim is not None and arr.ndim != ndim:
        fail(name, f"have {ndim} dimensions", described(f"shape {arr.shape}"), "Chunks are (n_times, n_channels).", DataError)
    if n_channels is not None and arr.shape[-1] != n_channels:
        fail(
            name,
            f"have {n_channels} channels (last axis)",
            described(f"shape {arr.shape}"),
            "Check that the stream matches the pipeline's channel count.",
            DataError,
        )
    if finite and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        fail(
            name,
            "contain only finite values",
            described(f"{len(bad)} non-finite values, first at index {tuple(int(i) for i in bad[0])}"),
            "Drop or interpolate NaN/inf samples at the source, or set the source's nonfinite policy.",
            DataError,
        )
    return arr
