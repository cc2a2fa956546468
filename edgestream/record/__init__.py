"""Recording sessions to XDF (LabRecorder) and replaying them deterministically.

* :class:`~edgestream.record.session.Recording` — record LSL streams into a BIDS-named XDF file
  with a run manifest beside it (``edgestream record``);
* :class:`~edgestream.record.pipeline_recording.PipelineRecording` — the ``record:`` section of a pipeline
  file: every input and output of a run, latency and health included, on one clock;
* :func:`~edgestream.record.replay.replay` — run the pipeline again on the recorded inputs and
  compare each output stream with the recording (``edgestream replay``);
* :func:`~edgestream.record.xdf.load_session` / :func:`~edgestream.record.xdf.scan_xdf` — read a
  session back, telling a truncated file (recorder killed: the complete part is used) from a
  corrupted one (an error naming the byte offset).
"""

from edgestream.record.labrecorder import LabRecorderCLI, find_labrecorder
from edgestream.record.naming import BidsName, manifest_path, reserve
from edgestream.record.session import Recording, StreamRef, resolve_predicates
from edgestream.record.xdf import RecordedStream, Session, XdfCorrupted, XdfScan, load_session, scan_xdf

__all__ = ["BidsName", "LabRecorderCLI", "RecordedStream", "Recording", "Session", "StreamRef", "XdfCorrupted", "XdfScan",
           "find_labrecorder", "load_session", "manifest_path", "reserve", "resolve_predicates", "scan_xdf"]
