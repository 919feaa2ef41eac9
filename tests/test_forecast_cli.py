"""`python -m apps.forecast` end to end on a small series written here."""

import json
import re

import numpy as np
import pytest
from test_forecast_data import write_csv

from apps.forecast.cli import main

SEQ, HORIZON = 24, 6
PROTOCOL = ["--splits", "0.6,0.2", "--seq-len", str(SEQ), "--horizon", str(HORIZON)]


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    t = np.arange(300)
    rng = np.random.default_rng(0)
    values = np.stack(
        [
            np.sin(2 * np.pi * t / 12),
            np.cos(2 * np.pi * t / 8) * 3 + 10,
            np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=300),
        ],
        1,
    )
    return write_csv(tmp_path_factory.mktemp("data") / "toy.csv", values.round(4))


def _train(csv, out, model, *extra):
    return main(
        [
            "train",
            "--data",
            str(csv),
            "--model",
            model,
            *PROTOCOL,
            "--epochs",
            "2",
            "--units",
            "8",
            "--seg-len",
            "6",
            "--kernel-size",
            "5",
            "--batch-size",
            "16",
            "--lr",
            "0.01",
            "--name",
            model,
            "--out",
            str(out),
            "--run-dir",
            str(out.parent / f"run-{model}"),
            *extra,
        ]
    )


def test_train_evaluate_predict_export(series_csv, tmp_path, capsys):
    out = tmp_path / "saved"
    assert _train(series_csv, out, "segrnn", "--features", "MS") == 0
    folder = out / "forecast-segrnn"
    meta = json.loads((folder / "metadata.json").read_text())
    setup = meta["forecast"]
    assert setup["seq_len"] == SEQ and setup["columns"] == ["c0", "c1", "OT"]
    # The stored scaler is the training rows' (the first 60%).
    values = np.loadtxt(series_csv, delimiter=",", skiprows=1, usecols=(1, 2, 3))
    np.testing.assert_allclose(setup["scaler"]["mean"], values[:180].mean(0), atol=1e-5)

    npz = tmp_path / "pred.npz"
    assert main(["predict", str(folder), "--data", str(series_csv), "--output", str(npz)]) == 0
    arrays = np.load(npz)
    test_rows = 60 + SEQ  # test split: the last 20%, with its look-back
    windows = test_rows - SEQ - HORIZON + 1
    assert arrays["y_true"].shape == arrays["y_pred"].shape == (windows, HORIZON, 1)
    scaled_ot = (values[:, 2] - values[:180, 2].mean()) / values[:180, 2].std()
    np.testing.assert_allclose(arrays["y_true"][0, :, 0], scaled_ot[240:246], atol=1e-5)
    np.testing.assert_allclose(arrays["y_true"][-1, :, 0], scaled_ot[-6:], atol=1e-5)
    mse = np.mean((arrays["y_pred"] - arrays["y_true"]) ** 2)
    assert mse == pytest.approx(meta["metrics"]["test_mse"], rel=1e-4)

    capsys.readouterr()
    assert main(["evaluate", str(folder), "--data", str(series_csv)]) == 0
    printed = capsys.readouterr().out
    mae = np.mean(np.abs(arrays["y_pred"] - arrays["y_true"]))
    assert f"MSE {mse:.4f}, MAE {mae:.4f}" in printed
    target_mae = mae * values[:180, 2].std()  # OT's MAE in its own units
    assert f"OT MAE {target_mae:.4f}" in printed
    assert (folder / "forecast-test.png").stat().st_size > 1000

    assert main(["export", str(folder), "--data", str(series_csv)]) == 0
    manifest = json.loads((folder / "export" / "manifest.json").read_text())
    entry = manifest["exports"][0]
    assert entry["max_abs_diff"] < 1e-4
    from keras_deeprnn.export import load_tflite

    interpreter = load_tflite(folder / "export" / entry["file"])
    run = interpreter.get_signature_runner()
    x = (values[-SEQ - HORIZON : -HORIZON] - values[:180].mean(0)) / values[:180].std(0)
    got = next(iter(run(**{entry["inputs"][0]["name"]: x[None].astype("float32")}).values()))
    np.testing.assert_allclose(got[0], arrays["y_pred"][-1], atol=1e-4)


def test_baselines_and_linear(series_csv, tmp_path):
    out = tmp_path / "saved"
    scores = {}
    for model in ("last", "dlinear", "rnn"):
        assert _train(series_csv, out, model) == 0
        scores[model] = json.loads((out / f"forecast-{model}" / "metadata.json").read_text())[
            "metrics"
        ]
    # Repeating the last value of these periodic series: NumPy's score.
    values = np.loadtxt(series_csv, delimiter=",", skiprows=1, usecols=(1, 2, 3))
    scaled = (values - values[:180].mean(0)) / values[:180].std(0)
    test = scaled[240 - SEQ :]
    errors = [
        test[i + SEQ : i + SEQ + HORIZON] - test[i + SEQ - 1]
        for i in range(len(test) - SEQ - HORIZON + 1)
    ]
    assert scores["last"]["test_mse"] == pytest.approx(np.mean(np.square(errors)), rel=1e-5)
    assert scores["last"]["test_mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)


def test_time_budget_ends_the_training_between_epochs(series_csv, tmp_path):
    out = tmp_path / "saved"
    # 0.06 s: no second epoch fits after the first.
    options = ["--epochs", "5", "--patience", "5", "--time-budget", "0.001"]
    assert _train(series_csv, out, "linear", *options) == 0
    metadata = json.loads((out / "forecast-linear" / "metadata.json").read_text())
    assert metadata["epochs_run"] == 1
    assert np.isfinite(metadata["metrics"]["test_mse"])


def test_cosine_schedule_over_the_epochs(series_csv, tmp_path, capsys):
    import keras

    out = tmp_path / "saved"
    assert _train(series_csv, out, "linear", "--lr-schedule", "cosine") == 0
    model = keras.saving.load_model(out / "forecast-linear" / "model.keras", safe_mode=True)
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    # 180 training rows: 151 windows of 24 + 6 rows, 10 batches of 16, 2 epochs.
    assert schedule["config"]["decay_steps"] == 20
    assert schedule["config"]["initial_learning_rate"] == pytest.approx(0.01)
    both = ["--overwrite", "--lr-schedule", "cosine", "--lr-decay", "0.5"]
    assert _train(series_csv, out, "linear", *both) == 2
    assert "--lr-decay and --lr-schedule cosine" in capsys.readouterr().err


def test_ema_keeps_the_averaged_weights(series_csv, tmp_path, capsys):
    import keras

    out = tmp_path / "saved"
    assert _train(series_csv, out, "linear", "--epochs", "3", "--ema", "0.5") == 0
    model = keras.saving.load_model(out / "forecast-linear" / "model.keras", safe_mode=True)
    assert model.optimizer.get_config()["use_ema"] is True
    assert model.optimizer.get_config()["ema_momentum"] == pytest.approx(0.5)
    # The saved weights are the ones validated: the best epoch's average
    # (Keras prints each epoch's val_mse to 4 decimals).
    printed = [float(v) for v in re.findall(r"val_mse: ([0-9.]+)", capsys.readouterr().out)]
    metadata = json.loads((out / "forecast-linear" / "metadata.json").read_text())
    assert len(printed) == 3
    assert metadata["metrics"]["valid_mse"] == pytest.approx(min(printed), abs=2e-4)
    with pytest.raises(SystemExit) as exit_:
        _train(series_csv, out, "linear", "--overwrite", "--ema", "1")
    assert exit_.value.code == 2
    assert "--ema: must be a fraction in (0, 1)" in capsys.readouterr().err


def _cell(value):
    """Row 5's first value replaced by `value`."""

    def edit(lines):
        fields = lines[6].split(",")
        lines[6] = ",".join([fields[0], value, *fields[2:]])

    return edit


def _rename_date(lines):
    lines[0] = lines[0].replace("date,", "time,")


@pytest.mark.parametrize(
    "edit, options, message",
    [
        (_cell("x"), [], "'x' is not a number"),
        (_cell(""), [], "a missing value"),
        (_rename_date, [], "no 'date' column"),
        (None, ["--horizon", "80"], "do not fit in the valid split"),
        (None, ["--features", "S", "--target", "nope"], "'nope' is not in the data"),
    ],
)
def test_bad_input_exits_2(series_csv, tmp_path, capsys, edit, options, message):
    lines = series_csv.read_text().splitlines()
    if edit:
        edit(lines)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    code = main(
        [
            "train",
            "--data",
            str(bad),
            "--model",
            "last",
            *PROTOCOL,
            *options,
            "--out",
            str(tmp_path / "saved"),
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("cell", ["gru", "lstm"])  # lstm (two states): the 192/336 rows'
def test_seq2seq_trains_and_exports(cell, series_csv, tmp_path):
    out = tmp_path / "saved"
    assert _train(series_csv, tmp_path / "ms", "seq2seq", "--features", "MS") == 2  # M or S
    assert _train(series_csv, out, "seq2seq", "--seg-len", "3", "--segment-cell", cell) == 0
    folder = out / "forecast-seq2seq"
    assert main(["export", str(folder), "--data", str(series_csv)]) == 0
    manifest = json.loads((folder / "export" / "manifest.json").read_text())
    assert manifest["exports"][0]["max_abs_diff"] < 1e-4


def test_ensemble_saves_the_mean_of_its_members_and_resumes(series_csv, tmp_path, capsys):
    out = tmp_path / "saved"
    options = ["--ensemble", "2", "--seed", "1", "--time-budget", "1"]
    assert _train(series_csv, out, "segrnn", *options) == 0
    folder = out / "forecast-segrnn"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["ensemble"]["seeds"] == [2, 3]  # seeds 0 and 1 would be --seed 0's
    assert meta["epochs_run"] == sum(meta["ensemble"]["epochs_run"]) == 4

    import keras

    from apps.common import runner

    model = runner.load(folder)
    x = np.random.default_rng(0).normal(size=(5, SEQ, 3)).astype("float32")
    parts = [np.asarray(model.get_layer(f"member_{i}")(x)) for i in range(2)]
    assert not np.allclose(parts[0], parts[1])  # two seeds, two models
    np.testing.assert_allclose(np.asarray(model(x)), np.mean(parts, 0), atol=1e-6)
    assert isinstance(model.get_layer("member_1"), keras.Model)

    # A rerun finds both members trained and saves the same ensemble again.
    capsys.readouterr()
    assert _train(series_csv, out, "segrnn", *options, "--overwrite") == 0
    assert capsys.readouterr().out.count("trained before") == 2
    again = json.loads((folder / "metadata.json").read_text())
    assert again["metrics"] == pytest.approx(meta["metrics"])
    assert main(["export", str(folder), "--data", str(series_csv)]) == 0
    manifest = json.loads((folder / "export" / "manifest.json").read_text())
    assert manifest["exports"][0]["max_abs_diff"] < 1e-4


def test_ensemble_bad_input(series_csv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _train(series_csv, tmp_path / "saved", "linear", "--ensemble", "0")
    assert exit_.value.code == 2
    assert "--ensemble: must be a positive integer" in capsys.readouterr().err
    # A damaged member left by an earlier run: a clear error naming it, nothing saved.
    assert _train(series_csv, tmp_path / "saved", "linear", "--ensemble", "2") == 0
    member = tmp_path / "run-linear" / "member-0"
    (member / "member.weights.h5").write_bytes(b"not hdf5")
    capsys.readouterr()
    out = tmp_path / "saved2"
    assert _train(series_csv, out, "linear", "--ensemble", "2") == 2
    assert f"member 0's saved training in {member} is damaged" in capsys.readouterr().err
    assert not out.exists()


def test_mixed_ensemble_takes_the_models_in_turn(series_csv, tmp_path, capsys):
    out = tmp_path / "saved"
    model = "segrnn+seq2seq"
    assert _train(series_csv, out, model, "--ensemble", "3", "--epochs", "1") == 0
    meta = json.loads((out / f"forecast-{model}" / "metadata.json").read_text())
    assert meta["ensemble"]["models"] == ["segrnn", "seq2seq", "segrnn"]

    from apps.common import runner

    folder = out / f"forecast-{model}"
    ensemble = runner.load(folder)
    assert type(ensemble.get_layer("member_1")).__name__ == "Seq2SeqForecaster"
    assert type(ensemble.get_layer("member_2")).__name__ != "Seq2SeqForecaster"
    # The ensemble, its encoder-decoder member decoding autoregressively, exports as one graph.
    assert main(["export", str(folder), "--data", str(series_csv)]) == 0
    manifest = json.loads((folder / "export" / "manifest.json").read_text())
    assert manifest["exports"][0]["max_abs_diff"] < 1e-4
    # A member folder left by another model is not taken for this one.
    record = tmp_path / f"run-{model}" / "member-1" / "member.json"
    record.write_text(record.read_text().replace("seq2seq", "segrnn"))
    capsys.readouterr()
    assert _train(series_csv, tmp_path / "again", model, "--ensemble", "3") == 2
    assert "it is a segrnn, not a seq2seq" in capsys.readouterr().err
    # More models than members, and an unknown name: clear errors.
    assert _train(series_csv, tmp_path / "x", "linear+dlinear+segrnn", "--ensemble", "2") == 2
    assert "--ensemble must be at least 3 (it is 2)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _train(series_csv, tmp_path / "x", "segrnn+lstm")
    assert "unknown model 'lstm'" in capsys.readouterr().err
