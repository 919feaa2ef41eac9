"""The sentiment classifier: embedding, a (bidirectional) deep RNN, pooling,
softmax; and the text vectorizer that makes it take raw strings.

Two models share the weights:

- the *classifier* (`build_classifier`) maps token ids ``(batch, time)``,
  int32, 0 = padding, to class probabilities ``(batch, classes)``; it is
  what trains (on length-bucketed batches) and what the TFLite export holds;
- the *text model* (`text_model`) is the classifier behind a
  `keras.layers.TextVectorization` holding the vocabulary, so it maps raw
  strings ``(batch,)`` to probabilities. It is what `saved_models/` holds:
  a self-contained ``.keras`` file that loads with ``safe_mode=True`` once
  this module is imported (it registers `standardize`, `MaskedMaxPooling`,
  `AttentionPooling` and the wide branch's `NgramLogits`).

Tokenisation (`standardize`, then a split at whitespace): lower-case
(Unicode), ``<br />`` tags and control characters become spaces, curly
apostrophes become ``'``, and every character that is neither a letter, a
digit, an apostrophe nor a space becomes a token of its own. Ids: 0 padding,
1 out of vocabulary (``[UNK]``), then the vocabulary by decreasing
frequency in the training texts. Texts are cut after `max_length` tokens.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_deeprnn import models

from . import wide as wide_branch

PACKAGE = wide_branch.PACKAGE
POOLINGS = ("last", "max", "attention")
ARCHS = models.KINDS
DEEP_OUTPUT_ARCHS = ("dot", "dots")
PAD, OOV = 0, 1


@keras.saving.register_keras_serializable(package=PACKAGE)
def standardize(text):
    """The text normalisation of the vectorizer (see the module docstring)."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"<br\s*/?>", " ")
    text = tf.strings.regex_replace(text, "[\u2018\u2019`]", "'")
    text = tf.strings.regex_replace(text, r"[\pC\pZ]", " ")
    return tf.strings.regex_replace(text, r"([^\pL\pN\pM\s'])", r" \1 ")


def make_vectorizer(max_tokens=20000, max_length=60, vocabulary=None):
    """A `TextVectorization` layer: strings -> int ids ``(batch, max_length)``.

    Adapt it (``vectorizer.adapt(texts)``) or pass ``vocabulary`` (without
    the padding and ``[UNK]`` entries).
    """
    if max_length < 1:
        raise ValueError(f"--max-length must be positive, got {max_length}.")
    if max_tokens < 3:
        raise ValueError(f"--max-tokens must be at least 3, got {max_tokens}.")
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize,
        split="whitespace",
        output_mode="int",
        output_sequence_length=max_length,
        vocabulary=vocabulary,
        name="vectorizer",
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMaxPooling(keras.layers.Layer):
    """Max over time of ``(batch, time, features)`` that skips masked steps.

    A sequence with every step masked (an empty text) pools to zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        mask = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.cast(ops.convert_to_tensor(-3.0e38), inputs.dtype)
        pooled = ops.max(ops.where(mask, inputs, lowest), axis=1)
        return ops.where(ops.any(mask, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionPooling(keras.layers.Layer):
    """Attention pooling over time (Yang et al. 2016, "Hierarchical Attention
    Networks"): a weighted mean of the steps h_t of ``(batch, time,
    features)``,

        u_t = tanh(h_t W + b),  a = softmax_t(u_t . v),  output = sum_t a_t h_t,

    with masked steps given weight 0 (an all-masked sequence pools to zeros).

    Args:
        units: Size of u_t (default: the feature size).
    """

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        if units is not None and (int(units) != units or units < 1):
            raise ValueError(f"AttentionPooling units must be a positive integer, got {units!r}.")
        self.units = None if units is None else int(units)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        units = self.units or features
        self.kernel = self.add_weight(
            name="kernel", shape=(features, units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros")
        self.context = self.add_weight(name="context", shape=(units,), initializer="glorot_uniform")

    def scores(self, inputs, mask=None):
        """The attention weights a ``(batch, time)``."""
        u = ops.tanh(ops.matmul(inputs, self.kernel) + self.bias)
        logits = ops.sum(u * self.context, axis=-1)
        if mask is None:
            return ops.softmax(logits, axis=-1)
        mask = ops.cast(mask, "bool")
        logits = ops.where(mask, logits, ops.full_like(logits, -1e9))
        return ops.softmax(logits, axis=-1) * ops.cast(mask, logits.dtype)

    def call(self, inputs, mask=None):
        weights = self.scores(inputs, mask)
        return ops.sum(ops.expand_dims(weights, -1) * inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build_classifier(
    vocab_size,
    num_classes=2,
    cell="lstm",
    arch="rnn",
    units=64,
    depth=None,
    embedding_dim=64,
    pooling="max",
    bidirectional=True,
    dropout=0.5,
    recurrent_dropout=0.0,
    unit_type="tanh",
    word_dropout=0.0,
    wide=False,
    wide_buckets=2**18,
    wide_l2=1e-4,
    wide_dropout=0.0,
    cell_kwargs=None,
):
    """Token ids ``(batch, time)`` -> class probabilities ``(batch, classes)``.

    Embedding (id 0 masked) -> dropout -> RNN (``keras_deeprnn.models.deep_rnn``
    of kind `arch` with `cell`, wrapped in `Bidirectional` if asked) ->
    pooling -> dropout -> softmax. With `wide`, a second branch, a
    Naive-Bayes-weighted linear model of the unigrams and bigrams
    (`apps.sentiment.wide.NgramLogits`; set its ratios with
    `apps.sentiment.wide.nb_ratios` from the training texts), reads the same
    ids, and the output is a weighted product of the two branches'
    probabilities, softmax(a log p_deep + b log p_wide) (layer ``"mix"``,
    `apps.sentiment.wide.MixLogProbs`, a = b = 1/2 until `fit_mix` sets them
    on held-out texts). Train each branch on its own loss (`branch_model`):
    trained on the combination, the linear branch fits the training texts
    within an epoch and leaves the recurrent one nothing to learn.

    Args:
        vocab_size: Number of ids, padding and ``[UNK]`` included.
        num_classes: Number of labels (>= 2).
        cell: A cell name of `keras_deeprnn.cells.CELL_NAMES`.
        arch: A kind of `keras_deeprnn.models.KINDS` ("rnn", "dt", "dts",
            "dot", "dots", "srnn"); the deep output of "dot"/"dots" (width
            `units`) follows the recurrent layer.
        units: Units of the recurrent state (per direction).
        depth: Transition depth (dt kinds) or stacked layers (srnn).
        embedding_dim: Size of the word vectors.
        pooling: "last" (final states of both directions), "max" (max over
            time) or "attention" (`AttentionPooling`).
        bidirectional: Read the text in both directions.
        dropout: Dropout on the word vectors and on the pooled vector.
        recurrent_dropout: Dropout on the recurrent state (in the cells).
        unit_type: Units of the intermediate layers of deep architectures
            ("tanh", "relu", "maxout", "lp").
        word_dropout: Fraction of the words whose whole vector is dropped
            (zeroed) in training.
        wide: Add the wide branch (layer ``"wide"``).
        wide_buckets: Hash buckets of its bigrams.
        wide_l2: L2 penalty of its weights.
        wide_dropout: Fraction of its features dropped in training.
        cell_kwargs: More arguments for every recurrent cell (e.g.
            `{"forget_bias": 2.0}` for an LSTM).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown --pooling {pooling!r}; choose one of {', '.join(POOLINGS)}.")
    if num_classes < 2:
        raise ValueError(f"A classifier needs at least 2 labels, got {num_classes}.")
    if min(units, embedding_dim, vocab_size) < 1:
        raise ValueError("--units, --embedding-dim and the vocabulary size must be positive.")
    if not all(0 <= r < 1 for r in (dropout, recurrent_dropout, word_dropout)):
        raise ValueError("--dropout, --recurrent-dropout and --word-dropout must be in [0, 1).")
    cell_kwargs = dict(cell_kwargs or {})
    if recurrent_dropout:
        cell_kwargs["recurrent_dropout"] = recurrent_dropout
    rnn_layers = models.deep_rnn(
        arch,
        units=units,
        cell=cell,
        depth=depth,
        unit_type=unit_type,
        output_units=units if arch in DEEP_OUTPUT_ARCHS else None,
        output_activation="tanh" if arch in DEEP_OUTPUT_ARCHS else None,
        cell_kwargs=cell_kwargs or None,
        return_sequences=pooling != "last",
        name="recurrent",
    )
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(ids)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    if word_dropout:
        x = keras.layers.Dropout(word_dropout, noise_shape=(None, None, 1), name="word_dropout")(x)
    rnn = rnn_layers[0]
    if bidirectional:
        rnn = keras.layers.Bidirectional(rnn, name="bidirectional_rnn")
    x = rnn(x)
    for layer in rnn_layers[1:]:
        x = layer(x)
    if pooling == "max":
        x = MaskedMaxPooling(name="pooling")(x)
    elif pooling == "attention":
        x = AttentionPooling(name="pooling")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    if wide:
        deep = keras.layers.Dense(num_classes, activation="log_softmax", name="classifier")(x)
        wide_log_probs = wide_branch.NgramLogits(
            vocab_size,
            num_classes,
            buckets=wide_buckets,
            l2=wide_l2,
            dropout=wide_dropout,
            log_probs=True,
            name="wide",
        )(ids)
        mixed = wide_branch.MixLogProbs(name="mix")([deep, wide_log_probs])
        probs = keras.layers.Activation("softmax", name="probabilities")(mixed)
    else:
        probs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    name = f"sentiment_{cell}_{arch}_{pooling}{'_wide' if wide else ''}".replace("-", "_")
    return keras.Model(ids, probs, name=name)


def branch_model(classifier, branch, lr=2e-3, clipnorm=1.0):
    """A compiled model that trains one branch of a classifier built with
    ``wide=True``, on the classifier's layers (so on its weights):

    - ``"wide"``: token ids -> the wide branch's log-probabilities, loss the
      cross-entropy; a convex problem, trained first, to convergence;
    - ``"deep"``: token ids -> ``{"deep": the recurrent branch's
      log-probabilities, "combined": the classifier's probabilities}``, loss
      the recurrent branch's own cross-entropy (freeze the wide branch
      before); ``val_combined_loss`` is the combination's, to stop on.
    """
    if branch not in ("wide", "deep"):
        raise ValueError(f"branch must be 'wide' or 'deep', got {branch!r}.")
    try:
        deep = classifier.get_layer("classifier").output
        wide = classifier.get_layer("wide").output
    except ValueError:
        raise ValueError(
            f"{classifier.name} has no wide branch (build it with wide=True)."
        ) from None
    # log-probabilities are logits of the same softmax
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(lr, clipnorm=clipnorm or None)
    if branch == "wide":
        model = keras.Model(classifier.input, wide, name=classifier.name + "_wide")
        model.compile(optimizer=optimizer, loss=cross_entropy, metrics=["accuracy"])
        return model
    model = keras.Model(
        classifier.input,
        {"deep": deep, "combined": classifier.output},
        name=classifier.name + "_deep",
    )
    model.compile(
        optimizer=optimizer,
        loss={"deep": cross_entropy, "combined": "sparse_categorical_crossentropy"},
        loss_weights={"deep": 1.0, "combined": 0.0},
        metrics={"combined": ["accuracy"]},
    )
    return model


def recurrent_layer(classifier):
    """The classifier's recurrent layer: a `keras.layers.RNN` or a
    `Bidirectional` wrapping one."""
    for layer in classifier.layers:
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            return layer
    raise ValueError(f"{classifier.name} has no recurrent layer.")


def compile_classifier(model, lr=2e-3, clipnorm=1.0):
    model.compile(
        optimizer=keras.optimizers.Adam(lr, clipnorm=clipnorm or None),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def inference_copy(classifier):
    """An uncompiled copy of `classifier` with its weights, so that a saved
    model holds no optimizer state (a third of the size with Adam)."""
    copy = keras.Model.from_config(classifier.get_config())
    copy.set_weights(classifier.get_weights())
    return copy


def text_model(vectorizer, classifier):
    """Raw strings ``(batch,)`` -> probabilities: `vectorizer`, then `classifier`."""
    text = keras.Input((), dtype="string", name="text")
    probs = classifier(vectorizer(text))
    return keras.Model(text, probs, name="sentiment_text_model")


def parts(model):
    """``(vectorizer, classifier)`` of a text model made by `text_model`."""
    vectorizer = classifier = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.TextVectorization):
            vectorizer = layer
        elif isinstance(layer, keras.Model):
            classifier = layer
    if vectorizer is None or classifier is None:
        raise ValueError(
            f"{model.name} is not a sentiment text model (a TextVectorization "
            "layer followed by a classifier)."
        )
    return vectorizer, classifier
