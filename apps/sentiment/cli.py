"""`python -m apps.sentiment train|evaluate|predict|export`.

Sentence and document sentiment: an embedding, a (bidirectional) recurrent
network of any cell and architecture of keras_deeprnn, pooling over time and
a softmax classifier, trained on MR, IMDB, SST-2 or local files. The saved
model takes raw text: its vocabulary is inside.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from apps.common import runner
from keras_deeprnn.cells import CELL_NAMES
from keras_deeprnn.models import KINDS

DEFAULT_SAVED = Path("saved_models")
DEFAULT_MAX_LENGTH = 60
#: Texts are cut to this many characters per token of --max-length before
#: tokenising (the tokens after max_length are dropped anyway).
CHARS_PER_TOKEN = 100
POOLINGS = ("last", "max", "attention")


def _add_data(p, default="mr"):
    p.add_argument(
        "--data", default=default,
        help="mr (rt-polarity.pos/.neg in ../shared/data/sentiment or $DEEPRNN_DATA_DIR; "
        "the default), imdb, sst2 or tfds:NAME[:SPLIT] (TFDS, needs the network the first "
        "time), a .pos/.neg file, a TSV/CSV file of text,label rows, or a folder with "
        "one subfolder per class")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the MR files, or TFDS's data folder")
    p.add_argument("--encoding", default=None,
                   help="encoding of local files (default: latin-1 for MR, utf-8 otherwise)")


def parser():
    top = argparse.ArgumentParser(prog="python -m apps.sentiment",
                                  description=__doc__.split("\n\n")[1])
    sub = top.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train", help="train a model and save it under saved_models/, or cross-validate (--cv)")
    _add_data(train)
    train.add_argument("--labels", default=None,
                       help="the label set, comma-separated, in class order (default: the "
                       "data's own); rows with other labels are skipped")
    train.add_argument("--cell", default="lstm", choices=CELL_NAMES, help="recurrent cell")
    train.add_argument("--arch", default="rnn", choices=KINDS,
                       help="deep RNN kind of keras_deeprnn.models (rnn: one layer; srnn: "
                       "--depth stacked layers; dt/dts: deep transition; dot/dots: plus a "
                       "deep output)")
    train.add_argument("--depth", type=int, default=None,
                       help="transition depth or stacked layers (default 2 for deep kinds)")
    train.add_argument("--units", type=int, default=64, help="units per direction")
    train.add_argument("--embedding-dim", type=int, default=64, help="word vector size")
    train.add_argument("--pooling", default="max", choices=POOLINGS,
                       help="last: final states; max: max over time; attention: "
                       "attention pooling")
    train.add_argument("--unidirectional", action="store_true",
                       help="read the text left to right only")
    train.add_argument("--dropout", type=float, default=0.5,
                       help="dropout on the word vectors and on the pooled vector")
    train.add_argument("--word-dropout", type=float, default=0.0,
                       help="fraction of whole word vectors dropped in training")
    train.add_argument("--recurrent-dropout", type=float, default=0.0,
                       help="dropout on the recurrent state")
    train.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH,
                       help="texts are cut after this many tokens (default 60: every MR "
                       "sentence fits; use 400 or more for IMDB reviews)")
    train.add_argument("--max-tokens", type=int, default=20000,
                       help="vocabulary size, padding and [UNK] included")
    train.add_argument("--init-embeddings", default="random", choices=("random", "svd"),
                       help="svd: start the word vectors from the SVD of the word "
                       "co-occurrence PPMI matrix of the training texts")
    train.add_argument("--wide", action="store_true",
                       help="add a wide branch: a logistic regression on the Naive-Bayes-"
                       "weighted, binarised unigrams and (hashed) bigrams (NBSVM features), "
                       "trained first; then the RNN on its own loss; the model outputs the "
                       "weighted product of the two branches' probabilities, its weights "
                       "fitted on the validation texts; last the wide branch trains again "
                       "on all the training texts")
    train.add_argument("--wide-l2", type=float, default=1e-4,
                       help="L2 penalty of the wide branch's weights")
    train.add_argument("--wide-dropout", type=float, default=0.0,
                       help="fraction of the wide branch's features dropped in training")
    train.add_argument("--wide-buckets", type=int, default=2**18,
                       help="hash buckets of the wide branch's bigrams")
    train.add_argument("--pretrain-lm", type=int, default=0, metavar="EPOCHS",
                       help="epochs of language-model pre-training of the embedding and "
                       "the RNN on the training texts (Dai & Le 2015); 0: none")
    train.add_argument("--lm-vocab", type=int, default=5000,
                       help="words the pre-training language model predicts (the rest "
                       "as [UNK])")
    train.add_argument("--lm-lr", type=float, default=5e-3,
                       help="Adam learning rate of the pre-training")
    train.add_argument("--batch-size", type=int, default=64, help="texts per batch")
    train.add_argument("--epochs", type=int, default=10, help="maximum number of epochs")
    train.add_argument("--patience", type=int, default=2,
                       help="stop after this many epochs without a better validation loss")
    train.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    train.add_argument("--clipnorm", type=float, default=1.0,
                       help="clip each gradient to this norm (0: off)")
    train.add_argument("--valid-fraction", type=float, default=0.1,
                       help="part of the training texts held out for early stopping")
    train.add_argument("--test-fraction", type=float, default=0.1,
                       help="part held out for testing when the data has no test split")
    train.add_argument("--cv", type=int, default=0, metavar="K",
                       help="K-fold cross-validation (stratified, the MR protocol: --cv 10) "
                       "instead of one model; reports each fold and the mean; saves no model")
    train.add_argument("--folds", default=None,
                       help="with --cv, run only these folds (comma-separated, from 0)")
    train.add_argument("--baseline", action="store_true",
                       help="with --cv, also run the TF-IDF uni+bigram logistic regression "
                       "on the same folds (needs scikit-learn)")
    train.add_argument("--seed", type=int, default=0, help="random seed (model and folds)")
    train.add_argument("--strategy", default="default", choices=runner.STRATEGIES,
                       help="tf.distribute strategy (multi-worker reads TF_CONFIG)")
    train.add_argument("--name", default=None,
                       help="model name (default: DATA-CELL-ARCH-POOLING-UNITS)")
    train.add_argument("--out", type=Path, default=DEFAULT_SAVED,
                       help="folder that receives sentiment-NAME/ (default saved_models)")
    train.add_argument("--run-dir", type=Path, default=None,
                       help="checkpoints and TensorBoard logs (default runs/sentiment-NAME, "
                       "runs/sentiment-NAME-cvK for --cv); re-running with the same folder "
                       "resumes an interrupted run (and skips finished folds)")

    evaluate = sub.add_parser("evaluate", help="accuracy of a saved model on labelled data")
    evaluate.add_argument("model", type=Path, help="saved_models/sentiment-NAME or a .keras file")
    _add_data(evaluate)
    evaluate.add_argument("--split", default=None,
                          help="train or test of a TFDS data set (default: test; a local "
                          "source is evaluated whole)")

    predict = sub.add_parser(
        "predict", help="label and probability of texts (arguments, or lines on stdin)")
    predict.add_argument("model", type=Path, help="saved_models/sentiment-NAME or a .keras file")
    predict.add_argument("texts", nargs="*",
                         help="texts to classify; none (or -): one text per line on stdin")

    export = sub.add_parser(
        "export", help="SavedModel (raw strings in), TFLite model (token ids in), vocab.txt")
    export.add_argument("model", type=Path, help="saved_models/sentiment-NAME or a .keras file")
    export.add_argument("--out", type=Path, default=None,
                        help="output folder (default: MODEL_FOLDER/export)")
    return top


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------

def _load_data(args, label_names=None):
    from keras_deeprnn.data import text

    return text.load_text(args.data, data_dir=args.data_dir, encoding=args.encoding,
                          label_names=label_names)


def _check_train_args(args):
    for name in ("units", "embedding_dim", "batch_size", "epochs", "max_length", "lm_vocab",
                 "wide_buckets"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive.")
    if args.patience < 0 or args.pretrain_lm < 0 or args.wide_l2 < 0:
        raise ValueError("--patience, --pretrain-lm and --wide-l2 must be >= 0.")
    if not 0 <= args.wide_dropout < 1:
        raise ValueError("--wide-dropout must be in [0, 1).")
    if not 0 < args.valid_fraction < 1 or not 0 < args.test_fraction < 1:
        raise ValueError("--valid-fraction and --test-fraction must be in (0, 1).")
    if args.cv and args.cv < 2:
        raise ValueError("--cv needs at least 2 folds.")
    if args.pretrain_lm and args.strategy != "default":
        raise ValueError("--pretrain-lm runs on one device: use --strategy default.")
    if (args.folds or args.baseline) and not args.cv:
        raise ValueError("--folds and --baseline go with --cv.")


def clip_texts(texts, max_length):
    """Texts as clean ``str``: undecodable command-line bytes replaced, and
    cut to ``CHARS_PER_TOKEN * max_length`` characters."""
    limit = CHARS_PER_TOKEN * max_length
    out = []
    for t in texts:
        if isinstance(t, bytes):
            t = t.decode("utf-8", "replace")
        t = t.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        out.append(t[:limit])
    return out


def _model_name(args):
    stem = Path(args.data).stem if Path(args.data).suffix else Path(args.data).name
    stem = stem.replace(":", "-").replace("/", "-") or "data"
    return args.name or f"{stem}-{args.cell}-{args.arch}-{args.pooling}-{args.units}"


def _build(args, vectorizer, num_classes, train_ids, train_labels, valid_ids):
    """The classifier, its embedding initialised / pre-trained and its wide
    branch's Naive-Bayes ratios counted as asked; compiled unless --wide
    (whose branches `_train_once` compiles)."""
    from apps.sentiment import train as tr
    from apps.sentiment.model import build_classifier, compile_classifier
    from apps.sentiment.wide import nb_ratios

    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        classifier = build_classifier(
            vectorizer.vocabulary_size(), num_classes, cell=args.cell, arch=args.arch,
            units=args.units, depth=args.depth, embedding_dim=args.embedding_dim,
            pooling=args.pooling, bidirectional=not args.unidirectional,
            dropout=args.dropout, recurrent_dropout=args.recurrent_dropout,
            word_dropout=args.word_dropout, wide=args.wide, wide_buckets=args.wide_buckets,
            wide_l2=args.wide_l2, wide_dropout=args.wide_dropout)
        if args.wide:
            wide = classifier.get_layer("wide")
            wide.ratio.assign(nb_ratios(wide, train_ids, train_labels))
        if args.init_embeddings == "svd":
            classifier.get_layer("embedding").set_weights([tr.svd_embeddings(
                train_ids, vectorizer.vocabulary_size(), args.embedding_dim)])
        if args.pretrain_lm:
            tr.pretrain_lm(classifier, train_ids, epochs=args.pretrain_lm,
                           batch_size=args.batch_size, lr=args.lm_lr, lm_vocab=args.lm_vocab,
                           clipnorm=args.clipnorm, seed=args.seed, valid_ids=valid_ids)
        if not args.wide:
            compile_classifier(classifier, args.lr, args.clipnorm)
    return classifier


def _train_once(args, train_set, run_dir, verbose):
    """Vectorizer + classifier trained on `train_set` (a validation part held
    out); returns (vectorizer, classifier, history). With --wide, the wide
    branch trains first (in run_dir/wide, early-stopped on the validation
    part), then, frozen, the recurrent one (its history is returned); the
    mix of the two is fitted on the validation part, and last the wide
    branch is trained again, on all of `train_set`, for as many epochs as
    its best before (with 10% more texts the linear model gains 0.5-1
    point on MR; docs/sentiment.md)."""
    from apps.sentiment import train as tr
    from apps.sentiment.model import branch_model, make_vectorizer
    from keras_deeprnn.data import text

    rest, held = text.split_indices(train_set.labels, args.valid_fraction, seed=args.seed)
    fit_set, valid_set = train_set.subset(rest), train_set.subset(held)
    vectorizer = make_vectorizer(args.max_tokens, args.max_length)
    # The wide branch ends trained on every training text, so it gets their
    # words; the recurrent branch never sees the validation part's own words.
    vocabulary_texts = train_set.texts if args.wide else fit_set.texts
    vectorizer.adapt(np.array(clip_texts(vocabulary_texts, args.max_length), dtype=object))
    train_ids = tr.vectorize(vectorizer, clip_texts(fit_set.texts, args.max_length))
    valid_ids = tr.vectorize(vectorizer, clip_texts(valid_set.texts, args.max_length))
    classifier = _build(args, vectorizer, len(train_set.label_names), train_ids,
                        fit_set.labels, valid_ids)
    fit = dict(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
               seed=args.seed, verbose=verbose)
    if not args.wide:
        history = tr.fit_classifier(classifier, train_ids, fit_set.labels, valid_ids,
                                    valid_set.labels, run_dir, **fit)
        return vectorizer, classifier, history
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        wide = branch_model(classifier, "wide", args.lr, args.clipnorm)
    wide_history = tr.fit_classifier(wide, train_ids, fit_set.labels, valid_ids,
                                     valid_set.labels, Path(run_dir) / "wide", **fit)
    # History.epoch holds the epoch numbers (a resumed run's start after 0).
    wide_epochs = wide_history.epoch[int(np.argmin(wide_history.history["val_loss"]))] + 1
    print(f"wide branch: best of {len(wide_history.history['loss'])} epochs at epoch "
          f"{wide_epochs}, validation accuracy "
          f"{max(wide_history.history['val_accuracy']):.4f}", flush=True)
    classifier.get_layer("wide").trainable = False
    with strategy.scope():
        deep = branch_model(classifier, "deep", args.lr, args.clipnorm)
    history = tr.fit_classifier(deep, train_ids, fit_set.labels, valid_ids, valid_set.labels,
                                run_dir, monitor="val_combined_loss", **fit)
    a, b, loss = tr.fit_mix(classifier, valid_ids, valid_set.labels)
    print(f"mix on the validation texts: {a:.2f} log p_rnn + {b:.2f} log p_wide "
          f"(validation loss {loss:.4f})", flush=True)
    all_ids = tr.vectorize(vectorizer, clip_texts(train_set.texts, args.max_length))
    with strategy.scope():
        tr.refit_wide(classifier, all_ids, train_set.labels, wide_epochs, lr=args.lr,
                      clipnorm=args.clipnorm, batch_size=args.batch_size, seed=args.seed)
    print(f"wide branch trained again on all {len(train_set)} training texts for "
          f"{wide_epochs} epochs", flush=True)
    return vectorizer, classifier, history


def _branch_accuracies(vectorizer, classifier, data, max_length):
    """Test accuracy of each branch of a --wide classifier on its own (what
    the combination is made of; reported, not used to choose anything)."""
    from apps.sentiment import train as tr

    ids = tr.vectorize(vectorizer, clip_texts(data.texts, max_length))
    rnn, wide = tr.branch_log_probs(classifier, ids)
    return {"rnn_accuracy": float((rnn.argmax(axis=1) == data.labels).mean()),
            "wide_accuracy": float((wide.argmax(axis=1) == data.labels).mean())}


def _accuracy(vectorizer, classifier, data, max_length):
    from apps.sentiment import train as tr

    ids = tr.vectorize(vectorizer, clip_texts(data.texts, max_length))
    predicted = tr.predict_ids(classifier, ids).argmax(axis=1)
    return float((predicted == data.labels).mean())


# ----------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------

def train(args):
    _check_train_args(args)
    labels = args.labels.split(",") if args.labels else None
    data = _load_data(args, labels)
    if args.cv:
        return cross_validate(args, data["train"])
    from apps.sentiment.model import inference_copy
    from apps.sentiment.model import text_model
    from keras_deeprnn.data import text

    name = _model_name(args)
    run_dir = args.run_dir or Path("runs") / f"sentiment-{name}"
    runner.set_seed(args.seed)
    if "test" in data:
        train_set, test_set = data["train"], data["test"]
    else:
        rest, held = text.split_indices(data["train"].labels, args.test_fraction,
                                        seed=args.seed)
        train_set, test_set = data["train"].subset(rest), data["train"].subset(held)
    print(f"data {args.data}: {len(train_set)} training texts {train_set.counts()}, "
          f"{len(test_set)} test texts", flush=True)
    with runner.Timer() as timer:
        vectorizer, classifier, history = _train_once(args, train_set, run_dir, "auto")
    classifier.summary()
    accuracy = _accuracy(vectorizer, classifier, test_set, args.max_length)
    print(f"test accuracy {accuracy:.4f} on {len(test_set)} texts "
          f"[{classifier.count_params()} parameters, {timer.seconds:.0f} s]")
    if runner.is_chief():
        out = runner.save(text_model(vectorizer, inference_copy(classifier)),
                          args.out / f"sentiment-{name}", {
            "app": "sentiment",
            "name": name,
            "data": args.data,
            "labels": list(train_set.label_names),
            "max_length": args.max_length,
            "vocabulary_size": int(vectorizer.vocabulary_size()),
            "texts": {"train": len(train_set), "test": len(test_set)},
            "metrics": {"test_accuracy": accuracy},
            "epochs_run": len(history.history["loss"]),
            "train_seconds": round(timer.seconds, 1),
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "command": runner.command_line(),
        })
        print(f"saved {out}")
    return 0


def cross_validate(args, data):
    """K-fold cross-validation of the configuration in `args` on `data`."""
    import keras

    from keras_deeprnn.data import text

    name = _model_name(args)
    run_dir = args.run_dir or Path("runs") / f"sentiment-{name}-cv{args.cv}"
    folds = text.kfold_indices(data.labels, args.cv, seed=args.seed)
    chosen = range(args.cv)
    if args.folds:
        try:
            chosen = sorted({int(f) for f in args.folds.split(",")})
        except ValueError:
            raise ValueError(f"--folds takes fold numbers separated by commas, got {args.folds!r}.")
        if chosen[0] < 0 or chosen[-1] >= args.cv:
            raise ValueError(f"--folds must be in 0..{args.cv - 1}.")
    print(f"{args.cv}-fold cross-validation on {args.data}: {len(data)} texts "
          f"{data.counts()}; runs in {run_dir}", flush=True)
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
        train_set, test_set = data.subset(train_idx), data.subset(test_idx)
        with runner.Timer() as timer:
            vectorizer, classifier, history = _train_once(args, train_set, fold_dir, 2)
            accuracy = _accuracy(vectorizer, classifier, test_set, args.max_length)
        result = {"fold": k, "test_texts": len(test_set), "accuracy": accuracy,
                  "epochs_run": len(history.history["loss"]),
                  "seconds": round(timer.seconds, 1)}
        if args.wide:
            result.update(_branch_accuracies(vectorizer, classifier, test_set, args.max_length))
        if args.baseline:
            from apps.sentiment.baseline import tfidf_logreg

            with runner.Timer() as base_timer:
                predicted = tfidf_logreg(train_set.texts, train_set.labels, test_set.texts)
            result["baseline_accuracy"] = float((predicted == test_set.labels).mean())
            result["baseline_seconds"] = round(base_timer.seconds, 1)
        done.write_text(json.dumps(result, indent=2) + "\n")
        results.append(result)
        line = f"fold {k}: accuracy {accuracy:.4f} ({result['epochs_run']} epochs, {timer.seconds:.0f} s)"
        if args.baseline:
            line += f"; TF-IDF baseline {result['baseline_accuracy']:.4f}"
        print(line, flush=True)
    summary = _summary(results, args)
    (run_dir / "cv.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(_summary_line(summary))
    return 0


def _summary(results, args):
    acc = np.array([r["accuracy"] for r in results])
    summary = {
        "data": args.data, "folds": args.cv, "name": _model_name(args),
        "results": results,
        "mean_accuracy": float(acc.mean()), "std_accuracy": float(acc.std()),
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
                np.mean([r[f"{branch}_accuracy"] for r in results]))
    return summary


def _summary_line(s):
    line = (f"mean accuracy over {len(s['results'])} fold(s): {s['mean_accuracy']:.4f} "
            f"(std {s['std_accuracy']:.4f}; {s['seconds']:.0f} s of training)")
    if "baseline_mean_accuracy" in s:
        line += (f"; TF-IDF uni+bigram logistic regression {s['baseline_mean_accuracy']:.4f} "
                 f"(std {s['baseline_std_accuracy']:.4f})")
    if "wide_mean_accuracy" in s:
        line += (f"; branches alone: recurrent {s['rnn_mean_accuracy']:.4f}, "
                 f"wide {s['wide_mean_accuracy']:.4f}")
    return line


def _load_model(path):
    from apps.sentiment.model import parts  # also registers the custom objects

    model = runner.load(path)
    vectorizer, _ = parts(model)
    meta = runner.read_metadata(path)
    classes = int(model.output_shape[-1])
    labels = meta.get("labels") or [str(i) for i in range(classes)]
    if len(labels) != classes:
        raise ValueError(f"{path}: metadata.json names {len(labels)} labels, the model has "
                         f"{classes} outputs.")
    max_length = int(vectorizer.get_config()["output_sequence_length"])
    return model, labels, max_length


def evaluate(args):
    from apps.sentiment.model import parts
    from keras_deeprnn.data import text

    model, labels, max_length = _load_model(args.model)
    data = _load_data(args, labels)
    split = args.split or ("test" if "test" in data else "train")
    if split not in data:
        raise ValueError(f"{args.data} has no {split!r} split; it has {', '.join(data)}.")
    subset = data[split]
    if list(subset.label_names) != list(labels):
        if len(subset.label_names) != len(labels):
            raise ValueError(f"the data's labels {list(subset.label_names)} do not match the "
                             f"model's {labels}.")
        print(f"note: data labels {list(subset.label_names)} taken as the model's {labels} "
              "in that order", file=sys.stderr)
        subset = text.TextSet(subset.texts, subset.labels, labels)
    vectorizer, classifier = parts(model)
    accuracy = _accuracy(vectorizer, classifier, subset, max_length)
    what = split if len(data) > 1 else "all"  # a local source has one split
    print(f"{what} accuracy: {accuracy:.4f} on {len(subset)} texts")
    return 0


def _stdin_texts():
    from keras_deeprnn.data import text

    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    decoded = text.decode(data, "utf-8", "<stdin>")
    lines = decoded.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def predict(args):
    import tensorflow as tf

    model, labels, max_length = _load_model(args.model)
    raw = _stdin_texts() if not args.texts or args.texts == ["-"] else args.texts
    texts = clip_texts(raw, max_length)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    for i in sorted(set(range(len(texts))) - set(keep)):
        print(f"warning: text {i + 1} is empty: skipped", file=sys.stderr)
    if not keep:
        raise ValueError("no text to classify (give texts as arguments or lines on stdin).")
    long = [i + 1 for i in keep if len(texts[i].split()) > max_length]
    if long:
        print(f"note: text(s) {', '.join(map(str, long[:10]))} cut to their first {max_length} "
              "tokens (the model's maximum length)", file=sys.stderr)
    probs = np.asarray(model.predict(tf.constant([texts[i] for i in keep]), verbose=0))
    for i, p in zip(keep, probs):
        best = int(p.argmax())
        preview = " ".join(texts[i].split())
        preview = preview if len(preview) <= 70 else preview[:67] + "..."
        print(f"{labels[best]}\t{p[best]:.4f}\t{preview}")
    return 0


def export(args):
    from apps.sentiment.export import export as write

    model, labels, _ = _load_model(args.model)
    folder = args.model if args.model.is_dir() else args.model.parent
    out = args.out or folder / "export"
    paths = write(model, out, labels)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    commands = {"train": train, "evaluate": evaluate, "predict": predict, "export": export}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
