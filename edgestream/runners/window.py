"""Run a window model (input (1, C, T)) on every window and publish class probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import EdgestreamError, ValidationError
from edgestream.core.stage import STAGES, Stage
from edgestream.runners.model_loader import (
    check_allow_mismatch,
    check_model_or_checkpoint,
    check_stream_fit,
    load_model,
)
from edgestream.runners.predictions import prediction_info, softmax


@STAGES.register("model")
class WindowModel(Stage):
    """Classify each window with a registered window model (or a trained checkpoint).

    Input: windows of T samples × C channels (put a ``window`` stage before). Output: one
    sample per window — ``p_<class>`` probabilities (or logits), ``class`` (index),
    ``confidence`` (max probability), ``warming`` (1 while upstream state converges) — stamped
    with the window's newest sample.

    Parameters
    ----------
    model : str or None
        Registered model name (``edgestream models``). With ``checkpoint`` it must be the model
        the checkpoint holds (or None: take the checkpoint's).
    checkpoint : str or None
        Path of a checkpoint written by ``edgestream train`` (model, config and classes inside).
        Its training data must fit the stream: sampling rate, channel names and order, units,
        pass band and Euclidean alignment are checked at build time.
    overrides : mapping
        Constructor overrides for the model.
    classes : list of str or None
        Class names (default: from the checkpoint, else ``0..K-1``).
    output : {"probs", "logits"}
    backend : {"torch", "torchscript", "onnxruntime"} or None
        Default: the device profile's backend.
    allow_mismatch : list of str
        Checkpoint checks that only warn: any of ``rate``, ``channels``, ``units``, ``band``.
    """

    accepts_continuous = False
    accepts_windows = True

    def __init__(self, model: str | None = None, checkpoint: str | None = None, overrides: Mapping[str, Any] | None = None,
                 classes: Sequence[str] | None = None, output: str = "probs", backend: str | None = None,
                 allow_mismatch: Sequence[str] = (), gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        check_model_or_checkpoint("model", model, checkpoint, "reference_conv")
        self.model = model
        self.checkpoint = checkpoint
        self.overrides = dict(overrides or {})
        self.classes = list(classes) if classes is not None else None
        self.output = check_value(output, ("probs", "logits"), "output")
        self.backend = check_value(backend, (None, "torch", "torchscript", "onnxruntime"), "backend")
        self.allow_mismatch = check_allow_mismatch(allow_mismatch)

    def _build(self, info: StreamInfo) -> StreamInfo:
        loaded = load_model("model", self.model, self.checkpoint, self.overrides)
        check_stream_fit(loaded, info, "model", allow=self.allow_mismatch, alignment=True)
        self.extra = dict(loaded.extra)
        example = np.zeros((1, info.n_channels, info.window), np.float32)
        self._run = make_backend_checked(loaded.net, example, self.context.device, self.backend, loaded.name, info)
        logits = self._run(example)
        classes = loaded.class_names(logits.shape[-1], self.classes, "model")
        self.class_names = classes
        hop = info.desc.get("window", {}).get("hop", info.window)
        model_desc = {"name": loaded.name, "checkpoint": self.checkpoint or "", "classes": classes,
                      "backend": getattr(self._run, "name", "torch"),
                      "precision": getattr(self._run, "precision", "fp32"), "output": self.output}
        return prediction_info(info, classes, info.sfreq / hop, f"{self.context.pipeline}-{self.context.node}", model_desc)

    def step(self, chunk: Chunk, state: None) -> tuple[list[Chunk], None]:
        x = np.ascontiguousarray(chunk.data.T)[None]  # (1, C, T)
        logits = self._run(x)[0]
        probs = softmax(logits)
        values = probs if self.output == "probs" else logits
        k = int(np.argmax(probs))
        row = np.concatenate([values, [k, probs[k], float(chunk.warming)]]).astype(np.float32)[None]
        return [Chunk(row, chunk.timestamps[-1:], self.out_info, chunk.gap, chunk.warming)], state


def make_backend_checked(net: Any, example: np.ndarray, profile: Any, backend: str | None, name: str, info: StreamInfo) -> Any:
    """Dry-run one window in torch (shape mismatches surface at build time, clearly), then build the backend."""
    import torch

    from edgestream.runners.backend import make_backend

    try:
        with torch.inference_mode():
            net.float().eval()(torch.from_numpy(example))
    except EdgestreamError:
        raise
    except Exception as exc:  # torch errors deep inside a forward: translate
        expects = {k: getattr(net, k) for k in ("in_channels", "n_channels", "n_times", "window") if hasattr(net, k)}
        raise ValidationError(
            f"model {name!r} must accept windows of {info.n_channels} channels × {info.window} samples from stream "
            f"{info.name!r}; a dry run failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}). "
            f"The model expects {expects or 'a different input'}: pass overrides (e.g. in_channels) or fix the window/pick stages."
        ) from None
    run = make_backend(net, example, profile, backend, model_name=name)
    run(example)
    return run
