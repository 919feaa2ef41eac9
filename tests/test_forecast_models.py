"""`keras_deeprnn.layers.forecasting` and `keras_deeprnn.models.forecasting`
against NumPy written from the papers' formulas; saving; learning."""

import keras
import numpy as np
import pytest

from keras_deeprnn.layers.forecasting import NaiveForecast
from keras_deeprnn.layers.forecasting import ReversibleInstanceNorm
from keras_deeprnn.layers.forecasting import SegmentRNN
from keras_deeprnn.layers.forecasting import SeriesDecomposition
from keras_deeprnn.layers.forecasting import TemporalDense
from keras_deeprnn.models import forecasting

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 24, 2)).astype("float32")


def test_naive_forecast():
    y = np.asarray(NaiveForecast(10, period=4)(X))
    for t in range(10):
        np.testing.assert_array_equal(y[:, t], X[:, 24 - 4 + t % 4])
    np.testing.assert_array_equal(np.asarray(NaiveForecast(5)(X)), np.repeat(X[:, -1:], 5, 1))


def test_series_decomposition():
    seasonal, trend = (np.asarray(t) for t in SeriesDecomposition(5)(X))
    padded = np.concatenate([np.repeat(X[:, :1], 2, 1), X, np.repeat(X[:, -1:], 2, 1)], 1)
    expected = np.stack([padded[:, t : t + 5].mean(1) for t in range(24)], 1)
    np.testing.assert_allclose(trend, expected, atol=1e-5)
    np.testing.assert_allclose(seasonal + trend, X, atol=1e-5)


def test_temporal_dense():
    layer = TemporalDense(6)
    y = np.asarray(layer(X))
    w, b = (np.asarray(v) for v in layer.weights)
    np.testing.assert_allclose(y, np.einsum("blc,lh->bhc", X, w) + b[None, :, None], atol=1e-5)


@pytest.mark.parametrize("center, scale, affine", [("mean", True, True), ("last", False, False)])
def test_reversible_instance_norm(center, scale, affine):
    norm = ReversibleInstanceNorm(center=center, scale=scale, affine=affine, targets=[1])
    x = np.asarray(norm(X))
    mid = X.mean(1, keepdims=True) if center == "mean" else X[:, -1:]
    std = np.sqrt(X.var(1, keepdims=True) + 1e-5) if scale else 1.0
    np.testing.assert_allclose(x, (X - mid) / std, atol=1e-4)
    # Mapping the normalized window's own channel 1 back gives the window's channel 1.
    back = np.asarray(norm(X, forecast=x[..., 1:]))
    np.testing.assert_allclose(back, X[..., 1:], atol=1e-4)


def test_segment_rnn_is_channel_independent():
    layer = SegmentRNN(12, seg_len=6, units=8)
    y = np.asarray(layer(X))
    assert y.shape == (3, 12, 2)
    changed = X.copy()
    changed[..., 0] += RNG.normal(size=(3, 24))
    y2 = np.asarray(layer(changed))
    np.testing.assert_allclose(y2[..., 1], y[..., 1], atol=1e-6)
    assert not np.allclose(y2[..., 0], y[..., 0])


def test_validation_at_construction():
    for make in (
        lambda: NaiveForecast(0),
        lambda: SeriesDecomposition(4),
        lambda: SegmentRNN(10, seg_len=4),
        lambda: SegmentRNN(8, seg_len=4, units=7),
        lambda: ReversibleInstanceNorm(center="median"),
    ):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(ValueError, match="multiple of seg_len"):
        SegmentRNN(10, seg_len=5, units=4)(np.zeros((1, 24, 1), "float32"))


BUILDERS = {
    "dlinear": lambda: forecasting.linear_forecaster(
        24, 2, 6, decomposition=True, kernel_size=5, normalization="revin"
    ),
    "rnn": lambda: forecasting.rnn_forecaster(24, 2, 6, units=8, cell="gru", targets=[1]),
    "segrnn": lambda: forecasting.segrnn_forecaster(24, 2, 6, seg_len=6, units=8, targets=[1]),
    "segrnn-lstm": lambda: forecasting.segrnn_forecaster(24, 2, 6, seg_len=6, units=8, cell="lstm"),
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_load_safe_mode(kind, tmp_path):
    model = BUILDERS[kind]()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(X)), np.asarray(model(X)), atol=1e-6)
    layer = next(l for l in model.layers if l.get_config().get("name") and l.weights)
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_training_steps_lower_the_loss():
    t = np.arange(400, dtype="float32")
    series = np.stack([np.sin(t / 3), np.cos(t / 5)], 1)
    x = np.stack([series[i : i + 24] for i in range(300)])
    y = np.stack([series[i + 24 : i + 30] for i in range(300)])
    keras.utils.set_random_seed(0)
    model = forecasting.segrnn_forecaster(24, 2, 6, seg_len=6, units=16, dropout=0.0)
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=50, epochs=3, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_seq2seq_teacher_forcing_feeds_the_previous_true_segment(cell):
    from keras_deeprnn.models.forecasting import Seq2SeqForecaster

    model = Seq2SeqForecaster(24, 2, 12, seg_len=6, units=8, cell=cell)
    own = np.asarray(model(X))
    # Forced with its own forecast, the decoder sees exactly what it saw.
    np.testing.assert_allclose(np.asarray(model.teacher_forced(X, own)), own, atol=1e-5)
    # A teacher changes every segment after the first, never the first.
    noise = RNG.normal(size=own.shape).astype("float32")
    other = np.asarray(model.teacher_forced(X, own + noise))
    np.testing.assert_allclose(other[:, :6], own[:, :6], atol=1e-5)
    assert np.abs(other[:, 6:] - own[:, 6:]).min() > 0
    # Channel-independent, and centred on the window's last value.
    shifted = np.asarray(model(X + 5.0))
    np.testing.assert_allclose(shifted, own + 5.0, atol=1e-4)


def test_seq2seq_fit_takes_the_loss_on_the_teacher_forced_decoding(tmp_path):
    from keras_deeprnn.models.forecasting import Seq2SeqForecaster

    y = RNG.normal(size=(3, 12, 2)).astype("float32")
    model = Seq2SeqForecaster(24, 2, 12, seg_len=6, units=8)
    model.compile("adam", "mse")
    forced = np.mean((np.asarray(model.teacher_forced(X, y)) - y) ** 2)
    free = np.mean((np.asarray(model(X)) - y) ** 2)
    assert abs(forced - free) > 1e-3
    assert float(model.compute_loss(X, y, model(X), training=True)) == pytest.approx(
        forced, rel=1e-5
    )
    assert float(model.compute_loss(X, y, model(X), training=False)) == pytest.approx(
        free, rel=1e-5
    )
    losses = model.fit(X, y, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(X)), np.asarray(model(X)), atol=1e-6)


def test_average_forecaster_is_the_mean_of_its_members(tmp_path):
    members = [forecasting.segrnn_forecaster(24, 2, 6, seg_len=6, units=8) for _ in range(2)]
    members.append(forecasting.linear_forecaster(24, 2, 6))
    for i, member in enumerate(members):
        member.name = f"member_{i}"
    model = forecasting.average_forecaster(members)
    want = np.mean([np.asarray(member(X)) for member in members], axis=0)
    np.testing.assert_allclose(np.asarray(model(X)), want, atol=1e-6)
    path = tmp_path / "ensemble.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(X)), want, atol=1e-6)


def test_average_forecaster_refuses_mismatched_members():
    with pytest.raises(ValueError, match="at least one"):
        forecasting.average_forecaster([])
    a = forecasting.linear_forecaster(24, 2, 6)
    b = forecasting.linear_forecaster(24, 2, 12)
    b.name = "other"
    with pytest.raises(ValueError, match="different shapes"):
        forecasting.average_forecaster([a, b])
    with pytest.raises(ValueError, match="distinct names"):
        forecasting.average_forecaster([a, forecasting.linear_forecaster(24, 2, 6)])
