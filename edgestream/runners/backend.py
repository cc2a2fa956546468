"""Inference backends for stateless (window) models: eager torch or ONNX Runtime.

Which one runs is the device profile's decision (``backend``, ``threads``, ``onnx_providers``,
``engine_cache``); the runner only calls ``backend(x) -> logits``.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.errors import ConfigError

log = logging.getLogger(__name__)


class TorchBackend:
    """Eager PyTorch in inference mode on the profile's device and dtype."""

    name = "torch"

    def __init__(self, model: Any, profile: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(profile.torch_device if profile else "cpu")
        self.dtype = profile.torch_dtype if profile else torch.float32
        if profile is not None:
            torch.set_num_threads(profile.threads)
        self.model = model.to(self.device, self.dtype).eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:  # (B, C, T) float32 -> (B, K)
        torch = self.torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x).to(self.device, self.dtype))
            if isinstance(out, (tuple, list)):
                out = out[-1]  # (features, logits)
            return out.float().cpu().numpy()


class OrtBackend:
    """ONNX Runtime session built from the torch model (exported once, cached by content hash)."""

    name = "onnxruntime"

    def __init__(self, model: Any, example: np.ndarray, profile: Any = None) -> None:
        import onnxruntime as ort

        path = export_cached(model, example, profile)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = profile.threads if profile else 1
        opts.inter_op_num_threads = 1
        available = set(ort.get_available_providers())
        wanted = list(profile.onnx_providers) if profile else ["CPUExecutionProvider"]
        providers = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        if providers != wanted:
            log.warning("ONNX Runtime providers %s not available; using %s", [p for p in wanted if p not in available], providers)
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.providers = providers

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[-1]


def export_cached(model: Any, example: np.ndarray, profile: Any = None) -> Path:
    """Export ``model`` to ONNX for input shape ``example.shape``; reuse a cached file with the same weights."""
    import torch

    from edgestream.core.paths import cache_dir

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    digest = hashlib.sha256(buf.getvalue() + repr((type(model).__name__, example.shape)).encode()).hexdigest()[:16]
    root = Path(profile.engine_cache).expanduser() if profile else cache_dir("engines")
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{type(model).__name__}-{digest}.onnx"
    if not path.exists():
        log.info("exporting %s to %s", type(model).__name__, path)
        tmp = path.with_suffix(".tmp.onnx")
        model = model.float().eval()
        with torch.inference_mode():
            torch.onnx.export(model, (torch.from_numpy(example),), str(tmp), input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}}, dynamo=False)
        tmp.replace(path)
    return path


def make_backend(model: Any, example: np.ndarray, profile: Any = None, backend: str | None = None) -> Any:
    """Backend named by ``backend`` or the profile (default torch)."""
    choice = backend or (profile.backend if profile else "torch")
    if choice == "torch":
        return TorchBackend(model, profile)
    if choice == "onnxruntime":
        return OrtBackend(model, example, profile)
    raise ConfigError(f"backend must be 'torch' or 'onnxruntime'; got {choice!r}.")
