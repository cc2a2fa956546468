"""CPU features and the int8 kernel family they select (recorded in int8 export manifests)."""

from __future__ import annotations

import json
import platform

import pytest
from click.testing import CliRunner

from edgestream.core.cpu import ARM_FLAGS, X86_FLAGS, cpu_features, int8_kernel


@pytest.mark.parametrize("machine, flags, kernel", [
    ("x86_64", ["avx2", "avx512f", "avx512bw", "avx512_vnni"], "x86_64-vnni"),
    ("x86_64", ["avx2", "avx_vnni"], "x86_64-vnni"),  # AVX-VNNI without AVX-512 (e.g. Alder Lake)
    ("x86_64", ["avx2", "avx512f", "avx512bw"], "x86_64-avx512"),  # Skylake-X: saturating pairs, like AVX2
    ("x86_64", ["avx2"], "x86_64-avx2"),
    ("x86_64", [], "x86_64-sse"),
    ("aarch64", ["asimd", "asimddp", "i8mm"], "aarch64-i8mm"),
    ("aarch64", ["asimd", "asimddp"], "aarch64-dotprod"),  # Raspberry Pi 5 (Cortex-A76)
    ("aarch64", ["asimd"], "aarch64"),
    ("riscv64", [], "riscv64"),
])
def test_int8_kernel_family(machine, flags, kernel):
    assert int8_kernel({"machine": machine, "model": "", "flags": flags}) == kernel


def test_this_cpu_is_described():
    f = cpu_features()
    assert f["machine"] == platform.machine().lower()
    known = ARM_FLAGS if f["machine"] in ("aarch64", "arm64") else X86_FLAGS
    assert set(f["flags"]) <= set(known)
    assert int8_kernel() == int8_kernel(f)


def test_doctor_reports_the_int8_kernel():
    from edgestream.cli.main import cli

    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cpu"]["int8_kernel"] == int8_kernel() and report["cpu"]["flags"] == cpu_features()["flags"]
