"""Numerical tests of the recurrent cells against independent NumPy references.

For every cell configuration of `tests/cell_zoo.py`:
  * forward: the cell inside a stock ``keras.layers.RNN`` (float32, random
    weights) matches ``tests/reference.py`` to 1e-5 for all outputs and final
    states;
  * gradients: float64 autodiff gradients of a scalar loss w.r.t. every
    trainable weight match central finite differences of the same loss
    computed with the NumPy reference;
  * weight layout: the weight names and shapes are exactly the documented ones.
Plus parity with the stock Keras LSTM / GRU / SimpleRNN cells (weights copied
with ``set_weights``), and a sanity check of the references themselves
against those Keras cells.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import functools

import keras
import numpy as np
import pytest
import reference as ref  # tests/reference.py (pytest puts tests/ on sys.path)
import tensorflow as tf
from cell_zoo import CONFIGS
from cell_zoo import IDS

from keras_deeprnn.cells import GRUCell
from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.cells import SimpleRNNCell

BATCH, INPUT_DIM, UNITS, STEPS = 3, 5, 4, 20
FWD_ATOL = 1e-5  # float32 cell vs float64 reference
GRAD_RTOL = 1e-4  # float64 autodiff vs float64 finite differences
FD_EPS = 1e-6
PARITY_ATOL = 1e-6  # our cell vs stock Keras cell, float32

config_params = pytest.mark.parametrize("cfg", [CONFIGS[name] for name in IDS], ids=IDS)


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------
def weights_by_name(cell):
    named = {w.name: w for w in cell.weights}
    assert len(named) == len(cell.weights), (
        f"duplicate weight names: {[w.name for w in cell.weights]}"
    )
    return named


def build_rnn(cell, x, dtype):
    """Wrap `cell` in a stock keras RNN and build it by calling it once on x."""
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=dtype)
    rnn(x)
    return rnn


def randomize_weights(cell, rng):
    """Assign random values to every weight; return them as a NumPy dict.

    Leak coefficients go in [0, 0.9]; everything else (peepholes, biases,
    projections included) uniform in [-0.5, 0.5].
    """
    values = {}
    for name, var in weights_by_name(cell).items():
        shape = tuple(var.shape)
        if name == "leak":
            value = rng.uniform(0.0, 0.9, size=shape)
        else:
            value = rng.uniform(-0.5, 0.5, size=shape)
        var.assign(value.astype(var.dtype))
        values[name] = np.asarray(var.numpy())
    return values


def run_rnn(rnn, x):
    """-> (outputs, [final states]) as NumPy arrays."""
    result = rnn(x)
    return (np.asarray(result[0]), [np.asarray(s) for s in result[1:]])


def make_cell_and_rnn(cfg, dtype, seed):
    keras.utils.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    input_dim = cfg.input_dim(UNITS, INPUT_DIM)
    x = rng.uniform(-1.0, 1.0, size=(BATCH, STEPS, input_dim)).astype(dtype)
    cell = cfg(UNITS, dtype=dtype)
    rnn = build_rnn(cell, x, dtype)
    weights = randomize_weights(cell, rng)
    return cell, rnn, x, weights, rng


def assert_close(actual, expected, atol, what):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != reference {expected.shape}"
    )
    err = np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))
    assert err <= atol, f"{what}: max abs error {err:.3g} > {atol:g}"


# ---------------------------------------------------------------------------
# (d) Weight layout
# ---------------------------------------------------------------------------
@config_params
def test_weight_shapes(cfg):
    cell, _, _, _, _ = make_cell_and_rnn(cfg, "float32", seed=0)
    actual = {name: tuple(v.shape) for name, v in weights_by_name(cell).items()}
    assert actual == cfg.shapes(cfg.input_dim(UNITS, INPUT_DIM), UNITS)


# ---------------------------------------------------------------------------
# (a) Forward pass vs. NumPy reference (float32)
# ---------------------------------------------------------------------------
@config_params
def test_forward_matches_reference(cfg):
    _, rnn, x, weights, _ = make_cell_and_rnn(cfg, "float32", seed=1)
    outputs, states = run_rnn(rnn, x)
    # Reference in float64 on exactly the float32 inputs / weights.
    ref_out, ref_states = cfg.reference(x.astype(np.float64), weights)
    assert np.all(np.isfinite(ref_out))
    assert_close(outputs, ref_out, FWD_ATOL, "outputs")
    assert len(states) == len(ref_states), (
        f"{len(states)} final states, reference has {len(ref_states)}"
    )
    for k, (s, rs) in enumerate(zip(states, ref_states)):
        assert_close(s, rs, FWD_ATOL, f"final state {k}")
    # The last output is the final h.
    assert_close(states[0], outputs[:, -1], FWD_ATOL, "final state 0 vs last output")


# ---------------------------------------------------------------------------
# (b) Gradients: autodiff (float64) vs. finite differences of the reference
# ---------------------------------------------------------------------------
def _finite_difference_grad(loss_fn, weights, name, eps=FD_EPS):
    grad = np.zeros_like(weights[name])
    perturbed = dict(weights)
    for idx in np.ndindex(*weights[name].shape):
        w = weights[name].copy()
        w[idx] += eps
        perturbed[name] = w
        plus = loss_fn(perturbed)
        w[idx] -= 2 * eps
        minus = loss_fn(perturbed)
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


@config_params
def test_gradients_match_finite_differences(cfg):
    cell, rnn, x, weights, rng = make_cell_and_rnn(cfg, "float64", seed=2)
    ref_out, ref_states = cfg.reference(x, weights)
    out_probe = rng.normal(size=ref_out.shape)
    state_probes = [rng.normal(size=s.shape) for s in ref_states]

    def loss_np(w):
        out, states = cfg.reference(x, w)
        loss = np.sum(out * out_probe)
        for s, p in zip(states, state_probes):
            loss += np.sum(s * p)
        return loss

    trainable = {w.name: w for w in cell.trainable_weights}
    assert set(trainable) == set(weights), (
        f"trainable weights {sorted(trainable)} != {sorted(weights)}"
    )
    names = sorted(trainable)
    with tf.GradientTape() as tape:
        result = rnn(tf.constant(x))
        loss = tf.reduce_sum(result[0] * out_probe)
        for s, p in zip(result[1:], state_probes):
            loss += tf.reduce_sum(s * p)
    grads = tape.gradient(loss, [trainable[n] for n in names])

    assert result[0].dtype == tf.float64
    for name, g_ad in zip(names, grads):
        assert g_ad is not None, f"no gradient for {name}"
        g_ad = np.asarray(tf.convert_to_tensor(g_ad))
        g_fd = _finite_difference_grad(loss_np, weights, name)
        assert g_ad.shape == g_fd.shape
        n_ad, n_fd = np.linalg.norm(g_ad), np.linalg.norm(g_fd)
        assert n_ad > 0.0, f"autodiff gradient of {name} is all zeros"
        rel = np.linalg.norm(g_ad - g_fd) / max(n_ad, n_fd, 1e-12)
        assert rel <= GRAD_RTOL, f"{name}: relative gradient error {rel:.3g}"
    # The float64 cell must really compute in float64: its loss must match the
    # float64 reference far below float32 resolution (~1e-7 relative).
    np.testing.assert_allclose(
        float(loss),
        loss_np(weights),
        rtol=1e-10,
        atol=1e-10,
        err_msg="float64 loss differs from the float64 reference",
    )


# ---------------------------------------------------------------------------
# (c) Parity with the stock Keras cells
# ---------------------------------------------------------------------------
PARITY = [
    (
        "lstm-np-vs-keras",
        lambda: LSTMCell(UNITS, variant="np", forget_bias=0.0),
        lambda: keras.layers.LSTMCell(UNITS),
    ),
    (
        "gru-reset_after=True-vs-keras",
        lambda: GRUCell(UNITS, reset_after=True),
        lambda: keras.layers.GRUCell(UNITS, reset_after=True),
    ),
    (
        "gru-reset_after=False-vs-keras",
        lambda: GRUCell(UNITS, reset_after=False),
        lambda: keras.layers.GRUCell(UNITS, reset_after=False),
    ),
    (
        "simple_rnn-vs-keras",
        lambda: SimpleRNNCell(UNITS),
        lambda: keras.layers.SimpleRNNCell(UNITS),
    ),
]


@pytest.mark.parametrize(
    "make_ours, make_keras", [p[1:] for p in PARITY], ids=[p[0] for p in PARITY]
)
def test_parity_with_keras(make_ours, make_keras):
    keras.utils.set_random_seed(3)
    rng = np.random.RandomState(3)
    x = rng.uniform(-1.0, 1.0, size=(BATCH, STEPS, INPUT_DIM)).astype("float32")
    keras_cell, our_cell = make_keras(), make_ours()
    keras_rnn = build_rnn(keras_cell, x, "float32")
    our_rnn = build_rnn(our_cell, x, "float32")
    randomize_weights(keras_cell, rng)  # non-zero biases too
    our_cell.set_weights(keras_cell.get_weights())
    ours, theirs = weights_by_name(our_cell), weights_by_name(keras_cell)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        np.testing.assert_array_equal(ours[name].numpy(), theirs[name].numpy(), err_msg=name)

    out_k, states_k = run_rnn(keras_rnn, x)
    out_o, states_o = run_rnn(our_rnn, x)
    assert_close(out_o, out_k, PARITY_ATOL, "outputs")
    assert len(states_o) == len(states_k)
    for k, (so, sk) in enumerate(zip(states_o, states_k)):
        assert_close(so, sk, PARITY_ATOL, f"final state {k}")


# Sanity check of the references themselves (independent of keras_deeprnn):
# with the stock Keras weights they must reproduce the stock Keras cells.
REFERENCE_SANITY = [
    ("lstm-np", functools.partial(ref.lstm, variant="np"), lambda: keras.layers.LSTMCell(UNITS)),
    (
        "gru-reset_after=True",
        functools.partial(ref.gru, reset_after=True),
        lambda: keras.layers.GRUCell(UNITS, reset_after=True),
    ),
    (
        "gru-reset_after=False",
        functools.partial(ref.gru, reset_after=False),
        lambda: keras.layers.GRUCell(UNITS, reset_after=False),
    ),
    ("simple_rnn", ref.simple_rnn, lambda: keras.layers.SimpleRNNCell(UNITS)),
]


@pytest.mark.parametrize(
    "reference, make_keras", [p[1:] for p in REFERENCE_SANITY], ids=[p[0] for p in REFERENCE_SANITY]
)
def test_reference_matches_keras(reference, make_keras):
    keras.utils.set_random_seed(4)
    rng = np.random.RandomState(4)
    x = rng.uniform(-1.0, 1.0, size=(BATCH, STEPS, INPUT_DIM)).astype("float32")
    cell = make_keras()
    rnn = build_rnn(cell, x, "float32")
    weights = randomize_weights(cell, rng)
    out_k, states_k = run_rnn(rnn, x)
    ref_out, ref_states = reference(x.astype(np.float64), weights)
    assert_close(out_k, ref_out, FWD_ATOL, "outputs")
    assert len(states_k) == len(ref_states)
    for k, (sk, rs) in enumerate(zip(states_k, ref_states)):
        assert_close(sk, rs, FWD_ATOL, f"final state {k}")
