"""Inference backends: eager torch, TorchScript or ONNX Runtime, for window models and streaming models.

Which one runs is the device profile's decision (``backend``, ``precision``, ``threads``,
``onnx_providers``, ``onnx_chunk``, ``warmup_runs``, ``engine_cache``, and per-model
``model_overrides``); runners only call the backend:

* window (stateless) models: ``backend(x (B, C, T)) -> logits (B, K)``;
* streaming models: ``state = backend.init_state(batch)``, then
  ``y (B, T, K), state = backend(x (B, T, C), state)`` for any T — the ONNX Runtime backend runs
  whole ``onnx_chunk``-step calls and the remainder one step at a time, so outputs do not wait
  for a chunk to fill. State is a flat dict keyed like the model's ``init_state()`` (torch
  tensors for torch, numpy arrays for ONNX Runtime);
* ``torchscript``: window models traced and frozen for the input shape they are built with
  (other shapes run eager); streaming models run eager torch under it.

ONNX models are exported on first use and cached (:mod:`edgestream.runners.export`); sessions
get the profile's providers with their options (CUDA device id; TensorRT engine and timing
caches under the engine cache, fp16 when the profile asks for it) and are warmed up with
progress reported — TensorRT builds its engine during the first run.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.errors import ConfigError
from edgestream.runners.artefact import Artefact, ArtefactError, ExportError, Progress, check_file, report
from edgestream.runners.export import export_onnx

log = logging.getLogger(__name__)


def profile_for(profile: Any, name: str | None) -> Any:
    """``profile`` with its ``model_overrides`` for registered model ``name`` (or its family) applied."""
    if profile is None or not name or not getattr(profile, "model_overrides", None):
        return profile
    from edgestream.models import MODELS

    family = MODELS.get(name).tags.get("family") if name in MODELS else None
    return profile.for_model(name, family)


# --- torch -----------------------------------------------------------------------------------


class TorchBackend:
    """Eager PyTorch in inference mode on the profile's device and dtype (window models)."""

    name = "torch"
    precision = "fp32"

    def __init__(self, model: Any, profile: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(profile.torch_device if profile else "cpu")
        self.dtype = profile.torch_dtype if profile else torch.float32
        self.precision = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]
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


class TorchScriptBackend(TorchBackend):
    """A window model traced and frozen with TorchScript for the example's shape (eager torch for any other shape).

    Freezing folds parameters into the graph and fuses small element-wise ops, which pays off for
    models made of many cheap passes over wide tensors (CSI-4CAST edge: 2.1 vs 2.6 ms per 32-antenna
    report on one core). The traced graph is checked against the eager model on a random input at
    build time; a model that cannot be traced raises :class:`ExportError` (the profile then falls
    back to eager torch, logged).
    """

    name = "torchscript"

    def __init__(self, model: Any, example: np.ndarray, profile: Any = None) -> None:
        super().__init__(model, profile)
        torch = self.torch
        self.shape = tuple(example.shape)
        probe = torch.from_numpy(np.random.default_rng(0).standard_normal(self.shape).astype(np.float32)).to(self.device, self.dtype)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings about shapes baked into the graph: calls keep them
                traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(self.model, probe, check_trace=False)))
                # checked on the probe and on an input it was not traced with (catches data-dependent branches)
                pairs = [(self._last(self.model(x)), self._last(traced(x))) for x in (probe, -0.5 * probe)]
        except Exception as exc:
            raise ExportError(f"TorchScript trace of {type(model).__name__} failed: {type(exc).__name__}: {exc}") from exc
        for want, got in pairs:
            tol = 1e-4 * float(want.abs().max()) + 1e-5
            if want.shape != got.shape or float((want - got).abs().max()) > tol:
                raise ExportError(f"TorchScript trace of {type(model).__name__} differs from the eager model "
                                  f"(max |diff| {float((want - got).abs().max()):.3g} > {tol:.3g}): it has data-dependent "
                                  "control flow; use backend torch.")
        self.traced = traced

    @staticmethod
    def _last(out: Any) -> Any:
        return out[-1] if isinstance(out, (tuple, list)) else out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self.shape:  # the trace holds the example's shape
            return super().__call__(x)
        torch = self.torch
        with torch.no_grad():
            return self._last(self.traced(torch.from_numpy(x).to(self.device, self.dtype))).float().cpu().numpy()


class TorchStreamingBackend(TorchBackend):
    """Eager PyTorch for a :class:`~edgestream.models.base.StreamingModule`; state is a dict of tensors."""

    def init_state(self, batch: int = 1) -> dict[str, Any]:
        return self.model.init_state(batch, device=self.device, dtype=self.dtype)

    def __call__(self, x: np.ndarray, state: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:  # (B, T, C)
        torch = self.torch
        with torch.inference_mode():
            y, state = self.model(torch.from_numpy(x).to(self.device, self.dtype), state)
            return y.float().cpu().numpy(), state


# --- ONNX Runtime ----------------------------------------------------------------------------


def _device_id(profile: Any) -> int:
    dev = getattr(profile, "torch_device", "cpu")
    return int(dev.split(":", 1)[1]) if ":" in dev else 0


def provider_options(profile: Any, artefact: Artefact) -> list[tuple[str, dict[str, Any]]]:
    """ONNX Runtime providers with their options, from the profile (already resolved for this machine)."""
    providers = list(profile.onnx_providers) if profile is not None else ["CPUExecutionProvider"]
    out: list[tuple[str, dict[str, Any]]] = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            engines = profile.engine_cache_dir() / "tensorrt" / artefact.digest
            engines.mkdir(parents=True, exist_ok=True)
            out.append((p, {"device_id": _device_id(profile), "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": str(engines), "trt_timing_cache_enable": True,
                            "trt_timing_cache_path": str(engines), "trt_fp16_enable": profile.precision == "fp16"}))
        elif p == "CUDAExecutionProvider":
            out.append((p, {"device_id": _device_id(profile)}))
        else:
            out.append((p, {}))
    return out


def graph_precision(profile: Any) -> str:
    """Precision of the exported graph: TensorRT takes the fp32 graph and builds fp16 itself."""
    if profile is None or profile.backend != "onnxruntime":
        return "fp32"
    if profile.precision == "fp16" and profile.onnx_providers[:1] == ("TensorrtExecutionProvider",):
        return "fp32"
    return profile.precision


def export_checked(model: Any, label: str, precision: str, **kw: Any) -> Artefact:
    """Export at ``precision``; an int8 artefact over its error bound on this CPU gives way to fp32 (logged).

    The export's verification measures the int8 outputs against torch on this machine's kernels
    (see :data:`edgestream.runners.export_verify.INT8_MAX_REL`); a profile asks for int8 for speed, never
    for worse outputs.
    """
    artefact = export_onnx(model, label, precision=precision, **kw)
    if precision == "int8" and artefact.manifest.get("verification", {}).get("status") == "exceeds bound":
        err = artefact.manifest["verification"]["vs_torch"]["max_rel"]
        log.warning("%s: running fp32 instead of int8: the int8 graph differs from torch by %.3g of the output scale on "
                    "this CPU (bound %g)", label, err, artefact.manifest["verification"]["bound"]["max_rel"])
        return export_onnx(model, label, precision="fp32", **kw)
    return artefact


def open_session(artefact: Artefact, profile: Any = None) -> Any:
    """An ONNX Runtime session on the profile's providers and threads.

    The file is checked against the sha256 its manifest recorded first, and a file ONNX Runtime
    cannot load is an :class:`~edgestream.runners.artefact.ArtefactError` naming it and the fix
    (no model is at hand here to export it again; :func:`export_onnx` does that).
    """
    import onnxruntime as ort

    check_file(artefact)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = profile.threads if profile else 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
    chosen = provider_options(profile, artefact)
    available = set(ort.get_available_providers())
    usable = [(p, o) for p, o in chosen if p in available] or [("CPUExecutionProvider", {})]
    if len(usable) != len(chosen):  # an unresolved profile: resolve() would have logged this decision
        log.warning("ONNX Runtime providers %s not available; using %s",
                    [p for p, _ in chosen if p not in available], [p for p, _ in usable])
    if artefact.precision == "fp16" and not any(p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") for p, _ in usable):
        raise ConfigError(f"precision fp16 needs a CUDA or TensorRT provider; got only {[p for p, _ in usable]} "
                          "(the CPU provider has no float16 kernels for recurrent ops). Use fp32 or int8 on CPU targets.")
    try:
        return ort.InferenceSession(str(artefact.path), opts, providers=[p for p, _ in usable],
                                    provider_options=[o for _, o in usable])
    except Exception as exc:  # InvalidProtobuf, NoSuchFile, Fail from onnxruntime's bindings
        raise _load_error(artefact, [p for p, _ in usable], exc) from exc


def _load_error(artefact: Artefact, providers: list[str], exc: Exception) -> ArtefactError:
    """What to say when ONNX Runtime refuses a file: a damaged file, or a runtime that cannot run a sound one."""
    path = artefact.path
    name = artefact.manifest.get("name") or path.parent.name.rsplit("-", 3)[0]  # <name>-<precision>-<shape>-<digest>
    text = str(exc).strip()
    got = f"{type(exc).__name__}: {text.splitlines()[0][:200].rstrip('.') if text else '(no message)'}"
    if "sha256" in artefact.manifest:  # check_file passed: the file is the one that was exported and verified
        fix = (f"The file matches the sha256 recorded at export, so this ONNX Runtime or its providers {providers} "
               f"cannot run it: check them with edgestream doctor, or re-export with edgestream export {name} --force.")
    else:
        fix = (f"Re-export it: edgestream export {name} --force, or delete {path.parent} (edgestream then exports "
               "the model again on its next use).")
    return ArtefactError(f"ONNX Runtime must be able to load the artefact {path}; got {got}. {fix}", path,
                         f"ONNX Runtime cannot load it ({got})")


def warm_up(run: Any, n: int, label: str, providers: list[str], progress: Progress | None = None) -> None:
    """Run ``run()`` ``n`` times, reporting each (TensorRT builds and caches its engine on the first run)."""
    if n <= 0:
        return
    if "TensorrtExecutionProvider" in providers:
        report(f"{label}: first run builds the TensorRT engine (minutes on a Jetson; cached afterwards)", progress)
    for i in range(n):
        run()
        report(f"{label}: warm-up {i + 1}/{n} on {providers[0]}", progress)


class OrtBackend:
    """ONNX Runtime session for a window model, exported once at the profile's precision and cached."""

    name = "onnxruntime"

    def __init__(self, model: Any, example: np.ndarray, profile: Any = None, model_name: str | None = None,
                 progress: Progress | None = None) -> None:
        self.precision = graph_precision(profile)
        label = model_name or type(model).__name__
        self.artefact = export_checked(model, label, self.precision, example=example,
                                       cache_root=profile.engine_cache_dir() if profile else None,
                                       opset=profile.onnx_opset if profile else 17, progress=progress)
        self.precision = self.artefact.precision
        self.session = open_session(self.artefact, profile)
        self.providers = self.session.get_providers()
        self.input_name = self.session.get_inputs()[0].name
        self.input_dtype = np.dtype(self.artefact.manifest["inputs"][0]["dtype"])
        warm_up(lambda: self(example), profile.warmup_runs if profile else 0, label, self.providers, progress)

    def __call__(self, x: np.ndarray) -> np.ndarray:  # (B, C, T) -> (B, K)
        out = self.session.run(None, {self.input_name: x.astype(self.input_dtype, copy=False)})[-1]
        return out.astype(np.float32, copy=False)


class OrtStreamingBackend:
    """ONNX Runtime for a streaming model: state as explicit inputs/outputs, carried between calls.

    Two exported graphs: ``chunk`` steps per call and one step per call; ``__call__`` runs as many
    whole chunks as fit and the rest step by step, so any input length gives the same result
    as the torch model over the same steps.
    """

    name = "onnxruntime"

    def __init__(self, model: Any, model_name: str | None = None, profile: Any = None, chunk: int | None = None,
                 progress: Progress | None = None) -> None:
        self.precision = graph_precision(profile)
        self.chunk = int(chunk or (profile.onnx_chunk if profile else 1))
        label = model_name or type(model).__name__
        kw = {"cache_root": profile.engine_cache_dir() if profile else None,
              "opset": profile.onnx_opset if profile else 17, "progress": progress}
        self.delay = int(getattr(model, "delay", 0))
        step = export_checked(model, label, self.precision, chunk=1, **kw)
        self.precision = step.precision  # fp32 where int8 exceeded its bound: both graphs then run fp32
        self.artefacts = {1: step}
        if self.chunk > 1:
            chunked = export_checked(model, label, self.precision, chunk=self.chunk, **kw)
            if chunked.precision != self.precision:
                self.precision = chunked.precision
                self.artefacts[1] = step = export_onnx(model, label, chunk=1, precision=self.precision, **kw)
            self.artefacts[self.chunk] = chunked
        self.sessions = {n: open_session(a, profile) for n, a in self.artefacts.items()}
        self.providers = self.sessions[1].get_providers()
        spec = step.manifest["state"]
        self.state_keys = list(spec)
        self.state_inputs = [spec[k]["input"] for k in self.state_keys]
        self.state_spec = {k: (tuple(spec[k]["shape"]), np.dtype(spec[k]["dtype"])) for k in self.state_keys}
        self.input_dtype = np.dtype(step.manifest["inputs"][0]["dtype"])
        self.in_channels = int(step.manifest["inputs"][0]["shape"][-1])
        y, _ = self._run(1, np.zeros((1, 1, self.in_channels), np.float32), self.init_state(1))  # dry run: output width
        self.out_channels = int(y.shape[-1])
        example = np.zeros((1, self.chunk, self.in_channels), np.float32)
        warm_up(lambda: self(example, self.init_state(1)), profile.warmup_runs if profile else 0, label, self.providers, progress)

    def init_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        return {k: np.zeros((batch,) + shape, dtype) for k, (shape, dtype) in self.state_spec.items()}

    def _run(self, n: int, x: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        feeds = {"x": x.astype(self.input_dtype, copy=False)}
        feeds.update(zip(self.state_inputs, (state[k] for k in self.state_keys)))
        y, *new = self.sessions[n].run(None, feeds)
        return y, dict(zip(self.state_keys, new))

    def __call__(self, x: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # (B, T, C)
        n_steps = x.shape[1]
        ys: list[np.ndarray] = []
        pos = 0
        if self.chunk > 1:
            while n_steps - pos >= self.chunk:
                y, state = self._run(self.chunk, x[:, pos : pos + self.chunk], state)
                ys.append(y)
                pos += self.chunk
        while pos < n_steps:
            y, state = self._run(1, x[:, pos : pos + 1], state)
            ys.append(y)
            pos += 1
        if not ys:  # zero steps: nothing to run, state unchanged
            return np.zeros((x.shape[0], 0, self.out_channels), np.float32), state
        y = ys[0] if len(ys) == 1 else np.concatenate(ys, axis=1)
        return y.astype(np.float32, copy=False), state


# --- choosing ------------------------------------------------------------------------------


def export_cached(model: Any, example: np.ndarray, profile: Any = None) -> Path:
    """Export a window model to ONNX for ``example.shape`` (float32, cached); the ``model.onnx`` path."""
    return export_onnx(model, type(model).__name__, example=example,
                       cache_root=profile.engine_cache_dir() if profile else None).path


def _choice(profile: Any, backend: str | None) -> str:
    choice = backend or (profile.backend if profile else "torch")
    if choice not in ("torch", "torchscript", "onnxruntime"):
        raise ConfigError(f"backend must be 'torch', 'torchscript' or 'onnxruntime'; got {choice!r}.")
    return choice


def _or_torch(build: Any, torch_backend: Any, profile: Any, backend: str | None, label: str, kind: str = "ONNX") -> Any:
    """Build the ONNX Runtime or TorchScript backend; if the profile chose it and the model cannot be exported, fall back to eager torch (logged)."""
    try:
        return build()
    except ExportError as exc:
        if backend is not None or getattr(profile, "strict", False):
            raise  # asked for explicitly (stage option / strict profile): the failure is the answer
        log.warning("device %r: %s export of %s failed (%s): falling back to the torch backend",
                    getattr(profile, "name", "?"), kind, label, str(exc).splitlines()[0][:200])
        return torch_backend()


def make_backend(model: Any, example: np.ndarray, profile: Any = None, backend: str | None = None,
                 model_name: str | None = None, progress: Progress | None = None) -> Any:
    """Window-model backend named by ``backend``, else by the profile (its ``model_overrides`` for ``model_name``)."""
    profile = profile_for(profile, model_name)
    choice = _choice(profile, backend)
    if choice == "torch":
        return TorchBackend(model, profile)
    if choice == "torchscript":
        return _or_torch(lambda: TorchScriptBackend(model, example, profile), lambda: TorchBackend(model, profile),
                         profile, backend, model_name or type(model).__name__, kind="TorchScript")
    return _or_torch(lambda: OrtBackend(model, example, profile, model_name, progress), lambda: TorchBackend(model, profile),
                     profile, backend, model_name or type(model).__name__)


def make_streaming_backend(model: Any, profile: Any = None, backend: str | None = None, model_name: str | None = None,
                           chunk: int | None = None, progress: Progress | None = None) -> Any:
    """Streaming-model backend (torch, or ONNX Runtime with the state carried), chosen like :func:`make_backend`."""
    profile = profile_for(profile, model_name)
    if _choice(profile, backend) in ("torch", "torchscript"):  # state in and out: streaming models run eager
        return TorchStreamingBackend(model, profile)
    return _or_torch(lambda: OrtStreamingBackend(model, model_name, profile, chunk, progress),
                     lambda: TorchStreamingBackend(model, profile), profile, backend, model_name or type(model).__name__)
