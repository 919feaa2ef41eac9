"""`python -m apps.sentiment train|evaluate|predict|export`.

Sentence and document sentiment: an embedding, a (bidirectional) recurrent
network of any cell and architecture of keras_deeprnn, pooling over time and
a softmax classifier, trained on MR, IMDB, SST-2 or local files. The saved
model takes raw text: its vocabulary is inside.
"""

import sys

import numpy as np

from ..common import cli
from ..common import runner
from . import data

APP = "sentiment"
POOLINGS = ("last", "max", "attention")


def parser():
    from keras_deeprnn.models import KINDS

    top, sub = cli.app_parser(APP, __doc__)

    train = sub.add_parser(
        "train", help="train a model and save it under saved_models/, or cross-validate (--cv)"
    )
    data.add_arguments(train)
    cli.add_model_options(
        train,
        KINDS,
        units=64,
        dropout=0.5,
        dropout_help="dropout on the word vectors and on the pooled vector",
    )
    train.add_argument(
        "--embedding-dim", type=cli.positive_int, default=64, help="word vector size"
    )
    train.add_argument(
        "--pooling",
        default="max",
        choices=POOLINGS,
        help="last: final states; max: max over time; attention: attention pooling",
    )
    train.add_argument(
        "--unidirectional", action="store_true", help="read the text left to right only"
    )
    train.add_argument(
        "--word-dropout",
        type=cli.rate,
        default=0.0,
        help="fraction of whole word vectors dropped in training",
    )
    train.add_argument(
        "--init-embeddings",
        default="random",
        choices=("random", "svd"),
        help="svd: start the word vectors from the SVD of the word "
        "co-occurrence PPMI matrix of the training texts",
    )
    train.add_argument(
        "--wide",
        action="store_true",
        help="add a wide branch: a logistic regression on the Naive-Bayes-"
        "weighted, binarised unigrams and (hashed) bigrams (NBSVM features), "
        "trained first; then the RNN on its own loss; the model outputs the "
        "weighted product of the two branches' probabilities, its weights "
        "fitted on the validation texts; last the wide branch trains again "
        "on all the training texts",
    )
    train.add_argument(
        "--wide-l2",
        type=cli.non_negative_float,
        default=1e-4,
        help="L2 penalty of the wide branch's weights",
    )
    train.add_argument(
        "--wide-dropout",
        type=cli.rate,
        default=0.0,
        help="fraction of the wide branch's features dropped in training",
    )
    train.add_argument(
        "--wide-buckets",
        type=cli.positive_int,
        default=2**18,
        help="hash buckets of the wide branch's bigrams",
    )
    train.add_argument(
        "--pretrain-lm",
        type=cli.non_negative_int,
        default=0,
        metavar="EPOCHS",
        help="epochs of language-model pre-training of the embedding and "
        "the RNN on the training texts (Dai & Le 2015); 0: none",
    )
    train.add_argument(
        "--lm-vocab",
        type=cli.positive_int,
        default=5000,
        help="words the pre-training language model predicts (the rest as [UNK])",
    )
    train.add_argument(
        "--lm-lr",
        type=cli.positive_float,
        default=5e-3,
        help="Adam learning rate of the pre-training",
    )
    cli.add_fit_options(train, epochs=10, patience=2, lr=2e-3, clipnorm=1.0)
    train.add_argument(
        "--cv",
        type=cli.non_negative_int,
        default=0,
        metavar="K",
        help="K-fold cross-validation (stratified, the MR protocol: --cv 10) "
        "instead of one model; reports each fold and the mean; saves no model",
    )
    train.add_argument(
        "--folds", default=None, help="with --cv, run only these folds (comma-separated, from 0)"
    )
    train.add_argument(
        "--baseline",
        action="store_true",
        help="with --cv, also run the TF-IDF uni+bigram logistic regression "
        "on the same folds (needs scikit-learn)",
    )
    cli.add_run_options(
        train, APP, "DATA-CELL-ARCH-POOLING-UNITS; --cv runs go to runs/sentiment-NAME-cvK"
    )

    evaluate = sub.add_parser("evaluate", help="accuracy of a saved model on labelled data")
    cli.add_model_argument(evaluate, APP)
    data.add_source(evaluate)
    evaluate.add_argument(
        "--split",
        default=None,
        help="train or test of a TFDS data set (default: test; a local source is evaluated whole)",
    )

    predict = sub.add_parser(
        "predict", help="label and probability of texts (arguments, or lines on stdin)"
    )
    cli.add_model_argument(predict, APP)
    predict.add_argument(
        "texts", nargs="*", help="texts to classify; none (or -): one text per line on stdin"
    )

    cli.add_export_command(
        sub,
        APP,
        ("all",),
        "all",
        quantize=False,
        help="SavedModel (raw strings in), TFLite model (token ids in), vocab.txt, with a "
        "manifest, into MODEL/export",
    )
    return top


def _check_train_args(args):
    if args.cv == 1:
        raise ValueError("--cv needs at least 2 folds.")
    if args.pretrain_lm and args.strategy != "default":
        raise ValueError("--pretrain-lm runs on one device: use --strategy default.")
    if (args.folds or args.baseline) and not args.cv:
        raise ValueError("--folds and --baseline go with --cv.")


def train(args):
    from . import train as tr
    from .model import inference_copy
    from .model import text_model

    _check_train_args(args)
    texts = data.load(args)
    if args.cv:
        tr.cross_validate(args, texts["train"])
        return 0
    run = cli.Run(APP, args, tr.model_name(args))
    runner.set_seed(args.seed)
    train_set, test_set = data.split_test(args, texts)
    print(
        f"data {args.data}: {len(train_set)} training texts {train_set.counts()}, "
        f"{len(test_set)} test texts",
        flush=True,
    )
    with runner.Timer() as timer:
        vectorizer, classifier, history = tr.train_once(args, train_set, run.run_dir, "auto")
    classifier.summary()
    accuracy = tr.accuracy(vectorizer, classifier, test_set, args.max_length)
    print(
        f"test accuracy {accuracy:.4f} on {len(test_set)} texts "
        f"[{classifier.count_params()} parameters, {timer.seconds:.0f} s]"
    )
    run.save(
        text_model(vectorizer, inference_copy(classifier)),
        {"test_accuracy": accuracy},
        history,
        timer.seconds,
        data=args.data,
        labels=list(train_set.label_names),
        max_length=args.max_length,
        vocabulary_size=int(vectorizer.vocabulary_size()),
        texts={"train": len(train_set), "test": len(test_set)},
    )
    return 0


def _load_model(path):
    from .model import parts  # also registers the custom objects

    model = runner.load(path, APP)
    vectorizer, _ = parts(model)
    meta = runner.read_metadata(path)
    classes = int(model.output_shape[-1])
    labels = meta.get("labels") or [str(i) for i in range(classes)]
    if len(labels) != classes:
        raise ValueError(
            f"{path}: metadata.json names {len(labels)} labels, the model has {classes} outputs."
        )
    max_length = int(vectorizer.get_config()["output_sequence_length"])
    return model, labels, max_length


def evaluate(args):
    from keras_deeprnn.data import text

    from . import train as tr
    from .model import parts

    model, labels, max_length = _load_model(args.model)
    texts = data.load(args, labels)
    split = args.split or ("test" if "test" in texts else "train")
    if split not in texts:
        raise ValueError(f"{args.data} has no {split!r} split; it has {', '.join(texts)}.")
    subset = texts[split]
    if list(subset.label_names) != list(labels):
        if len(subset.label_names) != len(labels):
            raise ValueError(
                f"the data's labels {list(subset.label_names)} do not match the model's {labels}."
            )
        print(
            f"note: data labels {list(subset.label_names)} taken as the model's {labels} "
            "in that order",
            file=sys.stderr,
        )
        subset = text.TextSet(subset.texts, subset.labels, labels)
    vectorizer, classifier = parts(model)
    accuracy = tr.accuracy(vectorizer, classifier, subset, max_length)
    what = split if len(texts) > 1 else "all"  # a local source has one split
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
    texts = data.clip_texts(raw, max_length)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    for i in sorted(set(range(len(texts))) - set(keep)):
        print(f"warning: text {i + 1} is empty: skipped", file=sys.stderr)
    if not keep:
        raise ValueError("no text to classify (give texts as arguments or lines on stdin).")
    long = [i + 1 for i in keep if len(texts[i].split()) > max_length]
    if long:
        print(
            f"note: text(s) {', '.join(map(str, long[:10]))} cut to their first {max_length} "
            "tokens (the model's maximum length)",
            file=sys.stderr,
        )
    probs = np.asarray(model.predict(tf.constant([texts[i] for i in keep]), verbose=0))
    for i, p in zip(keep, probs):
        best = int(p.argmax())
        preview = " ".join(texts[i].split())
        preview = preview if len(preview) <= 70 else preview[:67] + "..."
        print(f"{labels[best]}\t{p[best]:.4f}\t{preview}")
    return 0


def export(args):
    from keras_deeprnn.export import check_manifest

    from .export import export as write

    model, labels, _ = _load_model(args.model)
    paths = write(
        model,
        cli.export_folder(args),
        labels,
        metrics=runner.read_metadata(args.model).get("metrics"),
        fuse_lstm=args.fuse_lstm,
    )
    for path in paths.values():
        print(f"wrote {path}")
    for entry in check_manifest(paths["manifest"].parent)["exports"]:
        for layer, reason in entry.get("unfused_lstm", {}).items():
            print(f"{entry['file']}: {layer} not fused: {reason}")
    return 0


def main(argv=None):
    commands = {"train": train, "evaluate": evaluate, "predict": predict, "export": export}
    return cli.main(parser(), commands, argv)


if __name__ == "__main__":
    cli.exit(main())
