"""Training helpers of the sentiment app: vectorising, length-bucketed
batches, recurrent language-model pre-training, one training run.

Pre-training (`pretrain_lm`) follows Dai & Le 2015 ("Semi-supervised
Sequence Learning"): the embedding and the recurrent layer first learn to
predict the next word of the training texts (and, for the backward
direction of a bidirectional RNN, the previous word), then start the
classifier from those weights. Only the training texts are read, never the
texts being evaluated. The language model predicts the `lm_vocab` most
frequent words with a full softmax (the rarer ones as ``[UNK]``).
"""

import keras
import numpy as np
import tensorflow as tf

from apps.common import runner
from apps.sentiment.model import OOV
from apps.sentiment.model import PAD
from apps.sentiment.model import recurrent_layer
from apps.sentiment.wide import fit_mix_weights



def vectorize(vectorizer, texts, chunk=2048):
    """Texts -> ``(n, max_length)`` int32 ids (0-padded) with `vectorizer`."""
    out = [
        vectorizer(tf.constant(list(texts[i : i + chunk]), tf.string)).numpy()
        for i in range(0, len(texts), chunk)
    ]
    if not out:
        return np.zeros((0, vectorizer.get_config()["output_sequence_length"] or 1), np.int32)
    return np.concatenate(out).astype(np.int32)


def lengths(ids):
    """Number of tokens of each row of 0-padded ids (at least 1: an empty
    text is one padding step, which the model masks)."""
    return np.maximum((ids != PAD).sum(axis=1), 1)


def length_batches(ids, batch_size, shuffle=False, rng=None):
    """Index batches of texts of similar length.

    Texts are sorted by length (with random tie-breaking when shuffling), cut
    into batches of `batch_size`, and the batches visited in random order
    when shuffling: padding stays small and every epoch differs.
    """
    n = len(ids)
    size = lengths(ids).astype(np.float64)
    if shuffle:
        size = size + rng.random(n)
    order = np.argsort(size, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def bucketed_dataset(ids, labels=None, batch_size=64, shuffle=False, seed=0):
    """A `tf.data.Dataset` of length-bucketed ``(ids, labels)`` batches (or
    ids only), each cut to its longest text. Reshuffled every epoch."""
    ids = np.asarray(ids, np.int32)
    row_lengths = lengths(ids)
    rng = np.random.default_rng(seed)

    def batches():
        for batch in length_batches(ids, batch_size, shuffle, rng):
            cut = ids[batch, : row_lengths[batch].max()]
            yield cut if labels is None else (cut, labels[batch])

    spec = tf.TensorSpec((None, None), tf.int32)
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        spec = (spec, tf.TensorSpec((None,), tf.int64))
    count = -(-len(ids) // batch_size)
    dataset = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(2)


def reverse_rows(ids):
    """Each row's tokens in reverse order, padding kept at the end."""
    ids = np.asarray(ids)
    out = np.zeros_like(ids)
    for i, n in enumerate((ids != PAD).sum(axis=1)):
        out[i, :n] = ids[i, :n][::-1]
    return out


class _Softmax(keras.layers.Layer):
    """Output layer of a language model over the `size` most frequent ids
    (the rarer ones are predicted as ``[UNK]``)."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.size), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.size,), initializer="zeros")

    def loss(self, hidden, targets):
        targets = tf.where(targets < self.size, targets, tf.ones_like(targets) * OOV)
        logits = tf.matmul(hidden, self.kernel) + self.bias
        return tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)


def _lm_copy(layer):
    """A forward, sequence-returning copy of a recurrent layer (same weights
    layout), for the language model."""
    config = {**layer.get_config(), "return_sequences": True, "return_state": False,
              "go_backwards": False, "name": layer.name + "_lm"}
    return layer.__class__.from_config(config)


def pretrain_lm(classifier, ids, epochs=3, batch_size=64, lr=2e-3, clipnorm=1.0,
                dropout=0.2, lm_vocab=5000, seed=0, valid_ids=None, verbose=True):
    """Language-model pre-training of `classifier`'s embedding and recurrent
    layer on the texts `ids` (0-padded token ids); writes the weights into
    `classifier` and returns a history dict (``loss``: training cross-entropy
    per epoch; ``valid_perplexity`` with `valid_ids`, over the `lm_vocab`
    most frequent words and ``[UNK]``).

    A forward RNN predicts token t+1 from tokens 1..t; for a bidirectional
    layer, the backward RNN predicts token t-1 from tokens t..n (it reads the
    reversed texts). Both share the embedding, as in the classifier.
    """
    embedding = classifier.get_layer("embedding")
    recurrent = recurrent_layer(classifier)
    if isinstance(recurrent, keras.layers.Bidirectional):
        targets = [(recurrent.forward_layer, False), (recurrent.backward_layer, True)]
    else:
        targets = [(recurrent, bool(recurrent.go_backwards))]
    vocab_size = embedding.input_dim
    lm_embedding = keras.layers.Embedding.from_config(
        {**embedding.get_config(), "name": "lm_embedding"})
    directions = []
    for layer, backwards in targets:
        rnn = _lm_copy(layer)
        head = _Softmax(min(lm_vocab, vocab_size), name=f"{rnn.name}_softmax")
        directions.append((rnn, head, backwards))
    drop = keras.layers.Dropout(dropout, seed=seed)
    probe = tf.constant([[2, 3]], tf.int32)
    for rnn, head, _ in directions:
        head.build(rnn(lm_embedding(probe)).shape)
    lm_embedding.set_weights(embedding.get_weights())
    for (rnn, _, _), (layer, _) in zip(directions, targets):
        rnn.set_weights(layer.get_weights())
    variables = lm_embedding.trainable_variables + [
        v for rnn, head, _ in directions for v in rnn.trainable_variables + head.trainable_variables]
    optimizer = keras.optimizers.Adam(lr, clipnorm=clipnorm or None)
    optimizer.build(variables)

    def direction_loss(rnn, head, batch, training):
        inputs, next_ids = batch[:, :-1], batch[:, 1:]
        x = lm_embedding(inputs)
        x = drop(x, training=training)
        hidden = rnn(x, mask=inputs != PAD, training=training)
        hidden = drop(hidden, training=training)
        keep = next_ids != PAD
        losses = head.loss(tf.boolean_mask(hidden, keep), tf.boolean_mask(next_ids, keep))
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(keep, tf.float32))

    spec = [tf.TensorSpec((None, None), tf.int32)] * len(directions)

    @tf.function(input_signature=spec)
    def train_step(*batches):
        with tf.GradientTape() as tape:
            total, count = 0.0, 0.0
            for (rnn, head, _), batch in zip(directions, batches):
                loss, n = direction_loss(rnn, head, batch, True)
                total, count = total + loss, count + n
            mean = total / tf.maximum(count, 1.0)
        grads = tape.gradient(mean, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return mean

    @tf.function(input_signature=spec)
    def eval_step(*batches):
        total, count = 0.0, 0.0
        for (rnn, head, _), batch in zip(directions, batches):
            loss, n = direction_loss(rnn, head, batch, False)
            total, count = total + loss, count + n
        return total, count

    def batches_of(data, shuffle, rng):
        data = np.asarray(data, np.int32)
        reversed_data = reverse_rows(data)
        row_lengths = lengths(data)
        for batch in length_batches(data, batch_size, shuffle, rng):
            cut = row_lengths[batch].max()
            yield [tf.constant((reversed_data if backwards else data)[batch, :cut])
                   for _, _, backwards in directions]

    rng = np.random.default_rng(seed)
    history = {"loss": [], "valid_perplexity": []}
    for epoch in range(epochs):
        losses = [float(train_step(*b)) for b in batches_of(ids, True, rng)]
        history["loss"].append(float(np.mean(losses)))
        line = f"LM pre-training epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.3f}"
        if valid_ids is not None and len(valid_ids):
            total = count = 0.0
            for b in batches_of(valid_ids, False, None):
                t, c = eval_step(*b)
                total, count = total + float(t), count + float(c)
            history["valid_perplexity"].append(float(np.exp(total / max(count, 1.0))))
            line += f", validation perplexity {history['valid_perplexity'][-1]:.1f}"
        if verbose:
            print(line, flush=True)
    embedding.set_weights(lm_embedding.get_weights())
    for (rnn, _, _), (layer, _) in zip(directions, targets):
        layer.set_weights(rnn.get_weights())
    return history


def fit_classifier(classifier, train_ids, train_labels, valid_ids, valid_labels, run_dir,
                   epochs=10, patience=2, batch_size=64, seed=0, verbose="auto",
                   monitor="val_loss"):
    """`runner.fit` on length-bucketed batches; returns the History (the
    weights of the best epoch on `monitor` are restored). A model with
    several outputs (`branch_model(..., "deep")`) gets the labels for each."""
    train = bucketed_dataset(train_ids, train_labels, batch_size, shuffle=True, seed=seed)
    valid = bucketed_dataset(valid_ids, valid_labels, batch_size)
    if isinstance(classifier.output, dict):
        names = list(classifier.output)
        train, valid = (d.map(lambda x, y: (x, {n: y for n in names})) for d in (train, valid))
    grad_batch = next(iter(train))
    return runner.fit(
        classifier, train, valid, run_dir, epochs,
        monitor=monitor, mode="max" if "acc" in monitor else "min",
        patience=patience, grad_batch=grad_batch, verbose=verbose,
    )


def predict_ids(classifier, ids, batch_size=256):
    """Class probabilities ``(n, classes)`` of 0-padded ids, in input order."""
    ids = np.asarray(ids, np.int32)
    out = None
    row_lengths = lengths(ids)
    for batch in length_batches(ids, batch_size):
        probs = np.asarray(classifier(ids[batch, : row_lengths[batch].max()], training=False))
        if out is None:
            out = np.zeros((len(ids), probs.shape[1]), np.float32)
        out[batch] = probs
    return out



def svd_embeddings(ids, vocab_size, dim, window=5, smoothing=0.75):
    """Word vectors from the texts themselves: the truncated SVD of the
    positive pointwise mutual information matrix of word co-occurrences
    within `window` words (Levy, Goldberg & Dagan 2015, with context
    distribution smoothing), ``U sqrt(S)`` scaled to a standard deviation of
    0.05. Returns ``(vocab_size, dim)`` float32; ids 0 and 1 get zeros."""
    from scipy import sparse
    from scipy.sparse.linalg import svds

    ids = np.asarray(ids)
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        left, right = ids[:, :-d], ids[:, d:]
        keep = (left > OOV) & (right > OOV)
        a, b = left[keep], right[keep]
        rows += [a, b]
        cols += [b, a]
        vals += [np.full(2 * len(a), 1.0 / d)]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.coo_matrix((np.concatenate(vals), (rows, cols)),
                               shape=(vocab_size, vocab_size)).tocsr()
    total = counts.sum()
    word = np.asarray(counts.sum(axis=1)).ravel()
    context = np.asarray(counts.sum(axis=0)).ravel() ** smoothing
    context = context / max(context.sum(), 1e-12)
    counts = counts.tocoo()
    pmi = np.log(counts.data * 1.0 / total) - np.log(word[counts.row] / total) - np.log(
        np.maximum(context[counts.col], 1e-12))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])),
                             shape=(vocab_size, vocab_size))
    k = min(dim, min(ppmi.shape) - 2)
    u, s, _ = svds(ppmi.astype(np.float64), k=k, random_state=0)
    vectors = np.zeros((vocab_size, dim), np.float32)
    vectors[:, :k] = u * np.sqrt(s)
    vectors[:2] = 0.0
    std = vectors[2:].std()
    if std > 0:
        vectors *= 0.05 / std
    return vectors


def branch_log_probs(classifier, ids, batch_size=256):
    """The log-probabilities ``(n, classes)`` of each branch of a classifier
    built with ``wide=True`` on its own: ``(recurrent, wide)``."""
    return tuple(
        predict_ids(keras.Model(classifier.input, classifier.get_layer(name).output), ids,
                    batch_size)
        for name in ("classifier", "wide"))


def fit_mix(classifier, ids, labels, batch_size=256):
    """Fits the weights of the ``"mix"`` layer of a classifier built with
    ``wide=True`` on held-out token ids and labels
    (`apps.sentiment.wide.fit_mix_weights`); returns ``(a, b, loss)``."""
    deep, wide = branch_log_probs(classifier, ids, batch_size)
    a, b, loss = fit_mix_weights(deep, wide, labels)
    classifier.get_layer("mix").weights_ab.assign(np.array([a, b], "float32"))
    return a, b, loss


def refit_wide(classifier, ids, labels, epochs, lr=2e-3, clipnorm=1.0, batch_size=64, seed=0):
    """Trains the wide branch of `classifier` again from zero weights on
    `ids`/`labels` (its Naive-Bayes ratios counted on them) for `epochs`
    epochs, the number early stopping chose on held-out texts; the rest of
    the classifier is left as it is."""
    from apps.sentiment.model import branch_model
    from apps.sentiment.wide import nb_ratios

    layer = classifier.get_layer("wide")
    layer.trainable = True
    layer.ratio.assign(nb_ratios(layer, ids, labels))
    layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
    layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    model = branch_model(classifier, "wide", lr, clipnorm)
    model.fit(bucketed_dataset(ids, labels, batch_size, shuffle=True, seed=seed),
              epochs=epochs, verbose=0, shuffle=False)  # the dataset shuffles
    layer.trainable = False
