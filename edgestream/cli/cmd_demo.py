"""``edgestream demo``: the whole default job on this machine, no hardware needed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import click


@click.command("demo")
@click.option("--duration", "-t", type=float, default=20.0, show_default=True, help="Seconds to run the pipeline.")
@click.option("--pipeline", default="eeg_bandpower", show_default=True, help="Pipeline to run on the simulated stream.")
@click.option("--device", "-d", default="cpu", show_default=True, help="Device profile.")
@click.option("--channels", default=64, show_default=True, help="Simulated EEG channels.")
@click.option("--sfreq", default=1000.0, show_default=True, help="Simulated EEG rate (Hz).")
def command(duration: float, pipeline: str, device: str, channels: int, sfreq: float) -> None:
    """Simulate EEG over loopback LSL and run the default pipeline on it for a bounded time.

    Starts `edgestream simulate eeg` in a child process (64 ch at 1000 Hz by default, with a
    marker stream and a sample counter), runs PIPELINE against it for DURATION seconds, prints
    the summary (samples in/out, drops by cause, latency p50/p99/max, CPU), then stops the
    simulator. Discovery is restricted to this machine.
    """
    from edgestream.core.lslconf import use_loopback

    use_loopback()  # before any pylsl use in this process; inherited by the simulator
    source_id = f"edgestream-demo-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "edgestream", "simulate", "eeg", "--channels", str(channels), "--sfreq", str(sfreq),
           "--source-id", source_id, "--counter", "--duration", str(duration + 30)]
    click.echo(f"edgestream demo: simulating {channels}-channel EEG at {sfreq:g} Hz over loopback LSL ({source_id})", err=True)
    sim = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        if sim.poll() is not None:
            raise click.ClickException(f"the EEG simulator exited early with code {sim.returncode}: {' '.join(cmd)}")
        from edgestream.cli.cmd_run import command as run_command

        ctx = click.get_current_context()
        ctx.invoke(run_command, pipeline=pipeline, device=device, duration=duration,
                   overrides=(f"eeg.source_id={source_id}", "eeg.counter_channel=counter"), summary_json=None,
                   no_monitor=False)
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
