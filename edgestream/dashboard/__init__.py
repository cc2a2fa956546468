"""Qt monitoring dashboard (PySide6 + pyqtgraph).

``edgestream dashboard`` opens a window that finds edgestream's LSL streams and any raw LSL
streams on the network and shows them live: traces, spectrum/spectrogram with dominant periods,
model predictions, CSI heat-maps and NMSE, ED-ViT device status, and stream/pipeline health.
It runs in its own process and only reads streams (see :mod:`edgestream.dashboard.acquisition`);
it never drives a pipeline, but shares the CPU with it (benchmarks/dashboard.py measures how much).

Modules: ``app`` (start-up, headless screenshots), ``window`` (docks, render timer, settings),
``acquisition`` (discovery and reader threads, ring buffers), ``inlet`` (the stream reader),
``lslinfo`` (LSL headers → StreamInfo), ``views`` (display filters, spectra), ``canvas``
(incrementally drawn traces: per-pixel-column min/max in a scrolling image), ``picker``
(stream picker), ``panels/`` (one module per panel, registered in ``PANELS``).
"""

from __future__ import annotations

from edgestream.dashboard.app import DashboardOptions, run_dashboard

__all__ = ["DashboardOptions", "run_dashboard"]
