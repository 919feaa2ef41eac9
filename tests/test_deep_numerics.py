"""The deep RNN layers against the NumPy references of ``deep_reference.py``.

* forward: every architecture and unit type, float32, random weights, 12
  steps: outputs and final states within 1e-5 of the float64 reference;
* gradients: float64 autodiff against central finite differences of the
  NumPy reference, for every trainable weight;
* Lp units: finite gradients at a = 0 (the epsilon) and no overflow for
  large p.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import deep_reference as dr
import keras
import numpy as np
import pytest
import reference as ref
import tensorflow as tf

from keras_deeprnn.cells import GRUCell
from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.layers import DeepTransitionCell
from keras_deeprnn.layers import DeepTransitionGRUCell
from keras_deeprnn.layers import DeepTransitionLSTMCell
from keras_deeprnn.layers import StackedCells

BATCH, INPUT_DIM, UNITS, STEPS = 2, 3, 4, 12
FWD_ATOL = 1e-5
GRAD_RTOL = 1e-5
FD_EPS = 1e-6

TANH = {"unit_type": "tanh"}
RELU = {"unit_type": "relu"}
MAXOUT = {"unit_type": "maxout", "maxout_pieces": 3}
LP = {"unit_type": "lp", "lp_group": 3}
LP2 = {"unit_type": "lp", "lp_group": 2}


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable  # make(dtype, units) -> cell or DeepOutput
    reference: Callable  # reference(x, weights) -> (outputs, states)

    def __repr__(self):
        return self.id


def _dt(depth, unit, shortcut=False, time_skip=0, widths=None, **kw):
    return Case(
        f"dt{'s' if shortcut else ''}-L{depth}-{unit['unit_type']}"
        + (f"-skip{time_skip}" if time_skip else "")
        + (f"-w{widths}" if widths else "")
        + ("".join(f"-{k}={v}" for k, v in kw.items())),
        lambda dtype, u: DeepTransitionCell(
            u,
            depth=depth,
            widths=widths,
            shortcut=shortcut,
            time_skip=time_skip,
            dtype=dtype,
            **unit,
            **kw,
        ),
        functools.partial(
            dr.dt_rnn, depth=depth, unit=unit, shortcut=shortcut, time_skip=time_skip
        ),
    )


def _dt_lstm(depth, unit, shortcut=False, variant="np"):
    return Case(
        f"dt{'s' if shortcut else ''}-lstm-{variant}-L{depth}-{unit['unit_type']}",
        lambda dtype, u: DeepTransitionLSTMCell(
            u, depth=depth, shortcut=shortcut, variant=variant, dtype=dtype, **unit
        ),
        functools.partial(
            dr.dt_lstm, depth=depth, unit=unit, shortcut=shortcut, peepholes=variant == "vanilla"
        ),
    )


def _dt_gru(depth, unit, shortcut=False, reset_after=True, widths=None):
    return Case(
        f"dt{'s' if shortcut else ''}-gru-ra={reset_after}-L{depth}-{unit['unit_type']}",
        lambda dtype, u: DeepTransitionGRUCell(
            u,
            depth=depth,
            widths=widths,
            shortcut=shortcut,
            reset_after=reset_after,
            dtype=dtype,
            **unit,
        ),
        functools.partial(
            dr.dt_gru, depth=depth, unit=unit, shortcut=shortcut, reset_after=reset_after
        ),
    )


def _output(depth, unit, activation=None, widths=None):
    acts = {None: lambda a: a, "sigmoid": ref.sigmoid}
    return Case(
        f"output-D{depth}-{unit['unit_type']}-{activation}",
        lambda dtype, u: DeepOutput(
            u, depth=depth, widths=widths, activation=activation, dtype=dtype, **unit
        ),
        lambda x, weights: (
            dr.deep_output(x, weights, depth=depth, unit=unit, activation=acts[activation]),
            [],
        ),
    )


def _stack(name, makers, references, **options):
    def reference(x, weights):
        layers = [functools.partial(r, weights=w) for r, w in zip(references, weights)]
        return dr.stacked(x, [lambda i, f=f: f(i) for f in layers], **options)

    return Case(
        f"srnn-{name}-" + "-".join(k for k, v in options.items() if v),
        lambda dtype, u: StackedCells([m(dtype, u) for m in makers], dtype=dtype, **options),
        reference,
    )


def _srnn_cases():
    rnn = lambda dtype, u: DeepTransitionCell(u, depth=1, dtype=dtype)  # noqa: E731
    rnn_ref = lambda x, weights: dr.dt_rnn(x, weights, depth=1)  # noqa: E731
    mixed = (
        [
            rnn,
            lambda dtype, u: LSTMCell(u, dtype=dtype),
            lambda dtype, u: GRUCell(u, dtype=dtype),
            lambda dtype, u: DeepTransitionCell(u, depth=2, shortcut=True, dtype=dtype, **MAXOUT),
        ],
        [
            rnn_ref,
            lambda x, weights: ref.lstm(x, weights, variant="np"),
            lambda x, weights: ref.gru(x, weights, reset_after=True),
            lambda x, weights: dr.dt_rnn(x, weights, depth=2, unit=MAXOUT, shortcut=True),
        ],
    )
    return [
        _stack("rnn", [rnn] * 3, [rnn_ref] * 3),
        _stack("rnn", [rnn] * 3, [rnn_ref] * 3, input_skip=True, output_skip=True),
        _stack("rnn", [rnn] * 3, [rnn_ref] * 3, residual=True),
        _stack("mixed", *mixed, input_skip=True, output_skip=True, residual=True),
        _stack("mixed", *mixed, input_skip=True),
    ]


CELL_CASES = [
    _dt(1, TANH),
    _dt(1, TANH, time_skip=3),
    *[_dt(2, unit) for unit in (TANH, RELU, MAXOUT, LP)],
    *[_dt(3, unit, widths=[5, 3]) for unit in (RELU, MAXOUT, LP)],
    *[_dt(2, unit, shortcut=True) for unit in (TANH, RELU, MAXOUT, LP)],
    _dt(4, LP2, shortcut=True, widths=[5, 6, 2]),
    _dt(3, MAXOUT, shortcut=True, time_skip=2),
    _dt(2, LP, time_skip=20),  # delay longer than the sequence
    _dt(3, MAXOUT, shortcut=True, use_bias=False),
    *[_dt_lstm(2, unit) for unit in (TANH, RELU, MAXOUT, LP)],
    _dt_lstm(3, LP, shortcut=True, variant="vanilla"),
    _dt_lstm(1, TANH, variant="vanilla"),
    *[_dt_gru(2, unit) for unit in (TANH, MAXOUT, LP)],
    _dt_gru(3, RELU, shortcut=True),
    _dt_gru(3, MAXOUT, reset_after=False, widths=[6, UNITS]),
    *_srnn_cases(),
]
OUTPUT_CASES = [
    _output(1, TANH),
    *[_output(2, unit) for unit in (TANH, RELU, MAXOUT, LP)],
    _output(3, LP, activation="sigmoid", widths=[5, 2]),
    _output(3, MAXOUT, activation="sigmoid"),
]


# ---------------------------------------------------------------------------
def weights_of(layer):
    """{name: array} of a cell or layer; a list of them for StackedCells."""
    if isinstance(layer, StackedCells):
        return [weights_of(c) for c in layer.cells]
    named = {w.name: np.asarray(w.numpy()) for w in layer.weights}
    assert len(named) == len(layer.weights), [w.name for w in layer.weights]
    return named


def randomize(layer, rng):
    """Random weights: rho in [-1, 2] (p in about (1.3, 3.1)), others in [-0.5, 0.5]."""
    for w in layer.weights:
        low, high = (-1.0, 2.0) if w.name.startswith("lp_rho") else (-0.5, 0.5)
        w.assign(rng.uniform(low, high, size=tuple(w.shape)).astype(w.dtype))
    return weights_of(layer)


def build(case, dtype, seed, units=UNITS, input_dim=INPUT_DIM, steps=STEPS, batch=BATCH):
    """-> (callable x -> (outputs, states), layer, x, weights, rng)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(batch, steps, input_dim)).astype(dtype)
    layer = case.make(dtype, units)
    if isinstance(layer, DeepOutput):
        layer(x)

        def run(inputs):
            return layer(inputs), []
    else:
        rnn = keras.layers.RNN(layer, return_sequences=True, return_state=True, dtype=dtype)
        rnn(x)

        def run(inputs):
            out = rnn(inputs)
            return out[0], list(out[1:])

    weights = randomize(layer, rng)
    return run, layer, x, weights, rng


def max_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)))


# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CELL_CASES + OUTPUT_CASES, ids=repr)
def test_forward_matches_reference(case):
    run, _, x, weights, _ = build(case, "float32", seed=1)
    out, states = run(x)
    want_out, want_states = case.reference(x.astype(np.float64), weights)
    assert np.all(np.isfinite(want_out))
    assert np.std(want_out) > 1e-2, "degenerate reference"
    assert max_error(out, want_out) <= FWD_ATOL
    assert len(states) == len(want_states)
    for got, want in zip(states, want_states):
        assert max_error(got, want) <= FWD_ATOL


def _fd_grad(loss_fn, weights, path, eps=FD_EPS):
    """Central differences of loss_fn(weights) in the weight at `path`."""

    def get(w):
        for key in path:
            w = w[key]
        return w

    def with_value(w, value):
        if len(path) == 1:
            return {**w, path[0]: value}
        w = list(w)
        w[path[0]] = {**w[path[0]], path[1]: value}
        return w

    base = get(weights)
    grad = np.zeros_like(base)
    for idx in np.ndindex(*base.shape):
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (loss_fn(with_value(weights, plus)) - loss_fn(with_value(weights, minus))) / (
            2 * eps
        )
    return grad


GRADIENT_CASES = [
    _dt(3, LP, shortcut=True, time_skip=2, widths=[4, 2]),
    _dt(3, MAXOUT, shortcut=True),
    _dt(2, LP2),
    _dt_lstm(2, LP, shortcut=True, variant="vanilla"),
    _dt_gru(2, MAXOUT, shortcut=True),
    _output(3, LP, activation="sigmoid"),
    _output(2, MAXOUT),
    _srnn_cases()[3],
]


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=repr)
def test_gradients_match_finite_differences(case):
    run, layer, x, weights, rng = build(case, "float64", seed=2, units=3, input_dim=2, steps=6)
    want_out, want_states = case.reference(x, weights)
    probes = [rng.normal(size=a.shape) for a in [want_out, *want_states]]

    def loss_np(w):
        out, states = case.reference(x, w)
        return sum(np.sum(a * p) for a, p in zip([out, *states], probes))

    variables = layer.trainable_weights
    with tf.GradientTape() as tape:
        out, states = run(tf.constant(x))
        loss = sum(tf.reduce_sum(a * p) for a, p in zip([out, *states], probes))
    grads = tape.gradient(loss, variables)
    assert out.dtype == tf.float64
    np.testing.assert_allclose(float(loss), loss_np(weights), rtol=1e-10)

    cells = layer.cells if isinstance(layer, StackedCells) else [layer]
    checked = 0
    for k, cell in enumerate(cells):
        for var in cell.trainable_weights:
            path = (k, var.name) if isinstance(layer, StackedCells) else (var.name,)
            g_ad = np.asarray(grads[next(i for i, v in enumerate(variables) if v is var)])
            g_fd = _fd_grad(loss_np, weights, path)
            assert np.linalg.norm(g_ad) > 0, f"zero gradient for {path}"
            rel = np.linalg.norm(g_ad - g_fd) / np.linalg.norm(g_fd)
            assert rel <= GRAD_RTOL, f"{path}: relative gradient error {rel:.3g}"
            checked += 1
    assert checked == len(variables)


# ---------------------------------------------------------------------------
# Lp units: the epsilon and large p
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lp_gradients_are_finite_at_zero(dtype):
    """All-zero inputs and biases: every Lp filter is exactly 0 at step 1."""
    cell = DeepTransitionCell(3, depth=3, unit_type="lp", shortcut=True, dtype=dtype)
    rnn = keras.layers.RNN(cell, return_sequences=True, dtype=dtype)
    x = np.zeros((2, 4, 2), dtype)
    rnn(x)
    for w in cell.weights:
        if "bias" in w.name:
            w.assign(np.zeros(w.shape, dtype))
    with tf.GradientTape() as tape:
        out = rnn(x)
        loss = tf.reduce_sum(out**2) + tf.reduce_sum(out)
    grads = tape.gradient(loss, cell.trainable_weights)
    for var, grad in zip(cell.trainable_weights, grads):
        assert np.all(np.isfinite(np.asarray(grad))), var.name
    assert np.any(
        np.asarray(grads[[w.name for w in cell.trainable_weights].index("lp_rho_1")]) != 0
    )

    output = DeepOutput(2, depth=2, unit_type="lp", bias_initializer="zeros", dtype=dtype)
    z = tf.zeros((3, 4), dtype)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(output(z))
    for var, grad in zip(output.trainable_weights, tape.gradient(loss, output.trainable_weights)):
        assert np.all(np.isfinite(np.asarray(grad))), var.name
    # The value at 0 is the documented one: (N eps^p)^(1/p), N = 2, p = 2.
    hidden = output.hidden(z)
    np.testing.assert_allclose(np.asarray(hidden), np.sqrt(2) * 1e-6, rtol=1e-4)


def test_lp_large_p_does_not_overflow():
    """p about 31 and |a| about 40: a^p is far beyond float32's range."""
    layer = DeepOutput(1, depth=2, widths=[2], unit_type="lp", lp_group=3)
    x = np.array([[1.0, -0.5], [0.2, 0.9]], "float32")
    layer(x)
    rng = np.random.default_rng(0)
    for w in layer.weights:
        value = (
            np.full(w.shape, 30.0) if w.name == "lp_rho_1" else rng.uniform(-40, 40, size=w.shape)
        )
        w.assign(value.astype("float32"))
    weights = weights_of(layer)
    got = np.asarray(layer(x))
    want = dr.deep_output(
        x.astype(np.float64), weights, depth=2, unit={"unit_type": "lp", "lp_group": 3}
    )
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_depth_one_is_the_shallow_layer():
    """depth=1 takes the weights of the shallow layer and computes the same."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(BATCH, STEPS, INPUT_DIM)).astype("float32")
    pairs = [
        (DeepTransitionCell(UNITS, depth=1), keras.layers.SimpleRNNCell(UNITS)),
        (DeepTransitionLSTMCell(UNITS, depth=1), LSTMCell(UNITS)),
        (
            DeepTransitionGRUCell(UNITS, depth=1, reset_after=False),
            GRUCell(UNITS, reset_after=False),
        ),
    ]
    for ours, theirs in pairs:
        ours_rnn = keras.layers.RNN(ours, return_sequences=True)
        theirs_rnn = keras.layers.RNN(theirs, return_sequences=True)
        ours_rnn(x), theirs_rnn(x)
        randomize(theirs, rng)
        ours.set_weights(theirs.get_weights())
        assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
        assert max_error(ours_rnn(x), theirs_rnn(x)) <= 1e-6
    ours, theirs = DeepOutput(3, depth=1, activation="tanh"), keras.layers.Dense(3, "tanh")
    ours(x), theirs(x)
    randomize(theirs, rng)
    ours.set_weights(theirs.get_weights())
    assert max_error(ours(x), theirs(x)) <= 1e-6
