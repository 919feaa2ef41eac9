"""keras_deeprnn.layers.RNN (hoisted projection, fused kernels) against stock
keras.layers.RNN driving the same cell, and against Keras's built-in layers."""

import itertools
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from cell_zoo import CONFIGS as ZOO
from cell_zoo import IDS
from keras import ops

from keras_deeprnn import _compat
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


def test_without_a_compiler_the_tensorflow_loops_run_and_a_warning_says_why(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("KERAS_DEEPRNN_CACHE", str(tmp_path / "cache"))
    for key, value in {"tried": False, "module": None, "error": None}.items():
        monkeypatch.setitem(_native._state, key, value)
    with pytest.warns(UserWarning, match="no-such-compiler"):
        stock, ours = pair(zoo("lstm-np"), return_sequences=True)
    assert_agree(stock, ours, mask=MASK)
    assert not _native.usable(tf.float32)
    assert not list((tmp_path / "cache").glob("*.so"))
    # The build said what it was doing, on one line.
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "keras_deeprnn: comp" in x]
    assert "compiling the C++ kernels" in line and line.endswith("... failed")


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


# -- the GPU path: Keras's cuDNN loops, simulated on the CPU -----------------

# Right-padding, the one mask cuDNN reads (as sequence lengths).
RIGHT_PADDED = np.ones((B, T), bool)
RIGHT_PADDED[0, 4:] = False
RIGHT_PADDED[2, 1:] = False
STOCK = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


class FakeCudnn:
    """A GPU for `keras_deeprnn.layers.RNN`, with `_compat.backend_lstm` /
    `backend_gru` computed as cuDNN does by Keras's own layers without
    cuDNN: zero outputs after each sequence's end, the final h as last
    output; a mask must be right-padding. `decline=True`: they raise
    NotImplementedError, as Keras's do where cuDNN does not apply."""

    def __init__(self, monkeypatch, decline=False):
        self.calls = []
        self.decline = decline
        # Built here: a traced function may not create their variables.
        self.layers = {}
        for kind, go_backwards in itertools.product(STOCK, [False, True]):
            layer = STOCK[kind](
                U,
                return_sequences=True,
                return_state=True,
                go_backwards=go_backwards,
                zero_output_for_mask=True,
                use_cudnn=False,
            )
            layer.build((None, None, D))
            self.layers[kind, go_backwards] = layer
        monkeypatch.setattr(_native, "has_gpu", lambda: True)
        monkeypatch.setattr(_compat, "backend_lstm", self.lstm)
        monkeypatch.setattr(_compat, "backend_gru", self.gru)

    def lstm(self, inputs, initial_state_h, initial_state_c, mask, **kwargs):
        return self._run("lstm", inputs, [initial_state_h, initial_state_c], mask, **kwargs)

    def gru(self, inputs, initial_state, mask, reset_after, **kwargs):
        assert reset_after
        return self._run("gru", inputs, [initial_state], mask, **kwargs)

    def _run(
        self,
        kind,
        inputs,
        states,
        mask,
        kernel,
        recurrent_kernel,
        bias,
        activation,
        recurrent_activation,
        return_sequences,
        go_backwards,
    ):
        self.calls.append(
            dict(kind=kind, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
        )
        if self.decline:
            raise NotImplementedError
        if mask is not None:
            lengths = tf.reduce_sum(tf.cast(mask, "int32"), 1)
            tf.debugging.assert_equal(mask, tf.sequence_mask(lengths, T))
        assert (activation, recurrent_activation) == (
            keras.activations.tanh,
            keras.activations.sigmoid,
        )
        layer = self.layers[kind, go_backwards]
        # Our variables' values, so that gradients reach them.
        (outputs, *final), _ = layer.stateless_call(
            [ops.convert_to_tensor(w) for w in (kernel, recurrent_kernel, bias)],
            [v.value for v in layer.non_trainable_variables],
            inputs,
            initial_state=states,
            mask=mask,
        )
        last = final[0]
        return last, outputs if return_sequences else last[:, None], final


def stock_and_ours(kind, **kwargs):
    """Keras's LSTM or GRU without cuDNN, and our layer over the equal cell
    with the same weights."""
    stock = STOCK[kind](U, use_cudnn=False, **kwargs)
    cell = cells.LSTMCell(U) if kind == "lstm" else cells.GRUCell(U)
    ours = RNN(cell, **kwargs)
    stock(X), ours(X)
    stock.set_weights(
        [RNG.normal(size=w.shape).astype("float32") * 0.5 for w in stock.get_weights()]
    )
    ours.set_weights(stock.get_weights())
    return stock, ours


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("mask", [None, RIGHT_PADDED], ids=["unmasked", "right-padded"])
@pytest.mark.parametrize(
    "config",
    [
        dict(return_sequences=True),
        dict(return_state=True),
        dict(return_sequences=True, zero_output_for_mask=True),
        dict(zero_output_for_mask=True),
        dict(return_sequences=True, return_state=True, go_backwards=True),
    ],
    ids=["sequences", "last", "sequences-zero", "last-zero", "backwards"],
)
def test_on_a_gpu_the_np_lstm_and_the_gru_run_cudnn(kind, mask, config, monkeypatch):
    """Outputs, states and gradients equal Keras's layer without cuDNN,
    including `keras.layers.RNN`'s outputs after a sequence's end, where
    cuDNN's differ."""
    stock, ours = stock_and_ours(kind, **config)
    fake = FakeCudnn(monkeypatch)
    assert_agree(stock, ours, mask=mask)
    assert len(fake.calls) == 2  # without and with a tape
    cell = ours.cell
    for call in fake.calls:
        assert call["kind"] == kind
        assert call["kernel"] is cell.kernel
        assert call["recurrent_kernel"] is cell.recurrent_kernel
        assert call["bias"] is cell.bias


@pytest.mark.parametrize("name", IDS)
def test_on_a_gpu_only_the_cells_cudnn_computes_ask_for_it(name, monkeypatch):
    fake = FakeCudnn(monkeypatch, decline=True)
    ours = pair(zoo(name))[1]  # called once
    assert ours.supports_jit == (ZOO[name].cudnn is None)
    assert [c["kind"] for c in fake.calls] == [ZOO[name].cudnn] * bool(ZOO[name].cudnn)


@pytest.mark.parametrize(
    "cell, layer",
    [
        (dict(recurrent_dropout=0.2), {}),
        (dict(use_bias=False), {}),
        (dict(activation="relu"), {}),
        (dict(recurrent_activation="hard_sigmoid"), {}),
        ({}, dict(fused=False)),
        ({}, dict(unroll=True)),
    ],
)
def test_on_a_gpu_these_lstms_keep_their_loops(cell, layer, monkeypatch):
    fake = FakeCudnn(monkeypatch)
    RNN(cells.LSTMCell(U, **cell), **layer)(X)
    assert not fake.calls


def test_on_a_gpu_exports_and_xla_keep_the_loops(monkeypatch):
    fake = FakeCudnn(monkeypatch)
    layer = RNN(cells.GRUCell(U))
    with _native.off():
        layer(X)
    tf.function(layer, jit_compile=True)(X)
    assert not fake.calls


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_where_cudnn_does_not_apply_the_loop_runs(kind, monkeypatch):
    """Keras's NotImplementedError, and masks other than right-padding
    (cuDNN reads lengths): the results of the layer's own loop."""
    config = dict(return_sequences=True, return_state=True)
    stock, ours = stock_and_ours(kind, **config)
    fake = FakeCudnn(monkeypatch, decline=True)
    assert_agree(stock, ours, mask=RIGHT_PADDED)
    assert len(fake.calls) == 2
    fake = FakeCudnn(monkeypatch)
    assert_agree(stock, ours, mask=MASK)
    assert not fake.calls


@pytest.mark.parametrize("return_sequences", [False, True])
def test_in_a_traced_function_each_batch_s_mask_picks_the_path(return_sequences, monkeypatch):
    """One graph holds both paths (outputs of different shapes without
    `return_sequences`); the fake's check of right-padding fails the run
    where cuDNN would get another mask."""
    stock, ours = stock_and_ours("lstm", return_sequences=return_sequences)
    fake = FakeCudnn(monkeypatch)
    call = tf.function(lambda x, mask: ours(x, mask=mask))
    for mask in (RIGHT_PADDED, MASK):
        np.testing.assert_allclose(call(X, mask), stock(X, mask=mask), atol=1e-5)
    assert len(fake.calls) == 1  # traced once


def test_without_a_gpu_the_cudnn_loops_are_never_asked(monkeypatch):
    calls = []
    for name in ("backend_lstm", "backend_gru"):
        real = getattr(_compat, name)

        def record(*args, real=real, **kwargs):
            calls.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(_compat, name, record)
    assert not _native.has_gpu()
    for cell in (cells.LSTMCell(U), cells.GRUCell(U)):
        layer = RNN(cell)
        layer(X)
        assert layer.supports_jit
    assert not calls
