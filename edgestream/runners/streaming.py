"""Run a streaming model (recurrent state, e.g. LMUFormer) over a continuous stream, chunk by chunk.

The stage turns continuous samples into model frames (optionally block-averaging ``decimate``
samples per frame), runs the registered streaming model chunk-parallel with the state carried
in the stage's state value (one per stream), and publishes a ``Predictions`` stream: per frame
(``emit: step``) or once per input chunk (``emit: chunk``). Each output row is stamped with the
newest input sample it depends on, so latency is measured from it downstream.

Streaming equals offline: feeding a recording in chunks of any size gives the rows one pass
over the whole recording gives (tested with :mod:`edgestream.testing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgestream.core.checks import check_array, check_number, check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ConfigError, ValidationError
from edgestream.core.stage import STAGES, Stage
from edgestream.runners.model_loader import (
    check_allow_mismatch,
    check_model_or_checkpoint,
    check_stream_fit,
    load_model,
)
from edgestream.runners.predictions import prediction_info, softmax

EMITS = ("step", "chunk")
AVERAGES = ("running", "frame")


@STAGES.register("streaming_model")
class StreamingModelStage(Stage):
    """Decode a continuous stream with a registered streaming model (``edgestream models``).

    Parameters
    ----------
    model : str or None
        Registered streaming model, e.g. ``spiking_lmuformer_eeg_s``. With ``checkpoint`` it must
        be the model the checkpoint holds (or None: take the checkpoint's).
    checkpoint : str or None
        Checkpoint written by :func:`edgestream.train.save_checkpoint` (model name and config inside).
        Its training data must fit the stream: frame rate (``sfreq / decimate``), channel names and
        order, units and pass band are checked at build time.
    overrides : mapping
        Constructor overrides (``in_channels`` defaults to the stream's channel count).
    classes : list of str or None
        Class names (default: the checkpoint's ``data.classes`` or ``extra.classes``, else ``0..K-1``).
    emit : {"chunk", "step"}
        One prediction per input chunk (the newest frame) or one per frame.
    average : {"running", "frame"}
        ``running``: cumulative mean of the frame logits since the stream (re)started — the paper's
        head, a prediction at every step; ``frame``: each frame's own logits.
    decimate : int
        Input samples averaged into one model frame (1 = every sample is a frame). A 1000 Hz
        stream with ``decimate: 10`` feeds a model trained on 100 Hz frames.
    warmup : int or None
        Frames flagged ``warming`` after a start or reset (default: the model's ``warmup``, its
        LMU window θ plus its look-ahead delay). Counted down in the stage's state, so a saved
        and restored state resumes the count.
    backend : {"torch", "onnxruntime"} or None
        Default: the device profile's choice. Models in ``mode: delayed`` always run on torch (their
        first outputs are dropped, a data-dependent shape ONNX graphs cannot express).
    allow_mismatch : list of str
        Checkpoint checks that only warn: any of ``rate``, ``channels``, ``units``, ``band``.
    gap_policy : {"reset", "keep", "rewarm"}
        After lost samples: fresh state (flagged warming), keep state, or keep and flag warming.
    """

    def __init__(self, model: str | None = None, checkpoint: str | None = None, overrides: Mapping[str, Any] | None = None,
                 classes: Sequence[str] | None = None, emit: str = "chunk", average: str = "running", decimate: int = 1,
                 warmup: int | None = None, backend: str | None = None, allow_mismatch: Sequence[str] = (),
                 gap_policy: str = "reset") -> None:
        super().__init__(gap_policy=gap_policy)
        check_model_or_checkpoint("streaming_model", model, checkpoint, "spiking_lmuformer_eeg_s")
        self.model = model
        self.checkpoint = checkpoint
        self.overrides = dict(overrides or {})
        self.classes = list(classes) if classes is not None else None
        self.emit = check_value(emit, EMITS, "emit")
        self.average = check_value(average, AVERAGES, "average")
        self.decimate = int(check_number(decimate, "decimate", low=1, integer=True, fix="Use 1 to keep every sample."))
        self.warmup = None if warmup is None else int(check_number(warmup, "warmup", low=0, integer=True))
        self.backend = check_value(backend, (None, "torch", "onnxruntime"), "backend")
        self.allow_mismatch = check_allow_mismatch(allow_mismatch)

    # --- build ---------------------------------------------------------------------------
    def _build(self, info: StreamInfo) -> StreamInfo:
        from edgestream.models.base import StreamingModule
        from edgestream.runners.backend import make_streaming_backend

        if not info.regular:
            raise ValidationError(f"streaming_model needs a regularly sampled stream; stream {info.name!r} is irregular.")
        # Untrained weights are drawn from a fixed seed: the same configuration gives the same model
        # on every run (reproducible demos, and the exported ONNX graph is found in the cache).
        loaded = load_model("streaming_model", self.model, self.checkpoint, self.overrides,
                            defaults={"in_channels": info.n_channels}, kind="streaming", seed=0)
        check_stream_fit(loaded, info, "streaming_model", allow=self.allow_mismatch, decimate=self.decimate)
        net, name = loaded.net, loaded.name
        if not isinstance(net, StreamingModule):
            raise ValidationError(f"streaming_model stage: model {name!r} must be a StreamingModule; got {type(net).__name__}.")
        expects = getattr(net, "in_channels", info.n_channels)
        if expects != info.n_channels:
            raise ValidationError(
                f"streaming_model stage: model {name!r} takes {expects} channels per frame; stream {info.name!r} has "
                f"{info.n_channels} ({', '.join(info.ch_names[:6])}{', ...' if info.n_channels > 6 else ''}). Pick channels "
                "before this stage (kind: pick) or use a model built for this montage."
            )
        net = net.float().eval()
        self.delay = int(getattr(net, "delay", 0))
        n_classes = int(getattr(net, "n_classes"))
        backend = self.backend
        if self.delay and backend != "torch":
            if backend == "onnxruntime":
                raise ConfigError(f"streaming_model stage: backend 'onnxruntime' cannot run {name!r} in delayed mode (its "
                                  "first outputs are dropped at run time); use backend: torch or mode: causal.")
            backend = "torch"
        self._run = make_streaming_backend(net, self.context.device, backend=backend, model_name=name)
        classes = loaded.class_names(n_classes, self.classes, "streaming_model")
        self.class_names = classes
        self.n_classes = n_classes
        # The countdown lives in the state ("warm_left", frames), not in warmup_samples: the graph
        # node's own counter would start over when a saved state is restored into a fresh graph.
        self.warmup_frames = self.warmup if self.warmup is not None else int(getattr(net, "warmup", self.delay))
        frame_rate = info.sfreq / self.decimate
        model_desc = {"name": name, "checkpoint": self.checkpoint or "", "classes": classes,
                      "backend": getattr(self._run, "name", "torch"), "precision": getattr(self._run, "precision", "fp32"),
                      "mode": getattr(net, "mode", ""), "delay_frames": self.delay, "decimate": self.decimate,
                      "frame_rate": frame_rate, "average": self.average, "emit": self.emit, "warmup_frames": self.warmup_frames}
        return prediction_info(info, classes, frame_rate, f"{self.context.pipeline}-{self.context.node}", model_desc)

    # --- streaming -----------------------------------------------------------------------
    def init_state(self) -> dict[str, Any]:
        """Model state for one stream, the partial frame, and the frames left to flag as warming."""
        info = self.require_built()
        return {"model": self._run.init_state(1), "pending": np.zeros((0, info.n_channels), np.float32),
                "warm_left": self.warmup_frames, "frames": 0}

    def on_gap(self, state: dict[str, Any]) -> dict[str, Any]:
        if self.gap_policy == "reset":
            return self.init_state()
        if self.gap_policy == "rewarm":
            return state | {"warm_left": self.warmup_frames}
        return state

    def _frames(self, chunk: Chunk, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Complete frames ``(f, C)``, their newest-sample timestamps ``(f,)``, and the new remainder."""
        if self.decimate == 1:
            return chunk.data, chunk.timestamps, pending
        data = np.concatenate([pending, chunk.data]) if len(pending) else chunk.data
        f = len(data) // self.decimate
        used = f * self.decimate
        frames = data[:used].reshape(f, self.decimate, data.shape[1]).mean(axis=1, dtype=np.float64).astype(np.float32)
        # frame j ends at data row (j+1)·decimate − 1; rows before the chunk came from pending
        ends = np.arange(1, f + 1) * self.decimate - 1 - len(pending)
        return frames, chunk.timestamps[ends], data[used:].copy()

    def step(self, chunk: Chunk, state: dict[str, Any]) -> tuple[list[Chunk], dict[str, Any]]:
        if chunk.n_times == 0:
            return [], state
        check_array(chunk.data, f"streaming_model input from {chunk.info.name!r}", ndim=2, n_channels=self.in_info.n_channels)
        frames, stamps, pending = self._frames(chunk, state["pending"])
        state = state | {"pending": pending}
        f = len(frames)
        if f == 0:
            return [], state
        y, model_state = self._run(np.ascontiguousarray(frames[None]), state["model"])  # (1, f, 2K)
        k = self.n_classes
        logits = y[0, :, k:] if self.average == "running" else y[0, :, :k]
        probs = softmax(logits.astype(np.float64))
        # warming: before the model's delay has passed (placeholder rows) or within the warm-up
        index = state["frames"] + np.arange(f)
        warming = (index < self.delay) | (np.arange(f) < state["warm_left"])
        if self.emit == "chunk":
            probs, stamps, warming = probs[-1:], stamps[-1:], warming[-1:]
        cls = probs.argmax(axis=1)
        rows = np.column_stack([probs, cls, probs[np.arange(len(cls)), cls], warming]).astype(np.float32)
        out = Chunk(rows, np.asarray(stamps, np.float64), self.out_info, chunk.gap, bool(warming.any()))
        state = state | {"model": model_state, "warm_left": max(0, state["warm_left"] - f), "frames": state["frames"] + f}
        return [out], state

