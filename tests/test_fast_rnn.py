"""keras_deeprnn.layers.RNN (hoisted projection, fused kernels) against stock
keras.layers.RNN driving the same cell, and against Keras's built-in layers."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from cell_zoo import CONFIGS as ZOO
from cell_zoo import IDS
from keras import ops

from keras_deeprnn import cells
from keras_deeprnn.cells import RecurrentCell
from keras_deeprnn.layers import RNN
from keras_deeprnn.layers import DeepTransitionGRUCell
from keras_deeprnn.layers import DeepTransitionLSTMCell
from keras_deeprnn.layers import _fused
from keras_deeprnn.layers import _native

B, T, D, U = 3, 6, 4, 5
RNG = np.random.default_rng(0)
X = RNG.normal(size=(B, T, D)).astype("float32")
# Padding at the end, at the start and in the middle.
MASK = np.ones((B, T), bool)
MASK[0, 4:] = False
MASK[1, :2] = False
MASK[2, 3] = False

# The zoo's cells that no kernel computes.
GENERIC = [name for name in IDS if ZOO[name].fused is None]
CONFIGS = {
    "backwards-state": dict(return_sequences=True, return_state=True, go_backwards=True),
    "zero-output-last": dict(zero_output_for_mask=True),
}


@pytest.fixture(params=["native", "xla", "plain"])
def loops(request, monkeypatch):
    """Runs a test with the C++ kernels, the XLA-compiled TensorFlow loops
    and the plain ones."""
    if request.param == "native":
        require_native()
    else:
        monkeypatch.setitem(_native._state, "off", 1)
    if request.param == "plain":
        monkeypatch.setattr(_fused, "XLA_MAX_STEP_SIZE", 0)
    return request.param


def require_native():
    """The kernels must build wherever there is a compiler."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler: the CPU kernels cannot be built here")
    assert _native.module() is not None, _native._state["error"]


def zoo(name):
    """A maker of the zoo's cell `name` for inputs of width D (as many units
    for a raw x term: the MUT cells' tanh(x) or x itself)."""
    cfg = ZOO[name]
    return lambda **kw: cfg(cfg.input_dim(D, U), **kw)


def pair(make, **kwargs):
    """A stock and a new layer over equal cells with equal random weights."""
    stock = keras.layers.RNN(make(), **kwargs)
    ours = RNN(make(), **kwargs)
    stock(X), ours(X)
    weights = [RNG.normal(size=w.shape).astype("float32") * 0.5 for w in stock.get_weights()]
    stock.set_weights(weights)
    ours.set_weights(weights)
    return stock, ours


def run(layer, mask=None, training=False, x=X):
    """Outputs without a tape (inference) and with one, and the gradients of
    a fixed random projection of every output w.r.t. the inputs and every
    weight."""
    plain = tf.nest.flatten(layer(x, mask=mask, training=training))
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = tf.nest.flatten(layer(x, mask=mask, training=training))
        loss = sum(
            tf.reduce_sum(o * np.cos(np.arange(np.prod(o.shape))).reshape(o.shape)) for o in outputs
        )
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [np.asarray(o) for o in plain + outputs + grads]


def assert_agree(stock, ours, **kwargs):
    for expected, got in zip(run(stock, **kwargs), run(ours, **kwargs), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "name, config",
    [
        ("lstm-np", "backwards-state"),
        ("lstm-np", "zero-output-last"),
        ("lstm-vanilla", "zero-output-last"),
        ("peephole-lstm", "backwards-state"),
        ("gru", "backwards-state"),
        ("rnn", "backwards-state"),
        ("rnn-leak", "zero-output-last"),
    ],
)
def test_fused_kernels_match_stock_rnn(name, config, loops):
    assert_agree(*pair(zoo(name), **CONFIGS[config]), mask=MASK)


@pytest.mark.parametrize("name", ["mut1", "mut1-raw", "mut2", "mut2-raw", "mut3"])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_mut_kernels_match_stock_rnn(name, masked, loops):
    assert_agree(*pair(zoo(name), **CONFIGS["backwards-state"]), mask=MASK if masked else None)


@pytest.mark.parametrize("variant", ["nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_lstm_variants_match_stock_rnn(variant, masked, loops):
    assert_agree(
        *pair(zoo(f"lstm-{variant}"), **CONFIGS["backwards-state"]), mask=MASK if masked else None
    )


@pytest.mark.parametrize("name", GENERIC)
def test_hoisted_loop_matches_stock_rnn(name):
    assert_agree(*pair(zoo(name), **CONFIGS["backwards-state"]), mask=MASK)


@pytest.mark.parametrize("name", IDS)
def test_each_cell_gets_the_kernel_the_zoo_expects(name, monkeypatch):
    """`fused_spec()` names the kernel (or None), and the layer runs that
    one: e.g. the GRU with reset_after=False and the SimpleRNN with a
    trainable leak take the hoisted loop."""
    kinds = []
    run = _fused.run

    def record(kind, *args, **kwargs):
        kinds.append(kind)
        return run(kind, *args, **kwargs)

    monkeypatch.setattr(_fused, "run", record)
    layer = RNN(zoo(name)())
    layer(X)
    spec = layer.cell.fused_spec()
    assert (None if spec is None else spec.kind) == ZOO[name].fused
    assert kinds == ([] if spec is None else [spec.kind])


class _ElmanCell(RecurrentCell):
    """A cell of the base class alone, with no `fused_spec` of its own."""

    def build_weights(self, input_dim):
        self.kernel = self.add_kernel(self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units)

    def project_inputs(self, inputs):
        return ops.matmul(inputs, self.kernel)

    def step(self, projected, states, training=False):
        h = ops.tanh(projected + ops.matmul(states[0], self.recurrent_kernel))
        return h, [h]


class _GRUWithOwnStep(cells.GRUCell):
    """A GRU subclass that changes the math: the GRU's kernel must not run."""

    def step(self, projected, states, training=False):
        h, _ = super().step(projected, states, training)
        return 0.5 * h, [0.5 * h]


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: _ElmanCell(U, **kw),
        lambda **kw: _GRUWithOwnStep(U, **kw),
        lambda **kw: DeepTransitionGRUCell(U, depth=1, **kw),
        lambda **kw: DeepTransitionLSTMCell(U, depth=1, **kw),
    ],
    ids=["base-class-cell", "gru-with-own-step", "dt-gru-depth-1", "dt-lstm-depth-1"],
)
def test_cells_without_a_kernel_get_the_hoisted_loop(make, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a fused kernel ran")

    monkeypatch.setattr(_fused, "run", refuse)
    stock, ours = pair(make, **CONFIGS["backwards-state"])
    assert ours.cell.fused_spec() is None
    assert_agree(stock, ours, mask=MASK)


def test_unfused_lstm_matches_stock_rnn():
    stock = keras.layers.RNN(cells.LSTMCell(U), return_sequences=True)
    ours = RNN(cells.LSTMCell(U), return_sequences=True, fused=False)
    stock(X), ours(X)
    ours.set_weights(stock.get_weights())
    assert_agree(stock, ours, mask=MASK)


@pytest.mark.parametrize(
    "name, builtin",
    [("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU), ("rnn", keras.layers.SimpleRNN)],
)
def test_fused_kernels_match_keras_builtin_layers(name, builtin):
    reference = builtin(U, return_sequences=True)
    ours = RNN(cells.get(name, U), return_sequences=True)
    reference(X), ours(X)
    ours.set_weights(reference.get_weights())
    assert_agree(reference, ours, mask=MASK)


@pytest.mark.parametrize("name", ["lstm-np", "lstm-fgr", "gru", "mut1", "mut2", "mut3"])
def test_dropout_uses_the_stock_masks(name):
    make = zoo(name)
    stock, ours = pair(
        lambda: make(dropout=0.3, recurrent_dropout=0.4, seed=7), return_sequences=True
    )
    # Equal seeds draw equal masks, call after call.
    assert_agree(stock, ours, training=True)


def test_stateful_carries_state_between_calls():
    stock, ours = pair(zoo("gru"), stateful=True, return_sequences=True)
    stock.reset_state(), ours.reset_state()
    for _ in range(2):
        np.testing.assert_allclose(ours(X), stock(X), atol=1e-5)


@pytest.mark.parametrize("jit", [True, False])
def test_bidirectional_training_step_matches_stock(jit, monkeypatch):
    """One SGD step of a model, XLA-compiled (TensorFlow loops inside XLA)
    or not (the CPU kernels), equals the stock model's."""
    if jit:
        monkeypatch.setattr(_fused, "XLA_MAX_STEP_SIZE", 0)  # plain loops in XLA
    else:
        require_native()
    x = np.where(MASK[..., None], X, 0.0)
    y = RNG.normal(size=(B, T, 2 * U)).astype("float32")
    models = []
    for layer_class, use_jit in ((keras.layers.RNN, False), (RNN, jit)):
        model = keras.Sequential(
            [
                keras.Input((T, D)),
                keras.layers.Masking(0.0),
                keras.layers.Bidirectional(
                    layer_class(cells.LSTMCell(U, variant="vanilla"), return_sequences=True)
                ),
            ]
        )
        model.compile(keras.optimizers.SGD(0.5), "mse", jit_compile=use_jit)
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    losses = [m.train_on_batch(x, y) for m in models]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    for expected, got in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_without_a_compiler_the_tensorflow_loops_run_and_a_warning_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("KERAS_DEEPRNN_CACHE", str(tmp_path / "cache"))
    for key, value in {"tried": False, "module": None, "error": None}.items():
        monkeypatch.setitem(_native._state, key, value)
    with pytest.warns(UserWarning, match="no-such-compiler"):
        stock, ours = pair(zoo("lstm-np"), return_sequences=True)
    assert_agree(stock, ours, mask=MASK)
    assert not _native.usable(tf.float32)
    assert not list((tmp_path / "cache").glob("*.so"))


def test_kernels_are_off_in_exports_and_for_other_dtypes():
    require_native()
    assert _native.usable(tf.float32) and not _native.usable(tf.float16)
    with _native.off():
        assert not _native.usable(tf.float32)
    assert _native.usable(tf.float32)


def test_config_round_trip_and_keras_file(tmp_path):
    layer = RNN(
        cells.LSTMCell(U, variant="vanilla"), return_sequences=True, go_backwards=True, fused=False
    )
    clone = RNN.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((T, D)), RNN(cells.GRUCell(U), return_sequences=True)])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.layers[0]) is RNN
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-6)


def test_fused_must_be_a_bool():
    with pytest.raises(ValueError, match="fused"):
        RNN(cells.GRUCell(U), fused="yes")


@pytest.mark.parametrize("make", [lambda: cells.GRUCell(16), lambda: cells.LSTMCell(6)])
def test_kernels_are_deterministic(make):
    """Equal inputs give bit-equal outputs, call after call: the kernels'
    buffers land at other addresses each time, and Eigen's vector code
    starts where a row is aligned (before the fix, 269 of 300 calls of this
    GRU differed in the last bit)."""
    require_native()
    layer = RNN(make(), return_sequences=True)
    x = RNG.normal(size=(5, 9, D)).astype("float32")
    first = run(layer, x=x)
    for _ in range(3):
        for expected, got in zip(first, run(layer, x=x), strict=True):
            np.testing.assert_array_equal(got, expected)
    outputs = first[0]
    for _ in range(150):
        np.testing.assert_array_equal(layer(x).numpy(), outputs)


def test_kernels_name_a_wrong_shape():
    """The ops check every input against T, B, units and the kind."""
    require_native()
    ops = _native.module()
    P, h = tf.zeros((T, B, 4 * U)), tf.zeros((B, U))
    empty, no_mask = tf.zeros((0,)), tf.zeros((0, 0), tf.bool)

    def forward(**changes):
        args = dict(
            p=P,
            states=[h, h],
            r=tf.zeros((U, 4 * U)),
            b_rec=empty,
            extra=[],
            rmask=empty,
            mask=no_mask,
            kind="lstm",
            gates="ifco",
        )
        ops.deeprnn_sequence_forward(**{**args, **changes})

    forward()  # the right shapes run
    for changes, message in [
        (dict(r=tf.zeros((U, 3 * U))), "R must have shape"),
        (dict(p=tf.zeros((T, B, 3 * U))), "P must have shape"),
        (dict(states=[h, tf.zeros((B + 1, U))]), "state must have shape"),
        (dict(states=[h]), "has 2 states, got 1"),
        (dict(mask=tf.ones((T + 1, B), tf.bool)), "mask must have shape"),
        (dict(rmask=tf.ones((B, U + 1))), "rmask must have shape"),
        (dict(extra=[tf.zeros((U,))]), "takes 0 extra weights, got 1"),
        (dict(kind="lstm2"), "unknown recurrence kind"),
    ]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            forward(**changes)
    with pytest.raises(tf.errors.InvalidArgumentError, match="saved must have shape"):
        ops.deeprnn_sequence_backward(
            dy=tf.zeros((T, B, U)),
            d_final=[h, h],
            saved=tf.zeros((T, B, 3 * U)),
            prev=[tf.zeros((T, B, U))] * 2,
            h0=h,
            r=tf.zeros((U, 4 * U)),
            extra=[],
            rmask=empty,
            mask=no_mask,
            kind="lstm",
            gates="ifco",
        )
