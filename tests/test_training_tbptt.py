"""Truncated BPTT: window cutting and the stateful training loop."""

import keras
import numpy as np
import pytest

from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.training import fit_truncated
from keras_deeprnn.training import windows


def _sequences(lengths, features, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, features)).astype("float32") for n in lengths]


def test_windows_match_slicing_by_hand():
    x = _sequences([5, 3, 8], 2)
    y = [s[:, :1] * 10 for s in x]
    w = windows(x, k=3, batch_size=2, targets=y)

    def cut(s, j):  # steps [3j, 3j + 3) of s, zeros past its end
        piece = s[3 * j : 3 * j + 3]
        return np.concatenate([piece, np.zeros((3 - len(piece),) + s.shape[1:], s.dtype)])

    empty = np.zeros((0, 2), "float32")
    # Batch 1: pieces 0 and 1, 6 steps = 2 windows; batch 2: piece 2 and an
    # empty slot, 9 steps = 3 windows.
    groups = [(x[0], x[1], 2), (x[2], empty, 3)]
    expected_x, expected_mask = [], []
    for a, b, count in groups:
        for j in range(count):
            expected_x.append(np.stack([cut(a, j), cut(b, j)]))
            expected_mask.append([[float(3 * j + t < len(s)) for t in range(3)] for s in (a, b)])
    np.testing.assert_array_equal(w["x"], np.stack(expected_x))
    np.testing.assert_array_equal(w["mask"], np.array(expected_mask, "float32"))
    np.testing.assert_array_equal(w["y"], np.stack(expected_x)[..., :1] * 10)
    assert w["reset"].tolist() == [True, False, True, False, False]
    assert w["x"].dtype == np.float32 and w["mask"].dtype == np.float32


@pytest.mark.parametrize(
    "args, message",
    [
        (([np.ones((3, 2))], 0, 1), "`k` must be a positive integer"),
        (([np.ones((3, 2))], 2, 0), "`batch_size` must be a positive integer"),
        (([], 2, 1), "`inputs` is empty"),
        (([np.ones((0, 2))], 2, 1), r"`inputs\[0\]` must be a non-empty sequence"),
        (([np.ones((3, 2)), np.ones((3, 4))], 2, 1), "same per-step shape"),
    ],
)
def test_windows_reject_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        windows(*args)


def test_windows_need_one_target_per_input_of_the_same_length():
    with pytest.raises(ValueError, match="one sequence per input sequence"):
        windows([np.ones((3, 2))], 2, 1, targets=[np.ones((4, 1))])


class StateProbe(keras.callbacks.Callback):
    """Records the recurrent layer's state after chosen windows."""

    def __init__(self, layer, steps):
        super().__init__()
        self.layer, self.steps, self.states, self.calls = layer, steps, {}, 0

    def on_train_batch_end(self, batch, logs=None):
        self.calls += 1
        if batch in self.steps:
            self.states[batch] = [s.numpy().copy() for s in self.layer.states]


def test_carried_state_equals_one_pass_over_the_whole_sequence():
    features, units, k = 3, 5, 4
    x = _sequences([8, 6, 9, 12], features, seed=1)
    y = [np.zeros((len(s), 2), "float32") for s in x]
    rnn = keras.layers.RNN(LSTMCell(units), return_sequences=True, stateful=True)
    model = keras.Sequential(
        [keras.Input(batch_shape=(2, None, features)), rnn, keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")  # a forward pass that learns nothing
    # Windows: pieces 0, 1 -> 8 steps, windows 0-1; pieces 2, 3 -> 12 steps, windows 2-4.
    probe = StateProbe(rnn, steps=(1, 4))
    history = fit_truncated(model, x, y, k=k, batch_size=2, shuffle=False, callbacks=[probe])
    assert probe.calls == 5 and len(history.history["loss"]) == 1

    # Reference: the same cell, unrolled over each padded batch of pieces at
    # once from a zero state (a reset), without any windowing.
    whole = keras.layers.RNN(LSTMCell(units), return_sequences=True, return_state=True)
    whole.build((2, None, features))
    whole.cell.set_weights(rnn.cell.get_weights())
    dense_w, dense_b = model.layers[-1].get_weights()
    window_losses = []
    for step, pieces in ((1, x[0:2]), (4, x[2:4])):
        steps = max(len(p) for p in pieces)
        padded = np.zeros((2, steps, features), "float32")
        mask = np.zeros((2, steps))
        for slot, p in enumerate(pieces):
            padded[slot, : len(p)] = p
            mask[slot, : len(p)] = 1
        hs, h, c = whole(padded)
        np.testing.assert_allclose(probe.states[step][0], h, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(probe.states[step][1], c, rtol=1e-5, atol=1e-6)
        # Per-step MSE against zero targets, averaged over each window's real steps.
        mse = ((hs.numpy() @ dense_w + dense_b) ** 2).mean(axis=-1)
        for j in range(0, steps, k):
            window_losses.append((mse * mask)[:, j : j + k].sum() / mask[:, j : j + k].sum())
    assert history.history["loss"][0] == pytest.approx(np.mean(window_losses), rel=1e-4)


def test_fit_truncated_trains_across_windows():
    # The target at every step is the sign given at step 0 only: after the
    # first window the model must carry it in its state.
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=16).astype("float32")
    x = [np.concatenate([[[s]], np.zeros((11, 1))]).astype("float32") for s in signs]
    y = [np.full((12, 1), s, "float32") for s in signs]
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(8, None, 1)),
            keras.layers.RNN(keras.layers.GRUCell(8), return_sequences=True, stateful=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse")
    history = fit_truncated(model, x, y, k=3, batch_size=8, epochs=30, seed=0)
    losses = history.history["loss"]
    assert losses[0] > 0.5 and losses[-1] < 0.1 * losses[0]


def test_fit_truncated_needs_a_stateful_model():
    model = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.RNN(LSTMCell(3), return_sequences=True)]
    )
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="needs a model with stateful recurrent layers"):
        fit_truncated(model, [np.ones((4, 2))], [np.ones((4, 3))], k=2, batch_size=1)
