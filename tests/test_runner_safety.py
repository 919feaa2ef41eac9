"""Nothing lost, nothing silent: divergence, locks, atomic saves, damaged
model files, numbers checked when parsed (apps/common)."""

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.common import cli
from apps.common import runner

ROOT = Path(__file__).resolve().parents[1]


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def _data(x):
    return tf.data.Dataset.from_tensor_slices((x, np.ones((len(x), 1), "float32"))).batch(2)


def test_a_nan_loss_stops_the_run_and_says_where(tmp_path):
    x = np.ones((8, 3), "float32")
    x[5] = np.nan  # the third batch of two
    with pytest.raises(runner.TrainingDiverged, match="epoch 1, step 3"):
        runner.fit(
            _model(),
            _data(x),
            _data(x[:2]),
            tmp_path / "run",
            epochs=3,
            monitor="val_loss",
            verbose=0,
        )


def test_a_finite_run_is_not_stopped(tmp_path):
    x = np.ones((8, 3), "float32")
    history = runner.fit(
        _model(), _data(x), _data(x[:2]), tmp_path / "run", epochs=2, monitor="val_loss", verbose=0
    )
    assert history.epoch == [0, 1]


def test_a_second_run_in_the_same_folder_is_refused_while_the_first_holds_it(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]); from apps.common import runner;"
            "lock = runner.run_lock(sys.argv[2]); lock.__enter__(); print('held', flush=True);"
            "time.sleep(60)",
            str(ROOT),
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runner.RunLocked, match=f"in use by pid {holder.pid}"):
            with runner.run_lock(run_dir):
                pass
    finally:
        holder.kill()
        holder.wait()
    with runner.run_lock(run_dir):  # the system released it with the process
        pass


def test_save_never_replaces_a_model_unless_asked(tmp_path):
    first, second = _model(), _model()
    out = runner.save(first, tmp_path / "music-a", {"app": "music"})
    again = runner.save(second, tmp_path / "music-a", {"app": "music"})
    assert (out.name, again.name) == ("music-a", "music-a-2")
    x = np.ones((1, 3), "float32")
    np.testing.assert_array_equal(runner.load(out)(x), first(x))
    np.testing.assert_array_equal(runner.load(again)(x), second(x))
    assert json.loads((again / "metadata.json").read_text())["folder"] == "music-a-2"
    replaced = runner.save(second, tmp_path / "music-a", {"app": "music"}, overwrite=True)
    assert replaced == out
    np.testing.assert_array_equal(runner.load(out)(x), second(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music-a", "music-a-2"]


def test_a_failed_save_leaves_the_old_model_and_no_folder_behind(tmp_path, monkeypatch):
    model = _model()
    out = runner.save(model, tmp_path / "m", {})
    before = (out / "model.keras").read_bytes()

    def broken_save(self, path, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError, match="No space"):
        runner.save(model, tmp_path / "m", {}, overwrite=True)
    assert (out / "model.keras").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_save_killed_midway_is_cleaned_up_by_the_next(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".m.tmp-{dead.pid}-abc"
    leftover.mkdir()
    (leftover / "model.keras").write_bytes(b"partial")
    runner.save(_model(), tmp_path / "m", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_load_tells_the_failures_apart(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        runner.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no model.keras"):
        runner.load(tmp_path / "empty")
    out = runner.save(_model(), tmp_path / "sentiment-x", {"app": "sentiment"})
    with pytest.raises(ValueError, match="holds a sentiment model, not a music model"):
        runner.load(out, "music")
    good = (out / "model.keras").read_bytes()
    (out / "model.keras").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="damaged: it is not a zip archive"):
        runner.load(out)
    (out / "model.keras").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="damaged"):
        runner.load(out / "model.keras")
    with zipfile.ZipFile(out / "model.keras", "w") as archive:
        archive.writestr("config.json", "{")
    with pytest.raises(ValueError, match="Could not load the model"):
        runner.load(out)
    (out / "metadata.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="metadata.json is damaged"):
        runner.read_metadata(out)


@pytest.mark.parametrize(
    "parse, good, bad",
    [
        (cli.positive_float, ["1e-3", "2"], ["nan", "inf", "-1", "0", "x"]),
        (cli.non_negative_float, ["0", "0.5"], ["nan", "-inf", "-0.1"]),
        (cli.rate, ["0", "0.99"], ["1", "-0.1", "nan"]),
        (cli.fraction, ["0.1"], ["0", "1", "nan"]),
        (cli.positive_int, ["1", "64"], ["0", "-3", "1.5", "nan"]),
        (cli.non_negative_int, ["0", "3"], ["-1", "2.0"]),
    ],
)
def test_numeric_options_are_checked_when_parsed(parse, good, bad):
    for text in good:
        assert parse(text) == float(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.parametrize(
    "app, argv, option",
    [
        ("music", ["train", "--lr", "nan"], "--lr"),
        ("music", ["train", "--clipnorm", "-1"], "--clipnorm"),
        ("music", ["train", "--dropout", "1.5"], "--dropout"),
        ("music", ["train", "--weight-noise", "inf"], "--weight-noise"),
        ("music", ["train", "--units", "0"], "--units"),
        ("sentiment", ["train", "--batch-size", "-4"], "--batch-size"),
        ("sentiment", ["train", "--valid-fraction", "1"], "--valid-fraction"),
        ("tagging", ["train", "--train", "x.conllu", "--epochs", "0"], "--epochs"),
        (
            "tagging",
            ["train", "--train", "x.conllu", "--recurrent-dropout", "nan"],
            "--recurrent-dropout",
        ),
    ],
)
def test_the_apps_name_the_bad_option_and_exit_2(app, argv, option, capsys):
    main = __import__(f"apps.{app}.cli", fromlist=["main"]).main
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err


def test_a_diverged_training_exits_3_and_keeps_the_saved_model(tiny_train_argv, tmp_path, capsys):
    from apps.music import cli as music

    argv = tiny_train_argv
    assert music.main(argv) == 0
    saved = tmp_path / "saved" / "music-n" / "model.keras"
    before = saved.read_bytes()
    # A learning rate that passes the parser but blows the weights up.
    assert music.main(argv + ["--lr", "1e38", "--clipnorm", "0", "--overwrite"]) == 3
    err = capsys.readouterr().err
    assert "the training loss became" in err and "epoch 1, step" in err
    assert saved.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["music-n"]
    assert not os.path.exists(tmp_path / "saved" / "music-n-2")
