"""One loader for every model stage (``model``, ``streaming_model``, ``csi_predict``) and ``edgestream export``.

A model stage gets its network from a registered name (``model:``), a checkpoint file
(``checkpoint:``) or both; :func:`load_model` turns either into a :class:`LoadedModel` and refuses
a ``model:`` that names another model than the checkpoint holds. At build time
:func:`check_stream_fit` compares what the checkpoint's manifest says about its training data
with the live stream's :class:`~edgestream.core.chunk.StreamInfo`, so a model trained on other
data fails when the pipeline is built, never silently at the first sample:

========== ================================================ ===========================================
check      checkpoint (``manifest["data"]``)                stream
========== ================================================ ===========================================
rate       ``sfreq`` (Hz)                                   ``info.sfreq`` (÷ ``decimate`` for frames)
channels   ``ch_names`` (names and order)                   ``info.ch_names``
units      ``units`` (per channel, canonical)               ``info.units`` (``a.u.``: undeclared, skipped)
band       ``preprocessing`` (filter specs)                 ``desc["filters"]`` (filter stages append)
========== ================================================ ===========================================

A check is skipped when either side does not record its field (checkpoints written before a
field was recorded, by other trainers, or streams without filter stages), so old checkpoints
load as before. Each failure is a :class:`~edgestream.core.errors.ValidationError` naming the
stream's value, the checkpoint's value and the fix; a stage parameter
``allow_mismatch: [rate, channels, units, band]`` turns the named checks into logged warnings
for a user who means it (a checkpoint deliberately run on a wider band, say).

Lives in ``runners`` (not ``models``) because fitting a model to a stream needs stream
descriptions and DSP helpers; ``models`` stays loadable without the pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from edgestream.core.checks import check_value
from edgestream.core.chunk import StreamInfo
from edgestream.core.errors import ConfigError, ValidationError
from edgestream.dsp.filters import passband, recorded_filters

log = logging.getLogger(__name__)

# Checks a user may override with a stage's ``allow_mismatch`` (model vs checkpoint is never one:
# naming two different models is always a mistake).
MISMATCHES: tuple[str, ...] = ("rate", "channels", "units", "band")

# Units that say "not declared": nothing to compare against.
UNDECLARED_UNITS: tuple[str, ...] = ("a.u.", "")

# How a model kind is named in messages, and the stage that runs it (the fix for a wrong kind).
_KIND_WORDS: dict[str, str] = {"window": "a window model", "streaming": "a streaming model",
                               "predictor": "a CSI predictor", "vision": "a vision model"}
_KIND_STAGES: dict[str, str] = {"window": "model", "streaming": "streaming_model", "predictor": "csi_predict"}


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A network ready for a stage, with what its checkpoint says about how it was trained.

    Attributes
    ----------
    net : torch.nn.Module
        The model (weights loaded and in eval mode when from a checkpoint).
    name : str
        Registered model name (the checkpoint's, when loaded from one).
    checkpoint : str or None
        Path of the checkpoint, or None for a registered model with fresh weights.
    manifest : mapping
        The checkpoint's manifest (``{}`` without a checkpoint).
    extra : mapping
        The checkpoint's non-weight state, e.g. alignment (``{}`` without a checkpoint).
    """

    net: Any
    name: str
    checkpoint: str | None
    manifest: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def data(self) -> Mapping[str, Any]:
        """The manifest's description of the training data (``{}`` when it has none)."""
        data = self.manifest.get("data")
        return data if isinstance(data, Mapping) else {}

    def class_names(self, n_classes: int, given: Sequence[str] | None, stage: str) -> list[str]:
        """Class names for the model's ``n_classes`` outputs.

        ``given`` (the stage's ``classes``) wins, then the manifest's ``data.classes``, then
        ``extra.classes``, else ``"0"…"K-1"``.
        """
        classes = given or self.data.get("classes") or self.extra.get("classes")
        names = [str(c) for c in classes] if classes else [str(i) for i in range(n_classes)]
        if len(names) != n_classes:
            raise ValidationError(f"{stage} stage: classes must name {n_classes} classes (the model's outputs); got {names}.")
        return names


def check_model_or_checkpoint(stage: str, model: str | None, checkpoint: str | None, example: str) -> None:
    """Refuse a stage configured with neither ``model`` nor ``checkpoint`` (at construction).

    Parameters
    ----------
    stage : str
        Stage kind, for the message (``"model"``).
    model, checkpoint : str or None
        The stage's parameters.
    example : str
        A registered model name to suggest.
    """
    if model is None and not checkpoint:
        raise ConfigError(f"{stage} stage needs model (a registered name) or checkpoint (a file); got neither. "
                          f"E.g. model: {example}, or --set <node>.checkpoint=model.pt.")


def check_allow_mismatch(value: str | Sequence[str] | None) -> list[str]:
    """Validate a stage's ``allow_mismatch`` (each entry one of :data:`MISMATCHES`); return it as a list."""
    items = [value] if isinstance(value, str) else list(value or ())
    return [check_value(v, MISMATCHES, "allow_mismatch") for v in items]


def load_model(
    stage: str,
    model: str | None,
    checkpoint: str | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    kind: str | None = None,
    seed: int | None = None,
) -> LoadedModel:
    """Build a stage's network from a registered name, a checkpoint, or both (which must agree).

    Parameters
    ----------
    stage : str
        Stage kind (or ``"export"``), for messages.
    model : str or None
        Registered model name. With ``checkpoint`` it must be the name the checkpoint holds.
    checkpoint : str or None
        A checkpoint written by ``edgestream train`` / :func:`edgestream.train.save_checkpoint`.
    overrides : mapping, optional
        Constructor overrides, on top of the checkpoint's configuration.
    defaults : mapping, optional
        Constructor arguments for a model built by name only (under ``overrides``), e.g. the
        stream's channel count; a checkpoint's configuration already has its own.
    kind : str, optional
        Required ``kind`` tag of the model (``"streaming"``, ``"predictor"``); None: any kind.
    seed : int, optional
        Draw fresh weights from this seed (the same configuration gives the same untrained
        model on every run); None: from torch's global generator.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ValidationError
        ``model`` and the checkpoint name different models, or the model has the wrong kind.
    ConfigError
        Unknown model name (with close matches), unreadable checkpoint, weights that do not fit.
    """
    from edgestream.models import MODELS, create_model, model_from_checkpoint, read_checkpoint

    overrides = dict(overrides or {})
    if checkpoint:
        blob = read_checkpoint(checkpoint)
        stored = str(blob["manifest"].get("model"))
        if model is not None and model != stored:
            raise ValidationError(
                f"{stage} stage: model must match its checkpoint; got model={model!r} but checkpoint {str(checkpoint)!r} "
                f"holds {stored!r}. Set model: {stored} (or model: null to take the checkpoint's), or point checkpoint "
                f"at a checkpoint of {model!r}."
            )
        _check_kind(stage, stored, kind, MODELS, f" (in checkpoint {str(checkpoint)!r})")
        net = model_from_checkpoint(blob, where=str(checkpoint), **overrides)
        return LoadedModel(net, stored, str(checkpoint), blob["manifest"], blob.get("extra") or {})
    if model is None:
        raise ConfigError(f"{stage} stage needs model (a registered name) or checkpoint (a file); got neither.")
    _check_kind(stage, model, kind, MODELS, "")
    kwargs = dict(defaults or {}) | overrides
    if seed is None:
        return LoadedModel(create_model(model, **kwargs), model, None)
    import torch

    with torch.random.fork_rng(devices=[]):  # leaves the caller's random stream untouched
        torch.manual_seed(seed)
        net = create_model(model, **kwargs)
    return LoadedModel(net, model, None)


def _check_kind(stage: str, name: str, kind: str | None, models: Any, where: str) -> None:
    actual = models.get(name).tags.get("kind")  # unknown name: raises with close matches
    if kind is None or actual == kind:
        return
    from edgestream.models import list_models

    runs_in = _KIND_STAGES.get(str(actual))
    hint = (f"Models of kind {actual!r} run in a {runs_in!r} stage." if runs_in
            else f"Pick one of kind {kind!r} (edgestream models).")
    raise ValidationError(
        f"{stage} stage: model must be {_KIND_WORDS.get(kind, f'of kind {kind!r}')} (kind {kind!r}: "
        f"{', '.join(list_models(kind=kind))}); got {name!r} (kind {actual!r}){where}. {hint}"
    )


# --------------------------------------------------------------------------------------------- stream checks


def check_stream_fit(
    loaded: LoadedModel,
    info: StreamInfo,
    stage: str,
    *,
    allow: Sequence[str] = (),
    decimate: int | None = None,
    alignment: bool = False,
) -> list[str]:
    """Check that a checkpoint was trained on data like the live stream; raise at build time if not.

    Parameters
    ----------
    loaded : LoadedModel
        What :func:`load_model` returned; a model without a checkpoint has nothing to check.
    info : StreamInfo
        The stage's input stream.
    stage : str
        Stage kind, for messages.
    allow : sequence of str
        Checks (of :data:`MISMATCHES`) that only warn: the stage's ``allow_mismatch``.
    decimate : int or None
        Input samples per model frame, for stages that have the parameter (the model then sees
        ``info.sfreq / decimate`` Hz, and the rate fix suggests it); None: no such parameter.
    alignment : bool
        Also check Euclidean alignment (window models: :func:`check_alignment`).

    Returns
    -------
    list of str
        The mismatches found and allowed (each logged as a warning).

    Raises
    ------
    ValidationError
        A mismatch not in ``allow``; the message names the stream's value, the checkpoint's and
        the fix.
    """
    if loaded.checkpoint is None:
        return []
    if alignment:
        check_alignment(info, loaded.extra, loaded.checkpoint, stage)
    allowed = []
    for name, found in (("rate", _rate(loaded, info, stage, decimate)), ("channels", _channels(loaded, info, stage)),
                        ("units", _units(loaded, info, stage)), ("band", _band(loaded, info, stage))):
        if found is None:
            continue
        problem, fix = found
        if name not in allow:
            raise ValidationError(f"{problem} {fix} If the difference is intended, set allow_mismatch: [{name}] on this stage.")
        log.warning("%s Running anyway (allow_mismatch: [%s]).", problem, name)
        allowed.append(name)
    return allowed


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _names(names: Sequence[str], limit: int = 8) -> str:
    """``C3, Cz, C4`` (the first ``limit``, then how many more)."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "")


def _rate(loaded: LoadedModel, info: StreamInfo, stage: str, decimate: int | None) -> tuple[str, str] | None:
    trained = loaded.data.get("sfreq")
    if trained is None or not info.regular:
        return None
    trained = float(trained)
    live = info.sfreq / (decimate or 1)
    if _close(live, trained):
        return None
    seen = (f"gives {live:g} Hz frames ({info.sfreq:g} Hz / decimate {decimate})" if decimate and decimate > 1
            else f"runs at {live:g} Hz")
    problem = (f"{stage} stage: the stream's sampling rate must be the checkpoint's; stream {info.name!r} {seen}, "
               f"checkpoint {loaded.checkpoint!r} was trained at {trained:g} Hz.")
    ratio = info.sfreq / trained
    if decimate is not None and ratio >= 1 and _close(ratio, round(ratio)):
        fix = f"Set decimate: {round(ratio)} ({info.sfreq:g} Hz / {round(ratio)} = {trained:g} Hz frames) on this stage,"
    else:
        fix = f"Resample before this stage (and before any window stage): {{kind: resample, sfreq: {trained:g}}},"
    return problem, f"{fix} or use a checkpoint trained at {live:g} Hz."


def _channels(loaded: LoadedModel, info: StreamInfo, stage: str) -> tuple[str, str] | None:
    trained = loaded.data.get("ch_names")
    if not trained:
        return None
    trained = [str(c) for c in trained]
    live = list(info.ch_names)
    if live == trained:
        return None
    missing = [c for c in trained if c not in live]
    unknown = [c for c in live if c not in trained]
    if not missing and not unknown and len(live) == len(trained):
        i = next(k for k, (a, b) in enumerate(zip(live, trained)) if a != b)
        detail = (f"the same channels in another order (position {i}: {live[i]!r} on the stream, {trained[i]!r} in "
                  "the checkpoint)")
    else:
        parts = ([f"missing from the stream: {_names(missing)}"] if missing else [])
        parts += ([f"not in the checkpoint: {_names(unknown)}"] if unknown else [])
        detail = "; ".join(parts) or "repeated names"
    problem = (f"{stage} stage: the stream's channels must be the checkpoint's, in the same order; stream {info.name!r} "
               f"has {len(live)} ({_names(live)}), checkpoint {loaded.checkpoint!r} was trained on {len(trained)} "
               f"({_names(trained)}): {detail}.")
    if missing:
        fix = ("Use a checkpoint trained on this montage, or give the stream the checkpoint's names at the source "
               "(e.g. the lsl source's channels: [...]).")
    else:
        fix = f"Pick them in the checkpoint's order before this stage: {{kind: pick, channels: [{', '.join(trained)}]}}."
    return problem, fix


def _units(loaded: LoadedModel, info: StreamInfo, stage: str) -> tuple[str, str] | None:
    trained = loaded.data.get("units")
    if not trained:
        return None
    groups: dict[tuple[str, str], list[str]] = {}
    for ch, unit, want in zip(info.ch_names, info.units, (str(u) for u in trained)):
        # a channel without a declared unit cannot be checked (and is not flagged: most test and
        # simulated streams declare none)
        if unit != want and unit not in UNDECLARED_UNITS and want not in UNDECLARED_UNITS:
            groups.setdefault((unit, want), []).append(ch)
    if not groups:
        return None
    seen = "; ".join(f"{unit} where checkpoint {loaded.checkpoint!r} was trained on {want} (channels {_names(chs)})"
                     for (unit, want), chs in groups.items())
    problem = f"{stage} stage: the stream's units must be the checkpoint's; stream {info.name!r} carries {seen}."
    want = next(iter(groups))[1]
    fix = (f"Convert at the source (to_units: {want} on the lsl source), or declare the unit the producer really "
           f"sends (units: {want}) if its metadata is wrong.")
    return problem, fix


def band_text(band: tuple[float | None, float | None]) -> str:
    """``band-passed 8-30 Hz``, ``high-passed at 1 Hz``, ``low-passed at 40 Hz`` or ``not band-limited``."""
    low, high = band
    if low is not None and high is not None:
        return f"band-passed {low:g}-{high:g} Hz"
    if low is not None:
        return f"high-passed at {low:g} Hz"
    if high is not None:
        return f"low-passed at {high:g} Hz"
    return "not band-limited"


def _band(loaded: LoadedModel, info: StreamInfo, stage: str) -> tuple[str, str] | None:
    specs = loaded.data.get("preprocessing")
    if not isinstance(specs, (list, tuple)) or "filters" not in info.desc:
        return None  # an old checkpoint, another trainer, or a stream no filter stage describes
    trained, live = passband(specs), passband(recorded_filters(info.desc))
    if all((a is None and b is None) or (a is not None and b is not None and _close(a, b)) for a, b in zip(trained, live)):
        return None
    problem = (f"{stage} stage: the stream's pass band must be the checkpoint's; stream {info.name!r} is "
               f"{band_text(live)}, checkpoint {loaded.checkpoint!r} was trained on data {band_text(trained)}.")
    shaping = [s for s in specs if isinstance(s, Mapping) and s.get("kind") in ("bandpass", "highpass", "lowpass")]
    if shaping:
        wanted = ", ".join("{" + ", ".join(f"{k}: {v}" for k, v in s.items()) + "}" for s in shaping)
        fix = f"Filter as in training before this stage ({wanted}) instead of the current filter, or retrain on this band."
    else:
        fix = "Remove the band-limiting filter stages before this stage (training used none), or retrain with them."
    return problem, fix


def check_alignment(info: StreamInfo, extra: Mapping[str, Any], checkpoint: str, stage: str = "model") -> None:
    """A checkpoint trained on Euclidean-aligned trials needs aligned windows, and one trained without needs raw ones."""
    trained = "alignment" in extra
    aligned = "alignment" in info.desc  # set by the euclidean_align stage
    if trained and not aligned:
        raise ValidationError(
            f"{stage} stage: checkpoint {checkpoint!r} was trained on Euclidean-aligned trials, so its input must be "
            f"aligned; stream {info.name!r} is not. Add a stage before the model: "
            "{kind: euclidean_align, checkpoint: \"${model.checkpoint}\"}."
        )
    if aligned and not trained:
        raise ValidationError(
            f"{stage} stage: checkpoint {checkpoint!r} was trained without Euclidean alignment, but stream {info.name!r} "
            "is aligned by a euclidean_align stage. Remove that stage or retrain with --align."
        )


__all__ = ["MISMATCHES", "LoadedModel", "band_text", "check_alignment", "check_allow_mismatch",
           "check_model_or_checkpoint", "check_stream_fit", "load_model"]
