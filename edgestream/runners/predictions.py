"""The ``Predictions`` stream the classifying model stages publish (``model``, ``streaming_model``).

One row per prediction: ``p_<class>``… (probabilities or logits), ``class`` (index),
``confidence`` (max probability) and ``warming`` (1 while the stage or its input is warming up).
Kept apart from the stages so neither stage module imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.chunk import StreamInfo


def prediction_info(in_info: StreamInfo, classes: Sequence[str], sfreq: float, name: str, model_desc: Mapping[str, Any]) -> StreamInfo:
    """StreamInfo of a ``Predictions`` stream: ``p_<class>``…, ``class``, ``confidence``, ``warming``.

    Parameters
    ----------
    in_info : StreamInfo
        The model stage's input; its ``desc`` is carried over (less ``window`` and ``model``).
    classes : sequence of str
        Class names, in the model's output order.
    sfreq : float
        Prediction rate in Hz (window rate, or frame rate of a streaming model).
    name : str
        Output stream name (``<pipeline>-<node>``).
    model_desc : mapping
        What ``desc["model"]`` says about the model (name, checkpoint, classes, backend, ...).
    """
    ch = [f"p_{c}" for c in classes] + ["class", "confidence", "warming"]
    types = ["probability"] * len(classes) + ["class", "probability", "flag"]
    desc = {k: v for k, v in in_info.desc.items() if k not in ("window", "model")}
    return StreamInfo(name, "Predictions", "", sfreq, ch, types, ["a.u."] * len(ch), desc=desc | {"model": dict(model_desc)})


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis (classes), shifted by the maximum so ``exp`` cannot overflow."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


__all__ = ["prediction_info", "softmax"]
