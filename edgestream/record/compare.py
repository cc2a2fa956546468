"""Compare a replayed output stream with the recorded one, sample by sample, matched by timestamp.

Every output sample carries the timestamp of the newest input sample it depends on, so the same
pipeline on the same input stamps its outputs identically: a recorded sample and a replayed one
are the same output when their stamps agree within ``time_tol`` (clock-offset estimates differ
by microseconds between streams). Matched pairs are compared channel by channel:

* numeric: a value differs when ``|replayed - recorded| > tolerance * max(1, |recorded|)``
  (absolute near zero, relative for large values; NaN equals NaN);
* strings: exact equality.

Unmatched recorded samples are *missing* (the replay did not produce them), unmatched replayed
samples inside the recorded span are *extra*.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from edgestream.core.lslmeta import COUNTER_TYPE


@dataclasses.dataclass
class StreamDiff:
    """How one output stream of the replay compares with its recording."""

    stream: str  # recorded stream name
    node: str  # pipeline sink id
    recorded: int = 0  # recorded samples inside the replayable span
    replayed: int = 0  # replayed samples inside the recorded span
    matched: int = 0  # pairs with equal timestamps
    mismatched: int = 0  # pairs whose values differ beyond the tolerance
    missing: int = 0  # recorded samples the replay did not produce
    extra: int = 0  # replayed samples the recording does not have
    max_abs_diff: float = 0.0  # over matched pairs, every compared channel
    worst_channel: str = ""
    first_difference_s: float | None = None  # seconds after the first recorded sample
    note: str = ""  # why the stream could not be compared, or what else the user should know
    compared: bool = True  # False: not compared (note says why)

    @property
    def ok(self) -> bool:
        return self.compared and self.mismatched == 0 and self.missing == 0 and self.extra == 0

    @property
    def status(self) -> str:
        if not self.compared:
            return "NOT COMPARED"
        return "OK" if self.ok else "DIFFERENT"


def match_by_time(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(ia, ib)`` pairing sorted stamps ``a`` and ``b`` within ``tol`` s, in order, each used once."""
    ia, ib = [], []
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        d = a[i] - b[j]
        if abs(d) <= tol:
            ia.append(i)
            ib.append(j)
            i += 1
            j += 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64)


def compare_stream(name: str, node: str, rec_data: np.ndarray, rec_stamps: np.ndarray, rec_labels: Sequence[str],
                   rec_types: Sequence[str], rep_data: np.ndarray, rep_stamps: np.ndarray, rep_labels: Sequence[str],
                   *, tolerance: float, time_tol: float, span: tuple[float, float]) -> StreamDiff:
    """Compare recorded samples (n, C_rec) with replayed ones (m, C_rep); channels must match by label, in order.

    ``span``: the input time range the replay covered; recorded samples outside it cannot be
    reproduced and are left out (a truncated recording, a recorder started late).
    """
    out = StreamDiff(name, node)
    labels, n = list(rec_labels), len(rec_labels)
    # the outlet appends its own counter channel; the pipeline's output (the replayed stream) has none
    if n == len(rep_labels) + 1 and len(rec_types) == n and rec_types[-1] == COUNTER_TYPE:
        labels = labels[:-1]
    if labels != list(rep_labels):
        out.compared = False
        out.note = f"channels differ: recorded {labels}, replayed {list(rep_labels)}"
        return out
    lo, hi = span[0] - time_tol, span[1] + time_tol
    keep = (rec_stamps >= lo) & (rec_stamps <= hi)
    rec_data, rec_stamps = rec_data[keep], rec_stamps[keep]
    if len(rec_stamps):
        inside = (rep_stamps >= rec_stamps[0] - time_tol) & (rep_stamps <= rec_stamps[-1] + time_tol)
        rep_data, rep_stamps = rep_data[inside], rep_stamps[inside]
    out.recorded, out.replayed = len(rec_stamps), len(rep_stamps)
    order_a, order_b = np.argsort(rec_stamps, kind="stable"), np.argsort(rep_stamps, kind="stable")
    ia, ib = match_by_time(rec_stamps[order_a], rep_stamps[order_b], time_tol)
    ia, ib = order_a[ia], order_b[ib]
    out.matched = len(ia)
    out.missing = out.recorded - out.matched
    out.extra = out.replayed - out.matched
    if not out.matched:
        if out.recorded == 0:
            out.note = "no recorded samples inside the replayed span"
        return out
    a = rec_data[ia][:, : len(labels)]
    b = rep_data[ib]
    if a.dtype == object or b.dtype == object:
        bad_values = np.asarray(a, dtype=str) != np.asarray(b, dtype=str)
        diff = bad_values.astype(np.float64)
    else:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))  # inf equals inf, NaN equals NaN
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(b64 - a64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        bad_values = diff > tolerance * np.maximum(1.0, np.abs(np.nan_to_num(a64)))
    bad_rows = bad_values.any(axis=1)
    out.mismatched = int(bad_rows.sum())
    out.max_abs_diff = float(diff.max()) if diff.size else 0.0
    if diff.size and out.max_abs_diff > 0:
        out.worst_channel = str(rep_labels[int(np.unravel_index(np.argmax(diff), diff.shape)[1])])
    if out.mismatched:
        first = int(np.flatnonzero(bad_rows)[0])
        out.first_difference_s = float(rec_stamps[ia[first]] - rec_stamps[0])
    return out


def format_table(diffs: Sequence[StreamDiff]) -> str:
    """The comparison as a fixed-width table (one row per output stream)."""
    head = (f"{'stream':<28}{'node':<16}{'recorded':>9}{'replayed':>9}{'matched':>9}{'differ':>8}{'missing':>8}"
            f"{'extra':>7}{'max |diff|':>12}  {'worst channel':<14}{'status'}")
    lines = [head, "-" * len(head)]
    for d in diffs:
        md = "-" if not d.matched else (f"{d.max_abs_diff:.3g}" if math.isfinite(d.max_abs_diff) else "inf")
        lines.append(f"{d.stream[:27]:<28}{d.node[:15]:<16}{d.recorded:>9}{d.replayed:>9}{d.matched:>9}{d.mismatched:>8}"
                     f"{d.missing:>8}{d.extra:>7}{md:>12}  {d.worst_channel[:13]:<14}{d.status}")
        if d.note:
            lines.append(f"{'':<28}note: {d.note}")
        if d.first_difference_s is not None:
            lines.append(f"{'':<28}first difference {d.first_difference_s:.3f} s after the stream's first recorded sample")
    return "\n".join(lines)
