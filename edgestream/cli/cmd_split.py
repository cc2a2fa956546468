"""``edgestream split``: plan an ED-ViT split, and serve devices on a Ray cluster."""

from __future__ import annotations

import click

from edgestream.core.errors import ConfigError


@click.group("split")
def command() -> None:
    """ED-ViT: split a vision transformer across networked edge devices.

    \b
      edgestream split plan --model vit_tiny_28 --device box-a=edge-small --device box-b=edge-small --out split/
      edgestream split serve --head                           # on the head (coordinator) machine
      edgestream split serve --address HEAD:6379 --device box-a   # on each device
      edgestream run camera_edvit --set model.plan=split/plan.yaml
    """


@command.command("plan")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Trained dense ViT checkpoint (else one is trained).")
@click.option("--model", default="vit_tiny_28", show_default=True, help="Registered ViT to train when no --checkpoint.")
@click.option("--data", default=None, help="Dataset directory (IDX files, or a folder holding vision/fashion-mnist).")
@click.option("--device", "devices", multiple=True, required=True, help="Device NAME=PROFILE or PROFILE (repeat, one per device).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory for plan.yaml and checkpoints.")
@click.option("--submodels", type=int, default=None, help="Number of sub-models S (default: one per device).")
@click.option("--class-split", default="confusion", show_default=True, type=click.Choice(["confusion", "balanced"]))
@click.option("--score", default="taylor", show_default=True, type=click.Choice(["taylor", "magnitude"]))
@click.option("--no-other", is_flag=True, help="Sub-model heads without the extra 'other' class.")
@click.option("--memory-mb", type=float, default=None, help="Override every device's memory_budget_mb.")
@click.option("--epochs", type=int, default=5, show_default=True, help="Fine-tuning epochs per sub-model.")
@click.option("--dense-epochs", type=int, default=10, show_default=True, help="Epochs when training the dense model.")
@click.option("--limit", type=int, default=None, help="Use only the first N training images.")
@click.option("--threads", type=int, default=None, help="torch threads for training.")
def plan_cmd(checkpoint, model, data, devices, out_dir, submodels, class_split, score, no_other, memory_mb, epochs,
             dense_epochs, limit, threads) -> None:
    """Train/load a dense ViT, cut it for the devices, write a plan and sub-model checkpoints."""
    import dataclasses
    import logging
    from pathlib import Path

    import torch

    from edgestream.models import create_model
    from edgestream.models import load_checkpoint
    from edgestream.split.plan import device_specs
    from edgestream.train import TrainConfig, fit, save_checkpoint
    from edgestream.train.edvit import SplitConfig, make_plan
    from edgestream.train.vision import FASHION_MNIST_CLASSES, load_idx_dataset, stratified_split

    logging.getLogger("edgestream").setLevel(logging.INFO)  # progress of the four steps
    if threads:
        torch.set_num_threads(threads)
    specs = device_specs(devices)
    if memory_mb is not None:
        if memory_mb <= 0:
            raise ConfigError(f"--memory-mb must be a positive number of MB; got {memory_mb}.")
        specs = [dataclasses.replace(s, memory_budget_mb=float(memory_mb)) for s in specs]
    x, y = load_idx_dataset(data, "train", limit=limit)
    tr, va = stratified_split(y, 0.1)
    train, val = (x[tr], y[tr]), (x[va], y[va])
    out = Path(out_dir)
    if checkpoint:
        dense, blob = load_checkpoint(checkpoint)
        name = blob["manifest"]["model"]
    else:
        name = model
        click.echo(f"training dense {model} on {len(tr)} images ({dense_epochs} epochs max)", err=True)
        dense = create_model(model)
        fit(dense, train, val, TrainConfig(epochs=dense_epochs, batch_size=128, lr=2e-3, patience=4, progress=True))
        save_checkpoint(out / "dense.pt", dense, model, dense.config)
    if not hasattr(dense, "prune"):
        raise ConfigError(f"--checkpoint must hold a ViT from edgestream.models.vit; got model {name!r}.")
    classes = FASHION_MNIST_CLASSES if dense.config["n_classes"] == len(FASHION_MNIST_CLASSES) else None
    cfg = SplitConfig(
        n_submodels=submodels, class_split=class_split, score=score, other=not no_other,
        finetune=TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, patience=3, distill_alpha=0.5, progress=True),
        fusion=TrainConfig(epochs=30, batch_size=256, lr=2e-3, patience=6, progress=True),
    )
    plan = make_plan(dense, name, train, val, specs, out, cfg, classes)
    click.echo(f"plan: {out / 'plan.yaml'}")
    click.echo(f"dense {plan.dense_size_mb:.3f} MB, val accuracy {plan.notes['dense_val_accuracy']:.4f}; "
               f"fused val accuracy {plan.notes['fused_val_accuracy']:.4f}; expected latency {plan.expected_latency_ms:.2f} ms")
    for sub in plan.submodels:
        names = ", ".join(plan.classes[c] for c in sub.classes)
        click.echo(f"  {sub.name} → {sub.device}: {sub.size_mb:.3f} MB, {sub.expected_ms:.2f} ms, classes [{names}]")


@command.command("serve")
@click.option("--address", default=None, help="Ray head address HEAD_IP:PORT to join.")
@click.option("--device", default=None, help="Device name this machine stands for (as in the plan).")
@click.option("--head", is_flag=True, help="Start the cluster head on this machine instead of joining one.")
@click.option("--port", default=6379, show_default=True, help="Head port (with --head).")
@click.option("--num-cpus", type=int, default=None, help="CPUs this node offers to Ray.")
@click.option("--node-ip-address", default=None, help="Address other machines reach this one at.")
@click.option("--dry-run", is_flag=True, help="Print the ray command instead of running it.")
def serve_cmd(address, device, head, port, num_cpus, node_ip_address, dry_run) -> None:
    """Join this machine to the Ray cluster as a device worker (or start the head); runs until Ctrl-C."""
    import shlex
    import subprocess

    from edgestream.split.cluster import require_token_auth, serve_command

    if not head and not device:
        raise ConfigError("--device must name the device this machine stands for; got none. Pass --device NAME (as in the plan).")
    cmd = serve_command(device=device, address=address, head=head, port=port, num_cpus=num_cpus,
                        node_ip_address=node_ip_address)
    if dry_run:
        click.echo(shlex.join(cmd))
        return
    require_token_auth()
    what = "head" if head else f"device {device!r}"
    click.echo(f"serving {what}: {shlex.join(cmd)}  (Ctrl-C to leave the cluster)", err=True)
    try:
        rc = subprocess.run(cmd).returncode
    except KeyboardInterrupt:
        rc = 0
    except FileNotFoundError:
        raise ConfigError("ray must be installed to serve; got no `ray` command. Install edgestream[split].") from None
    if rc:
        from edgestream.core.errors import EdgestreamError

        raise EdgestreamError(f"ray start for {what} exited with code {rc}; see the messages above.")
