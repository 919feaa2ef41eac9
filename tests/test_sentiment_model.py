"""The sentiment app's model: tokenisation, pooling layers, the classifier
with every architecture, raw-text models (bad input, save and reload), the
length-bucketed pipeline and the language-model pre-training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.sentiment import model as M
from apps.sentiment import train as TR
from keras_deeprnn.data import text as text_data


def tokens(text):
    return M.standardize(tf.constant([text])).numpy()[0].decode("utf-8").split()


def test_standardize():
    assert tokens("Great movie!It's  GOOD<br />Caf\u00c9\u2019s") == [
        "great",
        "movie",
        "!",
        "it's",
        "good",
        "caf\u00e9's",
    ]
    assert tokens("a\x85b\tc\u00a0d") == ["a", "b", "c", "d"]  # NEL, tab, no-break space
    assert tokens("") == []


def _masked(values, mask):
    x = tf.constant(values, tf.float32)
    return x, tf.constant(mask)


def test_masked_max_pooling():
    x, mask = _masked(
        [[[1.0, -5.0], [9.0, -1.0], [99.0, 99.0]], [[-3.0, -4.0], [0.0, 0.0], [0.0, 0.0]]],
        [[True, True, False], [False, False, False]],
    )
    out = M.MaskedMaxPooling()(x, mask=mask).numpy()
    np.testing.assert_allclose(out, [[9.0, -1.0], [0.0, 0.0]])  # padding ignored; empty -> 0
    np.testing.assert_allclose(M.MaskedMaxPooling()(x).numpy()[0], [99.0, 99.0])


def test_attention_pooling_weights_and_output():
    layer = M.AttentionPooling(units=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)
    out = layer(x, mask=mask).numpy()
    a = layer.scores(x, mask).numpy()
    np.testing.assert_allclose(a.sum(axis=1), [1.0, 1.0, 0.0], atol=1e-6)
    assert (a[~mask] == 0).all()
    # By hand: u_t = tanh(h_t W + b), a = softmax(u . v) over the unmasked steps.
    w, b, v = (np.asarray(t) for t in (layer.kernel, layer.bias, layer.context))
    logits = np.tanh(x[0, :2] @ w + b) @ v
    weights = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(out[0], weights @ x[0, :2], rtol=1e-5)
    np.testing.assert_allclose(out[2], 0.0)
    clone = M.AttentionPooling.from_config(layer.get_config())
    assert clone.units == 3
    with pytest.raises(ValueError, match="positive integer"):
        M.AttentionPooling(units=0)


@pytest.mark.parametrize(
    "arch,cell,pooling,bidirectional",
    [
        ("rnn", "lstm", "max", True),
        ("rnn", "gru", "last", True),
        ("srnn", "mut2", "attention", False),
        ("dt", "lstm-cifg", "last", False),
        ("dots", "rnn", "max", True),
    ],
)
def test_classifier_architectures(arch, cell, pooling, bidirectional):
    model = M.build_classifier(
        30,
        3,
        cell=cell,
        arch=arch,
        units=4,
        embedding_dim=5,
        pooling=pooling,
        bidirectional=bidirectional,
        word_dropout=0.1,
        recurrent_dropout=0.1,
    )
    ids = np.array([[3, 4, 5, 0], [6, 0, 0, 0], [0, 0, 0, 0]], np.int32)
    probs = np.asarray(model(ids))
    assert probs.shape == (3, 3) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Padding is masked: extra padding changes nothing.
    longer = np.pad(ids, ((0, 0), (0, 3)))
    np.testing.assert_allclose(np.asarray(model(longer)), probs, atol=1e-6)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="pooling"):
        M.build_classifier(10, pooling="mean")
    with pytest.raises(ValueError, match="at least 2 labels"):
        M.build_classifier(10, num_classes=1)
    with pytest.raises(ValueError, match="cell"):
        M.build_classifier(10, cell="no-such-cell")


@pytest.fixture()
def text_model():
    texts = ["a good film", "a bad film", "good good", "bad bad bad"]
    vectorizer = M.make_vectorizer(max_tokens=50, max_length=6)
    vectorizer.adapt(np.array(texts, dtype=object))
    classifier = M.build_classifier(
        vectorizer.vocabulary_size(), 2, cell="gru", units=4, embedding_dim=4, pooling="attention"
    )
    return M.text_model(vectorizer, classifier)


def test_text_model_handles_bad_input(text_model):
    texts = [
        "a good film",
        "",
        "   ",
        "\ufffd\ufffd unknown words only",
        "good " * 5000,
        "bad film " + "!" * 100,
    ]
    probs = text_model.predict(tf.constant(texts), verbose=0)
    assert probs.shape == (6, 2) and np.isfinite(probs).all()
    vectorizer, classifier = M.parts(text_model)
    ids = vectorizer(tf.constant(texts)).numpy()
    assert ids.shape == (6, 6)  # cut at max_length
    np.testing.assert_allclose(
        text_model.predict(tf.constant(["good " * 6]), verbose=0)[0], probs[4], rtol=1e-5
    )  # only the first 6 tokens count


def test_save_and_reload_with_safe_mode(text_model, tmp_path):
    texts = tf.constant(["a good film", "bad", "", "never seen"])
    before = text_model.predict(texts, verbose=0)
    path = tmp_path / "m.keras"
    text_model.save(path)
    keras.backend.clear_session()
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(texts, verbose=0), before)
    assert M.parts(loaded)[0].get_vocabulary() == M.parts(text_model)[0].get_vocabulary()


def test_vectorize_no_texts_keeps_the_width():
    ids = text_data.vectorize(M.make_vectorizer(100, 7, vocabulary=["good", "bad"]), [])
    assert ids.shape == (0, 7) and ids.dtype == np.int32


def test_length_buckets_cover_every_example_once():
    rng = np.random.default_rng(0)
    ids = np.zeros((50, 12), np.int32)
    for i, n in enumerate(rng.integers(0, 13, size=50)):
        ids[i, :n] = rng.integers(2, 9, size=n)
    labels = np.arange(50)
    seen = []
    for x, y in text_data.bucketed_dataset(ids, labels, batch_size=8, shuffle=True, seed=1):
        x, y = x.numpy(), y.numpy()
        assert x.shape[1] == max(1, (ids[y] != 0).sum(axis=1).max())
        np.testing.assert_array_equal(x, ids[y, : x.shape[1]])
        seen += y.tolist()
    assert sorted(seen) == list(range(50))


def test_predict_ids_keeps_the_input_order():
    model = M.build_classifier(20, 2, cell="rnn", units=3, embedding_dim=3)
    ids = np.array([[5, 6, 7, 8], [9, 0, 0, 0], [3, 4, 0, 0]], np.int32)
    np.testing.assert_allclose(
        TR.predict_ids(model, ids, batch_size=2), np.asarray(model(ids)), atol=1e-6
    )


def test_reversed_lm_copy_matches_the_backward_layer():
    # The backward LM reads reversed texts with a forward copy of the
    # backward layer: its states must be the backward layer's own.
    model = M.build_classifier(50, 2, cell="lstm", units=4, embedding_dim=3)
    rnn = M.recurrent_layer(model)
    ids = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], np.int32)
    emb = model.get_layer("embedding")
    backward = np.asarray(rnn.backward_layer(emb(ids), mask=ids != 0))
    copy = TR._lm_copy(rnn.backward_layer)
    copy(emb(ids))
    copy.set_weights(rnn.backward_layer.get_weights())
    rev = TR.reverse_rows(ids)
    forward = np.asarray(copy(emb(rev), mask=rev != 0))
    np.testing.assert_allclose(backward[1], forward[1], atol=1e-6)
    np.testing.assert_allclose(backward[0, 2:], forward[0, :3], atol=1e-6)


def test_pretrain_lm_learns_the_training_text():
    # A tiny corpus where each word determines the next: the language model
    # must get far below the perplexity of guessing among the words.
    rng = np.random.default_rng(0)
    ids = np.zeros((64, 8), np.int32)
    for i in range(64):
        start = rng.integers(2, 10)
        ids[i] = [2 + (start - 2 + t) % 8 for t in range(8)]
    model = M.build_classifier(10, 2, cell="gru", units=16, embedding_dim=8)
    before = [w.copy() for w in model.get_weights()]
    history = TR.pretrain_lm(
        model, ids, epochs=8, batch_size=16, lr=0.03, dropout=0.0, valid_ids=ids[:16], verbose=False
    )
    assert history["valid_perplexity"][-1] < 3.0 < history["valid_perplexity"][0]
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert sum(changed) >= 7  # embedding and both directions' kernels, not the classifier


def test_svd_embeddings():
    ids = np.array([[2, 3, 4, 0], [2, 3, 5, 0], [6, 7, 8, 9]] * 5, np.int32)
    vectors = TR.svd_embeddings(ids, vocab_size=10, dim=3)
    assert vectors.shape == (10, 3) and np.isfinite(vectors).all()
    assert (vectors[:2] == 0).all()
    assert vectors[2:].std() == pytest.approx(0.05, rel=1e-3)
