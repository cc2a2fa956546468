"""Image datasets from local files: IDX (MNIST / Fashion-MNIST layout), any directory.

Images come back as float32 tensors ``(n, C, H, W)`` in ``[0, 1]`` and labels as int64 ``(n,)``,
the layout every ``kind="vision"`` model takes and the camera sources produce.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from edgestream.core.errors import ConfigError, DataError
from edgestream.core.paths import data_dir

FASHION_MNIST_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (optionally gzip'd): unsigned-byte arrays of any rank."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(
            f"IDX file {str(path)!r} must start with magic 0x0000 08 (unsigned bytes); got {raw[:4].hex() or 'an empty file'}. "
            "Is it a truncated download or a different format?"
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"IDX file {str(path)!r} must hold {int(np.prod(dims))} values for shape {dims}; got {data.size}.")
    return data.reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise ConfigError(
        f"IDX dataset directory must contain {stem}[.gz]; got {str(directory)!r} with "
        f"{sorted(p.name for p in directory.iterdir())[:8]}. Point --data at a folder holding the four IDX files."
    )


def resolve_idx_dir(data: str | os.PathLike[str] | None, name: str = "fashion-mnist") -> Path:
    """``data`` itself if it holds IDX files, else ``<data>/vision/<name>``; ``None`` = the data directory."""
    root = Path(data) if data is not None else data_dir()
    if not root.is_dir():
        raise ConfigError(f"data must be an existing directory; got {str(root)!r}. Pass --data DIR.")
    for cand in (root, root / name, root / "vision" / name):
        if any(cand.glob("*-idx3-ubyte*")):
            return cand
    raise ConfigError(
        f"data must be a directory with IDX files (train-images-idx3-ubyte[.gz] ...) or contain vision/{name}/; "
        f"got {str(root)!r}. Pass --data pointing at the dataset folder."
    )


def load_idx_dataset(
    data: str | os.PathLike[str] | None = None, split: str = "train", *, name: str = "fashion-mnist", limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(n, 1, H, W)`` float32 in [0, 1] and labels ``(n,)`` int64 of an IDX dataset split.

    ``limit`` keeps the first ``limit`` items (for bounded benchmark budgets).
    """
    if split not in _SPLIT_PREFIX:
        raise ConfigError(f"split must be one of 'train', 'test'; got {split!r}.")
    directory = resolve_idx_dir(data, name)
    prefix = _SPLIT_PREFIX[split]
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise DataError(f"IDX images and labels must have the same count; got {len(images)} images and {len(labels)} labels.")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (n, 1, H, W)
    return x, torch.from_numpy(labels.astype(np.int64))


def stratified_split(labels: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(first, second)`` with ``fraction`` of every class in ``second`` (e.g. a validation split)."""
    gen = torch.Generator().manual_seed(seed)
    first, second = [], []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = int(round(len(idx) * fraction))
        second.append(idx[:k])
        first.append(idx[k:])
    return torch.cat(first).sort().values, torch.cat(second).sort().values
