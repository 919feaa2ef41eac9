"""`python -m apps.tagging train|evaluate|tag|export|baseline`.

Sequence tagging (many-to-many): part-of-speech tags, chunks or named
entities for every token of a sentence, from word embeddings, a character
RNN per word and a bidirectional RNN over the sentence.
"""

import json
import sys
from pathlib import Path

from ..common import cli
from ..common import runner
from . import data

APP = "tagging"
ARCHS = ("rnn", "dt", "dts", "srnn")


def parser():
    from keras_deeprnn.cells import CELL_NAMES

    top, sub = cli.app_parser(APP, __doc__)

    train = sub.add_parser("train", help="train a tagger and save it under saved_models/")
    data.add_arguments(train)
    cli.add_model_options(
        train, ARCHS, dropout=0.5, dropout_help="dropout on the word features and the RNN outputs"
    )
    train.add_argument(
        "--bi-layers", type=cli.positive_int, default=1, help="stacked bidirectional layers"
    )
    train.add_argument(
        "--word-dim",
        type=cli.non_negative_int,
        default=100,
        help="word embedding size (0: characters only)",
    )
    train.add_argument(
        "--char-cell",
        default=None,
        choices=CELL_NAMES,
        help="cell of the character RNN (default --cell)",
    )
    train.add_argument(
        "--char-units",
        type=cli.non_negative_int,
        default=50,
        help="character RNN units per direction (0: words only)",
    )
    train.add_argument(
        "--char-dim", type=cli.positive_int, default=32, help="character embedding size"
    )
    train.add_argument(
        "--max-chars",
        type=cli.positive_int,
        default=16,
        help="characters kept per word (first and last halves)",
    )
    train.add_argument(
        "--word-dropout",
        type=cli.non_negative_float,
        default=1.0,
        help="alpha: a training word seen c times is replaced by the unknown "
        "word with probability alpha/(alpha+c); 0: off",
    )
    train.add_argument(
        "--crf",
        action="store_true",
        help="a linear-chain CRF output layer (learned tag transitions, "
        "Viterbi decoding) instead of per-token softmaxes",
    )
    cli.add_fit_options(train, epochs=25, patience=6, lr=2e-3, clipnorm=5.0, time_budget=True)
    train.add_argument(
        "--schedule",
        default="cosine",
        choices=("cosine", "constant"),
        help="learning rate: a cosine decay to lr/20 over --epochs, or constant",
    )
    cli.add_run_options(train, APP, "TAG-CELL-ARCH-UNITS")

    evaluate = sub.add_parser(
        "evaluate", help="accuracy (all and unseen words), per-tag P/R/F1, confusion-matrix PNG"
    )
    cli.add_model_argument(evaluate, APP)
    evaluate.add_argument("--data", required=True, help="gold data: " + data.HELP)
    data.add_target(evaluate)
    evaluate.add_argument(
        "--confusion",
        type=Path,
        default=None,
        help="confusion-matrix PNG (default: confusion-DATA.png in the model's folder)",
    )
    evaluate.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    evaluate.add_argument("--batch-size", type=cli.positive_int, default=64)

    tag = sub.add_parser("tag", help="tag sentences; prints token/TAG pairs")
    cli.add_model_argument(tag, APP)
    tag.add_argument(
        "sentences", nargs="*", help="sentences to tag (default: one a line from standard input)"
    )
    tag.add_argument(
        "--tokenized",
        action="store_true",
        help="the sentences are already tokens separated by spaces",
    )
    tag.add_argument("--probabilities", action="store_true", help="print token/TAG/probability")

    # The tagger reads strings (StringLookup), which TFLite's builtin ops
    # cannot: the SavedModel is its deployment format.
    cli.add_export_command(
        sub,
        APP,
        ("saved_model",),
        "saved_model",
        help="a TensorFlow SavedModel of the tagger (string tokens in) "
        "into MODEL/export, with a manifest",
        quantize=False,
        fuse_lstm=False,
    )

    baseline = sub.add_parser(
        "baseline",
        help="train and evaluate the classic taggers (most frequent tag, "
        "averaged perceptron) on the same data",
    )
    baseline.add_argument("--train", required=True, help="training data: " + data.HELP)
    baseline.add_argument("--test", required=True, help="evaluation data: " + data.HELP)
    data.add_target(baseline)
    baseline.add_argument(
        "--method",
        action="append",
        default=None,
        choices=("most-frequent", "perceptron", "nltk-perceptron"),
        help="repeat for several (default: most-frequent and perceptron)",
    )
    baseline.add_argument(
        "--iterations", type=cli.positive_int, default=5, help="perceptron passes"
    )
    baseline.add_argument("--seed", type=int, default=0)
    return top


def _score(model, sentences, batch_size=64):
    from . import evaluation
    from .model import model_tags
    from .model import model_vocabulary
    from .model import predict_tags

    predicted = predict_tags(model, [s.tokens for s in sentences], batch_size=batch_size)
    return evaluation.score(
        sentences, predicted, known_words=model_vocabulary(model), known_tags=model_tags(model)
    )


def train(args):
    from keras_deeprnn.data import conll

    from . import evaluation
    from .model import build_model
    from .model import compile_model

    run = cli.Run(
        APP,
        args,
        "-".join(str(part) for part in (args.tag, args.cell, args.arch, args.units) if part),
    )
    runner.set_seed(args.seed)
    ds = data.datasets(args)
    sentences, tags = ds.info["sentences"], ds.info["tags"]
    train_set, valid_set, test_set = sentences["train"], sentences["valid"], sentences["test"]
    print(
        f"training on {len(train_set)} sentences ({conll.token_count(train_set)} tokens, "
        f"{len(ds.info['vocabulary'])} words, {len(ds.info['characters'])} characters, "
        f"{len(tags)} tags)"
        + (
            f"; validating on {len(valid_set)} ({conll.token_count(valid_set)} tokens)"
            if valid_set
            else "; no validation data"
        )
    )
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        model = build_model(
            ds.info["vocabulary"],
            ds.info["characters"],
            tags,
            cell=args.cell,
            arch=args.arch,
            depth=args.depth,
            bi_layers=args.bi_layers,
            units=args.units,
            word_dim=args.word_dim,
            char_cell=args.char_cell,
            char_units=args.char_units,
            char_dim=args.char_dim,
            max_chars=args.max_chars,
            dropout=args.dropout,
            recurrent_dropout=args.recurrent_dropout,
            unit_type=args.unit_type,
            word_counts=ds.info["counts"],
            word_dropout=args.word_dropout,
            crf=args.crf,
            seed=args.seed,
        )
        steps = int(ds.train.cardinality()) * args.epochs if args.schedule == "cosine" else None
        compile_model(model, args.lr, args.clipnorm, decay_steps=steps)
    model.summary(line_length=100)
    with runner.Timer() as timer:
        history = runner.fit(
            model,
            ds.train,
            ds.valid,
            run.run_dir,
            args.epochs,
            monitor="val_accuracy" if ds.valid else "accuracy",
            mode="max",
            patience=args.patience if ds.valid else args.epochs,
            time_budget=cli.seconds(args.time_budget),
        )
    metrics = {}
    for split, gold in (("valid", valid_set), ("test", test_set)):
        if gold:
            report = _score(model, gold)
            metrics[f"{split}_accuracy"] = report["accuracy"]
            metrics[f"{split}_unseen_accuracy"] = report["unseen_accuracy"]
            print(f"{split}:\n{evaluation.format_report(report, per_tag=False)}")
    print(
        f"[{model.count_params()} parameters, {len(history.epoch)} epochs, {timer.seconds:.0f} s]"
    )
    run.save(
        model,
        metrics,
        history,
        timer.seconds,
        data={
            "train": args.train,
            "valid": args.valid,
            "test": args.test,
            "valid_fraction": None if args.valid else args.valid_fraction,
        },
        target={"tag": args.tag, "column": args.column},
        tags=tags,
        sentences={"train": len(train_set), "valid": len(valid_set or [])},
        tokens={
            "train": conll.token_count(train_set),
            "valid": conll.token_count(valid_set or []),
        },
    )
    return 0


def _load_tagger(path):
    from .model import model_tags  # also registers the custom layers

    model = runner.load(path, APP)
    tags = model_tags(model)
    saved = runner.read_metadata(path).get("tags")
    if saved is not None and saved != tags:
        raise ValueError(
            f"{path}: metadata.json lists other tags than the model; the folder mixes two models"
        )
    return model


def evaluate(args):
    from . import evaluation

    model = _load_tagger(args.model)
    target = runner.read_metadata(args.model).get("target", {})
    args.tag = args.tag or target.get("tag")
    args.column = target.get("column") if args.column is None else args.column
    sentences = data.load(args.data, args)
    report = _score(model, sentences, args.batch_size)
    print(f"{args.model} on {args.data} ({len(sentences)} sentences)")
    print(evaluation.format_report(report))
    folder = args.model if args.model.is_dir() else args.model.parent
    png = args.confusion or folder / f"confusion-{_data_stem(args.data)}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    evaluation.save_confusion_png(
        report,
        png,
        title=f"{args.model.name} on {_data_stem(args.data)}: "
        f"accuracy {100 * report['accuracy']:.2f}%",
    )
    print(f"confusion matrix: {png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"scores: {args.json}")
    return 0


def _data_stem(spec):
    first = str(spec).split(",")[0]
    if first.startswith("tfds:"):
        return first[5:].replace("/", "_").replace(":", "-")
    return Path(first).stem


def tag(args):
    from .model import predict_tags
    from .text import tokenize

    lines = args.sentences or [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not lines:
        raise ValueError("nothing to tag: give a sentence (or lines on standard input)")
    token_lists = [line.split() if args.tokenized else tokenize(line) for line in lines]
    for line, tokens in zip(lines, token_lists):
        if not tokens:
            raise ValueError(f"nothing to tag: the sentence {line!r} has no token")
    model = _load_tagger(args.model)
    tags, probs = predict_tags(model, token_lists, return_probabilities=True)
    for tokens, sentence_tags, sentence_probs in zip(token_lists, tags, probs):
        print(
            " ".join(
                f"{tok}/{t}" + (f"/{p:.3f}" if args.probabilities else "")
                for tok, t, p in zip(tokens, sentence_tags, sentence_probs)
            )
        )
    return 0


def export(args):
    from keras_deeprnn.export import write_manifest

    from .model import export_saved_model

    model = _load_tagger(args.model)
    folder = cli.export_folder(args)
    export_saved_model(model, folder / "saved_model")
    write_manifest(
        folder,
        args.model.name,
        [{"file": "saved_model", "format": "saved_model", "signatures": {"serve": ["tokens"]}}],
        metrics=runner.read_metadata(args.model).get("metrics"),
    )
    print(
        f"wrote the SavedModel {folder / 'saved_model'} (signature 'serve': string tokens "
        f'(batch, time), padded with "" -> logits (batch, time, {model.output_shape[-1]})) '
        "and its manifest"
    )
    return 0


def baseline(args):
    from . import baselines
    from . import evaluation
    from .text import normalize_word

    train_set, test_set = data.load(args.train, args), data.load(args.test, args)
    known = {normalize_word(t) for s in train_set for t in s.tokens}
    print("| method | accuracy | unseen-word accuracy | train s |\n|---|---|---|---|")
    for name in args.method or ("most-frequent", "perceptron"):
        with runner.Timer() as timer:
            tagger = baselines.make(name, args.iterations, args.seed).fit(train_set)
        report = evaluation.score(test_set, [tagger.tag(s.tokens) for s in test_set], known)
        unseen = (
            f"{100 * report['unseen_accuracy']:.2f}% ({report['unseen_tokens']} tokens)"
            if report["unseen_tokens"]
            else "n/a"
        )
        print(f"| {name} | {100 * report['accuracy']:.2f}% | {unseen} | {timer.seconds:.1f} |")
    return 0


def main(argv=None):
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:  # `tag MODEL --tokenized "a b"`: argparse leaves sentences after an option
        if args.command != "tag" or any(e.startswith("-") for e in extra):
            top.error("unrecognized arguments: " + " ".join(extra))
        args.sentences += extra
    commands = {
        "train": train,
        "evaluate": evaluate,
        "tag": tag,
        "export": export,
        "baseline": baseline,
    }
    return cli.main(top, commands, args=args)


if __name__ == "__main__":
    cli.exit(main())
