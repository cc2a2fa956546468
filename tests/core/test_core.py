from __future__ import annotations

import numpy as np
import pytest

from edgestream.core import Chunk, ConfigError, DataError, LatencyStats, Registry, RingBuffer, StreamInfo
from edgestream.core.checks import check_array, check_keys, check_number, check_value
from edgestream.core.units import canonical, parse_unit, scale_factor


def info(n=4, sfreq=100.0, **kw):
    return StreamInfo("s", "EEG", "sid", sfreq, [f"c{i}" for i in range(n)], **kw)


def test_streaminfo_defaults_and_validation():
    i = info(3)
    assert i.n_channels == 3 and i.ch_types == ("eeg",) * 3 and i.units == ("a.u.",) * 3
    with pytest.raises(ConfigError, match=r"StreamInfo.units must have one entry per channel \(3\); got 2"):
        info(3, units=("uV", "uV"))
    with pytest.raises(ConfigError, match="StreamInfo.sfreq must lie in"):
        info(3, sfreq=-1.0)


def test_chunk_shape_errors_name_the_rule():
    with pytest.raises(DataError, match="must have 4 channels"):
        Chunk(np.zeros((5, 3), np.float32), np.zeros(5), info(4))
    with pytest.raises(DataError, match="one timestamp per row"):
        Chunk(np.zeros((5, 4), np.float32), np.zeros(4), info(4))
    c = Chunk.make(np.arange(8), [1.0, 2.0], info(4))
    assert c.data.dtype == np.float32 and c.n_times == 2 and c.newest == 2.0


def test_ringbuffer_wraps_and_counts_overwrites():
    rb = RingBuffer(5, 2)
    for k in range(3):
        rb.push(np.full((3, 2), k, np.float32), np.arange(3) + 3.0 * k)
    data, times = rb.last(5)
    np.testing.assert_array_equal(times, [4, 5, 6, 7, 8])
    np.testing.assert_array_equal(data[:, 0], [1, 1, 2, 2, 2])
    assert rb.overwritten == 4 and len(rb) == 5
    rb.push(np.zeros((12, 2), np.float32), np.arange(12.0))
    np.testing.assert_array_equal(rb.last(2)[1], [10, 11])
    assert rb.total_written == 21  # rows that never fitted still count as written (readers see the skip)
    np.testing.assert_array_equal(rb.last(5)[1], [7, 8, 9, 10, 11])
    with pytest.raises(DataError, match="n <= 5"):
        rb.last(6)


def test_registry_close_matches_and_kwargs():
    reg: Registry = Registry("widget")

    @reg.register("bandpass")
    def make(order: int = 4):
        return order

    assert reg.create("bandpass", order=2) == 2
    with pytest.raises(ConfigError, match="Did you mean 'bandpass'"):
        reg.create("bandpas")
    with pytest.raises(ConfigError, match="unknown key 'ordr'.*Did you mean 'order'"):
        reg.create("bandpass", ordr=3)

    @reg.register("outlet")
    def make_outlet(name: str = "default"):  # components may take a `name` of their own
        return name

    assert reg.create("outlet", name="mine") == "mine"


def test_checks_messages():
    with pytest.raises(ConfigError, match=r"order must be an integer; got 2.5"):
        check_number(2.5, "order", integer=True)
    with pytest.raises(ConfigError, match="policy must be one of.*Did you mean 'drop-oldest'"):
        check_value("drop-olde", ["drop-oldest", "reject"], "policy")
    with pytest.raises(ConfigError, match="unknown key 'hfreq'"):
        check_keys({"hfreq": 1}, ["h_freq", "l_freq"], "stage 'bandpass'")
    with pytest.raises(DataError, match=r"contain only finite values; got 1 non-finite values, first at index \(1, 0\)"):
        check_array([[1.0], [np.nan]], "data")


@pytest.mark.parametrize(
    "unit,expected",
    [("microvolts", ("V", -6)), ("uV", ("V", -6)), ("µV", ("V", -6)), ("V", ("V", 0)), ("volts", ("V", 0)), (107, ("V", 0))],
)
def test_units_parse(unit, expected):
    assert parse_unit(unit) == expected


def test_units_scale_and_fiff_multiplier():
    assert canonical(107, -6) == "uV"
    assert scale_factor("V", "microvolts") == pytest.approx(1e6)
    with pytest.raises(ConfigError, match="unit must be a recognised unit"):
        parse_unit("furlongs")


def test_latency_stats_percentiles():
    stats = LatencyStats()
    values = np.linspace(0.001, 0.010, 1000)
    for v in values:
        stats.add(v)
    s = stats.summary()
    assert s["count"] == 1000
    assert s["p50_ms"] == pytest.approx(np.percentile(values, 50) * 1e3, rel=0.02)
    assert s["p99_ms"] == pytest.approx(np.percentile(values, 99) * 1e3, rel=0.02)
    assert s["max_ms"] == pytest.approx(10.0)
