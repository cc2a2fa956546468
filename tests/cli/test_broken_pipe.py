"""A listing piped into a reader that stops early (``edgestream models | head``) ends quietly."""

from __future__ import annotations

import subprocess
import sys


def test_closed_stdout_ends_without_an_error_message():
    proc = subprocess.Popen([sys.executable, "-m", "edgestream", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # no reader left: the command's first write meets a broken pipe
    _, err = proc.communicate(timeout=120)
    assert "BrokenPipeError" not in err and "error:" not in err, err
    assert proc.returncode == 1
