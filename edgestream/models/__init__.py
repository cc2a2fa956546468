"""Models: a registry of named variants, and the factory that builds them (from checkpoints too).

``create_model(name, checkpoint=None, **overrides)``, ``load_checkpoint(path)``, ``list_models()``.
Every module in this package registers its variants when imported; the registry imports them
all on first use.
"""

from edgestream.models.checkpoint import load_weights, read_checkpoint
from edgestream.models.factory import create_model, load_checkpoint, model_from_checkpoint
from edgestream.models.registry import MODELS, list_models, model_tags, register_model

__all__ = [
    "MODELS", "create_model", "list_models", "load_checkpoint", "load_weights", "model_from_checkpoint", "model_tags",
    "read_checkpoint", "register_model",
]
