"""`keras_deeprnn._compat`: the behaviour of each private API relied on, so
that a Keras, TensorFlow or KerasTuner release that changes one fails here."""

import inspect
import socket

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from keras.src.backend.tensorflow import trainer

from keras_deeprnn import _compat
from keras_deeprnn.cells import GRUCell


def test_dropout_rnn_cell_one_mask_per_call_of_keras_rnn():
    cell = GRUCell(3, dropout=0.5, recurrent_dropout=0.5, seed=1)
    assert isinstance(cell, _compat.DropoutRNNCell)
    x, h = ops.ones((4, 2)), ops.ones((4, 3))
    mask = cell.get_dropout_mask(x)
    assert cell.get_dropout_mask(x) is mask
    assert set(np.unique(ops.convert_to_numpy(mask))) <= {0.0, 2.0}
    recurrent = cell.get_recurrent_dropout_mask(h)
    assert cell.get_recurrent_dropout_mask(h) is recurrent
    # keras.layers.RNN resets the masks of a DropoutRNNCell after its call.
    keras.layers.RNN(cell)(ops.ones((4, 5, 2)), training=True)
    assert cell.get_dropout_mask(x) is not mask
    assert cell.get_recurrent_dropout_mask(h) is not recurrent
    cell.reset_dropout_mask()
    cell.reset_recurrent_dropout_mask()
    assert cell.get_dropout_mask(x) is not mask


def test_backend_rnn_signature_and_result():
    names = set(inspect.signature(_compat.backend_rnn).parameters)
    assert {
        "go_backwards",
        "mask",
        "input_length",
        "zero_output_for_mask",
        "return_all_outputs",
    } <= names

    def step(x, states):
        total = states[0] + x
        return total, [total]

    inputs = ops.ones((2, 3, 1))
    mask = ops.convert_to_tensor([[True, True, False]] * 2)
    last, outputs, states = _compat.backend_rnn(
        step,
        inputs,
        [ops.zeros((2, 1))],
        go_backwards=False,
        mask=mask,
        input_length=3,
        zero_output_for_mask=True,
        return_all_outputs=True,
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs)[0, :, 0], [1, 2, 0])
    np.testing.assert_array_equal(ops.convert_to_numpy(states[0])[:, 0], [2, 2])
    assert ops.shape(last) == (2, 1)


def test_backend_lstm_and_gru_arguments_and_no_cudnn_without_a_gpu():
    lstm = list(inspect.signature(_compat.backend_lstm).parameters)
    gru = list(inspect.signature(_compat.backend_gru).parameters)
    keywords = [
        "kernel",
        "recurrent_kernel",
        "bias",
        "activation",
        "recurrent_activation",
        "return_sequences",
        "go_backwards",
    ]
    assert lstm[: 4 + len(keywords)] == [
        "inputs",
        "initial_state_h",
        "initial_state_c",
        "mask",
        *keywords,
    ]
    assert gru[: 3 + len(keywords)] == ["inputs", "initial_state", "mask", *keywords]
    assert "reset_after" in gru
    x, h = ops.ones((2, 3, 4)), ops.zeros((2, 5))
    weights = dict(
        kernel=ops.ones((4, 20)),
        recurrent_kernel=ops.ones((5, 20)),
        activation=keras.activations.tanh,
        recurrent_activation=keras.activations.sigmoid,
    )
    # No bias: never cuDNN, GPU or not.
    with pytest.raises(NotImplementedError):
        _compat.backend_lstm(x, h, h, None, bias=None, **weights)
    if tf.config.list_logical_devices("GPU"):
        return
    with pytest.raises(NotImplementedError):
        _compat.backend_lstm(x, h, h, None, bias=ops.zeros((20,)), **weights)
    weights.update(kernel=ops.ones((4, 15)), recurrent_kernel=ops.ones((5, 15)))
    with pytest.raises(NotImplementedError):
        _compat.backend_gru(x, h, None, bias=ops.zeros((2, 15)), reset_after=True, **weights)


@pytest.mark.skipif(not tf.config.list_logical_devices("GPU"), reason="needs a GPU")
@pytest.mark.parametrize("go_backwards", [False, True])
def test_backend_lstm_on_a_gpu_zero_outputs_after_the_end_and_h_last(go_backwards):
    """The real cuDNN against Keras's LSTM without it, `zero_output_for_mask`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = np.arange(6) < np.array([[6], [4], [1]])
    stock = keras.layers.LSTM(
        5,
        return_sequences=True,
        return_state=True,
        use_cudnn=False,
        zero_output_for_mask=True,
        go_backwards=go_backwards,
    )
    expected, h, c = stock(x, mask=mask)
    cell = stock.cell
    last, outputs, states = _compat.backend_lstm(
        x,
        ops.zeros((3, 5)),
        ops.zeros((3, 5)),
        mask,
        kernel=cell.kernel,
        recurrent_kernel=cell.recurrent_kernel,
        bias=cell.bias,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        return_sequences=True,
        go_backwards=go_backwards,
    )
    for got, want in zip([outputs, last, *states], [expected, h, h, c]):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_record_says_whether_a_tape_watches():
    assert not _compat.record.could_possibly_record()
    with tf.GradientTape() as tape:
        assert _compat.record.could_possibly_record()
        with tape.stop_recording():
            assert not _compat.record.could_possibly_record()


def test_in_save_context_only_while_saving(tmp_path):
    seen = []

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def f(self, x):
            seen.append(_compat.in_save_context())
            return x

    assert not _compat.in_save_context()
    tf.saved_model.save(Module(), str(tmp_path / "saved"))
    assert seen and all(seen)


def test_in_xla_context_only_under_jit_compile():
    seen = {}

    def probe(name):
        def f(x):
            seen[name] = _compat.in_xla_context()
            return x

        return f

    tf.function(probe("graph"))(tf.constant(1.0))
    tf.function(probe("xla"), jit_compile=True)(tf.constant(1.0))
    assert not _compat.in_xla_context()
    assert seen == {"graph": False, "xla": True}


def _compiled_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices(
        (np.ones((4, 2), "float32"), np.ones((4, 1), "float32"))
    ).batch(2)
    return model, data


def test_multi_worker_fit_patches_only_inside_the_block():
    original = trainer._collective_all_reduce_multi_worker
    model, data = _compiled_model()
    with _compat.multi_worker_fit(model, data):
        assert trainer._collective_all_reduce_multi_worker is not original
        assert model.built and "_maybe_symbolic_build" in vars(model)
        model.fit(data, epochs=1, verbose=0, shuffle=False)
    assert trainer._collective_all_reduce_multi_worker is original
    assert "_maybe_symbolic_build" not in vars(model)


def test_multi_worker_fit_restores_after_an_exception():
    original = trainer._collective_all_reduce_multi_worker
    model, data = _compiled_model()
    with pytest.raises(RuntimeError, match="inside"):
        with _compat.multi_worker_fit(model, data):
            raise RuntimeError("inside")
    assert trainer._collective_all_reduce_multi_worker is original
    assert "_maybe_symbolic_build" not in vars(model)


def test_input_layer_of_model_inputs():
    frames = keras.Input((None, 3), name="frames")
    functional = keras.Model(frames, keras.layers.Dense(1)(frames))
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    for model in (functional, sequential):
        layer = _compat.input_layer(model.inputs[0])
        assert isinstance(layer, keras.layers.InputLayer)
    assert _compat.input_layer(functional.inputs[0]).name == "frames"


def test_tflite_ops_names_each_node():
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def f(x):
        return tf.tanh(x + 1.0)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()])
    interpreter = interpreter_module.Interpreter(model_content=converter.convert())
    assert _compat.tflite_ops(interpreter) == ["ADD", "TANH"]


def _build(hp):
    hp.Int("units", 1, 4)
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])


def _chief(tmp_path, monkeypatch):
    """A tuner outside KerasTuner's distributed mode, whose oracle we serve."""
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    return keras_tuner.RandomSearch(
        _build,
        objective="loss",
        max_trials=1,
        seed=0,
        directory=str(tmp_path),
        project_name="chief",
    )


def test_oracle_service_and_requeue(tmp_path, monkeypatch):
    """A KerasTuner worker (its tuner's oracle becomes a gRPC client) talks
    to `serve_oracle`; a requeued trial goes to the next worker that asks."""
    chief = _chief(tmp_path, monkeypatch)
    server, servicer, port = _compat.serve_oracle(chief.oracle, "127.0.0.1", 0)
    try:
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        client = keras_tuner.RandomSearch(
            _build, objective="loss", max_trials=1, directory=str(tmp_path), project_name="worker"
        ).oracle
        trial = client.create_trial("worker0")
        assert chief.oracle.ongoing_trials["worker0"].trial_id == trial.trial_id

        running = chief.oracle.ongoing_trials.pop("worker0")
        running.status = "INVALID"
        _compat.requeue_trial(chief.oracle, running)
        assert _compat.queued_trials(chief.oracle) == [trial.trial_id]
        assert (tmp_path / "chief" / f"trial_{trial.trial_id}" / "trial.json").is_file()

        again = client.create_trial("worker1")
        assert again.trial_id == trial.trial_id and not _compat.queued_trials(chief.oracle)
        client.update_trial(again.trial_id, {"loss": 1.0})
        again.status = "COMPLETED"
        client.end_trial(again)
        assert chief.oracle.trials[trial.trial_id].status == "COMPLETED"
        assert not servicer.stop_triggered
        assert client.create_trial("worker1").status == "STOPPED"
        assert servicer.stop_triggered
    finally:
        server.stop(grace=None)


def test_serve_oracle_refuses_an_address_it_cannot_bind(tmp_path, monkeypatch):
    chief = _chief(tmp_path, monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}"):
            _compat.serve_oracle(chief.oracle, "127.0.0.1", port)
