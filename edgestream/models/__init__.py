"""Models: a registry of named variants. ``create_model(name, **overrides)``, ``list_models()``.

Every module in this package registers its variants when imported; the registry imports them
all on first use.
"""

from edgestream.models.registry import MODELS, create_model, list_models, model_tags, register_model

__all__ = ["MODELS", "create_model", "list_models", "model_tags", "register_model"]
