"""Verification of exported ONNX artefacts against the torch model they came from.

A streaming model is run over a seeded sequence in calls of ``chunk`` steps with the state
carried, both in torch and in the graph; outputs and final state tensors are compared. A float32
artefact that differs beyond tolerance is an :class:`~edgestream.runners.artefact.ExportError`;
an int8 artefact over :data:`INT8_MAX_REL` is marked and warned about.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edgestream.models.inputs import example_input
from edgestream.runners.artefact import Artefact, ExportError, Progress, report

log = logging.getLogger(__name__)

FP32_TOLERANCE = {"atol": 1e-4, "rtol": 1e-3}  # |onnx - torch| <= atol + rtol * max|torch| (float32 kernels differ)
# int8: the largest output change vs torch, relative to the output's scale, that an artefact may
# have on the CPU it is verified on. Quantisation noise measured 0.0002-0.043 over the registered
# models on x86-64 with and without VNNI; the old full-range weights saturated to 0.41-0.52 on AVX2.
INT8_MAX_REL = 0.1


def _torch_reference(model: Any, xs: np.ndarray, chunk: int | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Torch outputs (and final state) for ``xs``: a streaming model fed ``chunk`` steps per call, state carried."""
    import torch

    model = model.float().eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small reference run: one thread is faster than contended intra-op threads
    try:
        return _torch_reference_run(model, xs, chunk)
    finally:
        torch.set_num_threads(threads)


def _torch_reference_run(model: Any, xs: np.ndarray, chunk: int | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import torch

    with torch.no_grad():
        x = torch.from_numpy(xs)
        if chunk is None:
            y = model(x)
            return (y[-1] if isinstance(y, (tuple, list)) else y).numpy(), {}
        state = model.init_state(xs.shape[0], device="cpu", dtype=torch.float32)
        ys = []
        for t in range(0, xs.shape[1], chunk):
            y, state = model(x[:, t : t + chunk], state)
            ys.append(y)
        return torch.cat(ys, dim=1).numpy(), {k: v.numpy() for k, v in state.items()}


def _run_artefact(artefact: Artefact, xs: np.ndarray, reference_eval: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the ONNX graph over ``xs`` (streaming: ``chunk`` steps per call, state carried) on the CPU."""
    if reference_eval:
        import onnx
        from onnx.reference import ReferenceEvaluator

        sess = ReferenceEvaluator(onnx.load(str(artefact.path)))
        run = lambda feeds: sess.run(None, feeds)  # noqa: E731
    else:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(artefact.path), opts, providers=["CPUExecutionProvider"])
        run = lambda feeds: sess.run(None, feeds)  # noqa: E731
    in_dtype = np.dtype(artefact.manifest["inputs"][0]["dtype"])
    if not artefact.streaming:
        return np.asarray(run({"x": xs.astype(in_dtype)})[-1], np.float32), {}
    chunk, keys = artefact.chunk, artefact.state_keys
    st = artefact.manifest["state"]
    state = {k: np.zeros([xs.shape[0]] + st[k]["shape"], np.dtype(st[k]["dtype"])) for k in keys}
    ys = []
    for t in range(0, xs.shape[1], chunk):
        feeds = {"x": xs[:, t : t + chunk].astype(in_dtype)} | {st[k]["input"]: state[k] for k in keys}
        y, *new = run(feeds)
        state = dict(zip(keys, new))
        ys.append(np.asarray(y, np.float32))
    return np.concatenate(ys, axis=1), state


def state_error(test: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, Any]:
    """Worst relative difference over the state tensors (each relative to its own scale) and where it is."""
    worst, where = 0.0, ""
    for key, r in ref.items():
        diff = float(np.abs(test[key].astype(np.float64) - r.astype(np.float64)).max()) if r.size else 0.0
        rel = diff / (float(np.abs(r).max()) or 1.0) if r.size else 0.0
        if rel > worst or not where:
            worst, where = rel, key
    return {"max_rel": worst, "key": where, "n_tensors": len(ref)}


def output_error(test: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Max/mean absolute error, error relative to the reference's scale, and argmax agreement over the last axis."""
    diff = np.abs(test.astype(np.float64) - ref.astype(np.float64))
    scale = float(np.abs(ref).max()) or 1.0
    out = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "max_rel": float(diff.max() / scale),
           "ref_scale": scale}
    if ref.ndim >= 2 and ref.shape[-1] > 1:
        out["argmax_agreement"] = float(np.mean(test.argmax(-1) == ref.argmax(-1)))
    return out


def verification_input(model: Any, artefact: Artefact, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal input: streaming models get 3 calls' worth of steps (plus state carried)."""
    rng = np.random.default_rng(seed)
    batch = 2 if artefact.manifest.get("batch", "dynamic") == "dynamic" else 1
    if artefact.streaming:
        chunk = int(artefact.chunk)
        shape = example_input(model, batch, chunk * max(3, -(-12 // chunk)))  # >= 3 calls and >= 12 steps
    else:
        shape = np.zeros([batch] + list(artefact.manifest["input_shape"]), np.float32)
    return rng.standard_normal(shape.shape).astype(np.float32)


def verify_artefact(model: Any, artefact: Artefact, progress: Progress | None = None) -> dict[str, Any]:
    """Compare the ONNX graph with torch over a seeded sequence; raise :class:`ExportError` if fp32 differs."""
    name = artefact.manifest["name"]
    xs = verification_input(model, artefact)
    ref, ref_state = _torch_reference(model, xs, artefact.chunk if artefact.streaming else None)
    what = (f"{xs.shape[1] // artefact.chunk} calls of {artefact.chunk} step(s), state carried" if artefact.streaming
            else f"batch of {xs.shape[0]}")
    report(f"{name}: verifying {artefact.precision} ONNX against torch ({what})", progress)
    runtime = "onnxruntime CPUExecutionProvider"
    if artefact.precision == "fp16":
        # A CPU-only ONNX Runtime session must not be created for a float16 graph (crashes on
        # recurrent ops): check the numbers with ONNX's reference evaluator instead.
        runtime = "onnx.reference.ReferenceEvaluator"
        try:
            got, got_state = _run_artefact(artefact, xs, reference_eval=True)
        except Exception as exc:
            return {"status": "not verified here", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                    "runtime": runtime}
    else:
        got, got_state = _run_artefact(artefact, xs)
    if got.shape != ref.shape:
        raise ExportError(f"{name}: ONNX output shape {got.shape} must equal torch's {ref.shape} for input {xs.shape}.")
    err = output_error(got, ref)
    out = {"status": "ok", "runtime": runtime, "input_shape": list(xs.shape), "vs_torch": err}
    if ref_state:
        out["state_vs_torch"] = state_error(got_state, ref_state)
    if not np.abs(ref).max() > 0:
        # e.g. an untrained spiking model whose output layer never fires: the state comparison carries the check
        out["note"] = "torch outputs are all zero for this input; the final state tensors were compared as well"
    if artefact.precision == "fp32":
        bound = FP32_TOLERANCE["atol"] + FP32_TOLERANCE["rtol"] * err["ref_scale"]
        out["bound"] = bound
        state_rel = out.get("state_vs_torch", {}).get("max_rel", 0.0)
        if not (err["max_abs"] <= bound and state_rel <= FP32_TOLERANCE["rtol"]):
            raise ExportError(
                f"{name}: the exported ONNX model must reproduce torch to float32 tolerance (outputs max |Δ| <= {bound:.3g}, "
                f"state relative Δ <= {FP32_TOLERANCE['rtol']:g}); got max |Δ| {err['max_abs']:.3g} and state relative Δ "
                f"{state_rel:.3g} ({what}). An op is exported differently from its torch semantics; check data-dependent "
                "Python control flow in forward()."
            )
    if artefact.precision == "int8":
        _check_int8(name, out, progress)
    report(f"{name}: {artefact.precision} vs torch: max |Δ| {err['max_abs']:.3g} (relative {err['max_rel']:.3g})"
           + (f", argmax agreement {err['argmax_agreement']:.1%}" if "argmax_agreement" in err else "")
           + (f"; state relative Δ {out['state_vs_torch']['max_rel']:.3g}" if "state_vs_torch" in out else ""), progress)
    return out


def _check_int8(name: str, out: dict[str, Any], progress: Progress | None) -> None:
    """Hold an int8 artefact to the bound on this CPU: over it, mark it and warn (backends then run fp32)."""
    from edgestream.core.cpu import int8_kernel

    bound = INT8_MAX_REL
    out["bound"] = {"max_rel": bound}
    rel = out["vs_torch"]["max_rel"]
    if rel > bound:
        out["status"] = "exceeds bound"
        message = (f"{name}: int8 outputs differ from torch by {rel:.3g} of the output scale on this CPU "
                   f"({int8_kernel()}), more than the bound {bound:g}; the int8 model would decode worse than fp32 here. "
                   "Use fp32 (drop --int8, or precision: fp32 in the device profile); edgestream's backends fall back to "
                   "fp32 for this artefact.")
        log.warning(message)
        report(f"WARNING: {message}", progress)
