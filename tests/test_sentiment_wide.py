"""The wide branch of the sentiment app (`apps.sentiment.wide`): features,
logits and Naive-Bayes ratios against NumPy references written from the
formulas; a wide-and-deep model trained end to end, saved, reloaded and
exported."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_sentiment_cli import _toy_rows

from apps.common import runner
from apps.sentiment.cli import main
from apps.sentiment.model import branch_model
from apps.sentiment.model import build_classifier
from apps.sentiment.wide import MIX_GRID
from apps.sentiment.wide import MixLogProbs
from apps.sentiment.wide import NgramLogits
from apps.sentiment.wide import fit_mix_weights
from apps.sentiment.wide import nb_ratios

IDS = np.array(
    [
        [2, 3, 2, 3, 5, 0, 0],  # the bigram (2, 3) and the unigrams 2, 3 repeat
        [4, 1, 4, 1, 0, 0, 0],  # [UNK] (id 1) is a feature like any other
        [9, 0, 0, 0, 0, 0, 0],  # id 9 is outside a vocabulary of 8: clipped to 7
        [0, 0, 0, 0, 0, 0, 0],
    ],  # an empty text
    "int32",
)


def reference_features(row, vocab_size, buckets):
    """The set of feature ids of one row, from the module docstring."""
    tokens = [int(t) for t in row if t != 0]
    feats = {min(t, vocab_size - 1) for t in tokens}
    for a, b in zip(tokens, tokens[1:]):
        feats.add(vocab_size + (a * 1_000_003 + b * 998_244_353) % buckets)
    return feats


def test_feature_ids_are_the_binarised_unigrams_and_hashed_bigrams():
    layer = NgramLogits(vocab_size=8, num_classes=2, buckets=32)
    feats = np.asarray(layer.feature_ids(IDS))
    assert feats.shape == (4, 13)
    for row, got in zip(IDS, feats):
        kept = got[got >= 0]
        assert len(kept) == len(set(kept.tolist()))  # each feature once
        assert set(kept.tolist()) == reference_features(row, 8, 32)
    assert set(feats[0][feats[0] >= 0]) >= {2, 3, 5}
    assert (feats[3] == -1).all()


def test_logits_sum_ratio_times_weight_over_distinct_features():
    rng = np.random.default_rng(0)
    layer = NgramLogits(vocab_size=8, num_classes=3, buckets=32)
    layer.build(IDS.shape)
    ratio = rng.normal(size=(40, 3)).astype("float32")
    kernel = rng.normal(size=(40, 3)).astype("float32")
    bias = rng.normal(size=3).astype("float32")
    layer.ratio.assign(ratio)
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    want = np.stack(
        [
            sum((ratio[f] * kernel[f] for f in reference_features(row, 8, 32)), np.zeros(3)) + bias
            for row in IDS
        ]
    )
    np.testing.assert_allclose(np.asarray(layer(IDS)), want, rtol=1e-5, atol=1e-5)
    log_probs = NgramLogits(8, 3, buckets=32, log_probs=True)
    log_probs.build(IDS.shape)
    log_probs.set_weights(layer.get_weights())
    shifted = want - want.max(axis=1, keepdims=True)
    np.testing.assert_allclose(
        np.asarray(log_probs(IDS)),
        shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_feature_dropout_only_in_training():
    layer = NgramLogits(vocab_size=8, num_classes=2, buckets=32, dropout=0.5, seed=1)
    layer.build(IDS.shape)
    layer.kernel.assign(np.ones((40, 2), "float32"))
    clean = np.asarray(layer(IDS))
    np.testing.assert_allclose(np.asarray(layer(IDS)), clean)
    dropped = np.asarray(layer(IDS, training=True))
    assert not np.allclose(dropped, clean)
    # kept features are scaled by 1 / (1 - 0.5): every logit is a multiple of 2
    np.testing.assert_allclose(dropped % 2, 0, atol=1e-5)


def test_nb_ratios_are_the_log_count_ratios():
    layer = NgramLogits(vocab_size=8, num_classes=2, buckets=32)
    labels = np.array([1, 0, 1, 0])
    got = nb_ratios(layer, IDS, labels, alpha=1.0)
    counts = np.zeros((40, 2))
    for row, label in zip(IDS, labels):
        for f in reference_features(row, 8, 32):
            counts[f, label] += 1
    p_pos, p_neg = counts[:, 1] + 1, counts[:, 0] + 1
    r = np.log(p_pos / p_pos.sum()) - np.log(p_neg / p_neg.sum())
    r[counts.sum(axis=1) == 0] = 0  # unseen features do not vote
    np.testing.assert_allclose(got[:, 1], r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, 0], -r, rtol=1e-5, atol=1e-6)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="buckets"):
        NgramLogits(8, 2, buckets=0)
    with pytest.raises(ValueError, match="num_classes"):
        NgramLogits(8, 1)
    with pytest.raises(ValueError, match="dropout"):
        NgramLogits(8, 2, dropout=1.0)
    with pytest.raises(ValueError, match="l2"):
        NgramLogits(8, 2, l2=-1)
    plain = build_classifier(30, 2, units=4, embedding_dim=4)
    with pytest.raises(ValueError, match="no wide branch"):
        branch_model(plain, "wide")
    with pytest.raises(ValueError, match="branch must be"):
        branch_model(build_classifier(30, 2, units=4, embedding_dim=4, wide=True), "both")


def test_wide_classifier_config_round_trip():
    model = build_classifier(
        30, 2, units=4, embedding_dim=4, wide=True, wide_buckets=16, wide_l2=1e-3, wide_dropout=0.25
    )
    copy = keras.Model.from_config(model.get_config())
    assert copy.get_layer("wide").get_config() == model.get_layer("wide").get_config()
    copy.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(copy(IDS)), np.asarray(model(IDS)), atol=1e-6)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_mix_is_the_weighted_sum_of_log_probs():
    rng = np.random.default_rng(0)
    deep, wide = _log_softmax(rng.normal(size=(5, 3))), _log_softmax(rng.normal(size=(5, 3)))
    mix = MixLogProbs()
    np.testing.assert_allclose(np.asarray(mix([deep, wide])), (deep + wide) / 2, atol=1e-6)
    mix.weights_ab.assign([0.3, 1.7])
    np.testing.assert_allclose(np.asarray(mix([deep, wide])), 0.3 * deep + 1.7 * wide, atol=1e-6)


def test_fit_mix_weights_minimises_the_held_out_cross_entropy():
    """Against a brute-force search written from the definition: the chosen
    pair has the smallest mean -log softmax(a d + b w)[label] of the grid; an
    expert that knows the labels gets the weight, one that is noise none."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=400)
    signal = np.where(labels[:, None] == np.arange(2), 1.0, -1.0)
    wide = _log_softmax(0.6 * signal + rng.normal(size=(400, 2)))
    deep = _log_softmax(rng.normal(size=(400, 2)))  # knows nothing
    a, b, loss = fit_mix_weights(deep, wide, labels)
    losses = {
        (x, y): -_log_softmax(x * deep + y * wide)[np.arange(400), labels].mean()
        for x in MIX_GRID
        for y in MIX_GRID
    }
    assert loss == pytest.approx(min(losses.values()), abs=1e-9)
    assert losses[(a, b)] == pytest.approx(loss, abs=1e-9)
    assert a <= 0.15 and b >= 0.5
    a2, b2, _ = fit_mix_weights(wide, deep, labels)  # the roles swapped
    assert (a2, b2) == (b, a)
    with pytest.raises(ValueError, match="non-finite"):
        fit_mix_weights(np.full((2, 2), np.nan), wide[:2], labels[:2])
    with pytest.raises(ValueError, match="at least one"):
        fit_mix_weights(deep[:0], wide[:0], labels[:0])


def test_refit_wide_trains_only_the_wide_branch_on_the_given_texts():
    from apps.sentiment.train import refit_wide

    keras.utils.set_random_seed(2)
    model = build_classifier(12, 2, units=4, embedding_dim=4, wide=True, wide_buckets=32)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=64)
    # Class 1 texts hold word 5, class 0 texts word 6, among noise words 2-4.
    ids = rng.integers(2, 5, size=(64, 6)).astype("int32")
    ids[np.arange(64), rng.integers(0, 6, size=64)] = np.where(labels == 1, 5, 6)
    layer = model.get_layer("wide")
    others = {w.path: w.numpy() for w in model.weights if not w.path.startswith("wide")}
    refit_wide(model, ids, labels, epochs=20, lr=0.05)
    np.testing.assert_allclose(layer.ratio.numpy(), nb_ratios(layer, ids, labels))
    assert not layer.trainable
    for w in model.weights:
        if w.path in others:
            np.testing.assert_array_equal(w.numpy(), others[w.path])
    predicted = np.asarray(layer(ids)).argmax(axis=1)
    assert (predicted == labels).mean() == 1.0  # the words 5/6 decide


@pytest.fixture(scope="module")
def wide_trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wide")
    data = folder / "toy.tsv"
    data.write_text("text\tlabel\n" + "\n".join(_toy_rows(160, 0)) + "\n")
    out = folder / "saved"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--wide",
            "--wide-buckets",
            "64",
            "--epochs",
            "3",
            "--units",
            "4",
            "--embedding-dim",
            "4",
            "--batch-size",
            "16",
            "--lr",
            "0.02",
            "--test-fraction",
            "0.25",
            "--name",
            "toy",
            "--out",
            str(out),
            "--run-dir",
            str(folder / "run"),
        ]
    )
    assert code == 0
    return out / "sentiment-toy"


def test_wide_model_trains_and_reloads_identically(wide_trained):
    meta = json.loads((wide_trained / "metadata.json").read_text())
    assert meta["metrics"]["test_accuracy"] >= 0.8  # chance is 0.5
    model = runner.load(wide_trained)  # safe_mode=True
    assert model.layers[-1].get_layer("wide").ratio.numpy().any()  # the NB ratios were saved
    # The mix weights were fitted on the held-out texts (not left at 1/2, 1/2) and saved.
    assert model.layers[-1].get_layer("mix").weights_ab.numpy().tolist() != [0.5, 0.5]
    texts = tf.constant(["a great film", "the plot was dull", "", "unseen words"])
    first = model.predict(texts, verbose=0)
    second = runner.load(wide_trained / "model.keras").predict(texts, verbose=0)
    np.testing.assert_array_equal(first, second)
    assert first[0].argmax() == 1 and first[1].argmax() == 0


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_wide_model_exports(wide_trained, tmp_path):
    out = tmp_path / "export"
    assert main(["export", str(wide_trained), "--out", str(out)]) == 0
    model = runner.load(wide_trained)
    texts = ["a great film", "awful awful plot"]
    expected = model.predict(tf.constant(texts), verbose=0)
    served = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(served.serve(tf.constant(texts)).numpy(), expected, atol=1e-6)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    from apps.sentiment.model import parts

    ids = parts(model)[0](tf.constant(texts)).numpy().astype(np.int32)
    interpreter = Interpreter(model_path=str(out / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    for row, want in zip(ids, expected):
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(outp["index"])[0], want, atol=1e-5)
