"""The music app's `--weight-noise` and `--gradient-noise` options."""

import numpy as np
import pytest

from apps.common import runner
from apps.music import cli
from keras_deeprnn.training import GradientNoise
from keras_deeprnn.training import WeightNoise


class RecordingWeightNoise(WeightNoise):
    """WeightNoise that keeps the noise it drew, for the test to look at."""

    made = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawn = []
        RecordingWeightNoise.made.append(self)

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)
        self.drawn.extend(noise for _, noise in self._noise)


def test_music_train_with_weight_and_gradient_noise(tmp_path, monkeypatch, capsys):
    from test_music_data import write_mat

    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 2, (n, 88)).astype(np.uint8) for n in (9, 12, 7, 10)]
    path = write_mat(tmp_path / "t.mat", pieces, pieces[:2], pieces[2:])
    monkeypatch.setattr(cli, "WeightNoise", RecordingWeightNoise)
    out = tmp_path / "saved"
    assert (
        cli.main(
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
                "--weight-noise",
                "0.075",
                "--gradient-noise",
                "0.01",
                "--name",
                "n",
                "--out",
                str(out),
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )

    (noise,) = RecordingWeightNoise.made
    drawn = np.concatenate([n.ravel() for n in noise.drawn])
    # Two training batches, each with the three GRU and Dense matrices.
    assert len(noise.drawn) == 2 * 3
    assert drawn.std() == pytest.approx(0.075, rel=0.1)
    model = runner.load(out / "music-n")
    assert isinstance(model.optimizer, GradientNoise)
    assert model.optimizer.eta == 0.01
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "music-n"), "--data", str(path)]) == 0
    assert "test frame NLL" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--weight-noise", "--gradient-noise"])
def test_music_train_rejects_negative_noise(option, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--data", "nowhere.mat", option, "-0.1"])
    assert exit_.value.code == 2
    assert f"argument {option}: must be a number >= 0" in capsys.readouterr().err
