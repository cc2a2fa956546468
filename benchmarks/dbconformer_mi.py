"""DBConformer on real EEG: PhysioNet motor imagery (within subject, leave-one-subject-out) and MNE sample ERPs.

Compares DBConformer (edgestream's training code: ``edgestream.train.calibration.fit_on_trials``
with the ``dbconformer`` recipe) against CSP+LDA (``mne.decoding.CSP`` + scikit-learn LDA) and
chance, on the same trials, folds and preprocessing. Prints one JSON object per line and writes
``results.jsonl`` and ``protocol.json`` (the full protocol) into ``--out``.

Protocol (see ``PROTOCOL`` below, also written next to the numbers):

* eegmmidb: subjects S001–S010, runs 4/8/12 (motor imagery), T1 = left fist, T2 = right fist;
  64 ch at 160 Hz in µV. Each run is filtered with the live pipeline's ``bandpass`` stage (causal
  4th-order Butterworth 8–30 Hz, state from the run's first sample); trials are the 4 s (640
  samples) after each cue.
* (a) within subject: the subject's trials in recording order, 5 contiguous folds (chronological
  5-fold CV). Per fold, the training part is split chronologically per class into 80 % fit /
  20 % validation (early stopping and epoch selection); the test fold is never used for
  selection. Euclidean alignment is fitted on the fold's training part and applied to all.
* (b) leave-one-subject-out: train on 9 subjects, test on the 10th. Every subject is aligned
  with its own mean covariance (the test subject's from its unlabelled trials, as an online
  alignment would converge to). Validation: the last 20 % of each training subject's trials per class.
* ERP: 288 epochs × 10 EEG channels at 150 Hz (0–40 Hz), 4 classes (audio/visual × left/right);
  the first 90 of 91 samples (−0.1…0.493 s; DBConformer needs n_t·P samples: P = 15 = 0.1 s,
  6 tokens), µV, chronological 5-fold CV with the same validation rule.
* DBConformer: D=40, depth 2, 10 heads, 1/√D scaling, Adam lr 1e-3, batch 32, cross entropy,
  up to ``epochs`` epochs with early stopping (patience below), seed 0, one torch thread.
  The reference trains 100–200 epochs and reports the last epoch on test data; this benchmark
  selects on validation data only, and trains fewer epochs across subjects (machine budget).
* CSP+LDA: 6 log-variance CSP components (Ledoit–Wolf regularised covariances), LDA (lsqr,
  auto shrinkage), fitted on the whole training part (fit + validation), without alignment
  ("csp_lda") and on the aligned trials ("csp_lda_ea"). ERP also gets a time-domain shrinkage
  LDA ("lda_time", 10 ch × 30 samples decimated by 3).
* Chance: majority-class rate of the test trials; ``chance_p05`` the accuracy a random
  classifier exceeds with probability 5 % (binomial, per subject's number of test trials).

``--quick``: 2 subjects within subject (15 epochs max), LOSO over 3 subjects (5 epochs), ERP
(20 epochs). Usage: ``python benchmarks/dbconformer_mi.py [--quick] [--data DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = "dbconformer_mi"
RUNS = ("R04", "R08", "R12")


def emit(line: dict[str, Any], sink: list[dict[str, Any]]) -> None:
    print(json.dumps(line), flush=True)
    sink.append(line)


# --- data ------------------------------------------------------------------------------------
def load_eegmmidb(root: Path, subjects: list[str], band: tuple[float, float], window_s: float):
    from edgestream.train.calibration import preprocessing_specs
    from edgestream.train.epochs import EventMap, make_epochs, preprocess
    from edgestream.train.recordings import load_recordings

    specs = preprocessing_specs(*band)
    out = {}
    for subject in subjects:
        files = [root / subject / f"{subject}{run}.edf" for run in RUNS]
        recordings = [preprocess(r, specs) for r in load_recordings(files)]
        out[subject] = make_epochs(recordings, EventMap.parse("left,right"), window_s)
    return out


def load_erp(path: Path, n_times: int = 90):
    """(N, C, T) µV epochs, labels and class names from the neurokit2/MNE-sample CSV."""
    from edgestream.train.epochs import EpochSet

    by_label: dict[str, list[list[float]]] = {}
    condition: dict[str, str] = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        channels = header[3:]
        for row in reader:
            by_label.setdefault(row[0], []).append([float(v) for v in row[3:]])
            condition[row[0]] = row[1]
    labels = sorted(by_label, key=int)
    classes = tuple(sorted(set(condition.values())))
    X = np.stack([np.asarray(by_label[k], dtype=np.float64)[:n_times].T for k in labels]) * 1e6  # V -> µV
    y = np.array([classes.index(condition[k]) for k in labels])
    return EpochSet(X=X.astype(np.float32), y=y, groups=np.zeros(len(y), int), onsets=np.arange(len(y), dtype=float),
                    classes=classes, sfreq=150.0, ch_names=tuple(channels), sources=[str(path)])


# --- methods ---------------------------------------------------------------------------------
def aligned(X: np.ndarray, fit_on: np.ndarray) -> np.ndarray:
    """Trials (N, C, T) whitened by the mean covariance of ``fit_on`` (M, C, T)."""
    from edgestream.dsp import alignment

    state = alignment.fit(fit_on.transpose(0, 2, 1))
    return np.ascontiguousarray(alignment.transform(X.transpose(0, 2, 1), state).transpose(0, 2, 1))


def chrono_val_split(epochs, index: np.ndarray, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split ``index`` into fit/validation: the last ``fraction`` of each class (and group) in time order."""
    from edgestream.train.epochs import split_train_val

    fit_idx, val_idx = [], []
    for g in np.unique(epochs.groups[index]):
        sub = index[epochs.groups[index] == g]
        f, v = split_train_val(epochs.subset(sub), fraction)
        fit_idx.extend(sub[f])
        val_idx.extend(sub[v])
    return np.sort(np.asarray(fit_idx)), np.sort(np.asarray(val_idx))


def dbconformer_predict(epochs, fit_idx, val_idx, test_idx, *, epochs_max: int, patience: int, window_s: float,
                        model_args: dict[str, Any], seed: int) -> tuple[np.ndarray, int]:
    from edgestream.train import TrainConfig, predict
    from edgestream.train.calibration import fit_on_trials
    from edgestream.train.recipes import get_recipe

    recipe = get_recipe("dbconformer")
    config = TrainConfig(**(dict(recipe.train) | {"epochs": epochs_max, "patience": patience, "seed": seed, "progress": False}))
    model, _, _, result = fit_on_trials(recipe, epochs, fit_idx, val_idx, config, window_s=window_s, model_args=model_args)
    return predict(model, epochs.X[test_idx]).argmax(-1).numpy(), result.best_epoch


def csp_lda_predict(X_train, y_train, X_test) -> np.ndarray:
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(CSP(n_components=6, reg="ledoit_wolf", log=True),
                        LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    clf.fit(X_train.astype(np.float64), y_train)
    return clf.predict(X_test.astype(np.float64))


def lda_time_predict(X_train, y_train, X_test) -> np.ndarray:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    def feats(X):
        return X[:, :, ::3].reshape(len(X), -1)

    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(feats(X_train), y_train).predict(feats(X_test))


# --- protocols -------------------------------------------------------------------------------
@dataclasses.dataclass
class Scores:
    """Test labels and every method's predictions, per unit (subject, or the whole ERP set)."""

    y: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    pred: dict[str, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    best_epochs: list[int] = dataclasses.field(default_factory=list)

    def add_fold(self, unit: str, y: np.ndarray, predictions: dict[str, np.ndarray]) -> None:
        self.y[unit] = np.concatenate([self.y.get(unit, np.zeros(0, int)), y])
        for method, pred in predictions.items():
            per_unit = self.pred.setdefault(method, {})
            per_unit[unit] = np.concatenate([per_unit.get(unit, np.zeros(0, int)), pred])


def cross_validate(epochs, unit: str, scores: Scores, args, *, window_s: float, model_args: dict[str, Any],
                   extra_methods: tuple[str, ...] = ()) -> None:
    """Chronological 5-fold CV within one trial set (recording order, then onset)."""
    order = np.lexsort((epochs.onsets, epochs.groups))
    folds = np.array_split(order, 5)
    for k, test_idx in enumerate(folds):
        train_part = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != k]))
        fit_idx, val_idx = chrono_val_split(epochs, train_part)
        raw_X = epochs.X
        X = aligned(raw_X, raw_X[train_part])  # alignment from the training part only
        ep = dataclasses.replace(epochs, X=X)
        pred, best = dbconformer_predict(ep, fit_idx, val_idx, test_idx, epochs_max=args.within_epochs,
                                         patience=args.within_patience, window_s=window_s, model_args=model_args, seed=args.seed)
        scores.best_epochs.append(best)
        y_train, train_raw, train_ea = epochs.y[train_part], raw_X[train_part], X[train_part]
        preds = {"dbconformer": pred,
                 "csp_lda": csp_lda_predict(train_raw, y_train, raw_X[test_idx]),
                 "csp_lda_ea": csp_lda_predict(train_ea, y_train, X[test_idx])}
        if "lda_time" in extra_methods:
            preds["lda_time"] = lda_time_predict(train_raw, y_train, raw_X[test_idx])
        scores.add_fold(unit, epochs.y[test_idx], preds)


def leave_one_subject_out(data: dict[str, Any], scores: Scores, args, window_s: float) -> None:
    from edgestream.train.epochs import EpochSet

    subjects = list(data)
    per_subject_aligned = {s: aligned(e.X, e.X) for s, e in data.items()}  # each subject by its own mean covariance
    for test_subject in subjects:
        train_subjects = [s for s in subjects if s != test_subject]
        parts = [data[s] for s in train_subjects]
        X = np.concatenate([per_subject_aligned[s] for s in train_subjects])
        raw = np.concatenate([p.X for p in parts])
        y = np.concatenate([p.y for p in parts])
        groups = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
        onsets = np.concatenate([p.onsets + 1e4 * p.groups for p in parts])  # runs in order within a subject
        train = EpochSet(X=X, y=y, groups=groups, onsets=onsets, classes=parts[0].classes, sfreq=parts[0].sfreq,
                         ch_names=parts[0].ch_names, sources=[])
        fit_idx, val_idx = chrono_val_split(train, np.arange(len(y)))
        test = data[test_subject]
        # Predict the test subject with a model fitted on the others: append its aligned trials as the "test" rows.
        both = dataclasses.replace(train, X=np.concatenate([X, per_subject_aligned[test_subject]]),
                                   y=np.concatenate([y, test.y]), groups=np.concatenate([groups, np.full(len(test), -1)]),
                                   onsets=np.concatenate([onsets, test.onsets]))
        test_idx = np.arange(len(y), len(y) + len(test))
        pred, best = dbconformer_predict(both, fit_idx, val_idx, test_idx, epochs_max=args.loso_epochs,
                                         patience=args.loso_patience, window_s=window_s, model_args={}, seed=args.seed)
        scores.best_epochs.append(best)
        scores.add_fold(test_subject, test.y, {"dbconformer": pred, "csp_lda": csp_lda_predict(raw, y, test.X),
                                               "csp_lda_ea": csp_lda_predict(X, y, per_subject_aligned[test_subject])})


def report(scores: Scores, dataset: str, protocol: str, n_classes: int, common: dict[str, Any], sink: list) -> None:
    from scipy.stats import binom

    from edgestream.train.metrics import classification_metrics

    units = list(scores.y)
    base = {"bench": BENCH, "dataset": dataset, "protocol": protocol, "n_units": len(units)} | common
    summary: dict[str, float] = {}
    for method, preds in scores.pred.items():
        per = {u: classification_metrics(scores.y[u], preds[u], n_classes) for u in units}
        for metric in ("accuracy", "balanced_accuracy", "kappa"):
            values = np.array([per[u][metric] for u in units])
            line = base | {"method": method, "metric": metric, "value": round(float(values.mean()), 4), "unit": "fraction",
                           "std_across_units": round(float(values.std()), 4),
                           "per_unit": {u: round(float(v), 4) for u, v in zip(units, values)}}
            if metric == "accuracy" and method == "dbconformer":
                line["best_epoch_mean"] = round(float(np.mean(scores.best_epochs)), 1)
            emit(line, sink)
        summary[method] = float(np.mean([per[u]["accuracy"] for u in units]))
    chance = np.mean([np.bincount(scores.y[u], minlength=n_classes).max() / len(scores.y[u]) for u in units])
    p05 = np.mean([binom.ppf(0.95, len(scores.y[u]), 1.0 / n_classes) / len(scores.y[u]) for u in units])
    emit(base | {"method": "chance", "metric": "accuracy", "value": round(float(chance), 4), "unit": "fraction",
                 "note": "majority class of the test trials"}, sink)
    emit(base | {"method": "chance", "metric": "chance_p05", "value": round(float(p05), 4), "unit": "fraction",
                 "note": "95th percentile of a random classifier's accuracy (binomial)"}, sink)
    for method in [m for m in summary if m != "csp_lda"]:
        emit(base | {"method": method, "metric": "accuracy_ratio_vs_csp_lda",
                     "value": round(summary[method] / summary["csp_lda"], 4), "unit": "ratio"}, sink)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="subset: 2 subjects within, 3 for LOSO, few epochs")
    parser.add_argument("--data", default=None, help="data directory (default: $EDGESTREAM_DATA or ../shared/data)")
    parser.add_argument("--out", default=None, help="where results.jsonl and protocol.json go (default: cache dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: within,loso,erp")
    args = parser.parse_args(argv)

    import mne
    import torch

    from edgestream.core.paths import cache_dir, data_dir

    mne.set_log_level("ERROR")  # CSP logs every covariance estimate
    torch.set_num_threads(1)  # shared 2-core machine; also makes timings comparable across runs
    root = data_dir(args.data)
    mmi_root = root / "eegmmidb" if (root / "eegmmidb").is_dir() else root
    subjects = sorted(p.name for p in mmi_root.iterdir() if p.is_dir() and re.fullmatch(r"S\d+", p.name))
    within_subjects = subjects[:2] if args.quick else subjects[:10]
    loso_subjects = subjects[:3] if args.quick else subjects[:10]
    args.within_epochs, args.within_patience = (15, 10) if args.quick else (100, 30)
    args.loso_epochs, args.loso_patience = (5, 5) if args.quick else (40, 15)
    erp_epochs = 20 if args.quick else 150
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    out_dir = Path(args.out) if args.out else cache_dir("benchmarks") / BENCH
    out_dir.mkdir(parents=True, exist_ok=True)
    band, window_s = (8.0, 30.0), 4.0
    protocol = {
        "doc": __doc__,
        "quick": args.quick,
        "data": str(root),
        "eegmmidb": {"subjects_within": within_subjects, "subjects_loso": loso_subjects, "runs": list(RUNS),
                     "classes": {"left": "T1", "right": "T2"}, "band_hz": band, "filter": "bandpass stage, causal Butterworth order 4",
                     "window_s": window_s, "window_samples": 640, "tmin_s": 0.0},
        "erp": {"file": "eeg/mne_sample_erp_epochs.csv", "samples": 90, "sfreq": 150.0, "patch_s": 0.1, "tokens": 6,
                "max_epochs": erp_epochs},
        "dbconformer": {"lr": 1e-3, "batch_size": 32, "within": {"max_epochs": args.within_epochs, "patience": args.within_patience},
                        "loso": {"max_epochs": args.loso_epochs, "patience": args.loso_patience}, "seed": args.seed,
                        "selection": "best validation accuracy; validation = last 20% per class (chronological)",
                        "torch_threads": 1},
        "alignment": "Euclidean; within/ERP: fitted on each fold's training part; LOSO: per subject on its own trials",
        "csp_lda": "mne.decoding.CSP(n_components=6, reg='ledoit_wolf', log=True) + LDA(lsqr, auto shrinkage)",
    }
    (out_dir / "protocol.json").write_text(json.dumps(protocol, indent=2))
    common = {"quick": args.quick, "seed": args.seed, "protocol_file": str(out_dir / "protocol.json")}
    sink: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    if not {"within", "loso"} <= skip:
        data = load_eegmmidb(mmi_root, sorted(set(within_subjects) | set(loso_subjects)), band, window_s)
        mmi = common | {"window_s": window_s, "band_hz": list(band), "n_classes": 2}
        if "within" not in skip:
            scores = Scores()
            for s in within_subjects:
                cross_validate(data[s], s, scores, args, window_s=window_s, model_args={})
            report(scores, "eegmmidb", "within_subject_chrono_cv5", 2,
                   mmi | {"max_epochs": args.within_epochs, "alignment": "EA on training folds"}, sink)
        if "loso" not in skip:
            scores = Scores()
            leave_one_subject_out({s: data[s] for s in loso_subjects}, scores, args, window_s)
            report(scores, "eegmmidb", "leave_one_subject_out", 2,
                   mmi | {"max_epochs": args.loso_epochs, "alignment": "EA per subject"}, sink)
    if "erp" not in skip:
        erp = load_erp(root / "eeg" / "mne_sample_erp_epochs.csv")
        scores = Scores()
        erp_args = argparse.Namespace(**(vars(args) | {"within_epochs": erp_epochs, "within_patience": 40}))
        cross_validate(erp, "sample", scores, erp_args, window_s=0.6, model_args={"patch_s": 0.1},
                       extra_methods=("lda_time",))
        report(scores, "mne_sample_erp", "chrono_cv5", len(erp.classes),
               common | {"window_s": 0.6, "max_epochs": erp_epochs, "alignment": "EA on training folds"}, sink)
    emit({"bench": BENCH, "metric": "wall_time", "value": round(time.perf_counter() - t0, 1), "unit": "s",
          "quick": args.quick}, sink)
    (out_dir / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in sink))
    return 0


if __name__ == "__main__":
    sys.exit(main())
