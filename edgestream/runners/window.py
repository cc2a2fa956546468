"""Run a window model (input (1, C, T)) on every window and publish class probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ConfigError, EdgestreamError, ValidationError
from edgestream.core.stage import STAGES, Stage


def prediction_info(in_info: StreamInfo, classes: Sequence[str], sfreq: float, name: str, model_desc: Mapping[str, Any]) -> StreamInfo:
    """StreamInfo of a ``Predictions`` stream: ``p_<class>``…, ``class``, ``confidence``, ``warming``."""
    ch = [f"p_{c}" for c in classes] + ["class", "confidence", "warming"]
    types = ["probability"] * len(classes) + ["class", "probability", "flag"]
    desc = {k: v for k, v in in_info.desc.items() if k not in ("window", "model")}
    return StreamInfo(name, "Predictions", "", sfreq, ch, types, ["a.u."] * len(ch), desc=desc | {"model": dict(model_desc)})


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


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
        Registered model name (``edgestream models``); ignored when ``checkpoint`` is given.
    checkpoint : str or None
        Path of a checkpoint written by ``edgestream train`` (model, config and classes inside).
    overrides : mapping
        Constructor overrides for the model.
    classes : list of str or None
        Class names (default: from the checkpoint, else ``0..K-1``).
    output : {"probs", "logits"}
    backend : {"torch", "torchscript", "onnxruntime"} or None
        Default: the device profile's backend.
    """

    accepts_continuous = False
    accepts_windows = True

    def __init__(self, model: str | None = None, checkpoint: str | None = None, overrides: Mapping[str, Any] | None = None,
                 classes: Sequence[str] | None = None, output: str = "probs", backend: str | None = None,
                 gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        if model is None and checkpoint is None:
            raise ConfigError("model stage needs model (a registered name) or checkpoint (a file); got neither. "
                              "E.g. model: reference_conv, or --set model.checkpoint=model.pt.")
        self.model = model
        self.checkpoint = checkpoint
        self.overrides = dict(overrides or {})
        self.classes = list(classes) if classes is not None else None
        self.output = check_value(output, ("probs", "logits"), "output")
        self.backend = check_value(backend, (None, "torch", "torchscript", "onnxruntime"), "backend")

    def _load(self) -> tuple[Any, str, dict[str, Any]]:
        if self.checkpoint is not None:
            from edgestream.models import load_checkpoint

            net, blob = load_checkpoint(self.checkpoint, **self.overrides)
            return net, blob["manifest"]["model"], blob
        from edgestream.models import create_model

        return create_model(self.model, **self.overrides), self.model, {}

    def _build(self, info: StreamInfo) -> StreamInfo:
        net, name, blob = self._load()
        self.extra = blob.get("extra", {}) if blob else {}
        if blob:
            check_alignment(info, self.extra, str(self.checkpoint))
        example = np.zeros((1, info.n_channels, info.window), np.float32)
        profile = self.context.device
        self._run = make_backend_checked(net, example, profile, self.backend, name, info)
        logits = self._run(example)
        n_classes = logits.shape[-1]
        manifest = blob.get("manifest", {}) if blob else {}
        data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
        classes = self.classes or data.get("classes") or [str(i) for i in range(n_classes)]
        if len(classes) != n_classes:
            raise ValidationError(f"model stage: classes must name {n_classes} classes (the model's outputs); got {classes}.")
        self.class_names = classes
        hop = info.desc.get("window", {}).get("hop", info.window)
        model_desc = {"name": name, "checkpoint": self.checkpoint or "", "classes": classes,
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


def check_alignment(info: StreamInfo, extra: Mapping[str, Any], checkpoint: str) -> None:
    """A checkpoint trained on Euclidean-aligned trials needs aligned windows, and one trained without needs raw ones."""
    trained = "alignment" in extra
    aligned = "alignment" in info.desc  # set by the euclidean_align stage
    if trained and not aligned:
        raise ValidationError(
            f"model stage: checkpoint {checkpoint!r} was trained on Euclidean-aligned trials, so its input must be "
            f"aligned; stream {info.name!r} is not. Add a stage before the model: "
            "{kind: euclidean_align, checkpoint: \"${model.checkpoint}\"}."
        )
    if aligned and not trained:
        raise ValidationError(
            f"model stage: checkpoint {checkpoint!r} was trained without Euclidean alignment, but stream {info.name!r} "
            "is aligned by a euclidean_align stage. Remove that stage or retrain with --align."
        )


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
