"""Every cell inside stock Keras recurrent layers.

References are independent of the cells' arithmetic: the same cell driven
another way (reversed input, one sequence at a time, two layers instead of a
stack, float32 instead of mixed precision, eager instead of XLA).
"""

import keras
import numpy as np
import pytest
from cell_zoo import CONFIGS
from cell_zoo import IDS

UNITS, FEATURES, BATCH, STEPS = 4, 3, 3, 8


def inputs(seed=0, batch=BATCH, steps=STEPS, features=FEATURES):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def randomize(layer, seed=1):
    """Random non-zero weights, so no test passes on an all-zero parameter."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()]
    )


def rnn(name, **kwargs):
    cell_kwargs = {
        k: kwargs.pop(k) for k in ("dropout", "recurrent_dropout", "seed") if k in kwargs
    }
    return keras.layers.RNN(CONFIGS[name](UNITS, **cell_kwargs), **kwargs)


def run(layer, x, **kwargs):
    out = layer(x, **kwargs)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out)


@pytest.mark.parametrize("name", IDS)
def test_sequences_and_states(name):
    x = inputs()
    layer = rnn(name, return_sequences=True, return_state=True)
    run(layer, x)
    randomize(layer)
    seq, *states = run(layer, x)
    assert seq.shape == (BATCH, STEPS, UNITS)
    assert [s.shape[-1] for s in states] == list(layer.cell.state_size)
    # The first state is h_T, the last output.
    np.testing.assert_allclose(states[0], seq[:, -1], atol=1e-6)
    only_last = keras.layers.RNN(layer.cell)
    np.testing.assert_allclose(run(only_last, x), seq[:, -1], atol=1e-6)


@pytest.mark.parametrize("name", IDS)
def test_go_backwards_equals_reversed_input(name):
    x = inputs()
    forward = rnn(name, return_state=True)
    run(forward, x)
    randomize(forward)
    backward = keras.layers.RNN(forward.cell, go_backwards=True, return_state=True)
    got = run(backward, x)
    want = run(forward, x[:, ::-1])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-6)


@pytest.mark.parametrize("name", IDS)
def test_stateful_carries_state_across_calls(name):
    x = inputs()
    whole = rnn(name, return_sequences=True)
    run(whole, x)
    randomize(whole)
    want = run(whole, x)
    stateful = keras.layers.RNN(whole.cell, return_sequences=True, stateful=True)
    first = run(stateful, x[:, :5])
    second = run(stateful, x[:, 5:])
    np.testing.assert_allclose(np.concatenate([first, second], 1), want, atol=1e-5)
    stateful.reset_state()
    np.testing.assert_allclose(run(stateful, x[:, :5]), want[:, :5], atol=1e-6)


@pytest.mark.parametrize("name", IDS)
def test_masked_batch_matches_sequences_run_alone(name):
    lengths = [8, 5, 2]
    x = inputs()
    mask = np.arange(STEPS)[None, :] < np.array(lengths)[:, None]
    x_padded = np.where(mask[..., None], x, 0.0).astype("float32")
    layer = rnn(name, return_sequences=True, return_state=True)
    run(layer, x)
    randomize(layer)
    seq, *states = run(layer, x_padded, mask=mask)
    for b, n in enumerate(lengths):
        alone_seq, *alone_states = run(layer, x[b : b + 1, :n])
        np.testing.assert_allclose(seq[b, :n], alone_seq[0], atol=1e-5)
        for s, a in zip(states, alone_states):
            np.testing.assert_allclose(s[b], a[0], atol=1e-5)


@pytest.mark.parametrize("name", IDS)
def test_bidirectional_halves(name):
    x = inputs()
    bi = keras.layers.Bidirectional(rnn(name, return_sequences=True))
    run(bi, x)
    randomize(bi)
    out = run(bi, x)
    assert out.shape == (BATCH, STEPS, 2 * UNITS)
    forward = rnn(name, return_sequences=True)
    run(forward, x)
    forward.set_weights(bi.forward_layer.get_weights())
    np.testing.assert_allclose(out[..., :UNITS], run(forward, x), atol=1e-6)
    # The backward half reads the reversed sequence; its outputs are
    # re-reversed to line up in time.
    backward = rnn(name, return_sequences=True)
    run(backward, x)
    backward.set_weights(bi.backward_layer.get_weights())
    np.testing.assert_allclose(out[..., UNITS:], run(backward, x[:, ::-1])[:, ::-1], atol=1e-6)


@pytest.mark.parametrize("name", IDS)
def test_stacked_cells_equal_two_layers(name):
    x = inputs()
    stacked = keras.layers.RNN(
        keras.layers.StackedRNNCells([CONFIGS[name](UNITS), CONFIGS[name](UNITS)]),
        return_sequences=True,
    )
    run(stacked, x)
    randomize(stacked)
    first = keras.layers.RNN(stacked.cell.cells[0], return_sequences=True)
    second = keras.layers.RNN(stacked.cell.cells[1], return_sequences=True)
    np.testing.assert_allclose(run(stacked, x), run(second, run(first, x)), atol=1e-5)


def _model(name, **rnn_kwargs):
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            rnn(name, return_sequences=True, **rnn_kwargs),
            keras.layers.Dense(1),
        ]
    )
    return model


@pytest.mark.parametrize("name", IDS)
def test_jit_compile_matches_eager_and_trains(name):
    x = inputs()
    model = _model(name)
    randomize(model)
    eager = np.asarray(model(x))
    model.compile("adam", "mse", jit_compile=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), eager, atol=1e-5)
    history = model.fit(x, np.zeros((BATCH, STEPS, 1)), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize("policy,atol", [("mixed_float16", 2e-2), ("mixed_bfloat16", 8e-2)])
@pytest.mark.parametrize("name", IDS)
def test_mixed_precision(name, policy, atol):
    x = inputs()
    reference = _model(name)
    randomize(reference)
    want = np.asarray(reference(x))
    keras.config.set_dtype_policy(policy)
    model = _model(name)
    model.build((None, None, FEATURES))
    model.set_weights(reference.get_weights())
    layer = model.layers[0]
    assert layer.cell.compute_dtype == policy.split("_")[1]
    assert all(w.dtype == "float32" for w in layer.cell.weights)
    got = layer(x)
    assert keras.backend.standardize_dtype(got.dtype) == policy.split("_")[1]
    np.testing.assert_allclose(np.asarray(model(x), dtype="float32"), want, atol=atol)
    model.compile("adam", "mse")
    loss = model.train_on_batch(x, np.zeros((BATCH, STEPS, 1)))
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", IDS)
def test_fit_learns_a_delayed_copy(name):
    """Output at t must reproduce the input sign at t - 1: needs memory."""
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(64, 10, 1)).astype("float32")
    y = np.concatenate([np.zeros((64, 1, 1)), x[:, :-1]], axis=1).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((None, 1)),
            keras.layers.RNN(CONFIGS[name](16), return_sequences=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(0.02), "mse")
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", ["rnn", "lstm-vanilla", "lstm-fgr", "gru", "mut1", "mut2"])
def test_dropout_only_in_training(name):
    x = inputs()
    plain = rnn(name, return_sequences=True)
    run(plain, x)
    randomize(plain)
    dropped = rnn(name, return_sequences=True, dropout=0.4, recurrent_dropout=0.4, seed=3)
    run(dropped, x)
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(run(dropped, x, training=False), run(plain, x), atol=1e-6)
    assert not np.allclose(run(dropped, x, training=True), run(plain, x), atol=1e-3)


@pytest.mark.parametrize(
    "variant,forget_block", [("np", 1), ("vanilla", 1), ("nig", 0), ("nfg", None), ("cifg", None)]
)
def test_forget_bias_initialises_the_forget_block(variant, forget_block):
    from keras_deeprnn.cells import LSTMCell

    cell = LSTMCell(3, variant=variant, forget_bias=2.5)
    cell.build((None, 2))
    blocks = np.asarray(cell.bias).reshape(-1, 3)
    for k, block in enumerate(blocks):
        np.testing.assert_array_equal(block, 2.5 if k == forget_block else 0.0)
