"""The Legendre Memory Unit memory: a linear time-invariant system in three equivalent forms.

The memory ``m_t ∈ R^d`` compresses the last ``θ`` steps of a scalar input ``u`` onto ``d``
shifted Legendre polynomials (Voelker et al., 2019)::

    m_t = Ā m_{t-1} + B̄ u_t,      m_{-1} = 0

``Ā``/``B̄`` come from the continuous Legendre delay system discretised with a zero-order hold
(dt = 1 step), computed in float64 and stored in the module's dtype. Because the system is
linear and has no feedback from the hidden state, it can be evaluated three ways:

* **parallel** (training): ``m = u * H`` with the impulse response ``H[:, k] = Ā^k B̄``, a causal
  convolution done by FFT zero-padded to ``2L`` so it is linear, not circular;
* **step** (streaming one sample): the recurrence above;
* **chunk** (streaming ``n`` samples at once with carried state)::

      m_{t0+k} = Ā^{k+1} m_{t0-1} + Σ_{j≤k} Ā^{k-j} B̄ u_{t0+j}

  the sum is the same causal convolution over the chunk; the carry term is evaluated by
  doubling with precomputed powers ``Ā^{2^i}`` (log2 n matrix products, no sequential loop).

``H`` and the powers are precomputed up to ``max_len`` steps and sliced; a longer sequence or
chunk is split into pieces of at most ``max_len`` with the state carried between them, so no
sequence length is hard-wired.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.signal import cont2discrete
from torch import nn

from edgestream.core.checks import check_number, fail
from edgestream.core.errors import StateError

# Chunks up to this many steps use a direct convolution; longer ones use FFT.
DIRECT_MAX = 64


def legendre_delay(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time Legendre delay system ``(A (d, d), B (d, 1))`` in float64.

    ``A[i, j] = (2i+1)/θ · (-1 if i < j else (-1)^(i-j+1))``, ``B[i] = (2i+1)/θ · (-1)^i``.
    """
    order = check_number(order, "order", low=1, integer=True)
    theta = check_number(theta, "theta", low=0, low_inclusive=False, fix="theta is the window in steps, e.g. 128.")
    q = np.arange(order, dtype=np.float64)
    r = (2.0 * q + 1.0) / theta
    i, j = np.meshgrid(q, q, indexing="ij")
    a = r[:, None] * np.where(i < j, -1.0, (-1.0) ** (i - j + 1.0))
    b = (r * (-1.0) ** q)[:, None]
    return a, b


def discretize_zoh(a: np.ndarray, b: np.ndarray, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation (scipy ``cont2discrete``) in float64: ``(Ā (d, d), B̄ (d,))``."""
    d = a.shape[0]
    ad, bd, _, _, _ = cont2discrete((a, b, np.ones((1, d)), np.zeros((1, 1))), dt=dt, method="zoh")
    return np.ascontiguousarray(ad, dtype=np.float64), np.ascontiguousarray(bd[:, 0], dtype=np.float64)


@functools.lru_cache(maxsize=16)
def legendre_tables(order: int, theta: float, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float64 ``(Ā (d, d), B̄ (d,), H (d, max_len), powers (n_pow, d, d))`` for one configuration.

    ``H[:, k] = Ā^k B̄``; ``powers[i] = Ā^(2^i)`` for ``2^i < max_len`` (what doubling needs).
    Cached (read-only arrays): building several models of one configuration computes them once.
    """
    ad, bd = discretize_zoh(*legendre_delay(order, theta))
    h = np.empty((order, max_len), dtype=np.float64)
    v = bd.copy()
    for k in range(max_len):
        h[:, k] = v
        v = ad @ v
    count = max(1, math.ceil(math.log2(max_len)))
    powers = np.empty((count, order, order), dtype=np.float64)
    p = ad.copy()
    for i in range(count):
        powers[i] = p
        p = p @ p
    for arr in (ad, bd, h, powers):
        arr.flags.writeable = False
    return ad, bd, h, powers


class LMUMemory(nn.Module):
    """LMU memory of order ``d`` over a window of ``theta`` steps, for a scalar input per step.

    Parameters
    ----------
    order : int
        Memory size ``d`` (number of Legendre coefficients).
    theta : float
        Window length in steps.
    max_len : int
        Steps for which the impulse response and ``Ā`` powers are precomputed; longer inputs are
        processed in pieces of ``max_len`` with carried state (exact, just more calls).
    device, dtype
        Where and in which precision the derived matrices are stored. They are always derived
        from float64 masters, also after ``.to(dtype)``, so a float64 module is exact to float64.

    State
    -----
    ``m`` of shape ``(B, d)``: the memory after the last step consumed (zeros = fresh).
    """

    def __init__(
        self,
        order: int,
        theta: float,
        max_len: int = 1024,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.order = int(check_number(order, "order", low=1, integer=True))
        self.theta = float(check_number(theta, "theta", low=0, low_inclusive=False))
        self.max_len = int(check_number(max_len, "max_len", low=1, integer=True))
        self.state_key = ""  # set by the owning model: where ``m`` lives in its state dict
        # float64 masters (plain attributes, not buffers: .to(float32) must not round them)
        self._a64, self._b64, self._h64, self._pow64 = legendre_tables(self.order, self.theta, self.max_len)
        dtype = dtype or torch.get_default_dtype()
        self.register_buffer("A", torch.empty(0), persistent=False)  # (d, d) Ā
        self.register_buffer("B", torch.empty(0), persistent=False)  # (d,) B̄
        self.register_buffer("H", torch.empty(0), persistent=False)  # (d, max_len) Ā^k B̄
        self.register_buffer("powers", torch.empty(0), persistent=False)  # (n_pow, d, d) Ā^(2^i)
        self._derive(torch.device(device) if device is not None else torch.device("cpu"), dtype)

    # --- construction --------------------------------------------------------------------
    def _derive(self, device: torch.device, dtype: torch.dtype) -> None:
        def cast(arr: np.ndarray) -> torch.Tensor:
            return torch.tensor(arr, device=device, dtype=dtype)  # copies the read-only master

        self.A = cast(self._a64)
        self.B = cast(self._b64)
        self.H = cast(self._h64)
        self.powers = cast(self._pow64)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        # Module.to()/double()/float() land here: re-derive the matrices from the float64
        # masters in the new dtype instead of keeping values rounded to an older dtype.
        super()._apply(fn, recurse)
        self._derive(self.A.device, self.A.dtype)
        return self

    def extra_repr(self) -> str:
        return f"order={self.order}, theta={self.theta:g}, max_len={self.max_len}"

    # --- state ---------------------------------------------------------------------------
    def state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.order)

    def init_state(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(batch, self.order, device=self.A.device, dtype=self.A.dtype)

    def _check(self, u: torch.Tensor, m: torch.Tensor | None, *, per_step: bool = False) -> None:
        if u.ndim != (1 if per_step else 2):
            want = "(B,)" if per_step else "(B, n)"
            fail("u", f"have shape {want} (one scalar input per step)", tuple(u.shape), error=StateError)
        if m is not None and (m.ndim != 2 or m.shape[0] != u.shape[0] or m.shape[1] != self.order):
            raise StateError(
                f"LMU memory state must have shape ({u.shape[0]}, {self.order}) for batch {u.shape[0]}; got "
                f"{tuple(m.shape)}. Create it with init_state(batch={u.shape[0]})."
            )

    # --- the three forms -----------------------------------------------------------------
    def step(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """One step of the recurrence: ``u`` ``(B,)``, ``m`` ``(B, d)`` → new ``m`` ``(B, d)``."""
        self._check(u, m, per_step=True)
        return m @ self.A.T + u[:, None] * self.B

    def recurrent(self, u: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        """Reference: the recurrence looped over time. ``u`` ``(B, n)`` → memories ``(B, n, d)``."""
        self._check(u, m)
        m = self.init_state(u.shape[0]).to(u) if m is None else m
        out = []
        for k in range(u.shape[1]):
            m = self.step(u[:, k], m)
            out.append(m)
        return torch.stack(out, 1) if out else u.new_zeros(u.shape[0], 0, self.order)

    def parallel(self, u: torch.Tensor) -> torch.Tensor:
        """Fresh-state memories by FFT convolution: ``u`` ``(B, L)`` → ``(B, L, d)``."""
        self._check(u, None)
        if u.shape[1] > self.max_len:
            return self.chunk(u, None)
        return self._convolve(u, fft=True)

    def chunk(self, u: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        """Chunk-parallel continuation from state ``m`` ``(B, d)`` (None = zeros).

        ``u`` ``(B, n)`` → memories ``(B, n, d)``; the last row is the new state.
        """
        self._check(u, m)
        n = u.shape[1]
        if n == 0:
            return u.new_zeros(u.shape[0], 0, self.order)
        if n > self.max_len:
            pieces = []
            for start in range(0, n, self.max_len):
                piece = self.chunk(u[:, start : start + self.max_len], m)
                m = piece[:, -1]
                pieces.append(piece)
            return torch.cat(pieces, 1)
        if n == 1:  # the recurrence is the cheapest exact form for a single step
            m0 = self.init_state(u.shape[0]).to(u) if m is None else m
            return self.step(u[:, 0], m0)[:, None]
        out = self._convolve(u, fft=n > DIRECT_MAX)
        if m is not None:
            out = out + self._carry(m, n)
        return out

    # --- pieces --------------------------------------------------------------------------
    def _convolve(self, u: torch.Tensor, *, fft: bool) -> torch.Tensor:
        """Zero-state response ``Σ_{j≤k} H[:, k-j] u_j`` for ``n ≤ max_len`` steps → ``(B, n, d)``."""
        n = u.shape[1]
        h = self.H[:, :n]  # (d, n)
        if fft:
            size = 2 * n  # linear (not circular) convolution
            spec = torch.fft.rfft(u, n=size)[:, None, :] * torch.fft.rfft(h, n=size)[None]  # (B, d, n+1)
            return torch.fft.irfft(spec, n=size)[..., :n].transpose(1, 2)
        # Toeplitz of the impulse response: toe[:, k, j] = H[:, k - j] for j ≤ k, else 0 (gather +
        # mask rather than unfold/conv so the graph exports to ONNX with a dynamic batch)
        lag = torch.arange(n, device=u.device)[:, None] - torch.arange(n, device=u.device)[None]  # (n, n)
        toe = h[:, lag.clamp_min(0)] * (lag >= 0).to(h.dtype)  # (d, n, n)
        return torch.einsum("bj,dkj->bkd", u, toe)

    def _carry(self, m: torch.Tensor, n: int) -> torch.Tensor:
        """Zero-input response ``Ā^{k+1} m`` for ``k < n`` → ``(B, n, d)``, by doubling."""
        seq = (m @ self.A.T)[:, None]  # (B, 1, d): Ā^1 m
        i = 0
        while seq.shape[1] < n:
            # Ā^(2^i) maps [Ā^1 m .. Ā^(2^i) m] to [Ā^(2^i+1) m .. Ā^(2^(i+1)) m]
            seq = torch.cat([seq, seq @ self.powers[i].T], 1)
            i += 1
        return seq[:, :n]
