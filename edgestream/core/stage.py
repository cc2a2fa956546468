"""Processing stages: the contract every DSP stage and model runner follows.

Lifecycle (Holoscan-style, explicit)::

    stage = STAGES.create("bandpass", l_freq=1.0, h_freq=40.0)   # constructor args = config
    out_info = stage.build(in_info, ctx) # validate against the input stream; done when the graph is built
    state = stage.init_state()           # state is a value, owned by the caller (one per stream)
    outputs, state = stage.step(chunk, state)   # zero or more output chunks per input chunk
    state = stage.on_gap(state)          # samples were lost upstream: apply the gap policy
    stage.stop()                         # release resources (models, sessions)

A stage that publishes more than one stream sets ``self.extra_outputs = {port: StreamInfo}`` in
``build``; its ``step`` returns chunks of either stream, and chunks whose ``info`` is an extra
output go to the nodes whose pipeline ``input`` is ``<stage id>.<port>`` (e.g. ``model.status``).

``step`` never mutates ``self``: everything that changes while streaming lives in ``state``,
so streaming equals offline can be checked by feeding the same signal in random chunk sizes
(see :mod:`edgestream.testing`), state can be saved/restored, and two streams never share it.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

from edgestream.core.checks import check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import StateError, ValidationError
from edgestream.core.registry import Registry

STAGES: Registry[Stage] = Registry("stage", packages=("edgestream.dsp", "edgestream.runners"), group="edgestream.stages")

GAP_POLICIES = ("reset", "keep", "rewarm")


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a stage may know about where it runs, given at build time (never at the first sample)."""

    pipeline: str = "adhoc"  # pipeline name (used in output stream names and metadata)
    node: str = ""  # this stage's id in the pipeline
    device: Any = None  # resolved DeviceProfile (edgestream.core.device); None = plain CPU defaults


class Stage:
    """Base class of processing stages.

    Subclasses declare their configuration as explicit constructor keyword arguments, store
    them verbatim on ``self`` (same names), and call ``super().__init__(gap_policy=...)``.
    ``params()``, ``clone()`` and ``repr()`` are derived from the constructor signature.

    Gap policies: ``"reset"`` re-initialises state after lost samples (outputs flagged
    ``warming`` until converged); ``"keep"`` carries state across the gap; ``"rewarm"`` keeps the
    state but flags outputs as warming for the stage's warm-up length.
    """

    # Set by subclasses: samples of input after a reset before outputs are trustworthy. The graph
    # node counts it down, outside the stage's state, so a restored state starts it over; a stage
    # whose warm-up must survive save/restore counts it in its state and leaves this 0 (the model
    # stages do).
    warmup_samples: int = 0
    # False for window consumers: they require info.window (one window per chunk).
    accepts_continuous: ClassVar[bool] = True
    accepts_windows: ClassVar[bool] = False

    def __init__(self, gap_policy: str = "reset") -> None:
        self.gap_policy = check_value(gap_policy, GAP_POLICIES, "gap_policy")
        self.in_info: StreamInfo | None = None
        self.out_info: StreamInfo | None = None
        self.context = BuildContext()

    # --- configuration -------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            if klass is object or "__init__" not in vars(klass):
                continue
            for name, p in inspect.signature(klass.__init__).parameters.items():
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name not in names:
                    names.append(name)
        return names

    def params(self) -> dict[str, Any]:
        """Constructor arguments, as given (the stage's whole configuration)."""
        return {name: getattr(self, name) for name in self.param_names() if hasattr(self, name)}

    def clone(self) -> Stage:
        """A fresh, unbuilt stage with the same configuration."""
        return type(self)(**self.params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # --- lifecycle -----------------------------------------------------------------------
    def build(self, info: StreamInfo, context: BuildContext | None = None) -> StreamInfo:
        """Validate the input stream and return the output stream's description.

        Subclasses override :meth:`_build` (reading ``self.context`` for the device profile);
        raise :class:`ValidationError` with a clear message when the input does not fit (rate,
        channel count, window size, dtype).
        """
        self.context = context or BuildContext(node=type(self).__name__)
        if info.dtype != "float32":
            raise ValidationError(
                f"{type(self).__name__} needs a numeric float32 stream; got stream {info.name!r} of dtype "
                f"{info.dtype!r}. Connect it to a signal stream, not a marker stream."
            )
        if info.window is None and not self.accepts_continuous:
            raise ValidationError(
                f"{type(self).__name__} needs windowed input (one window per chunk); stream {info.name!r} is "
                "continuous. Put a 'window' stage before it."
            )
        if info.window is not None and not self.accepts_windows:
            raise ValidationError(
                f"{type(self).__name__} works on continuous samples; stream {info.name!r} carries windows "
                f"of {info.window} samples. Move it before the 'window' stage."
            )
        self.in_info = info
        self.out_info = self._build(info)
        return self.out_info

    def _build(self, info: StreamInfo) -> StreamInfo:
        return info

    def init_state(self) -> Any:
        """Fresh streaming state (None for stateless stages)."""
        return None

    def step(self, chunk: Chunk, state: Any) -> tuple[list[Chunk], Any]:
        """Process one chunk; return output chunks and the new state."""
        raise NotImplementedError

    def on_gap(self, state: Any) -> Any:
        """Apply the gap policy after samples were lost upstream."""
        if self.gap_policy == "keep":
            return state
        return self.init_state()

    def stop(self) -> None:
        """Release resources. Called once when the pipeline stops."""

    # --- helpers -------------------------------------------------------------------------
    def require_built(self) -> StreamInfo:
        if self.in_info is None:
            raise StateError(f"{type(self).__name__}.build(info) must be called before init_state()/step().")
        return self.in_info


def run_stage(stage: Stage, chunks: list[Chunk], state: Any = None) -> tuple[list[Chunk], Any]:
    """Feed ``chunks`` through a built stage in order; return all outputs and the final state."""
    if state is None:
        state = stage.init_state()
    outputs: list[Chunk] = []
    for chunk in chunks:
        out, state = stage.step(chunk, state)
        outputs.extend(out)
    return outputs, state
