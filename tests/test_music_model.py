"""The music app's metric, runner and generation, on generated data."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.common import runner
from apps.music import generate
from apps.music.model import build_model
from apps.music.model import compile_model
from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.metrics import FrameNLLMetric
from keras_deeprnn.metrics import frame_nll


def test_frame_nll_matches_hand_computation():
    # Two keys, logits chosen so the probabilities are simple.
    p = np.array([[0.5, 0.8], [0.1, 0.25]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    logits = np.log(p / (1 - p)).astype("float32")
    by_hand = [-np.log(0.5) - np.log(0.2), -np.log(0.9) - np.log(0.25)]
    np.testing.assert_allclose(frame_nll(y, logits), by_hand, rtol=1e-5)
    np.testing.assert_allclose(
        frame_nll(y, p.astype("float32"), from_logits=False), by_hand, rtol=1e-5
    )


def test_padding_is_excluded_from_loss_and_metric():
    rng = np.random.default_rng(0)
    y = (rng.random((2, 4, 88)) < 0.1).astype("float32")
    logits = rng.normal(size=(2, 4, 88)).astype("float32")
    weights = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], "float32")
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    per_frame = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)
    want = per_frame[weights > 0].mean()  # 4 real frames
    assert float(FrameNLL()(y, logits, sample_weight=weights)) == pytest.approx(want, rel=1e-5)
    metric = FrameNLLMetric()
    # Accumulated over two batches: total over frames / number of frames.
    metric.update_state(y[:1], logits[:1], sample_weight=weights[:1])
    metric.update_state(y[1:], logits[1:], sample_weight=weights[1:])
    assert float(metric.result()) == pytest.approx(want, rel=1e-5)


def test_metric_is_exact_across_batches_of_different_padded_length():
    # A mean over each sequence first would weigh the two batches by 1/T.
    rng = np.random.default_rng(3)
    batches, frames = [], []
    for length, real in [(3, [3, 1]), (9, [9, 2])]:
        y = (rng.random((2, length, 5)) < 0.2).astype("float32")
        logits = rng.normal(size=(2, length, 5)).astype("float32")
        w = (np.arange(length)[None] < np.array(real)[:, None]).astype("float32")
        p = 1 / (1 + np.exp(-logits.astype("float64")))
        nll = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)
        frames.extend(nll[w > 0])
        batches.append((y, logits, w))
    metric = FrameNLLMetric()
    for y, logits, w in batches:
        metric.update_state(y, logits, sample_weight=w)
    assert float(metric.result()) == pytest.approx(np.mean(frames), rel=1e-5)


def _model(cell="lstm", arch="srnn", depth=2):
    model = build_model(cell, arch, units=8, depth=depth, dropout=0.1, keys=6)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.mark.parametrize("cell", ["lstm-fgr", "gru", "rnn"])
def test_stepping_with_carried_state_equals_full_sequence(cell):
    model = _model(cell)
    x = (np.random.default_rng(2).random((3, 12, 6)) < 0.3).astype("float32")
    full = np.asarray(model(x))
    stepper = generate.FrameStepper(model)
    states = stepper.initial_state(3)
    for t in range(12):
        logits, states = stepper.step(x[:, t], states)
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)


def test_sample_shapes_primer_and_temperature():
    model = _model()
    primer = np.eye(6, dtype="float32")[:3]
    roll = generate.sample(model, 10, primer=primer, temperature=0.7, seed=3)
    assert roll.shape == (13, 6)
    np.testing.assert_array_equal(roll[:3], primer)
    assert set(np.unique(roll)) <= {0.0, 1.0}
    np.testing.assert_array_equal(
        roll, generate.sample(model, 10, primer=primer, temperature=0.7, seed=3)
    )
    with pytest.raises(ValueError, match="temperature"):
        generate.sample(model, 4, temperature=0)
    with pytest.raises(ValueError, match="frames"):
        generate.sample(model, 0)


def test_beam_search_finds_at_least_the_greedy_likelihood():
    model = _model()
    stepper = generate.FrameStepper(model)

    def log_likelihood(roll):
        logits, states = generate._prime(stepper, None, 1)
        total = 0.0
        for frame in roll:
            total += generate._log_prob(frame[None], logits)[0]
            logits, states = stepper.step(frame[None], states)
        return total

    beam = generate.beam_search(model, 6, beam_width=4, candidates=6, seed=0)
    greedy = generate.beam_search(model, 6, beam_width=1, candidates=1, seed=0)
    assert beam.shape == greedy.shape == (6, 6)
    assert log_likelihood(beam) >= log_likelihood(greedy) - 1e-4


def test_generation_refuses_non_causal_models():
    model = keras.Sequential(
        [
            keras.Input((None, 6)),
            keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)),
            keras.layers.Dense(6),
        ]
    )
    with pytest.raises(ValueError, match="bidirectional"):
        generate.FrameStepper(model)


def _toy_data(n=24, t=10, keys=6, seed=0):
    """A learnable toy: each frame is the previous one rotated by one key."""
    rng = np.random.default_rng(seed)
    first = (rng.random((n, 1, keys)) < 0.4).astype("float32")
    rolls = np.concatenate([np.roll(first, k, axis=-1) for k in range(t)], axis=1)
    weights = np.ones((n, t - 1), "float32")
    return tf.data.Dataset.from_tensor_slices((rolls[:, :-1], rolls[:, 1:], weights)).batch(8)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_fit_lowers_loss_and_resumes_after_interruption(tmp_path, monkeypatch):
    data = _toy_data()
    model = compile_model(build_model("gru", units=16, keys=6), lr=0.02)
    original_fit = keras.Model.fit

    def fit_with_interrupt(self, *a, **kw):
        kw["callbacks"] = kw["callbacks"] + [Interrupt(1)]  # after the backup
        return original_fit(self, *a, **kw)

    monkeypatch.setattr(keras.Model, "fit", fit_with_interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.fit(model, data, data, tmp_path / "run", epochs=4, monitor="val_nll", verbose=0)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    assert (tmp_path / "run" / "backup").exists()

    fresh = compile_model(build_model("gru", units=16, keys=6), lr=0.02)
    history = runner.fit(
        fresh,
        data,
        data,
        tmp_path / "run",
        epochs=4,
        monitor="val_nll",
        grad_batch=next(iter(data)),
        verbose=0,
    )
    assert history.epoch == [2, 3]  # epochs 0 and 1 were done before the interruption
    assert history.history["loss"][-1] < 4.0  # 6 keys: chance is 6 log 2 = 4.16
    assert (tmp_path / "run" / "best.keras").is_file()
    assert any((tmp_path / "run" / "logs" / "grad_norms").iterdir())
    assert history.history["grad_norm"][-1] > 0


def test_two_epochs_lower_the_loss(tmp_path):
    data = _toy_data()
    model = compile_model(build_model("lstm", units=16, keys=6), lr=0.02)
    history = runner.fit(
        model, data, data, tmp_path / "run", epochs=2, monitor="val_nll", patience=5, verbose=0
    )
    assert history.history["loss"][1] < history.history["loss"][0]


def test_save_and_load_keep_predictions_and_metadata(tmp_path):
    model = compile_model(_model("mut2"))
    x = np.random.default_rng(0).random((2, 5, 6)).astype("float32")
    out = runner.save(model, tmp_path / "music-x", {"metrics": {"test_nll": 1.5}})
    loaded = runner.load(out)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["metrics"]["test_nll"] == 1.5 and meta["parameters"] == model.count_params()
    assert not list(out.glob("*.tmp*"))


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        runner.load(tmp_path / "nothing")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="bad.keras"):
        runner.load(bad)


def test_unknown_strategy_and_missing_tf_config(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy"):
        runner.get_strategy("tpu-pod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        runner.get_strategy("multi-worker")


@pytest.mark.parametrize(
    "arch,cell,unit_type",
    [
        ("dt", "rnn", "lp"),
        ("dots", "gru", "maxout"),
        ("dot", "lstm", "relu"),
        ("srnn", "mut1", "tanh"),
    ],
)
def test_deep_architectures_step_like_the_full_sequence(arch, cell, unit_type):
    model = build_model(cell, arch, units=6, depth=2, unit_type=unit_type, keys=6)
    x = (np.random.default_rng(3).random((2, 7, 6)) < 0.3).astype("float32")
    full = np.asarray(model(x))
    stepper = generate.FrameStepper(model)
    states = stepper.initial_state(2)
    for t in range(7):
        logits, states = stepper.step(x[:, t], states)
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)
