"""Read recorded sessions back: an XDF structure check that tells truncation from corruption,
and a loader that hands every stream over with its header, samples and timestamps.

XDF (https://github.com/sccn/xdf/wiki/Specifications) is a sequence of chunks after the magic
``XDF:``; each chunk is ``[n length bytes: 1|4|8][length][tag: uint16][content]``. Tags: 1 file
header, 2 stream header (XML), 3 samples, 4 clock offset, 5 boundary, 6 stream footer (XML).

* A recorder killed mid-write leaves a *truncated* file: complete chunks followed by the start
  of one more. Everything before that point is valid and is loaded; :class:`XdfScan` says so.
* A damaged file (bytes changed on disk, a partial copy spliced in) has a chunk whose structure
  is impossible: a bad length field, an unknown tag, a sample whose timestamp flag is neither 0
  nor 8, a size that does not add up. That is an error naming the byte offset; pyxdf would skip
  such chunks silently, and a replay would then report differences that are not the model's.
  XDF has no checksums: a changed byte inside a sample *value* cannot be detected by anyone.
"""

from __future__ import annotations

import ctypes
import dataclasses
import io
import logging
import mmap
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.core.errors import ConfigError
from edgestream.core.lslmeta import FORMAT_DTYPES, LSLHeader, parse_header

log = logging.getLogger(__name__)

TAGS = {1: "file header", 2: "stream header", 3: "samples", 4: "clock offset", 5: "boundary", 6: "stream footer"}
_ITEMSIZE = {name: np.dtype(dt).itemsize for name, dt in FORMAT_DTYPES.items() if dt is not None}
# content of every boundary chunk (the XDF specification's UUID); recorders write one every few seconds
BOUNDARY = bytes.fromhex("43a546dccbf5410fb30ed5467383cbe4")


class XdfCorrupted(ConfigError):
    """The file's chunk structure is broken somewhere before its end."""


@dataclasses.dataclass
class ScannedStream:
    """What the chunks say about one stream of the file."""

    stream_id: int
    xml: str  # the stream header as recorded (LSL stream info XML)
    header: LSLHeader
    samples: int = 0  # samples in complete chunks
    footer: dict[str, str] | None = None  # first/last timestamp and sample count, written at a clean stop


@dataclasses.dataclass
class XdfScan:
    """Structure of an XDF file: its streams and how much of it is complete."""

    path: Path
    size: int  # bytes on disk
    complete_bytes: int  # bytes up to the end of the last complete chunk
    chunks: int  # complete chunks
    streams: dict[int, ScannedStream]

    @property
    def truncated(self) -> bool:
        """True when the file ends inside a chunk (recorder killed or disk full)."""
        return self.complete_bytes < self.size

    @property
    def unfinished(self) -> list[str]:
        """Names of streams without a footer: the recording did not stop cleanly."""
        return [s.header.name for s in self.streams.values() if s.footer is None]

    def describe(self) -> str:
        """One line for the user about how complete the file is."""
        if not self.truncated and not self.unfinished:
            return f"{self.path.name}: complete ({len(self.streams)} streams, {self.size} bytes)"
        parts = []
        if self.truncated:
            parts.append(f"truncated: the last {self.size - self.complete_bytes} of {self.size} bytes are an "
                         "incomplete chunk and are ignored")
        if self.unfinished:
            parts.append(f"no footer for {', '.join(map(repr, self.unfinished))} (the recorder did not stop cleanly, "
                         "e.g. it was killed)")
        return f"{self.path.name}: " + "; ".join(parts) + "; every complete chunk before that is used"


def _corrupt(path: Path, offset: int, index: int, what: str) -> XdfCorrupted:
    return XdfCorrupted(
        f"XDF file {str(path)!r} must have a valid chunk structure; it is corrupted at byte {offset} (chunk {index}): "
        f"{what}. The data after that point cannot be trusted; use another copy of the session, or record it again."
    )


def _varlen(buf: Any, pos: int, end: int) -> tuple[int, int] | None:
    """``(value, next position)`` of an XDF variable-length integer, None if it is malformed."""
    if pos >= end:
        return None
    nb = buf[pos]
    if nb not in (1, 4, 8) or pos + 1 + nb > end:
        return None
    return int.from_bytes(buf[pos + 1 : pos + 1 + nb], "little"), pos + 1 + nb


def _count_samples(buf: Any, pos: int, end: int, fmt: str, n_channels: int) -> int | None:
    """Samples in a samples chunk's content ``buf[pos:end]`` (after the stream id); None if malformed."""
    got = _varlen(buf, pos, end)
    if got is None:
        return None
    n, p = got
    if fmt != "string":
        vsize = _ITEMSIZE[fmt] * n_channels
        rest = end - p
        for flag in (8, 0):  # every sample stamped (LabRecorder's habit), or none
            step = 1 + flag + vsize
            if rest == n * step:
                flags = np.frombuffer(buf, np.uint8, count=rest, offset=p)[::step] if n else np.zeros(0, np.uint8)
                if np.all(flags == flag):
                    return n
        for _ in range(n):  # mixed: walk sample by sample
            if p >= end or buf[p] not in (0, 8):
                return None
            p += 1 + buf[p] + vsize
        return n if p == end else None
    for _ in range(n):
        if p >= end or buf[p] not in (0, 8):
            return None
        p += 1 + buf[p]
        for _ in range(n_channels):
            got = _varlen(buf, p, end)
            if got is None:
                return None
            length, p = got
            p += length
    return n if p == end else None


def _xml(path: Path, raw: bytes, offset: int, index: int, what: str) -> ET.Element:
    try:
        return ET.fromstring(raw.decode("utf-8", "replace"))
    except ET.ParseError as exc:
        raise _corrupt(path, offset, index, f"the {what} is not valid XML ({exc})") from None


def scan_xdf(path: str | Path) -> XdfScan:
    """Check the chunk structure of ``path`` (fast: sample values are not decoded).

    Raises
    ------
    ConfigError
        The file is missing, empty, not XDF, or holds no complete stream header.
    XdfCorrupted
        A chunk before the end of the file is malformed.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"session must be an existing XDF file; got {str(path)!r} (no such file).")
    size = path.stat().st_size
    if size == 0:
        raise ConfigError(f"XDF file {str(path)!r} must contain a recording; it is empty (0 bytes). The recorder wrote "
                          "nothing to disk (killed before its first write, or the disk was full); record it again.")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"XDF:":
            raise ConfigError(f"XDF file {str(path)!r} must start with the magic bytes 'XDF:'; got {bytes(buf[:4])!r}. "
                              "It is not an XDF recording (or its start is damaged).")
        streams: dict[int, ScannedStream] = {}
        pos, index = 4, 0
        while pos < size:
            start = pos
            nb = buf[pos]
            if nb not in (1, 4, 8):
                raise _corrupt(path, start, index, f"its length field claims {nb} bytes (must be 1, 4 or 8)")
            if pos + 1 + nb + 2 > size:
                break  # truncated inside the chunk header
            length = int.from_bytes(buf[pos + 1 : pos + 1 + nb], "little")
            body = pos + 1 + nb
            end = body + length
            if end > size:
                if buf.find(BOUNDARY, body) >= 0:  # complete chunks follow: the length field is damaged
                    raise _corrupt(path, start, index, f"its length field says {length} bytes, past the end of the "
                                   "file, yet complete chunks follow it")
                break  # truncated inside the last chunk: the recorder stopped mid-write
            if length < 2:
                raise _corrupt(path, start, index, f"its length is {length} bytes (at least the 2-byte tag)")
            (tag,) = struct.unpack_from("<H", buf, body)
            if tag not in TAGS:
                raise _corrupt(path, start, index, f"its tag is {tag} (XDF chunk tags are 1-6)")
            content = body + 2
            if tag in (2, 3, 4, 6):
                if end - content < 4:
                    raise _corrupt(path, start, index, f"a {TAGS[tag]} chunk of {length} bytes cannot hold a stream id")
                (sid,) = struct.unpack_from("<I", buf, content)
                if tag != 2 and sid not in streams:
                    raise _corrupt(path, start, index, f"a {TAGS[tag]} chunk names stream id {sid}, which has no header")
            if tag == 2:
                xml = bytes(buf[content + 4 : end])
                _xml(path, xml, start, index, "stream header")
                text = xml.decode("utf-8", "replace")
                try:
                    header = parse_header(text)
                except ValueError as exc:  # e.g. a number field with a damaged digit
                    raise _corrupt(path, start, index, f"the stream header has an unreadable field ({exc})") from None
                if header.channel_format not in FORMAT_DTYPES or header.n_channels < 1:
                    raise _corrupt(path, start, index, f"stream header of {header.name!r} declares "
                                   f"{header.n_channels} channels of format {header.channel_format!r}")
                streams[sid] = ScannedStream(sid, text, header)
            elif tag == 3:
                s = streams[sid]
                n = _count_samples(buf, content + 4, end, s.header.channel_format, s.header.n_channels)
                if n is None:
                    raise _corrupt(path, start, index, f"a samples chunk of stream {s.header.name!r} does not add up "
                                   f"({length} bytes for {s.header.n_channels} {s.header.channel_format} channels)")
                s.samples += n
            elif tag == 4 and length != 2 + 4 + 16:
                raise _corrupt(path, start, index, f"a clock offset chunk has {length} bytes (must be 22)")
            elif tag == 5 and length != 2 + 16:
                raise _corrupt(path, start, index, f"a boundary chunk has {length} bytes (must be 18)")
            elif tag == 6:
                root = _xml(path, bytes(buf[content + 4 : end]), start, index, "stream footer")
                streams[sid].footer = {c.tag: (c.text or "").strip() for c in root if len(c) == 0}
            elif tag == 1:
                _xml(path, bytes(buf[content:end]), start, index, "file header")
            pos = end
            index += 1
    if not streams:
        raise ConfigError(f"XDF file {str(path)!r} must hold at least one complete stream header; it has none "
                          f"({pos} of {size} bytes are complete chunks). The recorder stopped before any stream "
                          "was written; record the session again.")
    return XdfScan(path, size, pos, index, streams)


# --- loading -----------------------------------------------------------------------------------
@dataclasses.dataclass
class RecordedStream:
    """One stream of a session, as recorded.

    Attributes
    ----------
    data : ndarray, shape (n_times, n_channels)
        Samples in the stream's channel format (object array of str for string streams).
    stamps : ndarray, shape (n_times,)
        float64 seconds, LSL clock of the recording machine (clock offsets applied by pyxdf).
    """

    stream_id: int
    xml: str
    header: LSLHeader
    data: np.ndarray
    stamps: np.ndarray
    footer: dict[str, str] | None

    @property
    def name(self) -> str:
        return self.header.name

    def matches(self, predicate: str) -> bool:
        """Whether the LSL predicate (XPath, as LabRecorder and ``LSLSource.predicate`` take it) selects this stream."""
        return matches_query(self.xml, predicate)


@dataclasses.dataclass
class Session:
    """A loaded XDF file: its structure check and every stream."""

    scan: XdfScan
    streams: list[RecordedStream]

    @property
    def path(self) -> Path:
        return self.scan.path

    def by_source_id(self, source_id: str) -> list[RecordedStream]:
        return [s for s in self.streams if s.header.source_id == source_id]

    def listing(self) -> str:
        return "; ".join(f"{s.name!r} (type {s.header.type!r}, source_id {s.header.source_id!r}, {len(s.stamps)} samples)"
                         for s in self.streams)


def load_session(path: str | Path) -> Session:
    """Scan ``path`` (errors for corrupted files) and load every stream with pyxdf.

    A truncated file is loaded up to its last complete chunk (``session.scan.truncated``).
    Timestamps get pyxdf's clock-offset correction and no dejittering: they are the stamps the
    producers sent, mapped onto the recording machine's clock.
    """
    import pyxdf

    scan = scan_xdf(path)
    if scan.truncated:
        with open(scan.path, "rb") as f:
            source: Any = io.BytesIO(f.read(scan.complete_bytes))
    else:
        source = str(scan.path)
    # pyxdf warns about every stream whose clock offsets were not measured over all of it (any
    # recording shorter than the recorder's 5-s offset interval); truncation is reported by the scan
    quiet = [logging.getLogger(name) for name in ("pyxdf", "pyxdf.pyxdf")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        raw, _ = pyxdf.load_xdf(source, synchronize_clocks=True, dejitter_timestamps=False, verbose=False)
    except Exception as exc:  # the scan passed, so this is a reader limitation: say so
        raise ConfigError(f"XDF file {str(scan.path)!r} must be readable by pyxdf; loading failed "
                          f"({type(exc).__name__}: {str(exc)[:200]}).") from None
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    streams = []
    for s in raw:
        sid = int(s["info"]["stream_id"])
        entry = scan.streams.get(sid)
        if entry is None:
            continue
        h = entry.header
        n = len(s["time_stamps"])
        if h.channel_format == "string":
            data = np.empty((n, h.n_channels), dtype=object)
            for i, row in enumerate(s["time_series"]):
                data[i, :] = [str(v) for v in row]
        else:
            data = np.asarray(s["time_series"], dtype=FORMAT_DTYPES[h.channel_format]).reshape(n, h.n_channels)
        streams.append(RecordedStream(sid, entry.xml, h, data, np.asarray(s["time_stamps"], dtype=np.float64),
                                      entry.footer))
    streams.sort(key=lambda s: s.stream_id)
    return Session(scan, streams)


# --- LSL predicates on recorded headers --------------------------------------------------------
def _lsl_lib() -> Any:
    from pylsl.lib import lib

    if not getattr(lib, "_edgestream_query_types", False):
        lib.lsl_streaminfo_from_xml.restype = ctypes.c_void_p
        lib.lsl_streaminfo_from_xml.argtypes = [ctypes.c_char_p]
        lib.lsl_stream_info_matches_query.restype = ctypes.c_int32
        lib.lsl_stream_info_matches_query.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.lsl_destroy_streaminfo.argtypes = [ctypes.c_void_p]
        lib._edgestream_query_types = True
    return lib


def matches_query(xml: str, predicate: str) -> bool:
    """Evaluate an LSL/XPath predicate on a stream header with liblsl itself (same rules as a resolve)."""
    if "<uid>" not in xml:  # liblsl refuses headers without a uid
        xml = xml.replace("</info>", "<uid>recorded</uid></info>", 1)
    lib = _lsl_lib()
    handle = lib.lsl_streaminfo_from_xml(xml.encode("utf-8"))
    if not handle:
        return False
    try:
        return bool(lib.lsl_stream_info_matches_query(handle, predicate.encode("utf-8")))
    finally:
        lib.lsl_destroy_streaminfo(handle)
