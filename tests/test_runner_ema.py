"""`runner.fit` with an optimizer's moving average of the weights
(`use_ema=True`): validation, early stopping and the checkpoint see the
average, training steps the raw weights. Checked against NumPy's own
SGD and average of a linear regression."""

import keras
import numpy as np
import tensorflow as tf

from apps.common import runner

LR, MOMENTUM, BATCH = 0.05, 0.6, 4


def _data(seed, rows):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3 * rng.normal(size=(rows, 1))
    return x, y.astype("float32")


class RawWeights(keras.callbacks.Callback):
    """The kernel and bias after every training step (runs first)."""

    def on_train_begin(self, logs=None):
        self.after = []

    def on_train_batch_end(self, batch, logs=None):
        kernel, bias = self.model.get_weights()
        self.after.append(np.concatenate([kernel[:, 0], bias]).astype("float64"))


def _mse(weights, x, y):
    return float(np.mean((x @ weights[:3, None] + weights[3] - y) ** 2))


def test_validation_and_the_kept_weights_are_the_moving_average(tmp_path):
    x, y = _data(0, 16)  # 4 steps an epoch
    xv, yv = _data(1, 8)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    start = np.concatenate([w.ravel() for w in model.get_weights()]).astype("float64")
    model.compile(keras.optimizers.SGD(LR, use_ema=True, ema_momentum=MOMENTUM), "mse")
    raw = RawWeights()
    history = runner.fit(
        model,
        tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH),
        tf.data.Dataset.from_tensor_slices((xv, yv)).batch(8),
        tmp_path / "run",
        epochs=5,
        monitor="val_loss",
        patience=5,
        callbacks=[raw],
        verbose=0,
    )

    # NumPy: plain SGD on the MSE from the raw weights, every step; the
    # average starts at the first step's weights (Keras's rule).
    w, average, averages = start.copy(), None, []
    for step in range(20):
        xb, yb = x[step % 4 * BATCH :][:BATCH], y[step % 4 * BATCH :][:BATCH]
        error = xb @ w[:3, None] + w[3] - yb
        grad = np.concatenate([(2 * xb.T @ error / BATCH).ravel(), [2 * error.mean()]])
        w = w - LR * grad
        np.testing.assert_allclose(raw.after[step], w, rtol=1e-4, atol=1e-5)
        average = w.copy() if average is None else MOMENTUM * average + (1 - MOMENTUM) * w
        if step % 4 == 3:
            averages.append(average)
    # Each epoch's validation loss is the average's, not the raw weights'.
    expected = [_mse(a, xv, yv) for a in averages]
    np.testing.assert_allclose(history.history["val_loss"], expected, rtol=1e-4)
    assert not np.allclose(expected, [_mse(raw.after[4 * e + 3], xv, yv) for e in range(5)])
    # The model ends with the best epoch's average, as does the checkpoint.
    best = averages[int(np.argmin(expected))]
    final = np.concatenate([v.ravel() for v in model.get_weights()])
    np.testing.assert_allclose(final, best, rtol=1e-4, atol=1e-5)
    saved = keras.models.load_model(tmp_path / "run" / "best.keras", safe_mode=True)
    np.testing.assert_allclose(
        np.concatenate([v.ravel() for v in saved.get_weights()]), best, rtol=1e-4, atol=1e-5
    )


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def test_a_resumed_run_goes_on_from_the_raw_weights(tmp_path):
    """The backup holds the raw weights and the average as they were: a run
    killed after two epochs and resumed ends where an unbroken one does."""
    x, y = _data(0, 16)
    xv, yv = _data(1, 8)

    def run(folder, *callbacks):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(LR, use_ema=True, ema_momentum=MOMENTUM), "mse")
        history = runner.fit(
            model,
            tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH),
            tf.data.Dataset.from_tensor_slices((xv, yv)).batch(8),
            tmp_path / folder,
            epochs=4,
            monitor="val_loss",
            patience=4,
            callbacks=callbacks,
            verbose=0,
        )
        return history.history["val_loss"], model.get_weights()

    whole, whole_weights = run("whole")
    try:
        run("broken", Interrupt())
    except KeyboardInterrupt:
        pass
    resumed, weights = run("broken")
    np.testing.assert_allclose(resumed, whole[2:], rtol=1e-5)
    for a, b in zip(weights, whole_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
