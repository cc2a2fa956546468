"""MPTSNet training recipe (MODELS.md §4): a UEA ``.ts`` dataset directory, periods from the training
split, model selection on a held-out validation split, one evaluation on the test split.

::

    edgestream train mptsnet --data ../shared/data/timeseries/JapaneseVowels --out jv.pt
    edgestream train mptsnet --data DIR --out jv_edge.pt --model-arg variant=mptsnet_compact
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgestream.core.checks import check_value, fail
from edgestream.train.loop import TrainConfig
from edgestream.train.mptsnet_fit import DEFAULT_TRAIN, train_mptsnet
from edgestream.train.recipes import RECIPES, DatasetReport, Recipe


def train_uea_dataset(
    *,
    data: Sequence[str | Path],
    out: str | Path | None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    patience: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    model_args: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> DatasetReport:
    """Train an MPTSNet variant (``model_args["variant"]``, default ``mptsnet``) on one UEA directory."""
    from edgestream.models import list_models

    if len(data) != 1:
        fail("--data", "name exactly one dataset directory (holding <Name>_TRAIN.ts and <Name>_TEST.ts)", list(data))
    args = dict(model_args or {})
    variant = check_value(args.pop("variant", "mptsnet"), list_models(family="mptsnet"), "variant")
    chosen = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "patience": patience}
    config = TrainConfig(**(DEFAULT_TRAIN | {k: v for k, v in chosen.items() if v is not None} | {"progress": progress}))
    run = train_mptsnet(data[0], model=variant, overrides=args, config=config, val_fraction=val_fraction, seed=seed,
                        checkpoint=out)
    ds = run.dataset
    summary = [
        f"data: {ds.name} from {ds.path}: {len(ds.y_train)} train / {len(ds.y_test)} test cases, {ds.n_dims} dims x "
        f"{ds.length} samples (NaN padding -> 0), {ds.n_classes} classes",
        f"periods: {list(run.periods.periods)} samples (from the {run.n_fit} fitting cases; {run.n_val} held out)",
    ]
    return DatasetReport(
        model_name=variant, config=run.model.config, summary=summary,
        metrics={"validation": run.val_metrics, "test": run.test_metrics}, classes=ds.classes,
        best_epoch=run.train.best_epoch, epochs_run=len(run.train.history), stopped_early=run.train.stopped_early,
        seconds=run.train.seconds, path=run.checkpoint,
    )


@RECIPES.register("mptsnet")
def mptsnet_recipe() -> Recipe:
    """Reference optimiser (Adam 1e-3, weight decay 1e-3, plateau ×0.5), batch 16, validation-selected epoch."""
    return Recipe(
        family="mptsnet",
        model=None,
        train=dict(DEFAULT_TRAIN),
        l_freq=None,
        h_freq=None,
        align=False,
        layout="BCT",
        description="MPTSNet on a UEA .ts dataset directory; --model-arg variant=mptsnet_compact for the edge variant",
        train_dataset=train_uea_dataset,
    )
