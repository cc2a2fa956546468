"""The suite's own harness: a per-test timeout fails that test and the run goes on.

pytest-timeout's ``signal`` method raises inside whatever the test was running; when that is a C
extension call, a traceback entry can lack a line number and pytest used to crash with an
INTERNALERROR that lost every later result (issue 15). The conftest mends such tracebacks.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from edgestream.testing import mend_traceback

ROOT = Path(__file__).resolve().parents[2]


def entry_without_line(frame):
    """A traceback entry stopped at an instruction of ``frame`` that has no source line (the cleanup
    code of a ``finally``; the function must have one), for which Python reports tb_lineno None."""
    offset = next(start for start, _, line in frame.f_code.co_lines() if line is None)
    return types.TracebackType(None, frame, offset, -1)


BAD_TRACEBACK = '''
import sys, types

def test_frame_without_line_number():
    try:
        err = RuntimeError("raised where no source line is known")
    finally:
        frame = sys._getframe()
    offset = next(start for start, _, line in frame.f_code.co_lines() if line is None)
    raise err.with_traceback(types.TracebackType(None, frame, offset, -1))

def test_after_it():
    assert 1 + 1 == 2
'''

SLOW_TEST = '''
import time
import pytest

@pytest.mark.timeout(1)
def test_overruns_its_timeout():
    time.sleep(30)

def test_after_it():
    assert 1 + 1 == 2
'''


def _session(pytester, source: str):
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "timeout_method=signal", "-m", "")


def test_traceback_without_line_number_is_a_failure_not_an_internal_error(pytester):
    result = _session(pytester, BAD_TRACEBACK)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*raised where no source line is known*"])


def test_a_timeout_fails_its_test_and_the_run_continues(pytester):
    result = _session(pytester, SLOW_TEST)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*Timeout (>1.0s)*"])


def test_mend_traceback_fills_missing_line_numbers_in_the_chain():
    try:
        pass
    finally:
        frame = sys._getframe()
    cause = ValueError("cause")
    cause.__traceback__ = entry_without_line(frame)
    err = RuntimeError("effect")
    err.__cause__ = cause
    err.__traceback__ = entry_without_line(frame)
    assert err.__traceback__.tb_lineno is None and cause.__traceback__.tb_lineno is None
    assert mend_traceback(err)
    first = frame.f_code.co_firstlineno
    assert err.__traceback__.tb_lineno == first and cause.__traceback__.tb_lineno == first
    assert not mend_traceback(err)  # nothing left to mend
