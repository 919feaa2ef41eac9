"""The CRF layer, loss and decoder against brute-force enumeration of every
tag sequence, written from the definitions in NumPy."""

import itertools

import keras
import numpy as np
import pytest

from keras_deeprnn.layers import CRF
from keras_deeprnn.layers import CRFLoss
from keras_deeprnn.layers import crf_token_nll
from keras_deeprnn.layers import viterbi_decode


def _scores(unary, trans, start):
    """score(y) of every tag sequence y of one sentence, by enumeration."""
    n, k = unary.shape
    out = {}
    for y in itertools.product(range(k), repeat=n):
        s = start[y[0]] + unary[0, y[0]]
        for t in range(1, n):
            s += trans[y[t - 1], y[t]] + unary[t, y[t]]
        out[y] = s
    return out


def _layer(tags, seed):
    layer = CRF()
    layer.build((None, None, tags))
    rng = np.random.default_rng(seed)
    trans, start = rng.normal(size=(tags, tags)), rng.normal(size=tags)
    layer.set_weights([trans.astype("float32"), start.astype("float32")])
    return layer, trans, start


@pytest.mark.parametrize("length", [1, 2, 4])
def test_nll_and_decode_match_enumeration(length):
    tags, batch = 3, 4
    layer, trans, start = _layer(tags, seed=length)
    rng = np.random.default_rng(10 + length)
    unary = rng.normal(size=(batch, length, tags)).astype("float32")
    y = rng.integers(0, tags, size=(batch, length))
    potentials = layer(unary)
    per_token = np.asarray(crf_token_nll(y, potentials))
    best = np.asarray(viterbi_decode(potentials))
    for b in range(batch):
        scores = _scores(unary[b].astype("float64"), trans, start)
        values = np.array(list(scores.values()))
        log_z = np.log(np.exp(values - values.max()).sum()) + values.max()
        assert per_token[b].sum() == pytest.approx(log_z - scores[tuple(y[b])], abs=1e-4)
        assert tuple(best[b]) == max(scores, key=scores.get)


def test_padding_terms_drop_out_with_zero_weights():
    tags, length = 3, 5
    layer, trans, start = _layer(tags, seed=7)
    rng = np.random.default_rng(8)
    unary = rng.normal(size=(2, length, tags)).astype("float32")
    y = rng.integers(0, tags, size=(2, length))
    lengths = np.array([5, 2])
    weights = (np.arange(length)[None] < lengths[:, None]).astype("float32")
    want = []
    for b, n in enumerate(lengths):
        scores = _scores(unary[b, :n].astype("float64"), trans, start)
        values = np.array(list(scores.values()))
        want.append(np.log(np.exp(values).sum()) - scores[tuple(y[b, :n])])
    loss = CRFLoss()(y, layer(unary), sample_weight=weights)
    assert float(loss) == pytest.approx(sum(want) / weights.sum(), rel=1e-4)


def test_masked_padding_decodes_and_scores_like_the_real_tokens():
    tags, length = 4, 6
    layer, _, _ = _layer(tags, seed=5)
    rng = np.random.default_rng(6)
    unary = rng.normal(size=(3, length, tags)).astype("float32")
    lengths = [6, 3, 1]
    mask = np.arange(length)[None] < np.array(lengths)[:, None]
    y = rng.integers(0, tags, size=(3, length))
    padded = layer(unary, mask=mask)
    best = np.asarray(viterbi_decode(padded))
    terms = np.asarray(crf_token_nll(y, padded))
    for b, n in enumerate(lengths):
        alone = layer(unary[b : b + 1, :n])
        np.testing.assert_array_equal(best[b, :n], np.asarray(viterbi_decode(alone))[0])
        want = np.asarray(crf_token_nll(y[b : b + 1, :n], alone))[0]
        np.testing.assert_allclose(terms[b, :n], want, rtol=1e-5, atol=1e-5)


def test_gradient_matches_finite_differences():
    tags, length = 3, 4
    layer, _, _ = _layer(tags, seed=3)
    rng = np.random.default_rng(4)
    unary = keras.Variable(rng.normal(size=(1, length, tags)).astype("float32"))
    y = rng.integers(0, tags, size=(1, length))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = keras.ops.sum(crf_token_nll(y, layer(unary)))
    grad = tape.gradient(loss, [unary.value, layer.transitions.value])
    base = unary.numpy().astype("float64")

    def f(u, trans):
        scores = _scores(u[0], trans, layer.start.numpy().astype("float64"))
        values = np.array(list(scores.values()))
        return np.log(np.exp(values).sum()) - scores[tuple(y[0])]

    trans = layer.transitions.numpy().astype("float64")
    eps = 1e-5
    for index in [(0, 0, 0), (0, 2, 1), (0, 3, 2)]:
        up, down = base.copy(), base.copy()
        up[index] += eps
        down[index] -= eps
        fd = (f(up, trans) - f(down, trans)) / (2 * eps)
        assert float(grad[0][index]) == pytest.approx(fd, abs=1e-4)
    for index in [(0, 1), (2, 2)]:
        up, down = trans.copy(), trans.copy()
        up[index] += eps
        down[index] -= eps
        fd = (f(base, up) - f(base, down)) / (2 * eps)
        assert float(grad[1][index]) == pytest.approx(fd, abs=1e-4)


def test_learns_a_transition_only_rule_and_round_trips(tmp_path):
    # Tag y_t = x_t + 2 x_{t-1}: the unary scores see x_t only (no RNN), so
    # x_{t-1} reaches y_t only through the transition from y_{t-1}.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(256, 10))
    y = np.stack([x, np.pad(x[:, :-1], [[0, 0], [1, 0]])], -1) @ np.array([1, 2])
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(2, 4),
            keras.layers.Dense(4),
            CRF(),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), CRFLoss())
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)
    accuracy = np.mean(np.asarray(viterbi_decode(model.predict(x, verbose=0))) == y)
    assert accuracy > 0.99  # a per-token classifier of x_t alone gets 50%
    model.save(tmp_path / "crf.keras")
    again = keras.models.load_model(tmp_path / "crf.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0))


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="batch, time, tags"):
        CRF().build((None, 5))
    with pytest.raises(ValueError, match="edge potentials"):
        viterbi_decode(np.zeros((2, 3, 4)))
