"""The streaming-model contract: recurrent state is a value that goes in and comes out.

Models tagged ``kind="streaming"`` subclass :class:`StreamingModule`:

* layout: ``x`` is ``(B, T, C_in)`` (batch, time steps, channels), outputs ``(B, T, C_out)``;
* ``init_state(batch=1, device=None, dtype=None) -> State`` — a flat ``dict[str, Tensor]``
  whose tensors all lead with the batch dimension (flat and named so ONNX export can expose
  each as an input/output);
* ``forward(x, state=None) -> (y, state)`` — parallel over T, continuing from ``state``
  (``None`` = fresh); this is the training path;
* ``step(x_t, state) -> (y_t, state)`` — one time step, ``x_t`` ``(B, C_in)``;
* ``delay`` — steps by which outputs lag inputs (0 for causal models).

Nothing about streaming lives on the module (no mode flags, no hidden buffers): the caller
owns the state, so two streams never share it, and state can be saved and restored.
Feeding a sequence in random chunks through ``forward`` with carried state must equal one
``forward`` over the whole sequence — tested for every registered streaming model.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from edgestream.core.errors import StateError

State = dict[str, torch.Tensor]


class StreamingModule(nn.Module):
    """Base class for models carrying explicit recurrent state (see module docstring)."""

    delay: int = 0

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """Name → shape of every state tensor for ``batch`` streams."""
        raise NotImplementedError

    def init_state(self, batch: int = 1, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        if device is None or dtype is None:
            ref = next(self.parameters(), None)
            device = device if device is not None else (ref.device if ref is not None else "cpu")
            dtype = dtype if dtype is not None else (ref.dtype if ref is not None else torch.float32)
        return {k: torch.zeros(s, device=device, dtype=dtype) for k, s in self.state_shapes(batch).items()}

    def check_state(self, state: Mapping[str, torch.Tensor], batch: int) -> None:
        """Raise :class:`StateError` naming the first key or shape that does not match."""
        expected = self.state_shapes(batch)
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise StateError(
                f"state for {type(self).__name__} must have keys {sorted(expected)}; missing {missing}, "
                f"unexpected {extra}. Create it with model.init_state(batch={batch})."
            )
        for key, shape in expected.items():
            if tuple(state[key].shape) != tuple(shape):
                raise StateError(
                    f"state[{key!r}] for {type(self).__name__} must have shape {tuple(shape)} for batch {batch}; "
                    f"got {tuple(state[key].shape)}. State from another model or batch size cannot be reused; "
                    f"call model.init_state(batch={batch})."
                )

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:  # (B, T, C)
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:  # (B, C) -> (B, C_out)
        y, state = self.forward(x.unsqueeze(1), state)
        return y[:, 0], state
