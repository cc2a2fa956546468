"""Model registry (timm-style): ``@register_model`` functions hold one variant's hyper-parameters.

::

    @register_model(family="lmuformer", kind="streaming")
    def lmuformer_scv2(**overrides):
        return LMUFormer(**({"in_channels": 128, "n_classes": 35} | overrides))

    model = create_model("lmuformer_scv2", n_classes=10)   # edgestream.models.factory

Tags used across edgestream:

* ``family`` — model family ("lmuformer", "dbconformer", ...).
* ``kind`` — ``"streaming"`` (recurrent state; ``init_state``/``step``/``forward(x, state)``),
  ``"window"`` (classifies a fixed window, input (B, C, T)), ``"predictor"`` (CSI report
  predictors), ``"vision"`` (images (B, 1|3, H, W)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgestream.core.registry import Registry

MODELS: Registry[Any] = Registry("model", packages=("edgestream.models",), group="edgestream.models")


def register_model(fn: Callable[..., Any] | None = None, **tags: Any):
    """Register a model factory under its function name. Usable bare or with tags."""
    if fn is not None:
        return MODELS.register(fn.__name__)(fn)

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        return MODELS.register(f.__name__, **tags)(f)

    return decorate


def list_models(**tags: Any) -> list[str]:
    """Registered model names, optionally filtered by tags (e.g. ``kind="streaming"``)."""
    return MODELS.names(**tags)


def model_tags(name: str) -> dict[str, Any]:
    return dict(MODELS.get(name).tags)
