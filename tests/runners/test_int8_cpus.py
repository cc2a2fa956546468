"""int8 artefacts give the same outputs on x86-64 CPUs with and without VNNI (issue 15).

The graph is exported and verified here, then run again by ONNX Runtime inside
``qemu-x86_64 -cpu Haswell`` (AVX2, no AVX-512/VNNI), where MLAS takes the uint8 x int8 kernels
that sum product pairs in 16 bits with saturation. Full-range int8 weights gave max_rel 0.41
(dbconformer) and 0.52 (lmuformer_psmnist) there; the 7-bit weights must stay within the bound.
About 10 s here; skipped where qemu-user is not installed (Debian: qemu-user; .ci/run installs it).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgestream.models import create_model
from edgestream.runners.export import INT8_MAX_REL, example_input, export_onnx
from edgestream.runners.export_verify import _run_artefact, _torch_reference, output_error

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("qemu-x86_64") is None,
                                 reason="needs an x86-64 host with qemu-user (apt-get install qemu-user)")]

EMULATED = """
import json, sys
import numpy as np
from edgestream.core.cpu import int8_kernel
from edgestream.runners.export import Artefact
from edgestream.runners.export_verify import _run_artefact
path, manifest, xs, out = sys.argv[1:5]
art = Artefact(__import__("pathlib").Path(path), json.load(open(manifest)))
y, _ = _run_artefact(art, np.load(xs))
np.save(out, y)
print(json.dumps({"int8_kernel": int8_kernel()}))
"""


@pytest.mark.parametrize("name, chunk", [("lmuformer_psmnist", 4), ("dbconformer", None)])
def test_int8_outputs_hold_without_vnni(name, chunk, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = create_model(name).float().eval()
    art = export_onnx(model, name, chunk=chunk or 1, precision="int8")
    xs = np.random.default_rng(1).standard_normal(example_input(model, 2, 32).shape if chunk else
                                                  example_input(model, 2).shape).astype(np.float32)
    ref, _ = _torch_reference(model, xs, chunk)
    native, _ = _run_artefact(art, xs)
    (tmp_path / "manifest.json").write_text(json.dumps(art.manifest))
    np.save(tmp_path / "xs.npy", xs)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", EMULATED, str(art.path),
                           str(tmp_path / "manifest.json"), str(tmp_path / "xs.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=500, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"int8_kernel": "x86_64-avx2"}
    emulated = np.load(tmp_path / "y.npy")
    on_avx2, here = output_error(emulated, ref), output_error(native, ref)
    assert on_avx2["max_rel"] <= INT8_MAX_REL, on_avx2
    # the integer products are exact on both kernel families: only float rounding may differ
    assert output_error(emulated, native)["max_rel"] < 1e-3, (on_avx2, here)
