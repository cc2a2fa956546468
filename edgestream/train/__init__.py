"""Training: one loop for every model family, checkpoints with manifests, metrics."""

from edgestream.train.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from edgestream.train.loop import TrainConfig, TrainResult, distillation_loss, evaluate, fit, predict
from edgestream.train.metrics import classification_metrics, confusion_matrix

__all__ = [
    "TrainConfig", "TrainResult", "classification_metrics", "confusion_matrix", "distillation_loss", "evaluate", "fit",
    "load_checkpoint", "predict", "read_checkpoint", "save_checkpoint",
]
