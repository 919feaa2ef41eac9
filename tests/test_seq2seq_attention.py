"""Attention layers of keras_deeprnn.seq2seq against NumPy written from the
formulas of Bahdanau et al. 2015 and Luong et al. 2015."""

import keras
import numpy as np
import pytest

from keras_deeprnn.seq2seq import BahdanauAttention
from keras_deeprnn.seq2seq import LuongAttention


def softmax_masked(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(-1, keepdims=True)


def reference(layer, score, query, values, mask):
    """(context, weights) from the papers' formulas, float64, with the
    layer's weights; query (B, Tq, Dq), values (B, S, Dv), mask (B, S)."""
    q = query.astype(np.float64)
    h = values.astype(np.float64)
    if score == "dot":
        e = np.einsum("bqd,bsd->bqs", q, h)
    elif score == "general":
        # e = q W_a h^T, W_a (Dq, Dv); the layer stores W_a^T as the key kernel.
        W_a = np.asarray(layer.key_dense.kernel, np.float64).T
        e = np.einsum("bqd,de,bse->bqs", q, W_a, h)
    else:
        W_q, W_k, v = (
            np.asarray(w, np.float64)
            for w in (layer.query_dense.kernel, layer.key_dense.kernel, layer.scorer.scale)
        )
        hidden = np.tanh((q @ W_q)[:, :, None, :] + (h @ W_k)[:, None, :, :])
        e = hidden @ v
    a = softmax_masked(e, mask[:, None, :])
    return np.einsum("bqs,bsd->bqd", a, h), a


CASES = [
    ("bahdanau", lambda: BahdanauAttention(7)),
    ("dot", lambda: LuongAttention("dot")),
    ("general", lambda: LuongAttention("general")),
    ("concat", lambda: LuongAttention("concat", units=5)),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("steps", [None, 3])
def test_attention_matches_numpy(name, make, steps):
    rng = np.random.default_rng(1)
    layer = make()
    B, S, D = 3, 6, 4
    values = rng.normal(size=(B, S, D)).astype("float32")
    mask = np.ones((B, S), bool)
    mask[0, 4:] = False
    mask[2, 1:] = False
    shape = (B, D) if steps is None else (B, steps, D)
    query = rng.normal(size=shape).astype("float32")
    context, weights = layer(query, values, mask=mask)
    q3 = query[:, None] if steps is None else query
    want_c, want_a = reference(layer, "concat" if name == "bahdanau" else name, q3, values, mask)
    if steps is None:
        want_c, want_a = want_c[:, 0], want_a[:, 0]
    np.testing.assert_allclose(np.asarray(weights), want_a, atol=1e-6)
    np.testing.assert_allclose(np.asarray(context), want_c, atol=1e-5)


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_padding_gives_the_unpadded_context(name, make):
    rng = np.random.default_rng(2)
    layer = make()
    values = rng.normal(size=(2, 5, 4)).astype("float32")
    query = rng.normal(size=(2, 2, 4)).astype("float32")
    context, weights = layer(query, values, mask=np.ones((2, 5), bool))
    padded = np.concatenate([values, rng.normal(size=(2, 3, 4)).astype("float32") * 50], 1)
    mask = np.concatenate([np.ones((2, 5), bool), np.zeros((2, 3), bool)], 1)
    context_p, weights_p = layer(query, padded, mask=mask)
    np.testing.assert_allclose(np.asarray(context_p), np.asarray(context), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(weights_p)[..., 5:], 0.0)
    np.testing.assert_allclose(np.asarray(weights_p)[..., :5], np.asarray(weights), atol=1e-7)


def test_keys_are_computed_once_and_reused():
    rng = np.random.default_rng(3)
    layer = BahdanauAttention(6)
    values = rng.normal(size=(2, 5, 4)).astype("float32")
    query = rng.normal(size=(2, 3)).astype("float32")
    context, weights = layer(query, values)
    keys = layer.keys(values)
    context2, weights2 = layer.attend(query, keys, values)
    np.testing.assert_allclose(np.asarray(context2), np.asarray(context), atol=1e-7)
    np.testing.assert_allclose(np.asarray(weights2), np.asarray(weights), atol=1e-7)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="score"):
        LuongAttention("cosine")
    with pytest.raises(ValueError, match="units"):
        LuongAttention("dot", units=4)
    with pytest.raises(ValueError, match="units"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match="one width"):
        LuongAttention("dot")(np.ones((1, 3), "float32"), np.ones((1, 4, 5), "float32"))
    with pytest.raises(ValueError, match="values"):
        BahdanauAttention(3)(np.ones((1, 3), "float32"), np.ones((1, 4), "float32"))
    layer = LuongAttention("general")
    layer(np.ones((1, 3), "float32"), np.ones((1, 4, 5), "float32"))
    with pytest.raises(ValueError, match="width 5"):
        layer(np.ones((1, 3), "float32"), np.ones((1, 4, 6), "float32"))


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_serialization_round_trip(name, make):
    layer = make()
    query, values = (
        np.ones((2, 4), "float32"),
        np.linspace(0, 1, 40, dtype="float32").reshape(2, 5, 4),
    )
    context, _ = layer(query, values)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    clone(query, values)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(query, values)[0]), np.asarray(context), atol=1e-7)
