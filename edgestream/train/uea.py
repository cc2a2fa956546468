"""UEA/UCR time-series archive files (``.ts``, the sktime/aeon format) as arrays.

A dataset directory holds ``<Name>_TRAIN.ts`` and ``<Name>_TEST.ts``. Series may differ in
length (between cases, and between the dimensions of one case); they are NaN-padded at the end to
a common length so a split is one array ``(n_cases, n_dims, T)``. Class labels are mapped to
``0 … n_classes − 1`` in the order the ``@classLabel`` header lists them.

::

    ds = load_uea("JapaneseVowels")                 # looks under data_dir()/timeseries/
    ds = load_uea("/path/to/JapaneseVowels")        # or any directory holding the two files
    x = fill_missing(ds.x_train)                    # NaN padding -> 0
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from edgestream.core.checks import described, fail
from edgestream.core.errors import ConfigError, DataError
from edgestream.core.paths import data_dir

SPLITS = ("TRAIN", "TEST")


@dataclasses.dataclass(frozen=True)
class TSFile:
    """One parsed ``.ts`` file."""

    x: np.ndarray  # (n_cases, n_dims, T) float32, NaN after each series' end and for '?' values
    y: np.ndarray  # (n_cases,) int64 class indices into ``classes``
    lengths: np.ndarray  # (n_cases,) int64, longest dimension of each case (samples)
    classes: tuple[str, ...]  # class labels as written in the header
    header: dict[str, str]  # '@key value' lines (keys lower-case, without '@')


@dataclasses.dataclass(frozen=True)
class UEADataset:
    """Train and test splits of one dataset, padded to one common length ``T``."""

    name: str
    x_train: np.ndarray  # (n_train, n_dims, T) float32, NaN padding
    y_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray  # (n_test, n_dims, T) float32, NaN padding
    y_test: np.ndarray  # (n_test,) int64
    classes: tuple[str, ...]
    lengths_train: np.ndarray  # (n_train,) samples per case
    lengths_test: np.ndarray  # (n_test,)
    path: Path  # directory the files were read from

    @property
    def n_dims(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def length(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def read_ts(path: str | os.PathLike[str]) -> TSFile:
    """Parse one ``.ts`` file with class labels (``@classLabel true …``) and no timestamps."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f".ts path must be an existing file; got {str(path)!r}. Check --data / $EDGESTREAM_DATA.")
    header: dict[str, str] = {}
    cases: list[list[np.ndarray]] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    _bad(path, lineno, "start with '@' (a header line) before @data", line)
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    _check_header(path, header)
                else:
                    header[key] = value.strip()
                continue
            fields = line.split(":")
            if len(fields) < 2:
                _bad(path, lineno, "be a data line 'dim1:dim2:...:label'", line)
            labels.append(fields[-1].strip())
            try:
                cases.append([_parse_series(dim) for dim in fields[:-1]])
            except ValueError as exc:
                _bad(path, lineno, f"hold comma-separated numbers or '?' ({exc})", line)
    if not in_data:
        fail(f"{path.name}", "contain an @data section", described("no @data line"), "Is this a .ts file?", DataError)
    if not cases:
        fail(f"{path.name}", "contain at least one case after @data", described("0 cases"), error=DataError)
    n_dims = {len(c) for c in cases}
    if len(n_dims) != 1:
        fail(f"{path.name}", "have the same number of dimensions in every case", described(f"counts {sorted(n_dims)}"),
             error=DataError)
    classes = tuple(header.get("classlabel", "").split()[1:])
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        fail(f"{path.name} labels", f"be among the @classLabel values {list(classes)}", unknown, error=DataError)
    index = {c: i for i, c in enumerate(classes)}
    lengths = np.array([max(len(s) for s in case) for case in cases], dtype=np.int64)
    x = np.full((len(cases), n_dims.pop(), int(lengths.max())), np.nan, dtype=np.float32)
    for i, case in enumerate(cases):
        for j, series in enumerate(case):
            x[i, j, : len(series)] = series
    y = np.array([index[label] for label in labels], dtype=np.int64)
    return TSFile(x, y, lengths, classes, header)


def find_dataset(name_or_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """Locate a dataset: a directory holding ``*_TRAIN.ts``/``*_TEST.ts``, or a name under ``<data>/timeseries/``.

    Returns ``(directory, dataset name)``.
    """
    candidates = [Path(name_or_dir)]
    if not Path(name_or_dir).is_absolute():
        try:
            root = data_dir(data)
            candidates += [root / name_or_dir, root / "timeseries" / name_or_dir]
        except ConfigError:
            pass
    for cand in candidates:
        if cand.is_dir():
            trains = sorted(cand.glob("*_TRAIN.ts"))
            if len(trains) == 1:
                return cand, trains[0].name[: -len("_TRAIN.ts")]
    raise ConfigError(
        f"UEA dataset must be a directory holding one <Name>_TRAIN.ts and <Name>_TEST.ts; got {str(name_or_dir)!r} "
        f"(looked in {', '.join(str(c) for c in candidates)}). Pass --data DIR/JapaneseVowels or set $EDGESTREAM_DATA."
    )


def load_uea(name_or_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None = None) -> UEADataset:
    """Load both splits of a UEA dataset, NaN-padded to the longest case of either split."""
    folder, name = find_dataset(name_or_dir, data)
    parts = {}
    for split in SPLITS:
        file = folder / f"{name}_{split}.ts"
        if not file.is_file():
            raise ConfigError(f"UEA dataset {name!r} must have {file.name} in {str(folder)!r}; it is missing.")
        parts[split] = read_ts(file)
    train, test = parts["TRAIN"], parts["TEST"]
    if train.classes != test.classes or train.x.shape[1] != test.x.shape[1]:
        fail(f"{name} TEST split", f"match TRAIN's classes {list(train.classes)} and {train.x.shape[1]} dimensions",
             described(f"classes {list(test.classes)}, {test.x.shape[1]} dimensions"), error=DataError)
    length = max(train.x.shape[2], test.x.shape[2])
    return UEADataset(
        name, pad_to(train.x, length), train.y, pad_to(test.x, length), test.y, train.classes,
        train.lengths, test.lengths, folder,
    )


def pad_to(x: np.ndarray, length: int, value: float = np.nan) -> np.ndarray:
    """Pad (n, C, T) at the end of the time axis to ``length`` samples with ``value``."""
    if x.shape[-1] > length:
        fail("length", f"be at least the series length {x.shape[-1]}", length, error=DataError)
    return np.pad(x, ((0, 0), (0, 0), (0, length - x.shape[-1])), constant_values=value)


def fill_missing(x: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Copy of ``x`` with NaN (padding and missing values) replaced by ``value`` (0, as MPTSNet does)."""
    return np.where(np.isnan(x), np.float32(value), x).astype(np.float32)


def _parse_series(text: str) -> np.ndarray:
    values = [v.strip() for v in text.split(",")]
    return np.array([np.nan if v in ("?", "NaN", "nan") else float(v) for v in values if v != ""], dtype=np.float32)


def _check_header(path: Path, header: dict[str, str]) -> None:
    if header.get("timestamps", "false").lower() == "true":
        fail(f"{path.name}", "have @timeStamps false (timestamped series are not supported)", "true",
             "Convert the file to plain comma-separated values.", DataError)
    label = header.get("classlabel", "").split()
    if not label or label[0].lower() != "true" or len(label) < 2:
        fail(f"{path.name}", "declare '@classLabel true <labels...>' (classification data)",
             header.get("classlabel", "(missing)"), error=DataError)


def _bad(path: Path, lineno: int, rule: str, line: str) -> None:
    fail(f"{path.name} line {lineno}", rule, line[:60], error=DataError)
