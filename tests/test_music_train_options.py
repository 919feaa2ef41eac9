"""Training options of the music app: `--input-dropout`, `--recurrent-dropout`
and `--max-length`."""

import numpy as np
import pytest

from apps.music.model import build_model


def test_input_dropout_hides_input_notes_only_while_training():
    model = build_model("gru", units=5, dropout=0.0, keys=6, input_dropout=0.5)
    plain = build_model("gru", units=5, dropout=0.0, keys=6)
    plain.set_weights(model.get_weights())
    x = np.random.default_rng(0).integers(0, 2, (3, 7, 6)).astype("float32")

    # Inference: the dropout is the identity.
    np.testing.assert_allclose(
        model(x, training=False), plain(x, training=False), rtol=1e-6, atol=1e-6
    )
    # Training: each input note is kept with probability 1/2 and scaled by 2;
    # silent keys stay silent, so an all-silent input gives the plain
    # network's output (a dropout after the recurrent layer would not).
    dropped = model.get_layer("input_dropout")(x, training=True).numpy()
    kept = dropped[x == 1]
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.2 < (kept == 0).mean() < 0.8
    assert not dropped[x == 0].any()
    silence = np.zeros_like(x)
    np.testing.assert_allclose(model(silence, training=True), plain(silence), rtol=1e-6, atol=1e-6)
    assert not np.allclose(model(x, training=True), plain(x), atol=1e-3)


def test_recurrent_dropout_reaches_the_cells_and_acts_only_while_training():
    model = build_model("lstm", units=5, keys=6, recurrent_dropout=0.5)
    plain = build_model("lstm", units=5, keys=6)
    assert model.layers[0].cell.recurrent_dropout == 0.5
    plain.set_weights(model.get_weights())
    x = np.random.default_rng(1).integers(0, 2, (3, 7, 6)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), plain(x), rtol=1e-6, atol=1e-6)
    assert not np.allclose(model(x, training=True), plain(x), atol=1e-4)


@pytest.mark.parametrize("option", ["dropout", "input_dropout", "recurrent_dropout"])
def test_dropout_rates_outside_0_1_are_refused(option):
    with pytest.raises(ValueError, match="dropout must be in"):
        build_model("gru", units=4, keys=6, **{option: 1.0})


def test_max_length_windows_training_but_scores_whole_pieces(tmp_path, capsys):
    import json

    from test_music_data import write_mat

    from apps.music.cli import main

    rng = np.random.default_rng(0)
    pieces = [
        rng.integers(0, 2, (n, 88)).astype(np.uint8) * (rng.random(88) < 0.05)
        for n in (9, 12, 7, 10)
    ]
    path = write_mat(tmp_path / "t.mat", pieces, pieces[:2], pieces[2:])
    out = tmp_path / "saved"
    assert (
        main(
            [
                "train",
                "--data",
                str(path),
                "--cell",
                "gru",
                "--units",
                "6",
                "--epochs",
                "1",
                "--batch-size",
                "2",
                "--max-length",
                "3",
                "--input-dropout",
                "0.2",
                "--name",
                "w",
                "--out",
                str(out),
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    meta = json.loads((out / "music-w" / "metadata.json").read_text())
    capsys.readouterr()
    # `evaluate` scores whole pieces; windows of 3 steps would restart the
    # state every 3 frames and give another number.
    assert main(["evaluate", str(out / "music-w"), "--data", str(path)]) == 0
    whole = float(capsys.readouterr().out.split(":")[1].split()[0])
    assert meta["metrics"]["test_nll"] == pytest.approx(whole, rel=1e-5)
