"""UEA .ts loader on the real JapaneseVowels files and on small hand-written files; validation
split; the MPTSNet training entry end to end (tiny model, two epochs) and its checkpoint in a pipeline stage."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from edgestream.core import STAGES, ConfigError, DataError, StreamInfo, run_stage
from edgestream.testing import make_chunk
from edgestream.train.splits import stratified_split
from edgestream.train.uea import fill_missing, find_dataset, load_uea, read_ts

HEADER = "#comment\n@problemName Toy\n@timeStamps false\n@univariate false\n@dimensions 2\n@equalLength false\n"


@pytest.fixture(scope="module")
def jv(shared_data):
    return load_uea(shared_data / "timeseries" / "JapaneseVowels")


def test_japanese_vowels_real_file(jv):
    assert jv.name == "JapaneseVowels"
    assert jv.x_train.shape == (270, 12, 29) and jv.x_test.shape == (370, 12, 29)
    assert jv.n_dims == 12 and jv.n_classes == 9 and jv.classes == tuple("123456789")
    lengths = np.concatenate([jv.lengths_train, jv.lengths_test])
    assert lengths.min() == 7 and lengths.max() == 29
    assert np.bincount(jv.y_train).tolist() == [30] * 9  # 30 utterances per speaker
    assert np.bincount(jv.y_test, minlength=9).sum() == 370
    # NaN exactly after each case's end, finite before
    for x, n in zip(jv.x_test, jv.lengths_test):
        assert np.isfinite(x[:, :n]).all() and np.isnan(x[:, n:]).all()
    first = jv.x_train[0, 0, :3]
    np.testing.assert_allclose(first, [1.860936, 1.891651, 1.939205], rtol=1e-6)  # first values in the file


def test_dataset_found_by_name_under_a_data_root(shared_data):
    folder, name = find_dataset("JapaneseVowels", shared_data)
    assert name == "JapaneseVowels" and folder == shared_data / "timeseries" / "JapaneseVowels"


def test_any_directory_works(tmp_path, shared_data):
    src = shared_data / "timeseries" / "JapaneseVowels"
    for f in src.glob("*.ts"):
        shutil.copy(f, tmp_path / f.name)
    ds = load_uea(tmp_path)
    assert ds.x_train.shape == (270, 12, 29) and ds.path == tmp_path
    with pytest.raises(ConfigError, match="UEA dataset must be a directory holding one <Name>_TRAIN.ts"):
        load_uea(tmp_path / "nowhere")


def write(tmp_path, name, body, header=HEADER + "@classLabel true a b\n"):
    path = tmp_path / name
    path.write_text(header + "@data\n" + body)
    return path


def test_variable_length_and_missing_values(tmp_path):
    ts = read_ts(write(tmp_path, "Toy_TRAIN.ts", "1,2,3:4,5:a\n1.5,?,2.5,3.5:6:b\n"))
    assert ts.x.shape == (2, 2, 4) and ts.y.tolist() == [0, 1] and ts.classes == ("a", "b")
    np.testing.assert_array_equal(ts.lengths, [3, 4])
    expected = np.array([[[1, 2, 3, np.nan], [4, 5, np.nan, np.nan]], [[1.5, np.nan, 2.5, 3.5], [6, np.nan, np.nan, np.nan]]])
    np.testing.assert_array_equal(ts.x, expected.astype(np.float32))
    np.testing.assert_array_equal(fill_missing(ts.x)[0, 1], [4, 5, 0, 0])


def test_train_and_test_are_padded_to_one_length(tmp_path):
    write(tmp_path, "Toy_TRAIN.ts", "1,2:3,4:a\n1,2:3,4:b\n")
    write(tmp_path, "Toy_TEST.ts", "1,2,3,4,5:3:b\n")
    ds = load_uea(tmp_path)
    assert ds.x_train.shape == (2, 2, 5) and ds.x_test.shape == (1, 2, 5) and np.isnan(ds.x_train[:, :, 2:]).all()


def test_ts_format_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match=r"Toy_TRAIN.ts labels must be among the @classLabel values \['a', 'b'\]; got \['c'\]"):
        read_ts(write(tmp_path, "Toy_TRAIN.ts", "1,2:3,4:c\n"))
    with pytest.raises(DataError, match="line 9 must hold comma-separated numbers or '\\?'"):
        read_ts(write(tmp_path, "Toy_TRAIN.ts", "1,x:3,4:a\n"))
    with pytest.raises(DataError, match="must have the same number of dimensions in every case"):
        read_ts(write(tmp_path, "Toy_TRAIN.ts", "1,2:3,4:a\n1,2:b\n"))
    with pytest.raises(DataError, match="must declare '@classLabel true <labels...>'"):
        read_ts(write(tmp_path, "Toy_TRAIN.ts", "1,2:3,4:a\n", header=HEADER))
    with pytest.raises(DataError, match="must have @timeStamps false"):
        read_ts(write(tmp_path, "Toy_TRAIN.ts", "1:2:a\n", header="@timeStamps true\n@classLabel true a\n"))
    with pytest.raises(ConfigError, match=".ts path must be an existing file"):
        read_ts(tmp_path / "missing.ts")


def test_stratified_split_is_per_class_and_reproducible():
    y = np.repeat(np.arange(9), 30)
    fit_idx, val_idx = stratified_split(y, 0.2, seed=0)
    assert np.bincount(y[val_idx]).tolist() == [6] * 9
    assert np.intersect1d(fit_idx, val_idx).size == 0 and fit_idx.size + val_idx.size == 270
    again = stratified_split(y, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], val_idx)
    assert not np.array_equal(stratified_split(y, 0.2, seed=1)[1], val_idx)
    with pytest.raises(ConfigError, match=r"val_fraction must lie in \(0, 1\); got 1.5"):
        stratified_split(y, 1.5)


def test_train_entry_end_to_end_and_checkpoint_in_a_pipeline(tmp_path, shared_data, monkeypatch):
    from edgestream.train.mptsnet_fit import DEFAULT_CONFIG, train_mptsnet

    monkeypatch.setenv("EDGESTREAM_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(DEFAULT_CONFIG, epochs=2, batch_size=32, progress=False)
    tiny = {"d_model": 8, "d_window": 16, "d_ff": 16, "cnn_hidden": 8, "n_heads": 2}
    run = train_mptsnet(shared_data / "timeseries" / "JapaneseVowels", model="mptsnet_compact", overrides=tiny,
                        config=cfg, checkpoint=tmp_path / "jv.pt")
    assert (run.n_fit, run.n_val) == (216, 54)
    assert len(run.periods.periods) == 3 and run.model.periods == run.periods.periods  # compact: k = 3
    assert len(run.train.history) == 2 and 1 <= run.train.best_epoch <= 2
    assert run.test_metrics["n"] == 370 and 0.0 <= run.test_metrics["accuracy"] <= 1.0
    assert run.val_metrics["accuracy"] == pytest.approx(run.train.best_score)

    # the checkpoint drives the pipeline's window-model stage, through ONNX Runtime
    info = StreamInfo("jv", "Sensor", "sid", 100.0, [f"lpc{i}" for i in range(12)], window=29)
    stage = STAGES.create("model", checkpoint=str(tmp_path / "jv.pt"), backend="onnxruntime")
    out_info = stage.build(info)
    assert out_info.ch_names[:9] == tuple(f"p_{c}" for c in "123456789")
    x = fill_missing(run.dataset.x_test[:4])
    chunks = [make_chunk(x[i].T, info, t0=float(i)) for i in range(4)]
    outputs, _ = run_stage(stage, chunks)
    probs = np.concatenate([c.data[:, :9] for c in outputs])
    import torch

    with torch.no_grad():
        expected = torch.softmax(run.model(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-5)


def test_cli_train_mptsnet_on_a_dataset_directory(shared_data, tmp_path):
    from click.testing import CliRunner

    from edgestream.cli.main import cli
    from edgestream.train.checkpoint import read_checkpoint

    out = tmp_path / "cli.pt"
    base = ["train", "mptsnet", "--data", str(shared_data / "timeseries" / "JapaneseVowels"), "--out", str(out)]
    tiny = ["--model-arg", "variant=mptsnet_compact", "--model-arg", "d_model=8", "--model-arg", "cnn_hidden=8",
            "--model-arg", "n_periods=2", "--epochs", "1", "--batch-size", "64"]
    res = CliRunner().invoke(cli, base + tiny)
    assert res.exit_code == 0, res.output
    assert "270 train / 370 test cases, 12 dims x 29 samples" in res.output
    assert "periods: [14, 10] samples (from the 216 fitting cases; 54 held out)" in res.output
    assert "validation: n=54 accuracy=" in res.output and "test: n=370 accuracy=" in res.output
    blob = read_checkpoint(out)
    assert blob["manifest"]["model"] == "mptsnet_compact" and blob["manifest"]["config"]["periods"] == [14, 10]
    assert blob["manifest"]["data"]["classes"] == list("123456789")
    res = CliRunner().invoke(cli, base + ["--events", "a,b"])
    assert res.exit_code == 2 and "options --events must be left out for 'mptsnet'" in res.output
    res = CliRunner().invoke(cli, base + ["--model-arg", "variant=mptsnet_tiny"])
    assert res.exit_code == 2 and "variant must be one of 'mptsnet', 'mptsnet_compact', 'mptsnet_strided'" in res.output


def test_calibrate_refuses_a_dataset_family():
    from edgestream.train.calibration import calibrate

    with pytest.raises(ConfigError, match="family must train on recordings for calibrate\\(\\); got 'mptsnet'"):
        calibrate("mptsnet", "somewhere.xdf", "a,b")
