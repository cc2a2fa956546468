"""What this CPU offers the int8 kernels: instruction-set flags and the kernel family they select.

ONNX Runtime picks its integer matrix kernels by CPU: on x86-64 with VNNI (``vpdpbusd``) a
uint8 x int8 product is accumulated in 32 bits; with AVX2 or AVX-512 but no VNNI, pairs of
products are first summed in 16 bits with saturation (``vpmaddubsw``), so the same int8 model
can give other outputs on another CPU. An exported int8 model records the family it was
verified on (:func:`int8_kernel`), and the export cache keeps one artefact per family.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# Flags that decide which int8 kernels run, as Linux's /proc/cpuinfo spells them, with the name
# numpy's run-time (CPUID / hwcap) detection gives the same flag, where it has one.
X86_FLAGS = {"avx2": "AVX2", "avx512f": "AVX512F", "avx512bw": "AVX512BW", "avx512_vnni": "AVX512VNNI",
             "avx_vnni": None, "amx_int8": None}
ARM_FLAGS = {"asimd": "ASIMD", "asimddp": "ASIMDDP", "i8mm": None, "sve": "SVE", "sve2": None}


@functools.lru_cache(maxsize=1)
def cpu_features() -> dict[str, object]:
    """``{"machine", "model", "flags"}``: the architecture, the CPU's name and the int8-relevant flags present.

    numpy's run-time detection (what the CPU itself reports, as ONNX Runtime sees it) decides the
    flags it knows; ``/proc/cpuinfo`` adds the others (``avx_vnni``, ``amx_int8``, ``i8mm``) only
    where it agrees with numpy on the shared ones: under an emulator it describes the host CPU.
    """
    machine = platform.machine().lower()
    table = ARM_FLAGS if machine in ("aarch64", "arm64") else X86_FLAGS
    model, listed = "", set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features"):
            listed.update(value.split())
    detected = _numpy_features()
    if detected is None:
        present = {f for f in table if f in listed}
    else:
        present = {f for f, np_name in table.items() if np_name and detected.get(np_name)}
        shared_agree = all((f in listed) == (f in present) for f, np_name in table.items() if np_name)
        if shared_agree:
            present |= {f for f, np_name in table.items() if not np_name and f in listed}
    return {"machine": machine, "model": model or platform.processor(), "flags": [f for f in table if f in present]}


def _numpy_features() -> dict[str, bool] | None:
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # numpy >= 2
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__  # numpy 1.x
        except ImportError:
            return None
    return dict(__cpu_features__)


def int8_kernel(features: dict[str, object] | None = None) -> str:
    """The int8 kernel family of a CPU (default: this one), e.g. ``"x86_64-vnni"`` or ``"x86_64-avx2"``.

    x86-64 CPUs differ in how uint8 x int8 products are accumulated (see the module docstring);
    on aarch64 the dot-product and matrix-multiply extensions decide. Other architectures are
    named as they are.
    """
    f = features or cpu_features()
    machine, flags = str(f["machine"]), set(f["flags"])  # type: ignore[arg-type]
    if machine in ("x86_64", "amd64"):
        if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
            return "x86_64-vnni"
        if "avx512bw" in flags:
            return "x86_64-avx512"
        return "x86_64-avx2" if "avx2" in flags else "x86_64-sse"
    if machine in ("aarch64", "arm64"):
        return "aarch64-i8mm" if "i8mm" in flags else "aarch64-dotprod" if "asimddp" in flags else "aarch64"
    return machine or "unknown"
