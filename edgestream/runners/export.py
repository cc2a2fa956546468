"""ONNX export of registered models, verified against torch and cached by content hash.

Two graph shapes:

* **stateless** (window, predictor, vision models): ``x -> y`` for one input shape, batch dynamic;
* **streaming** (:class:`~edgestream.models.base.StreamingModule`): one call advances the model
  by ``chunk`` time steps with the recurrent state as explicit tensors::

      inputs : x (B, chunk, C_in), state_in.<key> ... (one per key of model.init_state())
      outputs: y (B, chunk, C_out), state_out.<key> ...

  so the ONNX Runtime runner carries the state between calls exactly like the torch model.

Every export is checked against the torch model before it is cached (a streaming model over a
sequence of several calls with the state carried); int8 (dynamic quantisation, for CPU targets)
and float16 artefacts are derived from the float32 graph and their output change against torch
is measured and stored in the artefact's ``manifest.json``.

Artefacts live in ``<engine cache>/onnx/<name>-<precision>-<shape>-<digest>/`` — ``model.onnx``
plus ``manifest.json``; the digest covers the weights, the model's class and code, the shape,
precision, opset and the torch/onnx/onnxruntime/edgestream export versions, so a retrained or
edited model never reuses a stale file (:mod:`edgestream.runners.artefact`). A cached artefact is
checked against the sha256 its manifest recorded before it is used; a damaged one is exported
again, with a warning naming the model and the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.cpu import cpu_features, int8_kernel
from edgestream.core.errors import ConfigError, EdgestreamError
from edgestream.models.inputs import example_input, is_streaming  # noqa: F401  (also imported from here)
from edgestream.runners.artefact import (Artefact, ArtefactError, ExportError, Progress, cache_key, model_digest,
                                         read_artefact, report, seal, stale_siblings, staging)
from edgestream.runners.artefact import EXPORT_VERSION, progress_log, show_progress  # noqa: F401  (imported from here)
from edgestream.runners.export_verify import (FP32_TOLERANCE, INT8_MAX_REL, output_error,  # noqa: F401  (imported from here)
                                              state_error, verify_artefact)

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
# Dynamic quantisation: uint8 activations x int8 weights in a 7-bit range (reduce_range). x86-64 CPUs
# without VNNI sum pairs of uint8 x int8 products in 16 bits with saturation (vpmaddubsw); with
# weights of magnitude <= 64 a pair stays within 2 * 255 * 64 = 32640 <= 32767, so every CPU computes the
# same integers. Measured on x86-64 (VNNI native, AVX2 under emulation): full-range weights gave
# max_rel up to 0.41 (dbconformer) on AVX2 and 0.019 with VNNI; 7-bit weights give the VNNI
# figure on both. Per-channel scales did not help consistently; uint8 weights were no faster.
INT8_SCHEME = {"activations": "uint8 (dynamic, per tensor)", "weights": "int8 per tensor, magnitude <= 64 (reduce_range)",
               "per_channel": False, "ops": ["MatMul", "Gemm", "GRU", "LSTM", "Attention"]}


# --- torch -> ONNX ---------------------------------------------------------------------------


def _step_wrapper(model: Any, keys: Sequence[str]) -> Any:
    """Module mapping ``(x, *state tensors)`` to ``(y, *next state tensors)`` in ``keys`` order."""
    from torch import nn

    class StreamingStep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x, *state):  # (B, T, C), state tensors each (B, ...)
            y, new = self.model(x, dict(zip(keys, state)))
            return (y, *[new[k] for k in keys])

    return StreamingStep().eval()


def _torch_export(module: Any, args: tuple, path: Path, inputs: list[str], outputs: list[str], opset: int) -> str | int:
    """Export ``module``; returns the graph's batch size ("dynamic", or 1 when only a fixed batch exports).

    Attempts, in order: the TorchScript exporter (reliable for recurrent ops) with a dynamic batch
    axis, then with batch 1 (ops such as ``unfold`` need static sizes; a stream runner uses batch
    1 anyway), then the dynamo exporter likewise.
    """
    import warnings

    import torch

    def torchscript(dynamic: bool) -> None:
        axes = {n: {0: "batch"} for n in inputs + outputs} if dynamic else None
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False, verbose=False)

    def dynamo(dynamic: bool) -> None:
        shapes = None
        if dynamic:
            batch = torch.export.Dim("batch", min=1, max=1024)
            shapes = tuple({0: batch} for _ in args)
            if len(args) > 1 and module.__class__.__name__ == "StreamingStep":  # forward(x, *state)
                shapes = (shapes[0], shapes[1:])
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                              dynamic_shapes=shapes, opset_version=max(opset, 18), dynamo=True, verbose=False)

    attempts = [("TorchScript exporter, dynamic batch", torchscript, True), ("TorchScript exporter, batch 1", torchscript, False),
                ("dynamo exporter, dynamic batch", dynamo, True), ("dynamo exporter, batch 1", dynamo, False)]
    failures = []
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.CRITICAL)  # failed attempts log pages of tracebacks; the summary below says why
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_fds():
            # The TorchScript exporter's deprecation notice and its advice on RNN initial states (which
            # are inputs here) are not actionable for users.
            for category in (UserWarning, DeprecationWarning, FutureWarning, torch.jit.TracerWarning):
                warnings.simplefilter("ignore", category=category)
            for label, fn, dynamic in attempts:
                try:
                    fn(dynamic)
                    if failures:
                        log.info("ONNX export of %s succeeded with the %s", type(module).__name__, label)
                    return "dynamic" if dynamic else 1
                except Exception as exc:  # unsupported op or shape constraint: try the next way
                    failures.append(f"{label}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")
                    log.info("ONNX export attempt failed (%s)", failures[-1])
    finally:
        torch_log.setLevel(level)
    raise ExportError(f"model {type(module).__name__} could not be exported to ONNX; " + "; ".join(failures) + ".")


@contextlib.contextmanager
def _quiet_fds():
    """Silence file descriptors 1 and 2 while exporting: failed attempts print whole IR graphs from C++.

    Process-wide for the duration of one export (done while a graph is built, not while streaming).
    """
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _io_specs(path: Path) -> tuple[list[dict], list[dict]]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)

    def spec(v) -> dict:
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return {"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}

    return [spec(v) for v in m.graph.input], [spec(v) for v in m.graph.output]


def export_onnx(model: Any, name: str, *, chunk: int = 1, precision: str = "fp32", example: np.ndarray | None = None,
                cache_root: str | os.PathLike[str] | None = None, opset: int = 17, verify: bool = True,
                force: bool = False, progress: Progress | None = None) -> Artefact:
    """Export ``model`` (cached): a streaming model ``chunk`` steps per call, other models for ``example``'s shape.

    Parameters
    ----------
    model : torch.nn.Module
        A registered model instance (weights as they are: trained or freshly initialised).
    name : str
        Registered model name (used in the artefact's directory name and manifest).
    chunk : int
        Time steps per call for streaming models (ignored otherwise).
    precision : {"fp32", "fp16", "int8"}
        int8 = dynamic quantisation of weights (onnxruntime.quantization), for CPU targets;
        fp16 = float16 graph (inputs/outputs float16 too), for CUDA/TensorRT targets.
    example : array or None
        Input for stateless models (default: :func:`example_input`).
    cache_root : path or None
        Engine cache directory (default: ``$EDGESTREAM_CACHE/engines``).
    force : bool
        Re-export even if a cached artefact exists.

    A cached artefact is used only if its ``model.onnx`` matches the sha256 and size in its
    manifest (written by the same export version for the same digest); otherwise it is exported
    again, with a warning that names the model, the file and what was wrong.
    """
    from edgestream.core.checks import check_number, check_value
    from edgestream.core.paths import cache_dir

    check_value(precision, PRECISIONS, "precision", fix="Use fp32, fp16 (GPU targets) or int8 (CPU targets).")
    streaming = is_streaming(model)
    if streaming:
        check_number(chunk, "chunk", low=1, integer=True, fix="Pass the number of time steps per call, e.g. --chunk 16.")
        example = example_input(model, 1, chunk)
    elif example is None:
        example = example_input(model, 1)
    example = np.ascontiguousarray(example, np.float32)
    root = Path(cache_root).expanduser() if cache_root else cache_dir("engines")
    shape_tag = f"T{chunk}" if streaming else "x".join(str(d) for d in example.shape[1:])
    # int8 results depend on the CPU's integer kernels: one artefact per kernel family, verified there
    kernel = int8_kernel() if precision == "int8" else None
    key = cache_key(model)
    digest = model_digest(model, name, streaming, example.shape[1:], chunk if streaming else None, precision, opset,
                          *([kernel] if kernel else []), key=key)
    target = root / "onnx" / f"{name}-{precision}-{shape_tag}-{digest}"
    damaged = None
    if target.exists() and not force:
        try:
            artefact = read_artefact(target, digest)
        except ArtefactError as exc:  # swapped, truncated, unreadable, manifest missing: export it again
            damaged = exc
            message = f"{name}: the cached {precision} ONNX model {exc.path} is {exc.kind}: {exc.problem}; exporting it again"
            log.warning(message)
            report(f"WARNING: {message}", progress)
        else:
            report(f"{name}: using cached {precision} ONNX model {target}", progress)
            return artefact
    elif not force:
        for old, why in stale_siblings(target, key):
            report(f"{name}: the cached {precision} ONNX model {old / 'model.onnx'} is stale ({why}); exporting a new one",
                   progress)
    if precision != "fp32":
        base = export_onnx(model, name, chunk=chunk, precision="fp32", example=example, cache_root=root, opset=opset,
                           verify=verify, force=force, progress=progress)
    with staging(target, replace=force or damaged is not None) as tmp:
        t0 = time.perf_counter()
        if precision == "fp32":
            manifest = _export_fp32(model, name, streaming, chunk, example, tmp, opset, progress)
        else:
            manifest = _derive(base, tmp, precision, progress)
        inputs, outputs = _io_specs(tmp / "model.onnx")
        manifest.update(name=name, precision=precision, digest=digest, opset=opset, inputs=inputs, outputs=outputs,
                        versions=key["versions"], model_class=key["class"], key=key,
                        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), export_seconds=round(time.perf_counter() - t0, 3))
        artefact = Artefact(tmp / "model.onnx", manifest)
        if verify:
            manifest["verification"] = verify_artefact(model, artefact, progress=progress)
            manifest["verification"].update(verified_on())
        seal(tmp, manifest)  # sha256 and size of model.onnx, checked on every later use
    if damaged is not None:
        report(f"{name}: re-exported {precision} ONNX model {target / 'model.onnx'} (the cached one was {damaged.kind}: "
               f"{damaged.problem})", progress)
    else:
        report(f"{name}: {precision} ONNX model ready: {target / 'model.onnx'}", progress)
    return read_artefact(target, digest)


def _export_fp32(model: Any, name: str, streaming: bool, chunk: int, example: np.ndarray, out: Path, opset: int,
                 progress: Progress | None) -> dict[str, Any]:
    import torch

    model = model.float().eval()
    x = torch.from_numpy(example)
    if streaming:
        state = model.init_state(1, device="cpu", dtype=torch.float32)
        keys = list(state)
        ins = ["x"] + [f"state_in.{k}" for k in keys]
        outs = ["y"] + [f"state_out.{k}" for k in keys]
        named = ", ".join(keys[:4]) + (f", ... ({len(keys)} tensors)" if len(keys) > 4 else "")
        report(f"{name}: exporting to ONNX ({chunk} step(s) per call, state {named or '(none)'}; opset {opset})", progress)
        batch = _torch_export(_step_wrapper(model, keys), (x, *state.values()), out / "model.onnx", ins, outs, opset)
        return {"kind": "streaming", "chunk": chunk, "batch": batch, "delay": int(getattr(model, "delay", 0)),
                "state": {k: {"input": f"state_in.{k}", "output": f"state_out.{k}", "shape": list(v.shape[1:]),
                              "dtype": str(v.dtype).replace("torch.", "")} for k, v in state.items()}}
    try:
        with torch.no_grad():
            y = model(x)
    except EdgestreamError:
        raise
    except Exception as exc:  # a shape mismatch deep inside torch: say which input was tried
        raise ConfigError(
            f"model {name} must accept an input of shape {tuple(example.shape)} to be exported; the torch dry run failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}). Pass the input shape (edgestream export --shape CxT) "
            "or model overrides that match it."
        ) from None
    n_out = len(y) if isinstance(y, (tuple, list)) else 1
    outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    report(f"{name}: exporting to ONNX (input {tuple(example.shape)}; opset {opset})", progress)
    batch = _torch_export(model, (x,), out / "model.onnx", ["x"], outs, opset)
    return {"kind": "stateless", "chunk": None, "batch": batch, "input_shape": list(example.shape[1:]), "state": {}}


def _derive(base: Artefact, out: Path, precision: str, progress: Progress | None) -> dict[str, Any]:
    """int8 (dynamic quantisation) or fp16 graph from the verified fp32 artefact."""
    import onnx

    keep = ("kind", "chunk", "batch", "delay", "state", "input_shape")
    manifest = json.loads(json.dumps({k: v for k, v in base.manifest.items() if k in keep}))
    manifest["derived_from"] = str(base.path)
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        report(f"{base.manifest['name']}: int8 dynamic quantisation of weights (MatMul/Gemm/recurrent ops, 7-bit weights)",
               progress)
        # Conv stays float: with int8 weights ONNX Runtime's CPU ConvInteger ran 2.7x slower than the
        # float Conv on reference_conv (1.2 vs 0.45 ms per window, x86-64); dense and recurrent
        # weights hold most parameters of the streaming models anyway.
        with _quiet_quantizer():
            quantize_dynamic(str(base.path), str(out / "model.onnx"), weight_type=QuantType.QInt8, reduce_range=True,
                             per_channel=INT8_SCHEME["per_channel"], op_types_to_quantize=INT8_SCHEME["ops"])
        manifest["quantization"] = dict(INT8_SCHEME)
    else:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        report(f"{base.manifest['name']}: converting to float16", progress)
        model16 = convert_float_to_float16(onnx.load(str(base.path)), keep_io_types=False)
        onnx.save(model16, str(out / "model.onnx"))
        for s in manifest.get("state", {}).values():
            s["dtype"] = "float16"
    return manifest


def verified_on() -> dict[str, Any]:
    """Where a verification ran: the CPU (architecture, name, int8-relevant flags, kernel family) and ONNX Runtime."""
    import onnxruntime

    return {"cpu": cpu_features() | {"int8_kernel": int8_kernel()}, "onnxruntime": onnxruntime.__version__}


class _quiet_quantizer:
    """Drop the quantizer's advice messages, which it logs on the root logger at WARNING."""

    @staticmethod
    def filter(record: logging.LogRecord) -> bool:
        return "quantization" not in record.pathname.replace("\\", "/")

    def __enter__(self) -> None:
        logging.getLogger().addFilter(self.filter)

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger().removeFilter(self.filter)

