"""Language models: the tied embedding, the builder, stateful truncated BPTT
over streams (carried and reset states), the metric, the time budget."""

import math

import keras
import numpy as np
import pytest

from apps.common import runner
from apps.text.model import compile_model
from apps.text.model import score
from keras_deeprnn.data.streams import stream_dataset
from keras_deeprnn.layers import TiedEmbedding
from keras_deeprnn.models import language_model
from keras_deeprnn.training import ResetStates
from keras_deeprnn.training import TimeBudget
from keras_deeprnn.training import stateful_clone

V = 11


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _nll(logits, targets):
    """-log p(target) per position, NumPy, float64."""
    lp = _log_softmax(np.asarray(logits, np.float64))
    return -np.take_along_axis(lp, np.asarray(targets)[..., None], -1)[..., 0]


# -- the tied embedding ------------------------------------------------------------


def test_tied_embedding_both_ways_against_numpy():
    layer = TiedEmbedding(V, 4, output_bias_initializer="random_normal")
    ids = np.array([[1, 5, 10]], "int32")
    e = np.asarray(layer(ids))
    E, b = (np.asarray(w) for w in layer.weights)
    assert np.array_equal(e, E[ids])
    h = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(layer(h, reverse=True), h @ E.T + b, rtol=1e-5, atol=1e-6)
    assert [w.name for w in layer.weights] == ["embeddings", "output_bias"]
    restored = TiedEmbedding.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()


def test_tied_model_shares_one_matrix_and_its_gradient_sums_both_uses():
    import tensorflow as tf

    model = language_model(V, units=6, cell="gru", tie_embeddings=True, embedding_dim=6)
    untied = language_model(V, units=6, cell="gru", embedding_dim=6)
    # Untied: a Dense(V) of 6 V + V; tied: only the output bias V.
    assert untied.count_params() - model.count_params() == 6 * V
    embedding = model.get_layer("embedding")
    ids = np.array([[1, 2, 3]], "int32")
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(model(ids)[..., 4])
    (grad,) = tape.gradient(loss, [embedding.embeddings])
    grad = np.asarray(grad)
    # Row 4 (never an input) gets a gradient through the output only; rows
    # 1-3 through both uses; the other rows through neither.
    assert np.any(grad[4]) and np.any(grad[1])
    assert not np.any(grad[[0, 5, 6, 7, 8, 9, 10]])


@pytest.mark.parametrize(
    "kind, tie",
    [("rnn", False), ("dt", True), ("dts", False), ("dot", True), ("dots", False), ("srnn", True)],
)
def test_every_kind_builds(kind, tie):
    model = language_model(
        V, units=8, kind=kind, cell="lstm", embedding_dim=5, tie_embeddings=tie, dropout=0.1
    )
    y = model(np.zeros((2, 4), "int32"))
    assert tuple(y.shape) == (2, 4, V)
    restored = keras.Model.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(restored(np.ones((2, 4), "int32")), model(np.ones((2, 4), "int32")))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "deep"}, "Unknown kind"),
        ({"dropout": 1.0}, "dropout"),
        ({"stateful": True}, "batch_size"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"cell": "mut1", "kind": "dt"}, "deep transition"),
    ],
)
def test_language_model_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        language_model(V, units=4, **kwargs)


# -- stateful truncated BPTT ----------------------------------------------------


def _model(kind="srnn", cell="lstm"):
    return language_model(V, units=8, kind=kind, cell=cell, embedding_dim=5, tie_embeddings=True)


@pytest.mark.parametrize("kind, cell", [("srnn", "lstm"), ("dt", "gru"), ("rnn", "lstm-vanilla")])
def test_stateful_chunks_equal_one_long_sequence(kind, cell):
    model = _model(kind, cell)
    ids = np.random.default_rng(0).integers(0, V, (3, 23)).astype("int32")
    full = np.asarray(model(ids))
    stateful = stateful_clone(model, batch_size=3)
    chunks = [np.asarray(stateful(ids[:, s : s + 5])) for s in range(0, 23, 5)]
    np.testing.assert_allclose(np.concatenate(chunks, 1), full, rtol=1e-5, atol=1e-5)
    back = stateful_clone(stateful, stateful=False)
    assert back.input_shape == (None, None)
    np.testing.assert_allclose(back(ids), full, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradients_after_a_carried_state_match_keras_own_loop(cell):
    """The C++ kernels' gradients of a window that starts from carried
    (non-zero) states, against keras.layers.RNN's own loop over the same
    cell and weights."""
    import tensorflow as tf

    from keras_deeprnn import cells
    from keras_deeprnn.layers import RNN

    x = np.random.default_rng(5).normal(size=(3, 14, 4)).astype("float32")
    layers = [
        kind(cells.get(cell, 6), return_sequences=True, stateful=True)
        for kind in (keras.layers.RNN, RNN)
    ]
    grads = []
    for layer in layers:
        layer(x[:, :7])  # builds
        if layer is layers[1]:
            layer.set_weights(layers[0].get_weights())
        layer.reset_states()
        layer(x[:, :7])  # the first window leaves its states
        assert np.any(np.asarray(layer.states[0]))
        with tf.GradientTape() as tape:
            y = layer(x[:, 7:])
            loss = tf.reduce_sum(y * np.cos(np.arange(y.shape[-1])))
        grads.append([np.asarray(g) for g in tape.gradient(loss, layer.trainable_weights)])
    for stock, ours in zip(*grads):
        np.testing.assert_allclose(ours, stock, rtol=1e-4, atol=1e-5)


def test_stateful_clone_refuses_without_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        stateful_clone(_model())


def test_training_carries_states_and_resets_them_each_epoch():
    """With a learning rate of 0 the weights stay put, so each window's
    training loss must be the cross-entropy of those positions in the
    whole stream, computed in one go: only carried states give that. Epoch
    2 must repeat epoch 1 exactly: only reset states give that."""
    model = _model()
    ids = np.random.default_rng(1).integers(0, V, 2 * 20 + 1)
    trainer = stateful_clone(model, batch_size=2)
    trainer.compile(
        keras.optimizers.SGD(0.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[],
    )
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"]))
    )
    trainer.fit(
        stream_dataset(ids, 2, 5),
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[ResetStates(), record],
    )
    # Two streams of 20 predictions, 4 windows each; `fit` logs running means.
    steps = 4
    per_window = [losses[0]] + [(j + 1) * losses[j] - j * losses[j - 1] for j in range(1, steps)]
    streams = np.stack([ids[:20], ids[20:40]])
    targets = np.stack([ids[1:21], ids[21:41]])
    nll = _nll(model(streams.astype("int32")), targets)
    expected = [nll[:, 5 * j : 5 * j + 5].mean() for j in range(steps)]
    np.testing.assert_allclose(per_window, expected, rtol=1e-4)
    np.testing.assert_allclose(losses[steps:], losses[:steps], rtol=1e-6)


def test_reset_states_at_epoch_and_evaluation_start():
    trainer = stateful_clone(_model(), batch_size=2)
    reset = ResetStates()
    reset.set_model(trainer)
    trainer(np.ones((2, 4), "int32"))
    assert all(np.any(np.asarray(s)) for layer in reset.layers for s in layer.states)
    for begin in (lambda: reset.on_epoch_begin(1), reset.on_test_begin, reset.on_predict_begin):
        trainer(np.ones((2, 4), "int32"))
        begin()
        assert not any(np.any(np.asarray(s)) for layer in reset.layers for s in layer.states)


def test_random_resets_zero_whole_streams_in_every_layer():
    trainer = stateful_clone(_model(), batch_size=6)
    reset = ResetStates(probability=0.5, seed=3)
    reset.set_model(trainer)
    trainer(np.ones((6, 4), "int32"))
    before = [np.asarray(v) for v in reset.state_variables()]
    assert len(before) == 4 and all(np.all(np.any(b, axis=1)) for b in before)
    reset.on_train_batch_begin(0)
    after = [np.asarray(v) for v in reset.state_variables()]
    zeroed = ~np.any(after[0], axis=1)
    expected = np.random.default_rng(3).random(6) < 0.5
    assert np.array_equal(zeroed, expected) and 0 < zeroed.sum() < 6
    for b, a in zip(before, after):
        assert not np.any(a[zeroed]) and np.array_equal(a[~zeroed], b[~zeroed])
    with pytest.raises(ValueError, match="probability"):
        ResetStates(probability=1.0)


def test_reset_states_needs_a_stateful_model():
    with pytest.raises(ValueError, match="stateful"):
        ResetStates().set_model(_model())


# -- the metric -------------------------------------------------------------------


@pytest.mark.parametrize("streams, window", [(1, 1024), (1, 7), (3, 4)])
def test_score_is_the_mean_cross_entropy_of_numpy(streams, window):
    model = _model()
    ids = np.random.default_rng(2).integers(0, V, 61)
    if streams == 1:
        nll = _nll(model(ids[None, :-1].astype("int32")), ids[None, 1:])
        expected = nll.mean()
    else:  # each of 3 streams of 20 predictions starts from zero states
        x = ids[:60].reshape(3, 20).astype("int32")
        y = ids[1:61].reshape(3, 20)
        expected = _nll(model(x), y).mean()
    assert score(model, ids, streams=streams, window=window) == pytest.approx(expected, rel=1e-5)


def test_scores_in_bits_and_perplexity():
    from apps.text.model import scores

    assert scores(math.log(2), "char") == {"nats": math.log(2), "bpc": pytest.approx(1.0)}
    assert scores(math.log(100), "word")["perplexity"] == pytest.approx(100)


# -- the time budget ----------------------------------------------------------------


def test_time_budget_stops_after_the_batch_that_spends_it():
    trainer = stateful_clone(language_model(V, units=4, cell="gru"), batch_size=2)
    compile_model(trainer, lr=1e-3)
    budget = TimeBudget(1e-9, cosine_from=1e-3)
    history = trainer.fit(
        stream_dataset(np.arange(200) % V, 2, 5),
        validation_data=stream_dataset(np.arange(50) % V, 2, 5),
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[ResetStates(), budget],
    )
    assert budget.stopped == (1, 1)
    assert len(history.epoch) == 1 and "val_nats" in history.history  # validated as usual
    assert float(trainer.optimizer.learning_rate) == pytest.approx(1e-4)


def test_time_budget_cosine():
    budget = TimeBudget(60, cosine_from=2e-3, final_fraction=0.1)
    assert budget.learning_rate(0) == pytest.approx(2e-3)
    assert budget.learning_rate(0.5) == pytest.approx(1.1e-3)
    assert budget.learning_rate(1) == budget.learning_rate(2) == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="seconds"):
        TimeBudget(0)


def test_time_budget_refuses_a_schedule():
    trainer = stateful_clone(language_model(V, units=4, cell="gru"), batch_size=2)
    compile_model(trainer, lr=runner.learning_rate(1e-3, "cosine", decay_steps=10))
    with pytest.raises(ValueError, match="float learning rate"):
        trainer.fit(
            stream_dataset(np.arange(30) % V, 2, 5),
            epochs=1,
            verbose=0,
            callbacks=[TimeBudget(60, cosine_from=1e-3)],
        )
