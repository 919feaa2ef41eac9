"""`python -m apps.music` end to end on a tiny generated data set."""

import json
import re
import wave

import numpy as np
import pytest
from test_music_data import write_mat

from apps.music.cli import main
from keras_deeprnn.data.music import midi_to_roll


def _arpeggios(n, frames, seed):
    """A learnable toy: a C-major arpeggio climbing one chord tone per frame."""
    rng = np.random.default_rng(seed)
    tones = [60, 64, 67, 72]
    pieces = []
    for _ in range(n):
        start = rng.integers(4)
        roll = np.zeros((frames, 88), np.uint8)
        for t in range(frames):
            roll[t, tones[(start + t) % 4] - 21] = 1
        pieces.append(roll)
    return pieces


@pytest.fixture()
def tiny_mat(tmp_path):
    return write_mat(
        tmp_path / "tiny.mat", _arpeggios(12, 16, 0), _arpeggios(4, 16, 1), _arpeggios(4, 16, 2)
    )


def test_train_evaluate_generate(tiny_mat, tmp_path, capsys):
    pm = pytest.importorskip("pretty_midi")  # noqa: F841
    out = tmp_path / "saved"
    code = main(
        [
            "train",
            "--data",
            str(tiny_mat),
            "--epochs",
            "2",
            "--units",
            "16",
            "--batch-size",
            "4",
            "--lr",
            "0.02",
            "--name",
            "t",
            "--out",
            str(out),
            "--run-dir",
            str(tmp_path / "run"),
            "--generate",
            "8",
        ]
    )
    assert code == 0
    # The trained model's sample, and the total time, end the run.
    printed = capsys.readouterr().out.splitlines()
    sample = out / "music-t" / "sample"
    assert printed[-5].startswith("8 frames sampled from the model after the opening chord")
    assert printed[-4:-1] == [f"  {sample}.mid", f"  {sample}.wav", f"  {sample}.png"]
    assert re.fullmatch(r"total time \d+ min \d+ s", printed[-1])
    for suffix in (".mid", ".wav", ".png"):
        assert sample.with_suffix(suffix).stat().st_size > 40
    played = midi_to_roll(sample.with_suffix(".mid"), fs=2)
    assert played.shape == (1 + 8, 88)
    np.testing.assert_array_equal(played[0], _arpeggios(4, 16, 2)[0][0])  # the opening chord
    meta = json.loads((out / "music-t" / "metadata.json").read_text())
    assert meta["epochs_run"] == 2 and meta["pieces"] == {"train": 12, "valid": 4, "test": 4}
    assert meta["command"] and meta["arguments"]["cell"] == "lstm"
    history = meta["metrics"]
    # 88 keys at p = 0.5 would cost 88 log 2 = 61 nats per frame; two epochs
    # must have learned most keys are silent.
    assert history["test_nll"] < 40

    capsys.readouterr()
    assert main(["evaluate", str(out / "music-t"), "--data", str(tiny_mat)]) == 0
    reported = float(capsys.readouterr().out.split(":")[1].split()[0])
    assert reported == pytest.approx(history["test_nll"], rel=1e-4)

    for extra in ([], ["--beam", "3"]):
        target = tmp_path / "gen" / f"piece{len(extra)}"
        assert (
            main(
                [
                    "generate",
                    str(out / "music-t"),
                    "--frames",
                    "12",
                    "--primer",
                    str(tiny_mat),
                    "--primer-frames",
                    "4",
                    "--out",
                    str(target),
                    "--seconds-per-frame",
                    "0.25",
                ]
                + extra
            )
            == 0
        )
        roll = midi_to_roll(target.with_suffix(".mid"), fs=4)
        assert roll.shape == (16, 88)
        assert target.with_suffix(".png").stat().st_size > 1000
        assert target.with_suffix(".wav").stat().st_size > 1000


def _tiny_train(tiny_mat, tmp_path):
    """`train` options of a small model named t, saved under tmp_path/saved."""
    args = ["--data", str(tiny_mat), "--units", "8", "--batch-size", "4", "--name", "t"]
    return args + ["--out", str(tmp_path / "saved"), "--run-dir", str(tmp_path / "run")]


def test_time_budget_ends_the_training_between_epochs(tiny_mat, tmp_path):
    out = tmp_path / "saved"
    options = ["--epochs", "5", "--patience", "5", "--time-budget", "0.001"]  # 0.06 s
    args = _tiny_train(tiny_mat, tmp_path)
    assert main(["train", *args, *options]) == 0
    metadata = json.loads((out / "music-t" / "metadata.json").read_text())
    assert metadata["epochs_run"] == 1  # no second epoch fits after the first


def test_cosine_schedule_over_the_epochs(tiny_mat, tmp_path, capsys):
    import keras

    out = tmp_path / "saved"
    args = [*_tiny_train(tiny_mat, tmp_path), "--epochs", "2"]
    assert main(["train", *args, "--lr", "0.01", "--lr-schedule", "cosine"]) == 0
    model = keras.saving.load_model(out / "music-t" / "model.keras", safe_mode=True)
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["decay_steps"] == 6  # 12 pieces in batches of 4, 2 epochs
    assert schedule["config"]["initial_learning_rate"] == pytest.approx(0.01)
    # The wrapped optimizer of --gradient-noise would not see the clock's cosine.
    bad = ["--lr-schedule", "cosine", "--time-budget", "1", "--gradient-noise", "0.01"]
    assert main(["train", *args, "--overwrite", *bad]) == 2
    assert "--gradient-noise" in capsys.readouterr().err


def test_ema_keeps_the_averaged_weights(tiny_mat, tmp_path, capsys):
    import keras

    out = tmp_path / "saved"
    args = [*_tiny_train(tiny_mat, tmp_path), "--epochs", "3"]
    assert main(["train", *args, "--lr", "0.01", "--ema", "0.5"]) == 0
    model = keras.saving.load_model(out / "music-t" / "model.keras", safe_mode=True)
    assert model.optimizer.get_config()["use_ema"] is True
    assert model.optimizer.get_config()["ema_momentum"] == pytest.approx(0.5)
    # The saved weights are the ones validated: the best epoch's average
    # (Keras prints each epoch's val_nll to 4 decimals).
    printed = [float(v) for v in re.findall(r"val_nll: ([0-9.]+)", capsys.readouterr().out)]
    metadata = json.loads((out / "music-t" / "metadata.json").read_text())
    assert len(printed) == 3
    assert metadata["metrics"]["valid_nll"] == pytest.approx(min(printed), abs=1e-4)
    for bad, message in (
        (["--ema", "1"], "--ema: must be a fraction in (0, 1)"),
        (["--ema", "0.9", "--gradient-noise", "0.01"], "--ema averages Adam's weights"),
    ):
        try:
            code = main(["train", *args, "--overwrite", *bad])
        except SystemExit as exit_:
            code = exit_.code
        assert code == 2 and message in capsys.readouterr().err


def test_wav_plays_the_notes_of_the_roll(tmp_path):
    """A4 (MIDI 69) held for 8 frames of 0.25 s: 2 s of a tone whose
    strongest frequency is 440 Hz, then pretty_midi's 1 s of tail."""
    pm = pytest.importorskip("pretty_midi")  # noqa: F841
    from apps.music.generate import write_music

    roll = np.zeros((8, 88), np.uint8)
    roll[:, 69 - 21] = 1
    midi, wav, png = write_music(roll, tmp_path / "a4", 0.25, "A4")
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    assert len(audio) == int(22050 * (2.0 + 1.0))
    assert np.abs(audio).max() == pytest.approx(0.8 * 32767, abs=1)
    spectrum = np.abs(np.fft.rfft(audio[: 2 * 22050]))
    frequencies = np.fft.rfftfreq(2 * 22050, 1 / 22050)
    assert frequencies[np.argmax(spectrum)] == pytest.approx(440.0, abs=1.0)
    assert np.abs(audio[int(2.2 * 22050) :]).max() == 0  # silent after the fade-out


def test_bad_arguments_are_reported_cleanly(tiny_mat, tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing.mat"), "--epochs", "1"]) == 2
    assert "missing.mat" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "no-model")]) == 2
    assert "No model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--cell", "no-such-cell"])


def test_forget_bias_sets_the_forget_gates_initial_bias(tiny_mat, tmp_path, capsys):
    import keras

    from keras_deeprnn.utils import sublayers

    # A rate of 1e-30 leaves the weights where they started.
    args = [*_tiny_train(tiny_mat, tmp_path), "--epochs", "1", "--lr", "1e-30"]
    assert main(["train", *args, "--forget-bias", "2.5"]) == 0
    model = keras.saving.load_model(tmp_path / "saved" / "music-t" / "model.keras", safe_mode=True)
    (cell,) = [layer for layer in sublayers(model) if hasattr(layer, "forget_bias")]
    f = cell.gates.index("f")
    bias = np.asarray(cell.bias).reshape(len(cell.gates), 8)
    np.testing.assert_allclose(bias[f], 2.5)
    np.testing.assert_allclose(np.delete(bias, f, axis=0), 0.0, atol=1e-20)
    capsys.readouterr()
    assert main(["train", *args, "--overwrite", "--cell", "gru", "--forget-bias", "2"]) == 2
    assert "--forget-bias: cell 'gru' has no forget gate" in capsys.readouterr().err
