"""How the sentiment app trains: one run (`train_once`), K-fold
cross-validation (`cross_validate`), and what they use: language-model
pre-training, SVD embeddings, the wide branch's refit and mix.

Pre-training (`pretrain_lm`) follows Dai & Le 2015 ("Semi-supervised
Sequence Learning"): the embedding and the recurrent layer first learn to
predict the next word of the training texts (and, for the backward
direction of a bidirectional RNN, the previous word), then start the
classifier from those weights. Only the training texts are read, never the
texts being evaluated. The language model predicts the `lm_vocab` most
frequent words with a full softmax (the rarer ones as ``[UNK]``).
"""

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_deeprnn.data.text import bucketed_dataset
from keras_deeprnn.data.text import length_batches
from keras_deeprnn.data.text import token_lengths

from ..common import runner
from ..common.cli import DEFAULT_RUNS
from . import data
from .model import OOV
from .model import PAD
from .model import recurrent_layer
from .wide import fit_mix_weights


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
            name="kernel", shape=(input_shape[-1], self.size), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.size,), initializer="zeros")

    def loss(self, hidden, targets):
        targets = tf.where(targets < self.size, targets, tf.ones_like(targets) * OOV)
        logits = tf.matmul(hidden, self.kernel) + self.bias
        return tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)


def _lm_copy(layer):
    """A forward, sequence-returning copy of a recurrent layer (same weights
    layout), for the language model."""
    config = {
        **layer.get_config(),
        "return_sequences": True,
        "return_state": False,
        "go_backwards": False,
        "name": layer.name + "_lm",
    }
    return layer.__class__.from_config(config)


def pretrain_lm(
    classifier,
    ids,
    epochs=3,
    batch_size=64,
    lr=2e-3,
    clipnorm=1.0,
    dropout=0.2,
    lm_vocab=5000,
    seed=0,
    valid_ids=None,
    verbose=True,
):
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
        {**embedding.get_config(), "name": "lm_embedding"}
    )
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
        v for rnn, head, _ in directions for v in rnn.trainable_variables + head.trainable_variables
    ]
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
        row_lengths = token_lengths(data)
        for batch in length_batches(data, batch_size, shuffle, rng):
            cut = row_lengths[batch].max()
            yield [
                tf.constant((reversed_data if backwards else data)[batch, :cut])
                for _, _, backwards in directions
            ]

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


def fit_classifier(
    classifier,
    train_ids,
    train_labels,
    valid_ids,
    valid_labels,
    run_dir,
    epochs=10,
    patience=2,
    batch_size=64,
    seed=0,
    verbose="auto",
    monitor="val_loss",
):
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
        classifier,
        train,
        valid,
        run_dir,
        epochs,
        monitor=monitor,
        mode="max" if "acc" in monitor else "min",
        patience=patience,
        grad_batch=grad_batch,
        verbose=verbose,
    )


def predict_ids(classifier, ids, batch_size=256):
    """Class probabilities ``(n, classes)`` of 0-padded ids, in input order."""
    ids = np.asarray(ids, np.int32)
    out = None
    row_lengths = token_lengths(ids)
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
    counts = sparse.coo_matrix(
        (np.concatenate(vals), (rows, cols)), shape=(vocab_size, vocab_size)
    ).tocsr()
    total = counts.sum()
    word = np.asarray(counts.sum(axis=1)).ravel()
    context = np.asarray(counts.sum(axis=0)).ravel() ** smoothing
    context = context / max(context.sum(), 1e-12)
    counts = counts.tocoo()
    pmi = (
        np.log(counts.data * 1.0 / total)
        - np.log(word[counts.row] / total)
        - np.log(np.maximum(context[counts.col], 1e-12))
    )
    keep = pmi > 0
    ppmi = sparse.csr_matrix(
        (pmi[keep], (counts.row[keep], counts.col[keep])), shape=(vocab_size, vocab_size)
    )
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
        predict_ids(
            keras.Model(classifier.input, classifier.get_layer(name).output), ids, batch_size
        )
        for name in ("classifier", "wide")
    )


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
    from .model import branch_model
    from .wide import nb_ratios

    layer = classifier.get_layer("wide")
    layer.trainable = True
    layer.ratio.assign(nb_ratios(layer, ids, labels))
    layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
    layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    model = branch_model(classifier, "wide", lr, clipnorm)
    model.fit(
        bucketed_dataset(ids, labels, batch_size, shuffle=True, seed=seed),
        epochs=epochs,
        verbose=0,
        shuffle=False,
    )  # the dataset shuffles
    layer.trainable = False


# -- the procedure -------------------------------------------------------------


def build(args, vectorizer, num_classes, train_ids, train_labels, valid_ids):
    """The classifier, its embedding initialised / pre-trained and its wide
    branch's Naive-Bayes ratios counted as asked; compiled unless --wide
    (whose branches `train_once` compiles)."""
    from .model import build_classifier
    from .model import compile_classifier
    from .wide import nb_ratios

    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        classifier = build_classifier(
            vectorizer.vocabulary_size(),
            num_classes,
            cell=args.cell,
            arch=args.arch,
            units=args.units,
            depth=args.depth,
            embedding_dim=args.embedding_dim,
            pooling=args.pooling,
            bidirectional=not args.unidirectional,
            dropout=args.dropout,
            recurrent_dropout=args.recurrent_dropout,
            unit_type=args.unit_type,
            word_dropout=args.word_dropout,
            wide=args.wide,
            wide_buckets=args.wide_buckets,
            wide_l2=args.wide_l2,
            wide_dropout=args.wide_dropout,
        )
        if args.wide:
            wide = classifier.get_layer("wide")
            wide.ratio.assign(nb_ratios(wide, train_ids, train_labels))
        if args.init_embeddings == "svd":
            classifier.get_layer("embedding").set_weights(
                [svd_embeddings(train_ids, vectorizer.vocabulary_size(), args.embedding_dim)]
            )
        if args.pretrain_lm:
            pretrain_lm(
                classifier,
                train_ids,
                epochs=args.pretrain_lm,
                batch_size=args.batch_size,
                lr=args.lm_lr,
                lm_vocab=args.lm_vocab,
                clipnorm=args.clipnorm,
                seed=args.seed,
                valid_ids=valid_ids,
            )
        if not args.wide:
            compile_classifier(classifier, args.lr, args.clipnorm)
    return classifier


def train_once(args, train_set, run_dir, verbose):
    """Vectorizer + classifier trained on `train_set` (a validation part held
    out, `data.prepare`); returns (vectorizer, classifier, history). With
    --wide, the wide branch trains first (in run_dir/wide, early-stopped on
    the validation part), then, frozen, the recurrent one (its history is
    returned); the mix of the two is fitted on the validation part, and last
    the wide branch is trained again, on all of `train_set`, for as many
    epochs as its best before (with 10% more texts the linear model gains
    0.5-1 point on MR; docs/sentiment.md)."""
    from .model import branch_model

    # The wide branch ends trained on every training text, so it gets their
    # words; the recurrent branch never sees the validation part's own words.
    prepared = data.prepare(args, train_set, vocabulary_from_all=args.wide)
    vectorizer, sets, ids = (prepared.info[k] for k in ("vectorizer", "sets", "ids"))
    fit_set, valid_set = sets["train"], sets["valid"]
    classifier = build(
        args, vectorizer, len(train_set.label_names), ids["train"], fit_set.labels, ids["valid"]
    )
    fit = dict(
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=verbose,
    )
    train_data = (ids["train"], fit_set.labels, ids["valid"], valid_set.labels)
    if not args.wide:
        return vectorizer, classifier, fit_classifier(classifier, *train_data, run_dir, **fit)
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        wide = branch_model(classifier, "wide", args.lr, args.clipnorm)
    wide_history = fit_classifier(wide, *train_data, Path(run_dir) / "wide", **fit)
    # History.epoch holds the epoch numbers (a resumed run's start after 0).
    wide_epochs = wide_history.epoch[int(np.argmin(wide_history.history["val_loss"]))] + 1
    print(
        f"wide branch: best of {len(wide_history.history['loss'])} epochs at epoch "
        f"{wide_epochs}, validation accuracy "
        f"{max(wide_history.history['val_accuracy']):.4f}",
        flush=True,
    )
    classifier.get_layer("wide").trainable = False
    with strategy.scope():
        deep = branch_model(classifier, "deep", args.lr, args.clipnorm)
    history = fit_classifier(deep, *train_data, run_dir, monitor="val_combined_loss", **fit)
    a, b, loss = fit_mix(classifier, ids["valid"], valid_set.labels)
    print(
        f"mix on the validation texts: {a:.2f} log p_rnn + {b:.2f} log p_wide "
        f"(validation loss {loss:.4f})",
        flush=True,
    )
    with strategy.scope():
        refit_wide(
            classifier,
            ids["all"],
            train_set.labels,
            wide_epochs,
            lr=args.lr,
            clipnorm=args.clipnorm,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    print(
        f"wide branch trained again on all {len(train_set)} training texts for "
        f"{wide_epochs} epochs",
        flush=True,
    )
    return vectorizer, classifier, history


def branch_accuracies(vectorizer, classifier, texts, max_length):
    """Accuracy of each branch of a --wide classifier on its own on the
    `TextSet` `texts` (what the combination is made of; reported, not used
    to choose anything)."""
    rnn, wide = branch_log_probs(classifier, data.token_ids(vectorizer, texts.texts, max_length))
    return {
        "rnn_accuracy": float((rnn.argmax(axis=1) == texts.labels).mean()),
        "wide_accuracy": float((wide.argmax(axis=1) == texts.labels).mean()),
    }


def accuracy(vectorizer, classifier, texts, max_length):
    """Accuracy of `classifier` on the `TextSet` `texts`."""
    ids = data.token_ids(vectorizer, texts.texts, max_length)
    predicted = predict_ids(classifier, ids).argmax(axis=1)
    return float((predicted == texts.labels).mean())


def model_name(args):
    """--name, or DATA-CELL-ARCH-POOLING-UNITS."""
    stem = Path(args.data).stem if Path(args.data).suffix else Path(args.data).name
    stem = stem.replace(":", "-").replace("/", "-") or "data"
    return args.name or f"{stem}-{args.cell}-{args.arch}-{args.pooling}-{args.units}"


def cross_validate(args, texts):
    """K-fold cross-validation of the configuration in `args` on the
    `TextSet` `texts`; finished folds (`result.json`) are read back."""
    from keras_deeprnn.data import text

    name = model_name(args)
    run_dir = args.run_dir or DEFAULT_RUNS / f"sentiment-{name}-cv{args.cv}"
    folds = text.kfold_indices(texts.labels, args.cv, seed=args.seed)
    chosen = range(args.cv)
    if args.folds:
        try:
            chosen = sorted({int(f) for f in args.folds.split(",")})
        except ValueError:
            raise ValueError(
                f"--folds takes fold numbers separated by commas, got {args.folds!r}."
            ) from None
        if chosen[0] < 0 or chosen[-1] >= args.cv:
            raise ValueError(f"--folds must be in 0..{args.cv - 1}.")
    print(
        f"{args.cv}-fold cross-validation on {args.data}: {len(texts)} texts "
        f"{texts.counts()}; runs in {run_dir}",
        flush=True,
    )
    results = []
    for k in chosen:
        train_idx, test_idx = folds[k]
        fold_dir = run_dir / f"fold-{k}"
        done = fold_dir / "result.json"
        if done.is_file():
            result = json.loads(done.read_text())
            print(f"fold {k}: done before, accuracy {result['accuracy']:.4f}")
            results.append(result)
            continue
        keras.backend.clear_session()
        runner.set_seed(args.seed + k)
        train_set, test_set = texts.subset(train_idx), texts.subset(test_idx)
        with runner.Timer() as timer:
            vectorizer, classifier, history = train_once(args, train_set, fold_dir, 2)
            score = accuracy(vectorizer, classifier, test_set, args.max_length)
        result = {
            "fold": k,
            "test_texts": len(test_set),
            "accuracy": score,
            "epochs_run": len(history.history["loss"]),
            "seconds": round(timer.seconds, 1),
        }
        if args.wide:
            result.update(branch_accuracies(vectorizer, classifier, test_set, args.max_length))
        if args.baseline:
            from .baseline import tfidf_logreg

            with runner.Timer() as base_timer:
                predicted = tfidf_logreg(train_set.texts, train_set.labels, test_set.texts)
            result["baseline_accuracy"] = float((predicted == test_set.labels).mean())
            result["baseline_seconds"] = round(base_timer.seconds, 1)
        done.write_text(json.dumps(result, indent=2) + "\n")
        results.append(result)
        line = (
            f"fold {k}: accuracy {score:.4f} ({result['epochs_run']} epochs, {timer.seconds:.0f} s)"
        )
        if args.baseline:
            line += f"; TF-IDF baseline {result['baseline_accuracy']:.4f}"
        print(line, flush=True)
    summary = _summary(results, args)
    (run_dir / "cv.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(_summary_line(summary))
    return summary


def _summary(results, args):
    """The folds' results, their mean and spread, and the command."""
    acc = np.array([r["accuracy"] for r in results])
    summary = {
        "data": args.data,
        "folds": args.cv,
        "name": model_name(args),
        "results": results,
        "mean_accuracy": float(acc.mean()),
        "std_accuracy": float(acc.std()),
        "seconds": round(sum(r["seconds"] for r in results), 1),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "command": runner.command_line(),
    }
    if args.baseline and all("baseline_accuracy" in r for r in results):
        base = np.array([r["baseline_accuracy"] for r in results])
        summary["baseline_mean_accuracy"] = float(base.mean())
        summary["baseline_std_accuracy"] = float(base.std())
        summary["baseline_seconds"] = round(sum(r["baseline_seconds"] for r in results), 1)
    for branch in ("rnn", "wide"):
        if all(f"{branch}_accuracy" in r for r in results):
            summary[f"{branch}_mean_accuracy"] = float(
                np.mean([r[f"{branch}_accuracy"] for r in results])
            )
    return summary


def _summary_line(s):
    line = (
        f"mean accuracy over {len(s['results'])} fold(s): {s['mean_accuracy']:.4f} "
        f"(std {s['std_accuracy']:.4f}; {s['seconds']:.0f} s of training)"
    )
    if "baseline_mean_accuracy" in s:
        line += (
            f"; TF-IDF uni+bigram logistic regression {s['baseline_mean_accuracy']:.4f} "
            f"(std {s['baseline_std_accuracy']:.4f})"
        )
    if "wide_mean_accuracy" in s:
        line += (
            f"; branches alone: recurrent {s['rnn_mean_accuracy']:.4f}, "
            f"wide {s['wide_mean_accuracy']:.4f}"
        )
    return line
