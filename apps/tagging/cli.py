"""`python -m apps.tagging train|evaluate|tag|export|baseline`.

Sequence tagging (many-to-many): part-of-speech tags, chunks or named
entities for every token of a sentence, from word embeddings, a character
RNN per word and a bidirectional RNN over the sentence.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from apps.common import runner
from keras_deeprnn.cells import CELL_NAMES

DEFAULT_SAVED = Path("saved_models")
DATA_HELP = (
    "comma-separated CoNLL-U (.conllu) or CoNLL column files, or "
    "tfds:NAME:SPLIT (tfds:universal_dependencies/en_ewt:train, tfds:conll2003:test)"
)


def _add_target(p):
    p.add_argument("--tag", default=None,
                   help="target of CoNLL-U and TFDS data: upos (default) or xpos; "
                   "for tfds:conll2003 ner (default), pos or chunks")
    p.add_argument("--column", type=int, default=None,
                   help="target column of CoNLL column files (default -1, the last)")


def parser():
    top = argparse.ArgumentParser(prog="python -m apps.tagging",
                                  description=__doc__.split("\n\n")[1])
    sub = top.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a tagger and save it under saved_models/")
    train.add_argument("--train", required=True, help="training data: " + DATA_HELP)
    train.add_argument("--valid", default=None,
                       help="validation data for early stopping (default: --valid-fraction "
                       "of the training sentences)")
    train.add_argument("--valid-fraction", type=float, default=0.1,
                       help="share of the training sentences held out for early stopping when "
                       "--valid is not given; 0 trains on all of them for --epochs epochs")
    train.add_argument("--test", default=None, help="data to evaluate on after training")
    _add_target(train)
    train.add_argument("--cell", default="lstm", choices=CELL_NAMES, help="recurrent cell")
    train.add_argument("--arch", default="rnn", choices=("rnn", "dt", "dts", "srnn"),
                       help="each direction: rnn (one cell), dt/dts (deep transition), "
                       "srnn (stack); see keras_deeprnn.models.deep_rnn")
    train.add_argument("--depth", type=int, default=None, help="depth of --arch dt, dts, srnn")
    train.add_argument("--layers", type=int, default=1, help="stacked bidirectional layers")
    train.add_argument("--units", type=int, default=128, help="units per direction")
    train.add_argument("--word-dim", type=int, default=100,
                       help="word embedding size (0: characters only)")
    train.add_argument("--char-cell", default=None, choices=CELL_NAMES,
                       help="cell of the character RNN (default --cell)")
    train.add_argument("--char-units", type=int, default=50,
                       help="character RNN units per direction (0: words only)")
    train.add_argument("--char-dim", type=int, default=32, help="character embedding size")
    train.add_argument("--max-chars", type=int, default=16,
                       help="characters kept per word (first and last halves)")
    train.add_argument("--dropout", type=float, default=0.5,
                       help="dropout on the word features and the RNN outputs")
    train.add_argument("--word-dropout", type=float, default=1.0,
                       help="alpha: a training word seen c times is replaced by the unknown "
                       "word with probability alpha/(alpha+c); 0: off")
    train.add_argument("--crf", action="store_true",
                       help="a linear-chain CRF output layer (learned tag transitions, "
                       "Viterbi decoding) instead of per-token softmaxes")
    train.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    train.add_argument("--epochs", type=int, default=25, help="(maximum) number of epochs")
    train.add_argument("--patience", type=int, default=6,
                       help="stop after this many epochs without a better validation accuracy")
    train.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    train.add_argument("--schedule", default="cosine", choices=("cosine", "constant"),
                       help="learning rate: a cosine decay to lr/20 over --epochs, or constant")
    train.add_argument("--clipnorm", type=float, default=5.0,
                       help="clip each gradient to this norm (0: off)")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--strategy", default="default", choices=runner.STRATEGIES,
                       help="tf.distribute strategy (multi-worker reads TF_CONFIG)")
    train.add_argument("--name", default=None, help="model name (default: TAG-CELL-ARCH-UNITS)")
    train.add_argument("--out", type=Path, default=DEFAULT_SAVED,
                       help="folder that receives tagging-NAME/ (default saved_models)")
    train.add_argument("--run-dir", type=Path, default=None,
                       help="checkpoints and TensorBoard logs (default runs/tagging-NAME); "
                       "re-running with the same folder resumes an interrupted run")

    evaluate = sub.add_parser(
        "evaluate", help="accuracy (all and unseen words), per-tag P/R/F1, confusion-matrix PNG")
    evaluate.add_argument("model", type=Path, help="saved_models/tagging-NAME or a .keras file")
    evaluate.add_argument("--data", required=True, help="gold data: " + DATA_HELP)
    _add_target(evaluate)
    evaluate.add_argument("--confusion", type=Path, default=None,
                          help="confusion-matrix PNG (default: confusion-DATA.png in the model's "
                          "folder)")
    evaluate.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    evaluate.add_argument("--batch-size", type=int, default=64)

    tag = sub.add_parser("tag", help="tag sentences; prints token/TAG pairs")
    tag.add_argument("model", type=Path, help="saved_models/tagging-NAME or a .keras file")
    tag.add_argument("sentences", nargs="*",
                     help="sentences to tag (default: one a line from standard input)")
    tag.add_argument("--tokenized", action="store_true",
                     help="the sentences are already tokens separated by spaces")
    tag.add_argument("--probabilities", action="store_true",
                     help="print token/TAG/probability")

    export = sub.add_parser("export", help="write a TensorFlow SavedModel of a tagger")
    export.add_argument("model", type=Path, help="saved_models/tagging-NAME or a .keras file")
    export.add_argument("--out", type=Path, default=None,
                        help="SavedModel folder (default: saved_model/ in the model's folder)")

    baseline = sub.add_parser(
        "baseline", help="train and evaluate the classic taggers (most frequent tag, "
        "averaged perceptron) on the same data")
    baseline.add_argument("--train", required=True, help="training data: " + DATA_HELP)
    baseline.add_argument("--test", required=True, help="evaluation data: " + DATA_HELP)
    _add_target(baseline)
    baseline.add_argument("--method", action="append", default=None,
                          choices=("most-frequent", "perceptron", "nltk-perceptron"),
                          help="repeat for several (default: most-frequent and perceptron)")
    baseline.add_argument("--iterations", type=int, default=5, help="perceptron passes")
    baseline.add_argument("--seed", type=int, default=0)
    return top


def _load_data(spec, args):
    from keras_deeprnn.data import conll

    return conll.load_tagging(spec, tag=args.tag,
                              column=-1 if args.column is None else args.column)


def _split_valid(sentences, fraction, seed):
    """A deterministic (seeded) share of the sentences for validation."""
    import numpy as np

    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--valid-fraction must be in [0, 1), got {fraction}")
    n_valid = int(round(len(sentences) * fraction))
    if fraction and n_valid == 0:
        n_valid = 1
    if n_valid >= len(sentences):
        raise ValueError(f"{len(sentences)} training sentences are too few to hold out a share")
    order = np.random.default_rng(seed).permutation(len(sentences))
    held = set(order[:n_valid].tolist())
    return ([s for i, s in enumerate(sentences) if i not in held],
            [s for i, s in enumerate(sentences) if i in held])


def _word_counts(sentences):
    """The normalized training words, most frequent first, and their counts."""
    import collections

    from apps.tagging.text import normalize_word

    counts = collections.Counter(normalize_word(t) for s in sentences for t in s.tokens)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    return words, [counts[w] for w in words]


def _characters(sentences):
    import collections

    counts = collections.Counter(c for s in sentences for t in s.tokens for c in t)
    return sorted(counts, key=lambda c: (-counts[c], c))


def _score(model, sentences, batch_size=64):
    from apps.tagging import evaluation
    from apps.tagging.model import model_tags, model_vocabulary, predict_tags

    predicted = predict_tags(model, [s.tokens for s in sentences], batch_size=batch_size)
    return evaluation.score(sentences, predicted, known_words=model_vocabulary(model),
                            known_tags=model_tags(model))


def train(args):
    from apps.tagging import evaluation
    from apps.tagging.model import build_model, compile_model
    from keras_deeprnn.data import conll

    name = args.name or "-".join(
        str(part) for part in (args.tag, args.cell, args.arch, args.units) if part)
    run_dir = args.run_dir or Path("runs") / f"tagging-{name}"
    runner.set_seed(args.seed)
    sentences = _load_data(args.train, args)
    if args.valid:
        train_set, valid_set = sentences, _load_data(args.valid, args)
    elif args.valid_fraction:
        train_set, valid_set = _split_valid(sentences, args.valid_fraction, args.seed)
    else:
        train_set, valid_set = sentences, None
    test_set = _load_data(args.test, args) if args.test else None
    tags = conll.tag_set(train_set)
    (vocabulary, counts), characters = _word_counts(train_set), _characters(train_set)
    print(f"training on {len(train_set)} sentences ({conll.token_count(train_set)} tokens, "
          f"{len(vocabulary)} words, {len(characters)} characters, {len(tags)} tags)"
          + (f"; validating on {len(valid_set)} ({conll.token_count(valid_set)} tokens)"
             if valid_set else "; no validation data"))

    def dataset(split, shuffle):
        return conll.tagging_dataset(split, tags, args.batch_size, shuffle=shuffle,
                                     seed=args.seed, unknown_tags="ignore")

    train_ds = dataset(train_set, True)
    valid_ds = dataset(valid_set, False) if valid_set else None
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        model = build_model(
            vocabulary, characters, tags, cell=args.cell, arch=args.arch, depth=args.depth,
            layers=args.layers, units=args.units, word_dim=args.word_dim,
            char_cell=args.char_cell, char_units=args.char_units, char_dim=args.char_dim,
            max_chars=args.max_chars, dropout=args.dropout, word_counts=counts,
            word_dropout=args.word_dropout, crf=args.crf, seed=args.seed)
        steps = int(train_ds.cardinality()) * args.epochs if args.schedule == "cosine" else None
        compile_model(model, args.lr, args.clipnorm, decay_steps=steps)
    model.summary(line_length=100)
    with runner.Timer() as timer:
        history = runner.fit(
            model, train_ds, valid_ds, run_dir, args.epochs,
            monitor="val_accuracy" if valid_ds else "accuracy", mode="max",
            patience=args.patience if valid_ds else args.epochs,
        )
    metrics = {}
    for split, data in (("valid", valid_set), ("test", test_set)):
        if data:
            report = _score(model, data)
            metrics[f"{split}_accuracy"] = report["accuracy"]
            metrics[f"{split}_unseen_accuracy"] = report["unseen_accuracy"]
            print(f"{split}:\n{evaluation.format_report(report, per_tag=False)}")
    print(f"[{model.count_params()} parameters, {len(history.epoch)} epochs, "
          f"{timer.seconds:.0f} s]")
    if runner.is_chief():
        out = runner.save(model, args.out / f"tagging-{name}", {
            "app": "tagging",
            "name": name,
            "data": {"train": args.train, "valid": args.valid, "test": args.test,
                     "valid_fraction": None if args.valid else args.valid_fraction},
            "target": {"tag": args.tag, "column": args.column},
            "tags": tags,
            "sentences": {"train": len(train_set), "valid": len(valid_set or [])},
            "tokens": {"train": conll.token_count(train_set),
                       "valid": conll.token_count(valid_set or [])},
            "metrics": metrics,
            "epochs_run": len(history.history["loss"]),
            "train_seconds": round(timer.seconds, 1),
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "command": runner.command_line(),
        })
        print(f"saved {out}")
    return 0


def _load_tagger(path):
    from apps.tagging.model import model_tags  # also registers the custom layers

    model = runner.load(path)
    tags = model_tags(model)
    saved = runner.read_metadata(path).get("tags")
    if saved is not None and saved != tags:
        raise ValueError(f"{path}: metadata.json lists other tags than the model; "
                         "the folder mixes two models")
    return model


def evaluate(args):
    from apps.tagging import evaluation

    model = _load_tagger(args.model)
    target = runner.read_metadata(args.model).get("target", {})
    args.tag = args.tag or target.get("tag")
    args.column = target.get("column") if args.column is None else args.column
    sentences = _load_data(args.data, args)
    report = _score(model, sentences, args.batch_size)
    print(f"{args.model} on {args.data} ({len(sentences)} sentences)")
    print(evaluation.format_report(report))
    folder = args.model if args.model.is_dir() else args.model.parent
    png = args.confusion or folder / f"confusion-{_data_stem(args.data)}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    evaluation.save_confusion_png(
        report, png, title=f"{args.model.name} on {_data_stem(args.data)}: "
        f"accuracy {100 * report['accuracy']:.2f}%")
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
    from apps.tagging.model import predict_tags
    from apps.tagging.text import tokenize

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
        print(" ".join(
            f"{tok}/{t}" + (f"/{p:.3f}" if args.probabilities else "")
            for tok, t, p in zip(tokens, sentence_tags, sentence_probs)))
    return 0


def export(args):
    from apps.tagging.model import export_saved_model

    from keras_deeprnn.export import write_manifest

    model = _load_tagger(args.model)
    folder = args.model if args.model.is_dir() else args.model.parent
    out = export_saved_model(model, args.out or folder / "saved_model")
    # The tagger reads strings (StringLookup), which TFLite builtin ops
    # cannot: the SavedModel is its deployment format. The manifest inside
    # it hashes every file (keras_deeprnn.export.check_manifest).
    write_manifest(out, folder.name, [{"file": ".", "format": "saved_model",
                                       "signatures": {"serve": ["tokens"]}}],
                   metrics=runner.read_metadata(folder).get("metrics"))
    print(f"wrote the SavedModel {out} (signature 'serve': string tokens (batch, time), "
          f"padded with \"\" -> logits (batch, time, {model.output_shape[-1]}))")
    return 0


def baseline(args):
    from apps.tagging import baselines, evaluation
    from apps.tagging.text import normalize_word

    train_set, test_set = _load_data(args.train, args), _load_data(args.test, args)
    known = {normalize_word(t) for s in train_set for t in s.tokens}
    print("| method | accuracy | unseen-word accuracy | train s |\n|---|---|---|---|")
    for name in args.method or ("most-frequent", "perceptron"):
        with runner.Timer() as timer:
            tagger = baselines.make(name, args.iterations, args.seed).fit(train_set)
        report = evaluation.score(test_set, [tagger.tag(s.tokens) for s in test_set], known)
        unseen = (f"{100 * report['unseen_accuracy']:.2f}% ({report['unseen_tokens']} tokens)"
                  if report["unseen_tokens"] else "n/a")
        print(f"| {name} | {100 * report['accuracy']:.2f}% | {unseen} | {timer.seconds:.1f} |")
    return 0


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:  # `tag MODEL --tokenized "a b"`: argparse leaves sentences after an option
        if args.command != "tag" or any(e.startswith("-") for e in extra):
            top.error("unrecognized arguments: " + " ".join(extra))
        args.sentences += extra
    commands = {"train": train, "evaluate": evaluate, "tag": tag, "export": export,
                "baseline": baseline}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
