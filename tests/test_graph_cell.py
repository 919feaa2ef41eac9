"""GraphCell: genome parsing, the LSTM/GRU genomes against the library's
cells, an arbitrary genome against NumPy, training and `.keras` files."""

import random

import keras
import numpy as np
import pytest
from reference import sigmoid

from keras_deeprnn.cells import GraphCell
from keras_deeprnn.cells import GRUCell
from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.cells.graph import GRU_GENOME
from keras_deeprnn.cells.graph import LSTM_GENOME
from keras_deeprnn.cells.graph import format_genome
from keras_deeprnn.cells.graph import parse_genome
from keras_deeprnn.cells.graph import render


def _run(cell, x, weights):
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer(x)
    layer.set_weights(weights)
    return [np.asarray(t) for t in layer(x)]


def _random(rng, shapes):
    return [rng.uniform(-0.6, 0.6, s).astype("float32") for s in shapes]


def test_lstm_genome_is_lstm_np_and_keras_lstm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    weights = _random(rng, [(5, 16), (4, 16), (16,)])
    got = _run(GraphCell(LSTM_GENOME, 4), x, weights)
    for reference in (LSTMCell(4, variant="np"), keras.layers.LSTMCell(4)):
        want = _run(reference, x, weights)
        assert len(got) == len(want) == 3  # sequence, h, c
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=1e-5)


def test_gru_genome_is_gru_with_summed_gate_biases():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    kernel, recurrent, bias = _random(rng, [(5, 12), (4, 12), (2, 12)])
    # The documented mapping: [bx_z + bh_z, bx_r + bh_r, bx_h, bh_h].
    graph_bias = np.concatenate([bias[0, :8] + bias[1, :8], bias[0, 8:], bias[1, 8:]])
    got = _run(GraphCell(GRU_GENOME, 4), x, [kernel, recurrent, graph_bias])
    for reference in (GRUCell(4), keras.layers.GRUCell(4)):
        want = _run(reference, x, [kernel, recurrent, bias])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=1e-5)


# Every kind of weight: x, h, c and node terms, and biases starting at 1.1, 0.9.
GENOME = "a=relu(lin(x,c));c_t=add(mul(a,c),lin1.1(a,h));h_t=sub(tanh(c_t),sigmoid(lin0.9(x,h,a)))"


def _numpy_genome(x, W1, W3, U2, U3, V1, M2, M3, b1, b2, b3):
    """GENOME from its equations (lin nodes 1, 2, 3 in writing order)."""
    batch, steps, _ = x.shape
    units = U2.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        a = np.maximum(x[:, t] @ W1 + c @ V1 + b1, 0.0)
        c_new = a * c + (a @ M2 + h @ U2 + b2)
        h = np.tanh(c_new) - sigmoid(x[:, t] @ W3 + h @ U3 + a @ M3 + b3)
        c = c_new
        outputs.append(h)
    return np.stack(outputs, 1), h, c


def test_arbitrary_genome_matches_numpy_equations():
    rng = np.random.default_rng(2)
    d, u = 3, 4
    x = rng.normal(size=(2, 6, d))
    W1, W3 = _random(rng, [(d, u), (d, u)])
    U2, U3, V1, M2, M3 = _random(rng, [(u, u)] * 5)
    b1, b2, b3 = _random(rng, [(u,)] * 3)
    cell = GraphCell(GENOME, u)
    got = _run(
        cell,
        x.astype("float32"),
        [
            np.concatenate([W1, W3], 1),  # kernel: lin nodes 1, 3 read x
            np.concatenate([U2, U3], 1),  # recurrent_kernel: nodes 2, 3
            np.concatenate([b1, b2, b3]),  # bias: one block per lin node
            V1,  # cell_kernel: node 1 reads c
            np.concatenate([M2, M3], 1),  # hidden_kernel: nodes 2, 3 read a
        ],
    )
    assert [w.name for w in cell.weights] == [
        "kernel",
        "recurrent_kernel",
        "bias",
        "cell_kernel",
        "hidden_kernel",
    ]
    want = _numpy_genome(x, W1, W3, U2, U3, V1, M2, M3, b1, b2, b3)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_linear_biases_start_at_their_offsets():
    cell = GraphCell(GENOME, 3, bias_initializer="zeros")
    cell.build((None, 2))
    np.testing.assert_allclose(np.asarray(cell.bias), [0.0] * 3 + [1.1] * 3 + [0.9] * 3, atol=1e-7)
    lstm = GraphCell(LSTM_GENOME, 2)
    lstm.build((None, 2))
    np.testing.assert_array_equal(np.asarray(lstm.bias), [0, 0, 1, 1, 0, 0, 0, 0])


def test_format_and_render():
    for genome in (LSTM_GENOME, GRU_GENOME, GENOME):
        assert format_genome(*parse_genome(genome)) == genome
    assert format_genome(*parse_genome(" h_t = tanh( lin(x , h) ) ; ")) == ("h_t=tanh(lin(x,h))")
    assert render(LSTM_GENOME) == (
        "i = sigmoid(x_t W1 + h_{t-1} U1 + b1)\n"
        "f = sigmoid(x_t W2 + h_{t-1} U2 + b2)\n"
        "c_t = f * c_{t-1} + i * tanh(x_t W3 + h_{t-1} U3 + b3)\n"
        "h_t = sigmoid(x_t W4 + h_{t-1} U4 + b4) * tanh(c_t)\n"
        "(b2 starts at 1)"
    )
    assert render("h_t=mul(relu(lin(lin(x))),sub(h,add(h,lin(h))))") == (
        "h_t = relu((x_t W1 + b1) M2 + b2) * (h_{t-1} - (h_{t-1} + h_{t-1} U3 + b3))"
    )
    # A node used twice gets a name; an output can repeat another.
    nodes = {
        "#0": ("lin", ("x", "h")),
        "#1": ("tanh", ("#0",)),
        "#2": ("mul", ("#1", "#1")),
        "#9": ("tanh", ("h",)),
    }
    assert format_genome(nodes, {"h_t": "#2"}) == "v1=tanh(lin(x,h));h_t=mul(v1,v1)"
    assert render("y=tanh(lin(x,c));c_t=y;h_t=y") == (
        "y = tanh(x_t W1 + c_{t-1} V1 + b1)\nc_t = y\nh_t = y"
    )


@pytest.mark.parametrize(
    "genome, message",
    [
        ("h_t=tanh(lin(x,h)", "expected ')'"),
        ("h_t=foo(lin(x))", "unknown operation 'foo'"),
        ("a=tanh(b);b=tanh(a);h_t=add(a,lin(x))", "cycle a -> b -> a"),
        ("h_t=tanh(add(lin(x),q))", "uses 'q', which is not defined"),
        ("z=tanh(lin(x,h))", "defines no h_t"),
        ("h_t=tanh(lin(x,h));c_t=tanh(lin(h))", "never reads c"),
        ("h_t=tanh(lin(x,c))", "defines no c_t"),
        ("q=tanh(h);h_t=tanh(lin(x,h))", "'q' is defined but not used"),
        ("h_t=tanh(x)", "can only enter through lin"),
        ("h_t=add(lin(x))", "add(...) takes 2 arguments, got 1"),
        ("h_t=tanh(lin(x,x))", "repeats an argument"),
        ("y=h;h_t=tanh(lin(x,y))", "only repeats"),
        ("h_t=h", "computes nothing"),
        ("x=lin(h);h_t=tanh(lin(x))", "'x' is reserved"),
        ("h_t=tanh(lin(x,h));h_t=lin(x)", "defined twice"),
        ("h_t=tanh(lin(h))", "never read x"),
        ("h_t=tanh(lin(x)) tanh", "expected ';'"),
    ],
)
def test_malformed_genomes_are_rejected_with_the_reason(genome, message):
    with pytest.raises(ValueError, match="Malformed genome") as info:
        GraphCell(genome, 4)
    assert message in str(info.value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="takes no `activation`"):
        GraphCell(GRU_GENOME, 4, activation="relu")
    with pytest.raises(ValueError, match="must be a string"):
        GraphCell(None, 4)
    with pytest.raises(ValueError, match="units"):
        GraphCell(GRU_GENOME, 0)


def test_mutant_trains_and_round_trips_through_keras_file(tmp_path):
    from tuning.evolution import mutate

    genome = mutate(LSTM_GENOME, random.Random(4))
    assert genome != LSTM_GENOME
    cell = GraphCell(genome, 6, dropout=0.1, recurrent_dropout=0.1, seed=3)
    assert GraphCell.from_config(cell.get_config()).get_config() == cell.get_config()
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.RNN(cell), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    before = [np.array(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    moved = [not np.allclose(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights)]
    assert any(moved[:-2])  # the cell's weights, not only the Dense layer's
    path = tmp_path / "mutant.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.layers[0].cell.genome == genome
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_mutant_exports_to_tflite_with_builtin_ops(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from keras_deeprnn.export import export_tflite
    from keras_deeprnn.export import verify_tflite
    from tuning.evolution import mutate

    genome = mutate(LSTM_GENOME, random.Random(4))
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.RNN(GraphCell(genome, 5), return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    path = tmp_path / "mutant.tflite"
    export_tflite(model, path, mode="sequence", max_length=6)
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
    report = verify_tflite(model, path, x)
    assert report["builtin_only"] and report["max_abs_diff"] < 1e-5
