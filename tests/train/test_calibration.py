"""Calibration training and `edgestream train`: train → save → load → identical predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgestream.cli.main import cli
from edgestream.dsp import alignment
from edgestream.train import load_checkpoint, predict, read_checkpoint
from edgestream.train.calibration import calibrate, preprocessing_specs
from edgestream.train.recipes import RECIPES, get_recipe


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("calib") / "model.pt"
    result = calibrate("dbconformer", shared_data / "eegmmidb" / "S001", "left,right", out, epochs=2, seed=3)
    return result, out


def test_train_save_load_gives_identical_predictions(trained):
    result, out = trained
    model, blob = load_checkpoint(out)
    x = torch.as_tensor(result.epochs.X)
    np.testing.assert_array_equal(predict(model, x).numpy(), predict(result.model, x).numpy())
    manifest = blob["manifest"]
    assert manifest["model"] == "dbconformer"
    assert manifest["config"] == {"n_channels": 64, "n_classes": 2, "n_tokens": 8, "patch": 80}
    assert manifest["data"]["classes"] == ["left", "right"] and manifest["data"]["counts"] == {"left": 23, "right": 22}
    assert manifest["data"]["preprocessing"] == [{"kind": "bandpass", "l_freq": 8.0, "h_freq": 30.0}]
    assert manifest["data"]["units"] == ["uV"] * 64 and manifest["data"]["sfreq"] == 160.0  # read by the model stages
    assert len(manifest["data"]["sources"]) == 3 and len(manifest["data"]["sources"][0]["sha256"]) == 64
    val = manifest["metrics"]["validation"]
    assert set(val) >= {"accuracy", "balanced_accuracy", "kappa", "confusion_matrix", "chance"}
    assert np.asarray(val["confusion_matrix"]).sum() == val["n"] == manifest["data"]["n_val"] == 9  # round(0.2·23) + round(0.2·22)
    # the alignment state saved with the weights is the one the trials were aligned with
    state, names = alignment.alignment_from_extra(blob["extra"], "checkpoint")
    np.testing.assert_allclose(state.mean, result.alignment.mean)
    assert state.n == 45 and names == list(result.epochs.ch_names)


def test_aligned_training_trials_have_identity_mean_covariance(trained):
    result, _ = trained
    covs = [alignment.covariance(x.T) for x in result.epochs.X]
    np.testing.assert_allclose(np.mean(covs, axis=0), np.eye(64), atol=1e-3)


def test_selection_never_sees_more_than_the_validation_split(trained):
    result, _ = trained
    assert set(result.train_idx).isdisjoint(result.val_idx)
    assert result.metrics["validation"]["n"] == len(result.val_idx)
    assert "validation" in result.metrics["selection"]


def test_recipes_are_a_registry():
    assert "dbconformer" in RECIPES
    recipe = get_recipe("dbconformer")
    assert recipe.align and (recipe.l_freq, recipe.h_freq) == (8.0, 30.0)
    from edgestream.core.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown training recipe 'dbconformr'. Did you mean 'dbconformer'"):
        get_recipe("dbconformr")
    assert preprocessing_specs(None, 40.0, [50.0]) == [{"kind": "lowpass", "freq": 40.0}, {"kind": "notch", "freqs": [50.0]}]


def test_cli_train_prints_and_saves_metrics(shared_data, tmp_path):
    out = tmp_path / "cli.pt"
    args = ["train", "dbconformer", "--data", str(shared_data / "eegmmidb" / "S002"), "--events", "left,right",
            "--window", "4", "--out", str(out), "--epochs", "1", "--no-align", "--l-freq", "8", "--h-freq", "30",
            "--include", "*R0[48].edf", "--model-arg", "depth=1", "--val-fraction", "0.25"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "trials: 30 (" in res.output and "from 2 recording(s), 640 samples x 64 channels at 160 Hz" in res.output
    assert "validation: n=8 accuracy=" in res.output and "balanced_accuracy=" in res.output and "kappa=" in res.output
    assert "validation confusion matrix (rows true, columns predicted):" in res.output
    blob = read_checkpoint(out)
    assert blob["manifest"]["config"]["depth"] == 1 and "alignment" not in blob["extra"]
    assert blob["manifest"]["data"]["align"] is False
    model, _ = load_checkpoint(out)
    assert len(model.temporal_blocks) == 1


def test_cli_train_errors_exit_2_with_a_clear_message(shared_data, tmp_path):
    base = ["train", "dbconformer", "--data", str(shared_data / "eegmmidb" / "S001"), "--out", str(tmp_path / "x.pt")]
    res = CliRunner().invoke(cli, base + ["--events", "left,feet"])
    assert res.exit_code == 2 and "no trial for ['feet']" in res.output and "Event names in the data" in res.output
    res = CliRunner().invoke(cli, base + ["--events", "left,right", "--window", "4.1"])
    assert res.exit_code == 2 and "window must be a whole number of 80-sample patches" in res.output
    res = CliRunner().invoke(cli, ["train", "dbconformr", "--data", "x", "--events", "a,b", "--out", "y"])
    assert res.exit_code == 2 and "Did you mean 'dbconformer'" in res.output
