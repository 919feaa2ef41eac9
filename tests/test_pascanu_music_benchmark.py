"""`python -m benchmarks.pascanu_music` end to end on a tiny generated data set."""

import json

import numpy as np
from test_music_data import write_mat

from benchmarks import pascanu_music
from keras_deeprnn.data.music import frame_count
from keras_deeprnn.data.music import load_mat


def _scales(n, frames, seed):
    """Pieces climbing a C-major scale from a random degree, one note a frame."""
    rng = np.random.default_rng(seed)
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    pieces = []
    for _ in range(n):
        start = rng.integers(len(scale))
        roll = np.zeros((frames, 88), np.uint8)
        for t in range(frames):
            roll[t, scale[(start + t) % len(scale)] - 21] = 1
        pieces.append(roll)
    return pieces


def _naive_nll(train, test):
    """Frame NLL of the test targets under each key's training frequency."""
    p = np.clip(np.concatenate([r[1:] for r in train]).mean(0), 1e-6, 1 - 1e-6)
    targets = np.concatenate([r[1:] for r in test]).astype(float)
    nll = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum()
    return nll / frame_count(test, transitions=True)


def test_benchmark_writes_results_and_resumes(tmp_path, capsys):
    path = write_mat(tmp_path / "tiny.mat", _scales(8, 12, 0), _scales(4, 12, 1), _scales(4, 12, 2))
    out = tmp_path / "bench"
    table = tmp_path / "docs" / "table.md"
    argv = [
        "--data",
        str(path),
        "--budget",
        "3000",
        "--models",
        "rnn,dots",
        "--epochs",
        "1",
        "--patience",
        "1",
        "--batch-size",
        "4",
        "--lr",
        "0.01",
        "--dropout",
        "0",
        "--out",
        str(out),
        "--table",
        str(table),
    ]
    assert pascanu_music.main(argv) == 0

    results = json.loads((out / "results.json").read_text())
    rows = {row["model"]: row for row in results["models"]}
    assert set(rows) == {"rnn", "dots"}
    assert rows["dots"]["arch"] == "dots" and rows["dots"]["layers"] == 2
    assert rows["rnn"]["units"] != rows["dots"]["units"]
    data = load_mat(path)
    # After one epoch from an untrained network (about 88 log 2 = 61 nats)
    # the NLL is finite and nowhere near as good as a model that has learned
    # the scale; the per-key frequencies are a fixed reference point.
    naive = _naive_nll(data["train"], data["test"])
    for row in rows.values():
        # Sized to the budget: the built model has the predicted count.
        assert row["parameters"] == row["expected_parameters"]
        assert abs(row["parameters"] - 3000) / 3000 < 0.1
        assert row["epochs_run"] == row["best_epoch"] == 1 and row["train_seconds"] > 0
        assert naive < row["test_nll"] < 88 * np.log(2) + 5
        assert "--units " + str(row["units"]) in row["command"]

    text = table.read_text()
    assert "| tanh RNN |" in text and "| DOT(S)-RNN, 2 layers, tanh units |" in text
    assert f"{rows['rnn']['parameters']:,}" in text
    assert "python -m benchmarks.pascanu_music" in text

    # A second run with the same settings reads the finished models back.
    saved = (out / "models" / "music-tiny-rnn" / "model.keras").stat().st_mtime_ns
    capsys.readouterr()
    assert pascanu_music.main(argv) == 0
    assert "Epoch" not in capsys.readouterr().out
    assert (out / "models" / "music-tiny-rnn" / "model.keras").stat().st_mtime_ns == saved
    assert json.loads((out / "results.json").read_text())["models"] == results["models"]


def test_unknown_model_is_reported(tmp_path, capsys):
    assert pascanu_music.main(["--models", "rnn,bogus", "--out", str(tmp_path)]) == 2
    assert "bogus" in capsys.readouterr().err
