"""Decoders and the Seq2Seq model of keras_deeprnn.seq2seq: the decoders
against NumPy loops written from the papers' equations, the streaming step
against teacher forcing, padding, the searches against the model's own
teacher-forced probabilities, training, losses and saving."""

import keras
import numpy as np
import pytest
from test_seq2seq_attention import reference as attention_reference

from keras_deeprnn.cells import GRUCell
from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.seq2seq import AttentionCell
from keras_deeprnn.seq2seq import BahdanauAttention
from keras_deeprnn.seq2seq import FastAttentionDecoder
from keras_deeprnn.seq2seq import LuongAttention
from keras_deeprnn.seq2seq import MaskedAccuracy
from keras_deeprnn.seq2seq import MaskedCrossEntropy
from keras_deeprnn.seq2seq import MaskedPerplexity
from keras_deeprnn.seq2seq import Seq2Seq
from keras_deeprnn.seq2seq import gnmt_length_penalty


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_step(cell, x, h):
    """Cho et al.'s GRU with the reset gate after the recurrent product."""
    K, R, b = (np.asarray(w, np.float64) for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    u = cell.units
    xp, hp = x @ K + b[0], h @ R + b[1]
    z = sigmoid(xp[:, :u] + hp[:, :u])
    r = sigmoid(xp[:, u : 2 * u] + hp[:, u : 2 * u])
    n = np.tanh(xp[:, 2 * u :] + r * hp[:, 2 * u :])
    return z * h + (1 - z) * n


def lstm_step(cell, x, h, c):
    """The LSTM with forget gate, gates in Keras's order i, f, c, o."""
    K, R, b = (np.asarray(w, np.float64) for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    u = cell.units
    a = x @ K + h @ R + b
    i, f, g, o = (a[:, k * u : (k + 1) * u] for k in range(4))
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def attend(attention, score, query, memory, mask):
    context, weights = attention_reference(attention, score, query[:, None], memory, mask)
    return context[:, 0], weights[:, 0]


@pytest.mark.parametrize("style", ["bahdanau", "luong"])
def test_attention_cell_in_stock_rnn_matches_numpy(style):
    rng = np.random.default_rng(0)
    B, T, S, E, D, U = 3, 4, 5, 3, 6, 4
    attention = BahdanauAttention(5) if style == "bahdanau" else LuongAttention("general")
    score = "concat" if style == "bahdanau" else "general"
    cell = AttentionCell(GRUCell(U), attention, memory_size=D, style=style, output_units=3)
    memory = rng.normal(size=(B, S, D)).astype("float32")
    mask = np.ones((B, S), bool)
    mask[1, 3:] = False
    h0 = rng.normal(size=(B, U)).astype("float32")
    x = rng.normal(size=(B, T, E)).astype("float32")
    rnn = keras.layers.RNN(cell, return_sequences=True)
    y = rnn(x, initial_state=cell.initial_states(memory, mask, [h0]))
    # The reference, step by step from the equations.
    Wc = np.asarray(cell.readout.kernel, np.float64)
    s = h0.astype(np.float64)
    feedback = s if style == "bahdanau" else np.zeros((B, 3))
    outputs = []
    for t in range(T):
        if style == "bahdanau":
            c, _ = attend(attention, score, feedback, memory, mask)
            s = gru_step(cell.cell, np.concatenate([x[:, t], c], -1), s)
            out = np.tanh(np.concatenate([c, s], -1) @ Wc)
            feedback = s
        else:
            s = gru_step(cell.cell, np.concatenate([x[:, t], feedback], -1), s)
            c, _ = attend(attention, score, s, memory, mask)
            out = np.tanh(np.concatenate([c, s], -1) @ Wc)
            feedback = out
        outputs.append(out)
    np.testing.assert_allclose(np.asarray(y), np.stack(outputs, 1), atol=2e-5)


def test_fast_decoder_matches_numpy():
    rng = np.random.default_rng(1)
    B, T, S, E, D, U = 2, 5, 4, 3, 4, 4
    attention = LuongAttention("dot")
    decoder = FastAttentionDecoder([LSTMCell(U), LSTMCell(U)], attention, memory_size=D)
    memory = rng.normal(size=(B, S, D)).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    states = [rng.normal(size=(B, U)).astype("float32") for _ in range(4)]
    x = rng.normal(size=(B, T, E)).astype("float32")
    y, weights = decoder(x, states, memory, memory, mask, return_attention=True)
    Wc = np.asarray(decoder.readout.kernel, np.float64)
    h1, c1, h2, c2 = (s.astype(np.float64) for s in states)
    outputs, all_weights = [], []
    for t in range(T):
        h1, c1 = lstm_step(decoder.cells[0], x[:, t], h1, c1)
        h2, c2 = lstm_step(decoder.cells[1], h1, h2, c2)
        c, a = attend(attention, "dot", h2, memory, mask)
        outputs.append(np.tanh(np.concatenate([c, h2], -1) @ Wc))
        all_weights.append(a)
    np.testing.assert_allclose(np.asarray(y), np.stack(outputs, 1), atol=2e-5)
    np.testing.assert_allclose(np.asarray(weights), np.stack(all_weights, 1), atol=1e-6)


def data(seed=0, batch=3, source=6, target=5, vocabulary=13):
    rng = np.random.default_rng(seed)
    src = rng.integers(3, vocabulary, (batch, source)).astype("int32")
    src[0, 4:] = 0
    tgt = rng.integers(3, vocabulary, (batch, target)).astype("int32")
    tgt[:, 0] = 1
    tgt[1, 3:] = 0
    return src, tgt


def tiny(**kwargs):
    kwargs.setdefault("embedding_dim", 6)
    kwargs.setdefault("units", 8)
    return Seq2Seq(13, 13, **kwargs)


CONFIGS = [
    dict(decoder="cell", attention="bahdanau"),
    dict(decoder="cell", attention="luong-dot"),
    dict(decoder="cell", attention="luong-concat", cell="gru", depth=2),
    dict(decoder="cell", attention="luong-general", arch="srnn", depth=2, bidirectional=False),
    dict(decoder="fast", attention="bahdanau", cell="gru"),
    dict(decoder="fast", attention="luong-general", depth=2),
    dict(decoder="fast", attention="luong-concat", arch="dt", depth=2, bridge="zeros"),
    dict(decoder="fast", attention="luong-dot", cell="lstm-cifg", bidirectional=False),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_streaming_step_equals_teacher_forcing(config):
    model = tiny(**config)
    src, tgt = data()
    logits = np.asarray(model((src, tgt)))
    state = model.encode(src)
    steps = []
    for t in range(tgt.shape[1]):
        step_logits, state, weights = model.decode_step(tgt[:, t], state)
        steps.append(np.asarray(step_logits))
        np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(weights)[0, 4:], 0.0)
    np.testing.assert_allclose(np.stack(steps, 1), logits, atol=1e-5)


@pytest.mark.parametrize("decoder", ["cell", "fast"])
def test_padding_the_source_does_not_change_the_logits(decoder):
    model = tiny(decoder=decoder, attention="luong-general", depth=2)
    src, tgt = data(batch=2)
    src[0, 4:] = 5  # both rows unpadded
    logits = np.asarray(model((src, tgt)))
    padded = np.concatenate([src, np.zeros((2, 3), "int32")], 1)
    np.testing.assert_allclose(np.asarray(model((padded, tgt))), logits, atol=1e-5)
    # A row padded inside a batch of longer rows gives its own logits too.
    short = np.concatenate([src[:1, :4], np.zeros((1, 2), "int32")], 1)
    batch = np.concatenate([short, src[1:]])
    alone = np.asarray(model((src[:1, :4], tgt[:1])))
    np.testing.assert_allclose(np.asarray(model((batch, tgt)))[:1], alone, atol=1e-5)


def teacher_forced_log_prob(model, src, tokens):
    """log P(tokens | src) from the whole-sequence call (no search code)."""
    target_in = np.concatenate([[model.bos_id], tokens[:-1]])[None].astype("int32")
    logits = np.asarray(model((src[None], target_in)), np.float64)[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return float(np.sum(log_probs[np.arange(len(tokens)), tokens]))


@pytest.mark.parametrize("decoder", ["cell", "fast"])
def test_generate_scores_are_the_models_probabilities(decoder):
    model = tiny(decoder=decoder, attention="bahdanau", max_length=6)
    src, _ = data()
    tokens, scores, attention = model.generate(
        src, method="beam", beam_width=3, n_best=2, length_penalty=0.6, return_attention=True
    )
    assert tokens.shape[:2] == (3, 2) and attention.shape[:2] == (3, 2)
    assert attention.shape[-1] == src.shape[1]
    for b in range(3):
        for n in range(2):
            row = list(tokens[b, n])
            seq = row[: row.index(model.eos_id) + 1] if model.eos_id in row else row
            seq = [t for t in seq if t != 0] if model.eos_id not in row else seq
            want = teacher_forced_log_prob(model, src[b], np.array(seq))
            want /= gnmt_length_penalty(len(seq), 0.6)
            np.testing.assert_allclose(scores[b, n], want, rtol=1e-4, atol=1e-5)
    greedy = model.generate(src, method="greedy")
    one = model.generate(src, method="beam", beam_width=1, length_penalty=0.0)
    width = max(greedy[0].shape[-1], one[0].shape[-1])
    pad = lambda t: np.pad(t, [(0, 0), (0, 0), (0, width - t.shape[-1])])  # noqa: E731
    np.testing.assert_array_equal(pad(one[0]), pad(greedy[0]))
    samples, sample_scores = model.generate(src, method="sample", n_best=3, seed=0)
    assert samples.shape[:2] == (3, 3)
    seq = [t for t in samples[0, 0] if t != 0]
    np.testing.assert_allclose(
        sample_scores[0, 0], teacher_forced_log_prob(model, src[0], np.array(seq)), rtol=1e-4
    )


def test_loss_and_metrics_match_numpy():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    y = np.array([[3, 1, 0], [4, 0, 0]])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = y != 0
    nll = -np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    smoothed = 0.9 * nll - 0.1 * log_p.mean(-1)
    loss = MaskedCrossEntropy(pad_id=0, label_smoothing=0.1)
    np.testing.assert_allclose(float(loss(y, logits)), smoothed[real].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(MaskedCrossEntropy()(y, logits)), nll[real].mean(), rtol=1e-5)
    accuracy = MaskedAccuracy()
    accuracy.update_state(y, logits)
    np.testing.assert_allclose(
        float(accuracy.result()), (logits.argmax(-1) == y)[real].mean(), rtol=1e-6
    )
    perplexity = MaskedPerplexity()
    perplexity.update_state(y, logits)
    np.testing.assert_allclose(float(perplexity.result()), np.exp(nll[real].mean()), rtol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedCrossEntropy(label_smoothing=1.0)
    # Registered: they round-trip through Keras's serialization.
    for obj in (loss, accuracy, perplexity):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(clone) is type(obj) and clone.get_config() == obj.get_config()


@pytest.mark.parametrize("decoder", ["cell", "fast"])
def test_saved_model_loads_with_safe_mode(tmp_path, decoder):
    model = tiny(decoder=decoder, attention="luong-concat", depth=2, cell="gru")
    src, tgt = data()
    logits = np.asarray(model((src, tgt)))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, Seq2Seq) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(loaded((src, tgt))), logits, atol=1e-6)
    np.testing.assert_array_equal(
        loaded.generate(src, method="beam", beam_width=2, max_length=4)[0],
        model.generate(src, method="beam", beam_width=2, max_length=4)[0],
    )


def test_cell_decoder_gradients_match_finite_differences():
    # The memory rides through the RNN loop as states: its gradient (to
    # the source embeddings, through the encoder) must arrive intact.
    import tensorflow as tf

    model = tiny(decoder="cell", attention="bahdanau", dropout=0.0, cell="gru")
    src, tgt = data()
    loss = MaskedCrossEntropy()
    model((src, tgt))
    variables = [model.source_embedding.embeddings, model.attention_layer.scorer.scale]
    with tf.GradientTape() as tape:
        value = loss(tgt, model((src, tgt)))
    gradients = tape.gradient(value, variables)
    eps = 1e-2
    for variable, gradient in zip(variables, gradients):
        gradient = np.asarray(tf.convert_to_tensor(gradient))
        original = variable.numpy()
        for index in np.argsort(-np.abs(gradient).ravel())[: 2 if variable.ndim > 1 else 1]:
            index = np.unravel_index(index, original.shape)
            values = []
            for sign in (1, -1):
                changed = original.copy()
                changed[index] += sign * eps
                variable.assign(changed)
                values.append(float(loss(tgt, model((src, tgt)))))
            variable.assign(original)
            numeric = (values[0] - values[1]) / (2 * eps)
            np.testing.assert_allclose(gradient[index], numeric, rtol=0.05, atol=1e-4)


def test_bad_configurations_are_refused_by_name():
    with pytest.raises(ValueError, match="attention"):
        tiny(attention="multihead")
    with pytest.raises(ValueError, match="decoder"):
        tiny(decoder="transformer")
    with pytest.raises(ValueError, match="luong-dot"):
        tiny(attention="luong-dot", encoder_units=3)
    with pytest.raises(ValueError, match="odd"):
        tiny(units=7)
    with pytest.raises(ValueError, match="pad_id"):
        tiny(pad_id=1)
    with pytest.raises(ValueError, match="eos_id"):
        tiny(eos_id=40)
    with pytest.raises(ValueError, match="cell"):
        tiny(cell="transformer")
    model = tiny()
    with pytest.raises(ValueError, match="source_ids"):
        model.encode(np.ones((2, 3, 1), "int32"))
    with pytest.raises(ValueError, match="integer"):
        model.encode(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="method"):
        model.generate(np.ones((1, 3), "int32"), method="topk")
    with pytest.raises(ValueError, match="n_best"):
        model.generate(np.ones((1, 3), "int32"), n_best=2)
    cell = AttentionCell(GRUCell(4), BahdanauAttention(3), memory_size=5)
    with pytest.raises(ValueError, match="initial_states"):
        keras.layers.RNN(cell)(np.ones((1, 2, 3), "float32"))
