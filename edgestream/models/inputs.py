"""What to feed a model: whether it streams, and a zero input of the shape it takes.

Used wherever a model is run without data at hand: ONNX export and its verification, warm-up
runs, and the registry's conformance tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgestream.core.errors import ConfigError

_CHANNEL_ATTRS = ("in_channels", "n_channels", "input_size", "in_features", "n_inputs")
_TIME_ATTRS = ("n_times", "seq_len", "window", "n_steps", "history")


def is_streaming(model: Any) -> bool:
    from edgestream.models.base import StreamingModule

    return isinstance(model, StreamingModule)


def example_input(model: Any, batch: int = 1, steps: int = 1) -> np.ndarray:
    """A zero input of the shape ``model`` takes, float32.

    Streaming models get ``(batch, steps, C_in)``; other models ``(batch, C, T)``. Models state
    their shape with ``example_input(batch)`` (preferred) or attributes (``in_channels`` /
    ``n_channels`` and ``n_times`` / ``seq_len``).
    """
    fn = getattr(model, "example_input", None)
    if callable(fn):
        try:
            x = fn(batch=batch, steps=steps) if is_streaming(model) else fn(batch=batch)
        except TypeError:
            x = fn(batch)
        x = x.detach().cpu().float().numpy() if hasattr(x, "detach") else np.asarray(x, np.float32)
        if is_streaming(model) and x.shape[1] != steps:
            x = np.zeros((x.shape[0], steps) + x.shape[2:], np.float32)
        return np.zeros_like(x, dtype=np.float32)
    channels = next((getattr(model, a) for a in _CHANNEL_ATTRS if isinstance(getattr(model, a, None), int)), None)
    if channels is None:
        raise ConfigError(
            f"model {type(model).__name__} must state its input shape to be exported; got none of the attributes "
            f"{', '.join(_CHANNEL_ATTRS)} and no example_input(). Add example_input(batch=1) returning a zero input tensor."
        )
    if is_streaming(model):
        return np.zeros((batch, steps, channels), np.float32)
    times = next((getattr(model, a) for a in _TIME_ATTRS if isinstance(getattr(model, a, None), int)), 256)
    return np.zeros((batch, channels, times), np.float32)
