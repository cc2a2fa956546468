"""Test scaffolding: synthetic live LSL streams of every type the dashboard shows.

The values are made up but the transport is real liblsl, written by edgestream's own
:class:`~edgestream.core.lslmeta.OutletWriter` (channel metadata, ``desc`` blocks, a ``counter``
channel appended to every numeric stream).
:class:`PublisherProcess` runs the outlets in a child process, as a real producer would be, so
the dashboard under test never shares a GIL with its data source. Stream producers that exist
in the project (``edgestream simulate eeg``, ``edgestream run``) should be preferred where they
are available; these recipes stand in for the stream types whose producers are still missing.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pylsl

from edgestream.core.chunk import StreamInfo
from edgestream.core.lslmeta import OutletWriter

Generator = Callable[[np.ndarray, int], np.ndarray]  # (stamps (n,), first index) -> (n, C)


class _Stream:
    def __init__(self, info: StreamInfo, gen: Generator, rate: float) -> None:
        self.info = info
        self.gen = gen
        self.rate = rate  # samples per second pushed (the nominal rate, or the event rate)
        # edgestream's own outlet writer: XDF channel metadata, desc blocks, and the counter channel
        self.outlet = OutletWriter(info, info.source_id, counter=True, desc=info.desc, max_buffered=60)
        self.pushed = 0
        self.t0 = pylsl.local_clock()


class Publisher:
    """Push synthetic samples for every added stream, paced to its rate, until stopped."""

    def __init__(self) -> None:
        self.streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-publisher", daemon=True)
        self._thread.start()

    def add(self, info: StreamInfo, gen: Generator, rate: float | None = None) -> StreamInfo:
        with self._lock:
            self.streams[info.name] = _Stream(info, gen, rate or info.sfreq)
        return info

    def remove(self, name: str) -> None:
        """Destroy an outlet (its readers see the stream vanish).

        The lock is held while closing: the push thread holds it for a whole round, so it
        never pushes into an outlet that is being destroyed.
        """
        with self._lock:
            self.streams.pop(name).outlet.close()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            with self._lock:
                self._push_due()

    def _push_due(self) -> None:
        now = pylsl.local_clock()
        for s in self.streams.values():
            due = int((now - s.t0) * s.rate) + 1 - s.pushed  # every sample whose stamp has passed
            if due <= 0:
                continue
            idx = np.arange(s.pushed, s.pushed + due)
            stamps = s.t0 + idx / s.rate
            s.outlet.push(s.gen(stamps, s.pushed), stamps)
            s.pushed += due

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            self.streams.clear()


# --- stream recipes ------------------------------------------------------------------------------

def eeg(uid: str, n_ch: int = 64, sfreq: float = 1000.0) -> tuple[StreamInfo, Generator]:
    names = [f"EEG{i + 1:02d}" for i in range(n_ch)]
    info = StreamInfo(f"{uid}-eeg", "EEG", f"{uid}-eeg", sfreq, names, ["eeg"] * n_ch, ["uV"] * n_ch)
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 2 * np.pi, n_ch)

    def gen(t: np.ndarray, first: int) -> np.ndarray:
        alpha = 20 * np.sin(2 * np.pi * 10 * t[:, None] + phase)  # (n, C) µV
        beta = 5 * np.sin(2 * np.pi * 22 * t[:, None] + 2 * phase)
        line = 8 * np.sin(2 * np.pi * 50 * t[:, None])
        noise = rng.normal(0, 6, (len(t), n_ch))
        return alpha + beta + line + noise

    return info, gen


def predictions(uid: str, classes: tuple[str, ...] = ("left", "right"), rate: float = 10.0) -> tuple[StreamInfo, Generator]:
    names = [f"p_{c}" for c in classes] + ["class", "confidence", "warming"]
    info = StreamInfo(f"{uid}-predictions", "Predictions", f"{uid}-pred", rate, names,
                      ["probability"] * len(classes) + ["class", "probability", "flag"],
                      desc={"model": {"name": "reference_conv", "classes": list(classes)}})

    def gen(t: np.ndarray, first: int) -> np.ndarray:
        p0 = 0.5 + 0.45 * np.sin(2 * np.pi * 0.1 * t)
        probs = np.stack([p0, 1 - p0], axis=1)
        k = probs.argmax(axis=1)
        idx = first + np.arange(len(t))
        return np.column_stack([probs, k, probs.max(axis=1), (idx < 20).astype(float)])

    return info, gen


def latency(uid: str, stages: tuple[str, ...] = ("bandpass", "window", "model")) -> tuple[StreamInfo, Generator]:
    names = ["e2e_p50_ms", "e2e_p99_ms", "e2e_max_ms"] + [f"{s}_{q}_ms" for s in stages for q in ("p50", "p99")]
    info = StreamInfo(f"{uid}-latency", "Latency", f"{uid}-latency", 1.0, names, ["latency"] * len(names),
                      ["ms"] * len(names))

    def gen(t: np.ndarray, first: int) -> np.ndarray:
        base = np.array([1.6, 4.5, 7.0] + [0.2, 0.5, 0.3, 0.6, 1.0, 3.2][: 2 * len(stages)])
        return base[None, :] * (1 + 0.1 * np.sin(t[:, None]))

    return info, gen


def health(uid: str, source: str = "eeg") -> tuple[StreamInfo, Generator]:
    fields = ("state", "rate_hz", "lag_ms", "overflow", "counter_gap", "reconnect_gap", "nonfinite")
    names = [f"{source}_{f}" for f in fields] + ["model_queue_drops"]
    info = StreamInfo(f"{uid}-health", "Health", f"{uid}-health", 1.0, names, ["health"] * len(names))

    def gen(t: np.ndarray, first: int) -> np.ndarray:
        return np.tile(np.array([1, 999.6, 2.1, 0, 3, 0, 0, 0], float), (len(t), 1))

    return info, gen


def csi_streams(uid: str, n_a: int = 4, n_k: int = 16, rate: float = 50.0, horizons: int = 4
                ) -> list[tuple[StreamInfo, Generator]]:
    layout = {"layout": "antenna,subcarrier,reim", "n_antennas": n_a, "n_subcarriers": n_k, "report_rate": rate}
    values = [f"a{a:02d}_k{k:03d}_{p}" for a in range(n_a) for k in range(n_k) for p in ("re", "im")]
    report = StreamInfo(f"{uid}-csi", "CSI", f"{uid}-csi", rate, values, ["csi"] * len(values), desc={"csi": layout})
    pred_names = [f"h{h + 1}_{v}" for h in range(horizons) for v in values]
    pred = StreamInfo(f"{uid}-csi-prediction", "CSIPrediction", f"{uid}-csipred", rate, pred_names,
                      ["csi"] * len(pred_names), desc={"csi": layout | {"horizons": horizons}})
    metrics = StreamInfo(f"{uid}-csi-metrics", "CSIMetrics", f"{uid}-csimetrics", rate / 10,
                         [f"nmse_db_h{h + 1}" for h in range(horizons)], ["metric"] * horizons, ["dB"] * horizons)
    ak = np.arange(n_a)[:, None] * 0.7 + np.arange(n_k)[None, :] * 0.3  # (A, K) phase pattern

    def channel(t: float) -> np.ndarray:
        h = (1 + 0.5 * np.cos(ak + 2 * np.pi * 0.5 * t)) * np.exp(1j * (ak + t))
        out = np.empty((n_a, n_k, 2))
        out[..., 0], out[..., 1] = h.real, h.imag
        return out.ravel()

    def gen_report(t: np.ndarray, first: int) -> np.ndarray:
        return np.array([channel(x) for x in t])

    def gen_pred(t: np.ndarray, first: int) -> np.ndarray:
        return np.array([np.concatenate([channel(x + (h + 1) / rate) * 1.05 for h in range(horizons)]) for x in t])

    def gen_metrics(t: np.ndarray, first: int) -> np.ndarray:
        steps = np.arange(1, horizons + 1)[None, :]
        return -20 + 3 * steps + np.sin(t)[:, None]

    return [(report, gen_report), (pred, gen_pred), (metrics, gen_metrics)]


def edvit(uid: str, devices: int = 3) -> tuple[StreamInfo, Generator]:
    """Device status as ``edgestream.runners.edvit`` publishes it; the last device is down."""
    names_dev = [f"edge_{d}" for d in range(devices)]  # underscores in device names, as real ones may have
    names = [f"{d}_{k}" for d in names_dev for k in ("state", "ms")] + ["n_present", "fused_ms"]
    info = StreamInfo(f"{uid}-edvit", "EDViTStatus", f"{uid}-edvit", 2.0, names,
                      ["state" if n.endswith("_state") else "latency" if n.endswith("ms") else "count" for n in names],
                      ["ms" if n.endswith("ms") else "a.u." for n in names],
                      desc={"edvit": {"devices": names_dev, "states": ["ok", "late", "down", "waiting"]}})

    def gen(t: np.ndarray, first: int) -> np.ndarray:
        rows = []
        for i, x in enumerate(t):
            row: list[float] = []
            for d in range(devices):
                down = d == devices - 1
                row += [2.0 if down else 0.0, np.nan if down else 12.0 + 2 * d + np.sin(x + d)]
            rows.append(row + [devices - 1, 15.0 + np.sin(x)])
        return np.array(rows, float)

    return info, gen


def periods(uid: str) -> tuple[StreamInfo, Generator]:
    names = ["period_1", "period_2", "amp_1", "amp_2"]
    info = StreamInfo(f"{uid}-periods", "Periods", f"{uid}-periods", 10.0, names, units=["s", "s", "uV", "uV"])

    def gen(t: np.ndarray, first: int) -> np.ndarray:
        return np.tile(np.array([0.1, 1 / 22, 20.0, 5.0]), (len(t), 1))

    return info, gen


def markers(uid: str) -> tuple[StreamInfo, Generator]:
    info = StreamInfo(f"{uid}-markers", "Markers", f"{uid}-markers", 0.0, ["marker"], ["marker"], dtype="string")
    return info, lambda t, first: np.array([["left" if (first + i) % 2 else "right"] for i in range(len(t))], object)


RECIPES: dict[str, Callable[..., Any]] = {"eeg": eeg, "predictions": predictions, "latency": latency, "health": health,
                                          "csi": csi_streams, "edvit": edvit, "periods": periods, "markers": markers}
EVENT_RATES = {"Markers": 0.5}  # samples/s pushed for irregular streams


def _serve(recipes: list[tuple[str, dict[str, Any]]], conn: Any) -> None:
    """Child process: publish ``recipes`` until told to stop; ``("remove", name)`` drops an outlet."""
    from edgestream.core.lslconf import use_loopback

    use_loopback()
    pub = Publisher()
    for name, kwargs in recipes:
        made = RECIPES[name](**kwargs)
        for info, gen in made if isinstance(made, list) else [made]:
            pub.add(info, gen, rate=EVENT_RATES.get(info.type))
    conn.send(sorted(pub.streams))
    while True:
        cmd = conn.recv()
        if cmd[0] == "remove":
            pub.remove(cmd[1])
            conn.send("ok")
        else:
            break
    pub.stop()
    conn.send("stopped")


class PublisherProcess:
    """Publish synthetic streams from a child process.

    Parameters
    ----------
    recipes : list of (recipe name, kwargs)
        Names from :data:`RECIPES`, e.g. ``[("eeg", {"uid": "x"}), ("csi", {"uid": "x"})]``.
    """

    def __init__(self, recipes: list[tuple[str, dict[str, Any]]]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(recipes, child), daemon=True, name="edgestream-publisher")
        self._proc.start()
        if not self._conn.poll(30):
            self._proc.kill()
            raise RuntimeError("the stream publisher process did not start within 30 s")
        self.names: list[str] = self._conn.recv()

    def remove(self, name: str) -> None:
        """Destroy one outlet (readers see its stream vanish)."""
        self._conn.send(("remove", name))
        self._conn.recv()

    def stop(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(("stop",))
                self._conn.poll(10) and self._conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()

    def __enter__(self) -> PublisherProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(condition: Callable[[], bool], timeout: float, step_ms: int = 20) -> bool:
    """Run the Qt event loop until ``condition()`` holds or ``timeout`` seconds pass."""
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, step_ms)
        if condition():
            return True
        time.sleep(step_ms / 1000)
    return condition()
