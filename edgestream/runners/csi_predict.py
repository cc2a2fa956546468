"""Streaming CSI prediction: ``csi_predict`` predicts the next reports on every arrival and scores
earlier predictions when the reports they predicted arrive; ``csi_score`` turns those scores into
a live ``CSIMetrics`` stream.

``csi_predict`` state (one per stream, a value): the last ``history`` reports (16; at least the
model's ``hist_len``, the reports it reads) with their report indices, the last ``pred_len`` predictions awaiting their true reports, and counters. Report
indices come from the producer's ``counter`` channel when the stream has one, else from the
timestamps (``round((t − t₀) · rate)``), so lost, late and duplicated reports are recognised:

* **lost** (index jumps by ``d > 1``): up to ``max_fill`` missing reports are filled by holding the
  newest report (counted as ``imputed``); longer gaps apply ``gap_policy`` — ``reset`` (default:
  forget the history, outputs flagged warming until ``hist_len`` reports arrived), ``keep`` (fill
  the gap by holding, keep going) or ``rewarm`` (fill, and flag outputs warming until refilled);
* **zeroed** (an all-zero report, the way the generator marks a dropped packet; ``zero_is_drop``):
  treated like a lost report that arrived on time;
* **late** (index at or before the newest): if it is still inside the history it replaces the
  value held for it (counted ``late``); no new prediction is made; duplicates are counted and ignored;
* **restarted** (index far behind the newest, e.g. a producer restarted its counter): reset.

Output rows (one per arrival that advances the stream): the ``pred_len`` predicted reports, the
report index they were made at, and for ``h = 1 … pred_len`` the NMSE (dB) of the prediction made
``h`` reports ago against the report that just arrived, the same for repeat-last, and a
``scored_h`` flag (1: scored; 0: nothing to score — warm-up, a lost or late report — and both NMSE
values are then 0, so every value on the stream stays finite). Scores compare against the
*reported* CSI (with whatever noise the reports carry).

Until the model's ``hist_len`` reports are in, its input is padded by repeating the oldest report
held and the outputs are flagged ``warming``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from edgestream.core.checks import check_number, check_value
from edgestream.core.chunk import Chunk, StreamInfo
from edgestream.core.errors import ValidationError
from edgestream.core.lslmeta import COUNTER_MODULUS
from edgestream.core.stage import STAGES, Stage
from edgestream.csi.layout import CSIColumns, locate_csi
from edgestream.runners.model_loader import (
    check_allow_mismatch,
    check_model_or_checkpoint,
    check_stream_fit,
    load_model,
)

log = logging.getLogger(__name__)



def derived_info(stage: Stage, info: StreamInfo, kind: str, names: list[str], types: list[str], units: list[str],
                 desc: dict[str, Any]) -> StreamInfo:
    """The output stream of ``stage`` (named ``<pipeline>-<node>``) at the input's rate."""
    node = stage.context.node or type(stage).__name__.lower()
    return StreamInfo(
        name=f"{stage.context.pipeline}-{node}", type=kind, source_id=f"{info.source_id}:{node}" if info.source_id else node,
        sfreq=info.sfreq, ch_names=names, ch_types=types, units=units, desc=desc,
    )


def _nmse_db(true_rows: np.ndarray, pred_rows: np.ndarray) -> np.ndarray:
    """NMSE in dB of predictions ``(n, A, 2K)`` of one report ``(A, 2K)`` (interleaved): per prediction,
    the mean over antennas of per-row ratios ``‖h − ĥ‖² / ‖h‖²`` (see :mod:`edgestream.csi.metrics`)."""
    err = np.einsum("nad,nad->na", pred_rows - true_rows, pred_rows - true_rows, dtype=np.float64)
    ref = np.maximum(np.einsum("ad,ad->a", true_rows, true_rows, dtype=np.float64), 1e-30)
    return 10.0 * np.log10(np.mean(err / ref, axis=1))


@STAGES.register("csi_predict")
class CSIPredict(Stage):
    """Predict the next CSI reports on each arrival and score past predictions (see module docstring).

    Parameters
    ----------
    model : str or None
        Registered predictor (``kind="predictor"``), e.g. ``csi4cast_edge``, ``csi_gru``, ``csi_repeat_last``.
        With ``checkpoint`` it must be the model the checkpoint holds (or None: take the checkpoint's).
    checkpoint : str, optional
        Trained weights (``edgestream.train.save_checkpoint``); its manifest names the model. What
        its manifest records about the training data (report rate ``sfreq``, ``ch_names``,
        ``units``) is checked against the stream at build time.
    overrides : mapping, optional
        Constructor overrides for the model (e.g. a smaller edge configuration).
    backend : {"torch", "torchscript", "onnxruntime"} or None
        Default: the device profile's choice (ONNX Runtime falls back to torch, logged, if export fails).
    n_antennas, n_subcarriers : int, optional
        Report shape when the input stream has no ``desc/csi`` block (otherwise read from it).
    history : int
        Reports kept per stream (the model reads its newest ``hist_len`` of them); late reports are
        accepted while they are within this history.
    max_fill : int
        Longest run of lost reports filled by holding the newest one; longer gaps apply ``gap_policy``.
    zero_is_drop : bool
        Treat an all-zero report as lost.
    score : bool
        Compute the NMSE channels (NaN when off).
    allow_mismatch : list of str
        Checkpoint checks that only warn: any of ``rate``, ``channels``, ``units``, ``band``.
    gap_policy : str
        ``reset`` | ``keep`` | ``rewarm`` for gaps longer than ``max_fill``.
    """

    def __init__(
        self,
        model: str | None = "csi4cast_edge_xs",
        checkpoint: str | None = None,
        overrides: dict[str, Any] | None = None,
        backend: str | None = None,
        n_antennas: int | None = None,
        n_subcarriers: int | None = None,
        history: int = 16,
        max_fill: int = 4,
        zero_is_drop: bool = True,
        score: bool = True,
        allow_mismatch: list[str] | tuple[str, ...] = (),
        gap_policy: str = "reset",
    ) -> None:
        super().__init__(gap_policy=gap_policy)
        check_model_or_checkpoint("csi_predict", model, checkpoint, "csi4cast_edge_xs")
        self.model = model
        self.checkpoint = checkpoint
        self.overrides = dict(overrides or {})
        self.backend = check_value(backend, (None, "torch", "torchscript", "onnxruntime"), "backend")
        self.n_antennas = n_antennas
        self.n_subcarriers = n_subcarriers
        self.history = check_number(history, "history", low=1, integer=True)
        self.max_fill = check_number(max_fill, "max_fill", low=0, integer=True)
        self.zero_is_drop = zero_is_drop
        self.score = score
        self.allow_mismatch = check_allow_mismatch(allow_mismatch)
        self._net: Any = None
        self._run: Any = None  # inference backend: (E, A, T, 2K) float32 -> (E, A, pred_len, 2K)
        self._model_name = model
        self._columns: CSIColumns | None = None

    # --- build ---------------------------------------------------------------------------
    def _load_model(self, info: StreamInfo) -> Any:
        loaded = load_model("csi_predict", self.model, self.checkpoint, self.overrides, kind="predictor")
        if loaded.checkpoint is None and any(p.requires_grad for p in loaded.net.parameters()):
            log.warning("csi_predict: model %r has no checkpoint; predicting with untrained weights (an untrained "
                        "edge variant equals repeat-last). Pass checkpoint: model.pt.", loaded.name)
        check_stream_fit(loaded, info, "csi_predict", allow=self.allow_mismatch)
        self._model_name = loaded.name
        return loaded.net.eval()

    def _build(self, info: StreamInfo) -> StreamInfo:
        from edgestream.runners.backend import make_backend

        columns = locate_csi(info, self.n_antennas, self.n_subcarriers)
        net = self._load_model(info)
        layout = columns.layout
        if net.n_subcarriers != layout.n_subcarriers:
            raise ValidationError(
                f"csi_predict model {self._model_name!r} predicts {net.n_subcarriers} subcarriers; stream {info.name!r} "
                f"carries {layout.n_subcarriers}. Use a model built for {layout.n_subcarriers} (overrides: "
                "{n_subcarriers: ...}) or publish matching reports."
            )
        example = np.zeros((1, layout.n_antennas, net.hist_len, layout.row_size), np.float32)
        self._run = make_backend(net.float().eval(), example, self.context.device, self.backend, model_name=self._model_name)
        self._run(example)  # dry run: fails at build time, not at the first report
        if self.history < net.hist_len:
            raise ValidationError(
                f"csi_predict history must be at least the model's input length ({net.hist_len} reports); got "
                f"{self.history}. Set history: {net.hist_len} or more."
            )
        self._net = net
        self._columns = columns
        # No warmup_samples: the countdown is the state's "fresh" (reports since the last reset),
        # which a saved and restored state keeps; a count on the graph node would start over.
        p = net.pred_len
        names = [f"p{h + 1}_{c}" for h in range(p) for c in layout.ch_names()] + ["report_index"]
        names += [f"nmse_db_h{h + 1}" for h in range(p)] + [f"np_nmse_db_h{h + 1}" for h in range(p)]
        names += [f"scored_h{h + 1}" for h in range(p)]
        types = ["csi_pred"] * (p * layout.n_values) + ["index"] + ["nmse"] * (2 * p) + ["flag"] * p
        units = ["a.u."] * (p * layout.n_values) + ["a.u."] + ["dB"] * (2 * p) + ["a.u."] * p
        return derived_info(
            self, info, "CSIPrediction", names, types, units,
            {
                "csi": layout.to_desc() | {"layout": "step,antenna,subcarrier,reim", "steps": p, "hist_len": net.hist_len},
                "model": {
                    "name": self._model_name, "checkpoint": self.checkpoint or "",
                    "parameters": sum(x.numel() for x in net.parameters()),
                    "backend": getattr(self._run, "name", "torch"), "precision": getattr(self._run, "precision", "fp32"),
                },
                "source": {"name": info.name, "source_id": info.source_id},
            },
        )

    # --- state ---------------------------------------------------------------------------
    def init_state(self) -> dict[str, Any]:
        layout = self._require().layout
        h = self.history
        return {
            "history": np.zeros((h, layout.n_antennas, layout.row_size), np.float32),  # oldest → newest
            "hist_index": np.full(h, -1, np.int64),  # report index of each slot (-1: empty)
            "hist_real": np.zeros(h, bool),  # slot holds a received report (not a held copy)
            "filled": 0,  # slots holding data
            "fresh": 0,  # reports since the last reset/rewarm (warming until the model's hist_len)
            "last": None,  # newest report index
            "t0": None,  # timestamp of report index 0 (timestamp-derived indices)
            "counter_offset": 0,  # added to the counter channel after it wrapped
            "counter_raw": None,  # last counter value seen
            "made": {},  # report index → (predictions (pred_len, A, 2K), newest report (A, 2K))
            "counts": dict.fromkeys(("reports", "predictions", "imputed", "zeroed", "late", "duplicate", "resets", "scored"), 0),
        }

    def on_gap(self, state: dict[str, Any]) -> dict[str, Any]:
        """Upstream reported lost samples: the report indices tell how many; policy applies in :meth:`step`."""
        return state

    def _require(self) -> CSIColumns:
        if self._columns is None:
            self.require_built()
            raise ValidationError("csi_predict was not built; call build(info) first.")
        return self._columns

    # --- streaming -----------------------------------------------------------------------
    def _indices(self, chunk: Chunk, state: dict[str, Any]) -> np.ndarray:
        """Report index of every row: the counter channel (unwrapped at 2^24) or the timestamps."""
        cols = self._require()
        if cols.counter is not None:
            raw = np.rint(chunk.data[:, cols.counter].astype(np.float64)).astype(np.int64)
            out = np.empty_like(raw)
            offset, prev = state["counter_offset"], state["counter_raw"]
            for i, value in enumerate(raw):
                if prev is not None and value < prev - COUNTER_MODULUS // 2:  # wrapped
                    offset += COUNTER_MODULUS
                out[i], prev = value + offset, value
            state["counter_offset"], state["counter_raw"] = offset, prev
            return out
        rate = cols.layout.report_rate if cols.layout.report_rate > 0 else self.require_built().sfreq
        if state["t0"] is None:
            state["t0"] = float(chunk.timestamps[0])
        return np.rint((chunk.timestamps - state["t0"]) * rate).astype(np.int64)

    @staticmethod
    def _push(state: dict[str, Any], report: np.ndarray, index: int, real: bool) -> None:
        state["history"] = np.concatenate([state["history"][1:], report[None]])
        state["hist_index"] = np.concatenate([state["hist_index"][1:], [index]])
        state["hist_real"] = np.concatenate([state["hist_real"][1:], [real]])
        state["filled"] = min(state["filled"] + 1, len(state["hist_index"]))

    def _reset(self, state: dict[str, Any]) -> dict[str, Any]:
        fresh = self.init_state()
        fresh["counts"] = state["counts"]
        fresh["counts"]["resets"] += 1
        for key in ("t0", "counter_offset", "counter_raw"):
            fresh[key] = state[key]
        return fresh

    def step(self, chunk: Chunk, state: dict[str, Any]) -> tuple[list[Chunk], dict[str, Any]]:
        if chunk.n_times == 0:
            return [], state
        cols = self._require()
        # State is a value: copy the containers we update; arrays are replaced, never written in place.
        state = dict(state, counts=dict(state["counts"]))
        made = dict(state["made"])  # predictions awaiting their reports, as of the start of the chunk
        layout, keep, hist_len = cols.layout, self.history, self._net.hist_len
        reports = cols.layout.to_reports(chunk.data[:, cols.start : cols.start + layout.n_values])
        indices = self._indices(chunk, state)
        counts = state["counts"]
        events: list[tuple] = []  # per advancing arrival: (row, index, window, warming, reset_before, real)
        pending_reset = False  # a reset at a row that produced no prediction applies at the next one
        for row in range(chunk.n_times):
            report, index = reports[row], int(indices[row])
            counts["reports"] += 1
            zeroed = self.zero_is_drop and not np.any(report)
            counts["zeroed"] += int(zeroed)
            reset, pending_reset = pending_reset, False
            last = state["last"]
            if last is not None and index <= last:
                if last - index >= keep + self._net.pred_len:  # producer restarted
                    state, reset, last = self._reset(state), True, None
                else:
                    pending_reset = reset
                    slot = np.flatnonzero(state["hist_index"] == index)
                    if slot.size and not state["hist_real"][slot[0]] and not zeroed:
                        state["history"] = state["history"].copy()
                        state["history"][slot[0]] = report
                        state["hist_real"] = state["hist_real"].copy()
                        state["hist_real"][slot[0]] = True
                        counts["late"] += 1
                    else:
                        counts["duplicate" if slot.size and state["hist_real"][slot[0]] else "late"] += 1
                    continue
            if last is not None and index - last > 1:
                missing = index - last - 1
                if missing > self.max_fill and self.gap_policy == "reset":
                    state, reset = self._reset(state), True
                else:
                    for j in range(min(missing, keep)):
                        self._push(state, state["history"][-1], last + 1 + j, False)
                    counts["imputed"] += missing
                    if missing > self.max_fill and self.gap_policy == "rewarm":
                        state["fresh"] = 0
            if zeroed:
                if state["filled"] == 0:
                    pending_reset = reset
                    continue  # nothing to hold yet
                self._push(state, state["history"][-1], index, False)
            else:
                self._push(state, report, index, True)
            state["last"] = index
            state["fresh"] += 1
            window = state["history"][keep - hist_len :]  # the model's input: the newest hist_len reports
            if state["filled"] < hist_len:  # pad by repeating the oldest report held
                first = hist_len - state["filled"]
                window = np.concatenate([np.repeat(window[first : first + 1], first, axis=0), window[first:]])
            events.append((row, index, window, state["fresh"] < hist_len, reset, not zeroed))
        if not events:
            if pending_reset:
                state["made"] = {}
            return [], state
        # One report at a time, as they arrived: a batch of E was slower per report (3.2 vs 2.8 ms for
        # 32 antennas: the wide activations stop fitting in cache), and batch 1 keeps the traced graph.
        predictions = [self._predict(e[2][None])[0] for e in events]  # E × (pred_len, A, 2K)
        out_rows, warm, stamps, gap_rows = [], [], [], []
        for (row, index, window, warming, reset, real), pred in zip(events, predictions):
            if reset:
                made = {}
            scores = np.zeros(3 * self._net.pred_len)  # model dB | repeat-last dB | scored flags (0: nothing to score)
            if self.score and real:
                p = self._net.pred_len
                hs = [h for h in range(1, p + 1) if index - h in made]
                if hs:  # all scores of this arrival in one pass: model predictions, then repeat-last
                    candidates = [made[index - h][0][h - 1] for h in hs] + [made[index - h][1] for h in hs]
                    db = _nmse_db(reports[row], np.stack(candidates))
                    for j, h in enumerate(hs):
                        scores[h - 1], scores[p + h - 1], scores[2 * p + h - 1] = db[j], db[len(hs) + j], 1.0
                    counts["scored"] += len(hs)
            made[index] = (pred, window[-1])
            made = {k: v for k, v in made.items() if k >= index - self._net.pred_len}
            counts["predictions"] += 1
            out_rows.append(np.concatenate([pred.reshape(-1), [index], scores]).astype(np.float32))
            warm.append(warming)
            stamps.append(chunk.timestamps[row])
            gap_rows.append(reset)
        state["made"] = {} if pending_reset else made
        return self._chunks(np.stack(out_rows), np.asarray(stamps), warm, gap_rows, chunk.gap), state

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        """History windows ``(E, T, A, 2K)`` → predictions ``(E, pred_len, A, 2K)``."""
        import torch

        # Trained predictors produce subnormal intermediates, which x86 computes 10-20x slower
        # (a trained csi4cast_edge: 108 vs 7 ms per prediction); flush them to zero in the thread
        # that runs inference (the flag is per thread).
        torch.set_flush_denormal(True)
        x = np.ascontiguousarray(windows.transpose(0, 2, 1, 3), dtype=np.float32)  # (E, A, T, 2K)
        return self._run(x).transpose(0, 2, 1, 3)

    def _chunks(self, rows: np.ndarray, stamps: np.ndarray, warm: list[bool], gaps: list[bool], gap_in: bool) -> list[Chunk]:
        """Split output rows into chunks of equal ``warming`` flag (the flag is per chunk)."""
        out, start = [], 0
        info = self.out_info
        for i in range(1, len(rows) + 1):
            if i == len(rows) or warm[i] != warm[start]:
                gap = any(gaps[start:i]) or (gap_in and start == 0)
                out.append(Chunk(rows[start:i], stamps[start:i], info, gap=gap, warming=warm[start]))
                start = i
        return out

    def stop(self) -> None:
        self._net = self._run = None


@STAGES.register("csi_score")
class CSIScore(Stage):
    """Live prediction quality: per-horizon NMSE (dB) now and averaged over the last ``window`` reports.

    Input: a ``CSIPrediction`` stream from ``csi_predict``. Output (``CSIMetrics``): one row per
    input row whose prediction horizons were all scored (rows of warm-up, lost or late reports
    carry no score and produce none, so every value is finite): ``nmse_db_h{h}`` (this report),
    ``nmse_db_mean_h{h}`` and ``np_nmse_db_mean_h{h}`` (mean of the linear NMSE over the scored
    reports among the last ``window`` rows, in dB, for the model and for repeat-last), and
    ``gain_db_h{h}`` (repeat-last minus model: how much better than no prediction).
    """

    def __init__(self, window: int = 400, gap_policy: str = "keep") -> None:
        super().__init__(gap_policy=gap_policy)
        self.window = check_number(window, "window", low=1, integer=True)
        self._cols: list[int] | None = None

    def _build(self, info: StreamInfo) -> StreamInfo:
        names = list(info.ch_names)
        groups = [[i for i, n in enumerate(names) if n.startswith(prefix)] for prefix in ("nmse_db_h", "np_nmse_db_h", "scored_h")]
        if not groups[0] or not len(groups[0]) == len(groups[1]) == len(groups[2]):
            raise ValidationError(
                f"csi_score needs a CSIPrediction stream with nmse_db_h*, np_nmse_db_h* and scored_h* channels; stream "
                f"{info.name!r} (type {info.type!r}) has none. Put it after a csi_predict stage."
            )
        self._cols = groups[0] + groups[1] + groups[2]
        p = len(groups[0])
        kinds = ("nmse_db_h", "nmse_db_mean_h", "np_nmse_db_mean_h", "gain_db_h")
        ch = [f"{k}{h + 1}" for k in kinds for h in range(p)]
        desc = {"csi_metrics": {"window": self.window, "steps": p, "source": info.name}, "csi": dict(info.desc.get("csi", {}))}
        return derived_info(self, info, "CSIMetrics", ch, ["nmse"] * len(ch), ["dB"] * len(ch), desc)

    def init_state(self) -> dict[str, Any]:
        p = len(self._cols) // 3 if self._cols else 0
        # linear NMSE of the last `window` rows (model | repeat-last), NaN where not scored
        return {"values": np.full((0, 2 * p), np.nan)}

    def step(self, chunk: Chunk, state: dict[str, Any]) -> tuple[list[Chunk], dict[str, Any]]:
        if chunk.n_times == 0:
            return [], state
        p = len(self._cols) // 3
        block = chunk.data[:, self._cols].astype(np.float64)
        db, scored = block[:, : 2 * p], block[:, 2 * p :] > 0.5
        linear = np.where(np.tile(scored, 2), 10.0 ** (db / 10.0), np.nan)
        values = np.concatenate([state["values"], linear])
        base = state["values"].shape[0]
        rows = np.flatnonzero(scored.all(axis=1))
        out = np.empty((len(rows), 4 * p), np.float32)
        for j, r in enumerate(rows):
            recent = values[max(0, base + r + 1 - self.window) : base + r + 1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # horizons never scored in the window
                mean = 10.0 * np.log10(np.nanmean(recent, axis=0))
            out[j] = np.concatenate([db[r, :p], mean[:p], mean[p:], mean[p:] - mean[:p]])
        new_state = {"values": values[-self.window :]}
        if not len(rows):
            return [], new_state
        return [Chunk(out, chunk.timestamps[rows], self.out_info, gap=chunk.gap, warming=chunk.warming)], new_state


__all__ = ["CSIPredict", "CSIScore"]
