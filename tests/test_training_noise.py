"""Gradient noise (Neelakantan et al. 2015) and weight noise (Graves 2011)."""

import keras
import numpy as np
import pytest

from keras_deeprnn.cells import SimpleRNNCell
from keras_deeprnn.training import GradientNoise
from keras_deeprnn.training import WeightNoise


# ---------------------------------------------------------------------------
# GradientNoise
# ---------------------------------------------------------------------------
def test_gradient_noise_variance_follows_the_annealing_schedule():
    # Zero gradients and plain SGD with learning rate 1: each update is
    # minus the noise, so its empirical variance measures sigma_t^2.
    eta, gamma = 0.3, 0.55
    a = keras.Variable(np.zeros((200, 500), "float32"))
    b = keras.Variable(np.zeros((200, 500), "float32"))
    opt = GradientNoise(keras.optimizers.SGD(1.0), eta=eta, gamma=gamma, seed=3)
    zeros = [np.zeros((200, 500), "float32")] * 2
    before, updates = a.numpy(), []
    for t in range(6):
        opt.apply(zeros, [a, b])
        updates.append(before - a.numpy())
        before = a.numpy()
        expected = eta / (1.0 + t) ** gamma
        # 1e5 samples: the variance estimate has a relative error of ~0.5 %.
        assert updates[-1].var() == pytest.approx(expected, rel=0.03)
        assert abs(updates[-1].mean()) < 4 * np.sqrt(expected / 1e5)
    assert int(opt.iterations.numpy()) == 6
    # Fresh noise at every step and for every variable.
    assert abs(np.corrcoef(updates[0].ravel(), updates[1].ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1]) < 0.02


def test_gradient_noise_is_added_before_the_inner_optimizers_clipping():
    v = keras.Variable(np.zeros((50, 50), "float32"))
    inner = keras.optimizers.SGD(1.0, global_clipnorm=1e-3)
    GradientNoise(inner, eta=1.0, seed=0).apply([np.zeros((50, 50), "float32")], [v])
    # Unclipped, the noise would have norm ~50; the clipped update has 1e-3.
    assert np.linalg.norm(v.numpy()) == pytest.approx(1e-3, rel=1e-4)


def _regression_model():
    model = keras.Sequential(
        [keras.Input((4, 3)), keras.layers.SimpleRNN(5), keras.layers.Dense(2)]
    )
    model.compile(
        GradientNoise(keras.optimizers.Adam(1e-2, clipnorm=1.0), eta=0.05, gamma=0.5, seed=7), "mse"
    )
    return model


def test_gradient_noise_trains_saves_and_resumes_exactly(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    model = _regression_model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)

    opt = loaded.optimizer
    assert isinstance(opt, GradientNoise)
    assert (opt.eta, opt.gamma, opt.seed) == (0.05, 0.5, 7)
    assert isinstance(opt.inner_optimizer, keras.optimizers.Adam)
    assert opt.inner_optimizer.clipnorm == 1.0
    assert int(opt.iterations.numpy()) == 4
    # The noise depends on (seed, step) only, so the reloaded model takes
    # exactly the step the original takes.
    model.train_on_batch(x[:8], y[:8])
    loaded.train_on_batch(x[:8], y[:8])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # ... and a different seed takes another step.
    other = keras.models.load_model(path, safe_mode=True)
    other.optimizer._seed += 1
    other.train_on_batch(x[:8], y[:8])
    assert not np.allclose(other.get_weights()[0], model.get_weights()[0], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eta=0.0), "`eta` must be a positive"),
        (dict(eta=-1.0), "`eta` must be a positive"),
        (dict(gamma=-0.1), "`gamma` must be a number >= 0"),
        (dict(seed=1.5), "`seed` must be an integer"),
    ],
)
def test_gradient_noise_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GradientNoise(keras.optimizers.SGD(), **kwargs)


def test_gradient_noise_rejects_nesting():
    with pytest.raises(ValueError, match="already a GradientNoise"):
        GradientNoise(GradientNoise("sgd"))


# ---------------------------------------------------------------------------
# WeightNoise
# ---------------------------------------------------------------------------
class WeightProbe(keras.callbacks.Callback):
    """Records the weights that the training batch runs with."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append([w.numpy().copy() for w in self.model.weights])


def test_weight_noise_gradient_at_the_noisy_point_updates_the_clean_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 200)).astype("float32")
    y = rng.normal(size=(8, 300)).astype("float32")
    model = keras.Sequential([keras.Input((200,)), keras.layers.Dense(300, use_bias=False)])
    lr = 0.5
    model.compile(keras.optimizers.SGD(lr), "mse")
    clean = model.get_weights()[0]
    probe = WeightProbe()
    model.fit(
        x, y, batch_size=8, epochs=1, verbose=0, callbacks=[WeightNoise(0.075, seed=0), probe]
    )

    noisy = probe.seen[0][0]
    noise = noisy - clean
    assert noise.std() == pytest.approx(0.075, rel=0.02)
    assert abs(noise.mean()) < 0.002
    # Reference: L = mean((x W - y)^2), dL/dW = 2 x^T (x W - y) / (B * units),
    # evaluated at the noisy point and applied to the clean weights.
    grad = 2.0 * x.T @ (x @ noisy - y) / y.size
    np.testing.assert_allclose(model.get_weights()[0], clean - lr * grad, rtol=1e-4, atol=1e-5)


def _simple_rnn_loss(x, y, kernel, recurrent, bias, dense, dense_bias):
    h = np.zeros((x.shape[0], recurrent.shape[0]))
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
    return np.mean((h @ dense + dense_bias - y) ** 2)


def test_weight_noise_reaches_the_rnn_loop_and_is_off_at_inference():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    model = keras.Sequential(
        [keras.Input((6, 3)), keras.layers.RNN(SimpleRNNCell(5)), keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    clean = model.get_weights()
    probe = WeightProbe()
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        validation_data=(x, y),
        callbacks=[WeightNoise(0.3, seed=1), probe],
    )

    clean_loss = _simple_rnn_loss(x, y, *clean)
    for epoch, seen in enumerate(probe.seen):
        # Matrices are perturbed, biases are not (include_biases=False).
        for before, during in zip(clean, seen):
            assert np.array_equal(before, during) == (before.ndim == 1)
        # The training loss is the loss at the noisy weights ...
        assert history.history["loss"][epoch] == pytest.approx(
            _simple_rnn_loss(x, y, *seen), rel=1e-4
        )
        # ... and validation, run after the epoch's batches, at the clean ones.
        assert history.history["val_loss"][epoch] == pytest.approx(clean_loss, rel=1e-4)
    assert not np.allclose(probe.seen[0][0], probe.seen[1][0])  # one sample per batch
    for before, after in zip(clean, model.get_weights()):
        np.testing.assert_allclose(after, before, atol=1e-6)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(clean_loss, rel=1e-4)


def test_weight_noise_only_touches_the_chosen_layers():
    x = np.ones((2, 3), "float32")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    clean = model.get_weights()
    probe = WeightProbe()
    model.fit(
        x,
        np.zeros((2, 2)),
        verbose=0,
        callbacks=[WeightNoise(0.1, layers=["b"], include_biases=True, seed=0), probe],
    )
    a_kernel, a_bias, b_kernel, b_bias = (
        np.array_equal(c, s) for c, s in zip(clean, probe.seen[0])
    )
    assert a_kernel and a_bias and not b_kernel and not b_bias


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(std=0.0), "`std` must be a positive"),
        (dict(std=-0.1), "`std` must be a positive"),
        (dict(layers="dense"), "`layers` must be None or a non-empty list"),
        (dict(layers=[]), "`layers` must be None or a non-empty list"),
    ],
)
def test_weight_noise_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WeightNoise(**kwargs)


def test_weight_noise_needs_some_weights():
    # Batch normalisation has only vectors (gamma, beta): no matrix to perturb.
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="found no trainable weights"):
        model.fit(np.ones((2, 3)), np.ones((2, 3)), verbose=0, callbacks=[WeightNoise(0.1)])
