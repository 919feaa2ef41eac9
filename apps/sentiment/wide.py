"""The wide branch of the sentiment classifier: a linear model over the
binarised unigrams and bigrams of a text, Naive-Bayes weighted (Wang &
Manning 2012, "Baselines and Bigrams", NBSVM), beside the recurrent branch
(a wide-and-deep model, Cheng et al. 2016; how the two are combined and
trained: `apps.sentiment.model.build_classifier` and `branch_model`).

Features of a text of token ids w_1 .. w_n (0 = padding): the unigram ids
w_t (ids >= vocab_size clipped to vocab_size - 1), and the bigrams
(w_t, w_t+1) hashed into `buckets` ids, vocab_size + (1000003 w_t +
998244353 w_t+1) mod buckets (the hashing trick, as in fastText: no bigram
vocabulary to store, and integer arithmetic that TFLite runs). Each feature
counts once per text (x_f in {0, 1}).

For class k the logit is

    z_k = sum_f x_f r_fk w_fk + b_k,

where r_fk is the Naive-Bayes log-count ratio of feature f for class k
against the others (`nb_ratios`, computed once from the training texts and
then fixed) and w_fk trainable weights, initialised to 0 and L2-regularised:
a logistic regression on the NB-scaled features (NBLR, the logistic-loss
form of NBSVM). In training, each feature of a text is dropped with
probability `dropout` (and the rest scaled by 1 / (1 - dropout)), a
regulariser (off by default).

The classifier's output mixes the two branches' log-probabilities
(`MixLogProbs`),

    p(k | text) = softmax_k(a log p_deep(k) + b log p_wide(k)),

a product of experts whose two weights a, b >= 0 are fitted after both
branches have trained, on the held-out validation texts (`fit_mix_weights`), as
Mesnil et al. (2014) weight their ensemble of an RNN language model,
paragraph vectors and NBSVM on held-out data.
"""

import keras
import numpy as np
from keras import ops

#: The Keras registration package of the sentiment app (as in `apps.sentiment.model`,
#: which imports this module).
PACKAGE = "deeprnn_sentiment"
PAD = 0
#: Two odd multipliers for hashing a bigram of ids (a, b) into a bucket.
_HASH_A, _HASH_B = 1_000_003, 998_244_353


@keras.saving.register_keras_serializable(package=PACKAGE)
class NgramLogits(keras.layers.Layer):
    """Class logits of a binarised, Naive-Bayes-weighted bag of unigrams and
    hashed bigrams (see the module docstring for the equations).

    Args:
        vocab_size: Number of token ids (padding and ``[UNK]`` included).
        num_classes: Number of classes (>= 2).
        buckets: Number of bigram hash buckets.
        l2: L2 penalty on the weights w.
        dropout: Fraction of a text's features dropped in training.
        log_probs: Return log-probabilities (``log_softmax`` of the
            logits) instead of the logits.
        seed: Seed of the feature dropout.

    Call arguments:
        inputs: int token ids ``(batch, time)``, 0 = padding (after the text).
        training: Whether to apply the feature dropout.

    Returns:
        Logits (or log-probabilities) ``(batch, num_classes)``.

    Example:

    >>> layer = NgramLogits(vocab_size=10, num_classes=2, buckets=16)
    >>> tuple(layer(np.array([[2, 3, 2, 0]], "int32")).shape)
    (1, 2)
    """

    def __init__(
        self,
        vocab_size,
        num_classes=2,
        buckets=2**18,
        l2=1e-4,
        dropout=0.0,
        log_probs=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value, least in (
            ("vocab_size", vocab_size, 1),
            ("num_classes", num_classes, 2),
            ("buckets", buckets, 1),
        ):
            if int(value) != value or value < least:
                raise ValueError(
                    f"NgramLogits {name} must be an integer >= {least}, got {value!r}."
                )
        if l2 < 0:
            raise ValueError(f"NgramLogits l2 must be >= 0, got {l2!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"NgramLogits dropout must be in [0, 1), got {dropout!r}.")
        self.vocab_size, self.num_classes = int(vocab_size), int(num_classes)
        self.buckets, self.l2, self.dropout, self.seed = (
            int(buckets),
            float(l2),
            float(dropout),
            seed,
        )
        self.log_probs = bool(log_probs)
        self.dropout_layer = keras.layers.Dropout(self.dropout, seed=seed)

    @property
    def features(self):
        """Number of feature ids: the unigrams, then the bigram buckets."""
        return self.vocab_size + self.buckets

    def build(self, input_shape):
        shape = (self.features, self.num_classes)
        self.ratio = self.add_weight(name="ratio", shape=shape, initializer="ones", trainable=False)
        self.kernel = self.add_weight(
            name="kernel",
            shape=shape,
            initializer="zeros",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros")

    def feature_ids(self, ids):
        """The feature ids of each text, each once: ``(batch, 2 time - 1)``
        int32, sorted, repeats and padding replaced by -1."""
        ids = ops.cast(ids, "int32")
        left, right = ids[:, :-1], ids[:, 1:]
        hashed = ops.mod(
            ops.cast(left, "int64") * _HASH_A + ops.cast(right, "int64") * _HASH_B, self.buckets
        )
        bigrams = ops.where(
            (left != PAD) & (right != PAD), ops.cast(hashed, "int32") + self.vocab_size, -1
        )
        unigrams = ops.where(ids != PAD, ops.minimum(ids, self.vocab_size - 1), -1)
        feats = ops.sort(ops.concatenate([unigrams, bigrams], axis=1), axis=-1)
        repeat = ops.concatenate(
            [ops.zeros_like(feats[:, :1], "bool"), feats[:, 1:] == feats[:, :-1]], axis=1
        )
        return ops.where(repeat, -1, feats)

    def call(self, inputs, training=False):
        feats = self.feature_ids(inputs)
        present = self.dropout_layer(ops.cast(feats >= 0, self.compute_dtype), training=training)
        rows = ops.maximum(feats, 0)
        weights = ops.take(self.ratio, rows, axis=0) * ops.take(self.kernel, rows, axis=0)
        logits = ops.sum(weights * ops.expand_dims(present, -1), axis=1) + self.bias
        return ops.log_softmax(logits, axis=-1) if self.log_probs else logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "num_classes": self.num_classes,
            "buckets": self.buckets,
            "l2": self.l2,
            "dropout": self.dropout,
            "log_probs": self.log_probs,
            "seed": self.seed,
        }


def nb_ratios(layer, ids, labels, alpha=1.0, batch_size=1024):
    """Naive-Bayes log-count ratios of `layer`'s features on the texts `ids`
    ``(n, time)`` with class indices `labels` (Wang & Manning 2012): for class
    k, with p_k the feature counts (each text counting a feature once) over
    the texts of class k plus `alpha`, and q_k the same over the other texts,

        r_k = log(p_k / |p_k|_1) - log(q_k / |q_k|_1).

    Features absent from the texts get r = 0: they do not vote (as a
    feature outside a count vectorizer's vocabulary).
    Returns ``(features, classes)`` float32 (to set as ``layer.ratio``)."""
    labels = np.asarray(labels)
    counts = np.zeros((layer.features, layer.num_classes))
    for i in range(0, len(ids), batch_size):
        feats = np.asarray(layer.feature_ids(np.asarray(ids[i : i + batch_size], np.int32)))
        for k in range(layer.num_classes):
            rows = feats[labels[i : i + batch_size] == k]
            counts[:, k] += np.bincount(rows[rows >= 0], minlength=layer.features)
    p = counts + alpha
    q = counts.sum(axis=1, keepdims=True) - counts + alpha
    ratios = np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))
    ratios[counts.sum(axis=1) == 0] = 0.0
    return ratios.astype(np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MixLogProbs(keras.layers.Layer):
    """Weighted sum of two branches' log-probabilities, the logits of their
    product of experts: ``a * log_p_deep + b * log_p_wide``. The weights
    (non-trainable, 1/2 each at the start: the normalised geometric mean)
    are set by `fit_mix_weights` and saved with the model.

    Call arguments:
        inputs: A list ``[log_p_deep, log_p_wide]``, each
            ``(batch, classes)``.

    Example:

    >>> mix = MixLogProbs()
    >>> [float(v) for v in mix([np.log([[0.2, 0.8]]), np.log([[0.6, 0.4]])])[0]]
    ... # doctest: +ELLIPSIS
    [-0.6..., -0.5...]
    """

    def build(self, input_shape):
        self.weights_ab = self.add_weight(
            name="weights_ab",
            shape=(2,),
            initializer=keras.initializers.Constant(0.5),
            trainable=False,
        )

    def call(self, inputs):
        deep, wide = inputs
        return self.weights_ab[0] * deep + self.weights_ab[1] * wide

    def compute_output_shape(self, input_shape):
        return input_shape[0]


#: The grid of `fit_mix_weights`: each weight from 0 to 2 in steps of 0.05.
MIX_GRID = np.round(np.arange(0.0, 2.0001, 0.05), 2)


def fit_mix_weights(deep_log_probs, wide_log_probs, labels):
    """The weights (a, b) of `MIX_GRID` x `MIX_GRID` with the smallest mean
    cross-entropy of softmax(a log p_deep + b log p_wide) on the given
    (held-out) texts; ties go to the pair nearest (1/2, 1/2). Returns
    ``(a, b, loss)``."""
    deep = np.asarray(deep_log_probs, np.float64)
    wide = np.asarray(wide_log_probs, np.float64)
    labels = np.asarray(labels)
    if not len(labels):
        raise ValueError("fit_mix needs at least one held-out text.")
    if not (np.isfinite(deep).all() and np.isfinite(wide).all()):
        raise ValueError("fit_mix got non-finite log-probabilities.")
    best = None
    for a in MIX_GRID:
        for b in MIX_GRID:
            logits = a * deep + b * wide
            logits -= logits.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(logits).sum(axis=1))
            loss = float(np.mean(log_norm - logits[np.arange(len(labels)), labels]))
            key = (round(loss, 9), abs(a - 0.5) + abs(b - 0.5))
            if best is None or key < best[0]:
                best = (key, a, b, loss)
    _, a, b, loss = best
    return float(a), float(b), loss
