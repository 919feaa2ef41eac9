"""The tagger: word embeddings + a character RNN per word, a bidirectional
RNN over the sentence, and a softmax over the tags at every token.

The model takes the raw tokens, a `(batch, time)` string tensor padded with
`""`, and returns `(batch, time, tags)` logits. Everything that maps strings
to numbers lives inside it, so the `.keras` file is self-contained and loads
with `safe_mode=True`:

    tokens ─ NormalizeWords ─ StringLookup ─ WordDropout ─ Embedding ────┐
           └ CharSplit ─ StringLookup ─ Embedding ─ PerWord(Bi-RNN) ────┴ concat
      ─ Dropout ─ [Bidirectional(RNN) ─ Dropout] x layers ─ TagScores (tag names)
      [─ CRF: with `crf=True`, (batch, time, tags, tags) edge potentials]

The custom layers are registered with Keras, so importing this module is all
`keras.models.load_model` needs.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_deeprnn import cells
from keras_deeprnn.layers import CRF
from keras_deeprnn.layers import RNN
from keras_deeprnn.layers import CRFLoss
from keras_deeprnn.layers import viterbi_decode

PACKAGE = "keras_deeprnn_tagging"
ARCHS = ("rnn", "dt", "dts", "srnn")
PAD = ""
OOV_INDEX = 1  # StringLookup with mask_token="" and one OOV index: 0 pad, 1 unknown


@keras.saving.register_keras_serializable(package=PACKAGE)
class NormalizeWords(keras.layers.Layer):
    """Lower-cases tokens (Unicode) and maps ASCII digits to 0, as
    `apps.tagging.text.normalize_word` does in Python."""

    def call(self, tokens):
        return tf.strings.regex_replace(tf.strings.lower(tokens, encoding="utf-8"), "[0-9]", "0")

    def compute_output_spec(self, tokens):
        return keras.KerasTensor(tokens.shape, dtype="string")


@keras.saving.register_keras_serializable(package=PACKAGE)
class CharSplit(keras.layers.Layer):
    """`(batch, time)` tokens to `(batch, time, chars)` characters, padded with "".

    A token longer than `max_chars` keeps its first `max_chars // 2` and its
    last `max_chars - max_chars // 2` characters (capitalisation, prefixes,
    suffixes). The character axis is as long as the longest kept token of the
    batch.
    """

    def __init__(self, max_chars=16, **kwargs):
        super().__init__(**kwargs)
        if int(max_chars) < 2:
            raise ValueError(f"max_chars must be at least 2, got {max_chars}")
        self.max_chars = int(max_chars)

    def call(self, tokens):
        shape = tf.shape(tokens, out_type=tf.int64)
        chars = tf.strings.unicode_split(tf.reshape(tokens, [-1]), "UTF-8", errors="replace")
        n = chars.row_lengths()[:, None]
        padded = tf.pad(chars.to_tensor(default_value=PAD), [[0, 0], [0, 1]], constant_values=PAD)
        width = tf.clip_by_value(tf.reduce_max(tf.concat([n[:, 0], [1]], 0)), 1, self.max_chars)
        pos = tf.range(width, dtype=tf.int64)[None, :]
        head = self.max_chars // 2
        index = tf.where((n > self.max_chars) & (pos >= head), n - width + pos, pos)
        index = tf.minimum(index, tf.cast(tf.shape(padded)[1] - 1, tf.int64))
        kept = tf.where(pos < n, tf.gather(padded, index, batch_dims=1), PAD)
        return tf.reshape(kept, tf.concat([shape, [width]], 0))

    def compute_output_spec(self, tokens):
        return keras.KerasTensor((*tokens.shape, None), dtype="string")

    def get_config(self):
        return {**super().get_config(), "max_chars": self.max_chars}


@keras.saving.register_keras_serializable(package=PACKAGE)
class WordDropout(keras.layers.Layer):
    """In training, replaces word id `i` by the unknown-word id with
    probability `probability[i]`, so that the unknown-word embedding is
    trained on words like the unseen ones. `set_counts` makes it
    `alpha / (alpha + count)` of the word's training count: rare words are
    dropped most (Kiperwasser & Goldberg 2016). The table is a non-trainable
    weight, saved with the model."""

    def __init__(self, input_dim, oov_index=OOV_INDEX, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.oov_index = int(oov_index)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        self.probability = self.add_weight(
            shape=(self.input_dim,), initializer="zeros", trainable=False, name="probability"
        )
        self.built = True

    def set_counts(self, counts, alpha):
        """Drop probabilities from the counts of ids 0.. (0 for padding and OOV)."""
        if alpha < 0:
            raise ValueError(f"word dropout alpha must be >= 0, got {alpha}")
        counts = np.asarray(counts, "float32")
        p = alpha / (alpha + np.maximum(counts, 1.0)) if alpha else np.zeros_like(counts)
        p[: self.oov_index + 1] = 0.0
        if not self.built:
            self.build()
        self.probability.assign(p)

    def call(self, ids, training=False):
        if not training:
            return ids
        p = ops.take(self.probability, ids)
        drop = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) < p
        return ops.where(drop, ops.cast(self.oov_index, ids.dtype), ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "oov_index": self.oov_index,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class TokenAccuracy(keras.metrics.Metric):
    """Share of the tokens tagged right, over a whole data set: correct
    tokens / tokens, each token weighted by its sample weight (0 at padding).

    Keras's `SparseCategoricalAccuracy` with `(batch, time)` weights averages
    per-sentence means instead, which weighs batches of long sentences less.
    Predictions are the argmax of the logits, or the Viterbi path of CRF
    edge potentials.
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        best = viterbi_decode(y_pred) if len(y_pred.shape) == 4 else ops.argmax(y_pred, -1)
        right = ops.equal(ops.cast(y_true, "int32"), ops.cast(best, "int32"))
        right = ops.cast(right, self.dtype)
        weight = (
            ops.ones_like(right)
            if sample_weight is None
            else ops.cast(ops.reshape(sample_weight, ops.shape(right)), self.dtype)
        )
        self.correct.assign_add(ops.sum(right * weight))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PerWord(keras.layers.Wrapper):
    """Applies a sequence-to-vector layer to the characters of every word:
    `(batch, time, chars, features)` to `(batch, time, output)`, passing the
    character mask on; the output mask marks the words with a character."""

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        self.layer.build((None, input_shape[2], input_shape[3]))
        self.built = True

    def call(self, inputs, mask=None, training=None):
        shape = ops.shape(inputs)
        flat = ops.reshape(inputs, (-1, shape[2], inputs.shape[3]))
        flat_mask = None if mask is None else ops.reshape(mask, (-1, shape[2]))
        out = self.layer(flat, mask=flat_mask, training=training)
        return ops.reshape(out, (shape[0], shape[1], out.shape[-1]))

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else ops.any(mask, axis=-1)

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None, input_shape[2], input_shape[3]))
        return (input_shape[0], input_shape[1], inner[-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class TagScores(keras.layers.Dense):
    """A `Dense` layer with one output per tag that keeps the tag names in
    its config (so they travel inside the `.keras` file)."""

    def __init__(self, tags, **kwargs):
        kwargs.pop("units", None)
        tags = [str(t) for t in tags]
        if len(tags) < 1 or len(set(tags)) != len(tags):
            raise ValueError(f"tags must be distinct and non-empty, got {tags!r}")
        super().__init__(len(tags), **kwargs)
        self.tags = tags

    def get_config(self):
        return {**super().get_config(), "tags": self.tags}


def _sequence_layer(cell, arch, units, depth, unit_type="tanh", cell_kwargs=None):
    """One recurrent layer (whole sequence out) of the cell and architecture."""
    if arch == "rnn":
        if depth not in (None, 1):
            raise ValueError("--depth applies to --arch dt, dts and srnn")
        return RNN(cells.get(cell, units, **(cell_kwargs or {})), return_sequences=True)
    if arch not in ARCHS:
        raise ValueError(f"Unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}.")
    from keras_deeprnn.models import deep_rnn

    return deep_rnn(
        arch, units=units, cell=cell, depth=depth, unit_type=unit_type, cell_kwargs=cell_kwargs
    )[0]


def build_model(
    vocabulary,
    characters,
    tags,
    cell="lstm",
    arch="rnn",
    depth=None,
    bi_layers=1,
    units=128,
    word_dim=100,
    char_cell=None,
    char_units=50,
    char_dim=32,
    max_chars=16,
    dropout=0.5,
    recurrent_dropout=0.0,
    unit_type="tanh",
    word_counts=None,
    word_dropout=1.0,
    crf=False,
    seed=None,
    cell_kwargs=None,
):
    """The tagger (see the module docstring).

    Args:
        vocabulary: the known (normalized, `normalize_word`) words; others
            share the unknown-word embedding.
        characters: the known characters.
        tags: the tag names, in output order.
        cell: a cell name of `keras_deeprnn.cells.get` for the sentence RNN.
        arch: "rnn" (one cell per direction) or a deep RNN of
            `keras_deeprnn.models.deep_rnn`: "dt", "dts" (deep transition),
            "srnn" (a stack inside each direction), with `depth`.
        bi_layers: stacked bidirectional layers.
        units: units per direction of the sentence RNN.
        word_dim: word embedding size; 0 uses characters only.
        char_cell, char_units, char_dim: the cell (default `cell`), units per
            direction and character embedding size of the character RNN;
            `char_units=0` uses words only.
        max_chars: characters kept per token (see `CharSplit`).
        dropout: dropout on the token features and on each layer's output.
        recurrent_dropout: dropout on the recurrent state of the sentence
            RNN's cells, one mask per sentence.
        unit_type: units of the intermediate layers of deep architectures.
        word_counts: training count of each word of `vocabulary`, for
            `word_dropout` (None: no word dropout).
        word_dropout: alpha of the word dropout: in training a word seen
            `c` times is replaced by the unknown word with probability
            `alpha / (alpha + c)` (`WordDropout`).
        crf: end with a linear-chain `CRF` (tag transitions learned, Viterbi
            decoding) instead of independent per-token softmaxes.
        cell_kwargs: more arguments for the cells of the sentence RNN (e.g.
            `{"forget_bias": 2.0}` for an LSTM); the character RNN keeps its
            defaults.
    """
    if units < 1 or bi_layers < 1:
        raise ValueError("--units and --bi-layers must be positive")
    if word_dim < 0 or char_units < 0 or (word_dim == 0 and char_units == 0):
        raise ValueError("the tagger needs word embeddings, a character RNN or both")
    for option, rate in (("--dropout", dropout), ("--recurrent-dropout", recurrent_dropout)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{option} must be in [0, 1), got {rate}")
    if recurrent_dropout:
        cell_kwargs = {**(cell_kwargs or {}), "recurrent_dropout": recurrent_dropout}
    vocabulary, characters = list(dict.fromkeys(vocabulary)), list(dict.fromkeys(characters))
    tokens = keras.Input((None,), dtype="string", name="tokens")
    features = []
    if word_dim:
        words = NormalizeWords(name="normalize")(tokens)
        ids = keras.layers.StringLookup(
            vocabulary=list(vocabulary), mask_token=PAD, num_oov_indices=1, name="word_lookup"
        )(words)
        dropper = WordDropout(len(vocabulary) + 2, seed=seed, name="word_dropout")
        if word_counts is not None:
            if len(word_counts) != len(vocabulary):
                raise ValueError("word_counts must have one count per vocabulary word")
            dropper.set_counts([0, 0, *word_counts], word_dropout)
        ids = dropper(ids)
        features.append(
            keras.layers.Embedding(
                len(vocabulary) + 2, word_dim, mask_zero=True, name="word_embedding"
            )(ids)
        )
    if char_units:
        chars = CharSplit(max_chars, name="char_split")(tokens)
        char_ids = keras.layers.StringLookup(
            vocabulary=list(characters), mask_token=PAD, num_oov_indices=1, name="char_lookup"
        )(chars)
        char_vectors = keras.layers.Embedding(
            len(characters) + 2, char_dim, mask_zero=True, name="char_embedding"
        )(char_ids)
        char_rnn = keras.layers.Bidirectional(
            RNN(cells.get(char_cell or cell, char_units)), name="char_rnn"
        )
        features.append(PerWord(char_rnn, name="per_word")(char_vectors))
    x = features[0] if len(features) == 1 else keras.layers.Concatenate(name="features")(features)
    x = keras.layers.Dropout(dropout, seed=seed)(x)
    for i in range(bi_layers):
        x = keras.layers.Bidirectional(
            _sequence_layer(cell, arch, units, depth, unit_type, cell_kwargs), name=f"birnn_{i + 1}"
        )(x)
        x = keras.layers.Dropout(dropout, seed=seed)(x)
    scores = TagScores(tags, name="tag_scores")(x)
    if crf:
        scores = CRF(name="crf")(scores)
    return keras.Model(tokens, scores, name=f"tagger_{cell}_{arch}".replace("-", "_"))


def has_crf(model):
    return any(isinstance(layer, CRF) for layer in model.layers)


def compile_model(model, lr=2e-3, clipnorm=5.0, decay_steps=None):
    """Adam, cross-entropy over the tags (the CRF's sequence NLL for a CRF
    tagger), `TokenAccuracy`; with `decay_steps`, the learning rate follows a
    cosine from `lr` down to `lr / 20`."""
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps, alpha=0.05)
    loss = (
        CRFLoss()
        if has_crf(model)
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr, clipnorm=clipnorm or None),
        loss=loss,
        weighted_metrics=[TokenAccuracy()],
        jit_compile=False,  # string ops inside the model
    )
    return model


def model_tags(model):
    """The tag names a tagger predicts, in output order."""
    try:
        return list(model.get_layer("tag_scores").tags)
    except ValueError:
        raise ValueError(
            f"{model.name} is not a tagger of this app (no 'tag_scores' layer)"
        ) from None


def model_vocabulary(model):
    """The normalized words the tagger knows (empty without word embeddings)."""
    try:
        lookup = model.get_layer("word_lookup")
    except ValueError:
        return set()
    return {str(w) for w in lookup.get_vocabulary()[lookup.num_oov_indices + 1 :]}


def pad_tokens(token_lists):
    """A `(batch, time)` NumPy array of strings, padded with ""."""
    width = max((len(t) for t in token_lists), default=0)
    out = np.full((len(token_lists), max(width, 1)), PAD, dtype=object)
    for i, tokens in enumerate(token_lists):
        out[i, : len(tokens)] = tokens
    return out


def predict_tags(model, token_lists, batch_size=64, return_probabilities=False):
    """Tags of each sentence (a list of tokens), in the input order.

    Sentences are batched by length. With `return_probabilities`, also the
    probability of each chosen tag (for a CRF tagger: its marginal
    probability given the sentence, by the forward-backward algorithm, and
    the tags are the Viterbi path).

    Raises:
        ValueError: a sentence without tokens, or an empty token.
    """
    token_lists = [list(t) for t in token_lists]
    for i, tokens in enumerate(token_lists):
        if not tokens:
            raise ValueError(f"sentence {i + 1} is empty: nothing to tag")
        if any(not t for t in tokens):
            raise ValueError(f"sentence {i + 1} has an empty token")
    names = model_tags(model)
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    tags, probs = [None] * len(token_lists), [None] * len(token_lists)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        logits = np.asarray(model.predict_on_batch(pad_tokens([token_lists[i] for i in chunk])))
        if logits.ndim == 4:  # CRF edge potentials
            best = np.asarray(viterbi_decode(logits))
            p = np.stack([_crf_marginals(row) for row in logits])
        else:
            p = np.exp(logits - logits.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            best = p.argmax(-1)
        for row, i in enumerate(chunk):
            n = len(token_lists[i])
            tags[i] = [names[k] for k in best[row, :n]]
            probs[i] = p[row, np.arange(n), best[row, :n]].tolist()
    return (tags, probs) if return_probabilities else tags


def _logsumexp(a, axis):
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(a - top).sum(axis=axis))


def _crf_marginals(potentials):
    """p(y_t = k | sentence) from one sentence's `(time, tags, tags)` CRF
    edge potentials: exp(alpha_t + beta_t - log Z) (padding, which keeps the
    tag, leaves the real tokens' marginals unchanged)."""
    potentials = potentials.astype("float64")
    steps = len(potentials)
    alpha = np.empty(potentials.shape[:2])
    beta = np.zeros(potentials.shape[:2])
    alpha[0] = potentials[0, 0]
    for t in range(1, steps):
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + potentials[t], 0)
    for t in range(steps - 2, -1, -1):
        beta[t] = _logsumexp(potentials[t + 1] + beta[t + 1][None, :], 1)
    log_p = alpha + beta - _logsumexp(alpha[-1], 0)
    return np.exp(log_p)


def export_saved_model(model, path):
    """Writes a TensorFlow SavedModel of the tagger (`model.export`):
    its `serve` signature maps a `(batch, time)` string tensor of tokens
    padded with "" to `(batch, time, tags)` logits."""
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path
