"""The EEG simulator: signal statistics for a fixed seed, chunking invariance, publishing over LSL,
the in-process source, and the CLI's input checks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import signal

from edgestream.core import SOURCES
from edgestream.core import ConnectionState as S
from edgestream.core.chunk import concat
from edgestream.core.clock import local_clock
from edgestream.sources.eeg_model import MONTAGE_64, EEGGenerator, EEGParams, electrode_position, montage
from edgestream.sources.lsl import LSLSource
from edgestream.sources.simulate_eeg import EEGSimulator
from edgestream.testing import random_splits

pytestmark = pytest.mark.timeout(60)
FS = 250.0


@pytest.fixture(scope="module")
def five_minutes():
    """300 s of 16-channel EEG at 250 Hz, seed 7, with its cues."""
    gen = EEGGenerator(16, FS, seed=7)
    data, cues = gen.generate(int(300 * FS))
    return gen, data.astype(np.float64), cues


def _psd(data):
    return signal.welch(data, fs=FS, nperseg=int(4 * FS), axis=0)


def test_montage_and_positions():
    """64 standard 10-10 names (the PhysioNet motor-imagery cap order); smaller caps keep the motor
    and occipital electrodes; positions lie on the head sphere with left/right mirrored."""
    assert len(montage(64)) == 64 and montage(64) == MONTAGE_64
    assert set(montage(8)) == {"C3", "C4", "Cz", "Oz", "O1", "O2", "Pz", "Fz"}
    for name in MONTAGE_64:
        assert abs(np.linalg.norm(electrode_position(name)) - 0.09) < 1e-9
    c3, c4 = electrode_position("C3"), electrode_position("C4")
    np.testing.assert_allclose(c3 * [-1, 1, 1], c4, atol=1e-12)
    assert electrode_position("Fpz")[1] > 0.08 and electrode_position("Oz")[1] < -0.08  # front / back
    with pytest.raises(Exception, match="n_channels must lie in \\[1, 64\\]"):
        montage(65)


def test_alpha_peak_in_posterior_channels(five_minutes):
    """A ~10 Hz peak stands out over O1/O2/Oz (vs 6-7.5 and 13-15 Hz) and is far weaker frontally."""
    gen, data, _ = five_minutes
    f, p = _psd(data)
    ch = list(gen.ch_names)

    def band(c, lo, hi):
        return p[(f >= lo) & (f <= hi), ch.index(c)].mean()

    for c in ("O1", "O2", "Oz"):
        assert band(c, 9.5, 10.5) > 4 * (band(c, 6, 7.5) + band(c, 13, 15)) / 2, c
    assert band("Oz", 9, 11) > 5 * band("Fz", 9, 11)


def test_line_noise_and_one_over_f(five_minutes):
    """The 50 Hz line is a narrow peak on every channel; away from the rhythms the background falls
    as 1/f (log-log slope about -1 at Fz)."""
    gen, data, _ = five_minutes
    f, p = _psd(data)
    at50 = np.argmin(np.abs(f - 50.0))
    floor = np.median(p[(f >= 45) & (f <= 48)], axis=0)
    assert np.all(p[at50] > 10 * floor)
    sel = ((f >= 2) & (f <= 7)) | ((f >= 25) & (f <= 45))
    slope = np.polyfit(np.log(f[sel]), np.log(p[sel, list(gen.ch_names).index("Fz")]), 1)[0]
    assert -1.4 < slope < -0.6


def test_mu_desynchronisation_is_contralateral(five_minutes):
    """After a "left" cue the 9-13 Hz power over C4 (right hemisphere) drops well below its
    pre-cue level while C3 does not; "right" cues do the mirror image; "rest" changes neither."""
    gen, data, cues = five_minutes
    ch = list(gen.ch_names)
    b, a = signal.butter(4, [9, 13], btype="band", fs=FS)
    power = signal.filtfilt(b, a, data, axis=0) ** 2
    fs = int(FS)

    def ratio(label, c):
        r = [power[s + fs // 2: s + int(3.5 * fs), ch.index(c)].mean() / power[s - int(1.5 * fs): s, ch.index(c)].mean()
             for s, lab in cues if lab == label and s >= 1.5 * fs and s + 3.5 * fs <= len(data)]
        assert len(r) >= 8, (label, len(r))
        return float(np.mean(r))

    assert ratio("left", "C4") < 0.5 < 0.8 < ratio("left", "C3")
    assert ratio("right", "C3") < 0.5 < 0.8 < ratio("right", "C4")
    assert ratio("rest", "C3") > 0.8 and ratio("rest", "C4") > 0.8
    assert {lab for _, lab in cues} == {"left", "right", "rest"}
    onsets = np.array([s for s, _ in cues])
    assert np.all(np.diff(onsets) >= (4.0 + 2.0) * FS)  # cue length + shortest pause


def test_blinks_on_frontal_channels(five_minutes):
    """Blinks are large positive deflections at Fp1/Fp2, much smaller at the back of the head."""
    gen, data, _ = five_minutes
    ch = list(gen.ch_names)
    top = {c: np.percentile(data[:, ch.index(c)], 99.9) for c in ("Fp1", "Fp2", "Oz", "Pz")}
    for c in ("Fp1", "Fp2"):
        assert top[c] > 80.0 and top[c] > 2 * max(top["Oz"], top["Pz"])
        assert top[c] > 2 * -np.percentile(data[:, ch.index(c)], 0.1)


def test_deterministic_and_chunking_invariant(rng):
    """Same seed, same signal and cues — however the samples are split into chunks; other seeds differ."""
    whole, cues = EEGGenerator(8, FS, seed=3, params=EEGParams(iti=(0.5, 1.0), cue_len=1.0)).generate(5000)
    gen = EEGGenerator(8, FS, seed=3, params=EEGParams(iti=(0.5, 1.0), cue_len=1.0))
    parts, part_cues = [], []
    for size in random_splits(5000, rng, max_chunk=300):
        d, c = gen.generate(size)
        parts.append(d)
        part_cues += c
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert part_cues == cues and len(cues) >= 3
    other, _ = EEGGenerator(8, FS, seed=4).generate(5000)
    assert not np.allclose(other, whole)


def test_simulator_publishes_over_lsl(uid):
    """EEGSimulator's outlets carry exactly the generator's samples (aligned by the counter), stamped
    t0 + i/sfreq, with µV units and 10-10 labels; cue markers are stamped at their sample."""
    params = EEGParams(iti=(0.3, 0.5), cue_len=0.5)
    sim = EEGSimulator(n_channels=4, sfreq=FS, chunk_size=5, name=uid, source_id=uid, seed=11, counter=True,
                       duration=20, params=params).start()
    eeg, mk = LSLSource(source_id=uid, timeout=5), LSLSource(source_id=f"{uid}-markers", timeout=5)
    info = eeg.start()
    assert mk.start().type == "Markers"
    assert info.ch_names == montage(4) + ("counter",) and info.units == ("uV",) * 4 + ("a.u.",)
    chunks, marks = [], []
    deadline = time.monotonic() + 15
    while len(marks) < 3 and time.monotonic() < deadline:
        chunks += [c for c in eeg.read(0.02) if c.n_times]
        marks += [c for c in mk.read(0.0) if c.n_times]
    chunks += [c for c in eeg.read(0.2) if c.n_times]
    sim.stop()
    data = concat(chunks)
    counter = data.data[:, -1].astype(np.int64)
    np.testing.assert_array_equal(np.diff(counter), 1)
    expected, cues = EEGGenerator(4, FS, seed=11, params=params).generate(int(counter[-1]) + 1)
    np.testing.assert_array_equal(data.data[:, :4], expected[counter])
    offset = data.timestamps - (sim.t0 + counter / FS)  # liblsl's clock-offset estimate only
    assert np.abs(offset).max() < 1e-3 and np.ptp(offset) < 1e-4
    cue_at = dict(cues)
    got = concat(marks)
    for t, (label,) in zip(got.timestamps - np.median(offset), got.data):
        i = round((t - sim.t0) * FS)  # the nearest sample; the two inlets estimate clock offsets apart
        assert abs(t - (sim.t0 + i / FS)) < 5e-4, (t, sim.t0 + i / FS)
        assert cue_at.get(i) == label, (i, label, sorted(cue_at)[:10])


def test_in_process_source_matches_generator():
    """Kind "simulate_eeg" yields the generator's samples plus a counter without LSL, ends after
    ``duration``, and in real time never hands out a sample before its timestamp."""
    src = SOURCES.create("simulate_eeg", n_channels=8, sfreq=FS, chunk_size=32, seed=5, counter=True,
                         realtime=False, duration=2.0)
    info = src.start()
    assert info.n_channels == 9 and info.ch_types[-1] == "counter"
    chunks = []
    while not src.finished:
        chunks += src.read(0.1)
    data = concat(chunks)
    assert data.n_times == 500 and src.samples_in == 500 and src.state is S.ENDED
    np.testing.assert_array_equal(data.data[:, :8], EEGGenerator(8, FS, seed=5).generate(500)[0])
    np.testing.assert_array_equal(data.data[:, 8], np.arange(500))
    np.testing.assert_allclose(np.diff(data.timestamps), 1 / FS, atol=1e-9)
    live = SOURCES.create("simulate_eeg", n_channels=2, sfreq=FS, chunk_size=10, realtime=True, duration=0.3)
    live.start()
    while not live.finished:
        for c in live.read(0.05):
            assert c.timestamps[-1] <= local_clock()


def test_cli_refuses_bad_channel_count():
    """`edgestream simulate eeg --channels 65` exits with code 2 and the rule, value and fix."""
    from edgestream.cli.main import cli

    result = CliRunner().invoke(cli, ["simulate", "eeg", "--channels", "65", "--duration", "0.1"])
    assert result.exit_code == 2
    assert "n_channels must lie in [1, 64]; got 65. The simulator has a 64-electrode 10-10 montage" in result.output
