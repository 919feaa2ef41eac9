"""The tagging app's data: tagged sentences.

`add_arguments(parser)` declares the data options, `datasets(args)` loads
them (`keras_deeprnn.data.conll`): the training, validation (given, or a
seeded share of the training sentences) and test sentences, the tag set,
words and characters the model is built from, and batches of
`(tokens, tag ids)`.
"""

import collections

from ..common.cli import positive_int
from ..common.data import Datasets

HELP = (
    "comma-separated CoNLL-U (.conllu) or CoNLL column files or registered files "
    "(ud-en-ewt:dev, ud-en-gum:test: `deeprnn data list`), or tfds:NAME:SPLIT "
    "(tfds:universal_dependencies/en_ewt:train, tfds:conll2003:test)"
)
#: What `python -m tuning.search tagging` trains on without --train.
DEFAULT_TRAIN = "ud-en-ewt:dev"


def add_target(p):
    """`--tag` and `--column`: which tags to read."""
    p.add_argument(
        "--tag",
        default=None,
        help="target of CoNLL-U and TFDS data: upos (default) or xpos; "
        "for tfds:conll2003 ner (default), pos or chunks",
    )
    p.add_argument(
        "--column",
        type=int,
        default=None,
        help="target column of CoNLL column files (default -1, the last)",
    )


def add_arguments(p, train_required=True):
    """The training data options; without `train_required`, `--train`
    defaults to UD English EWT dev (`DEFAULT_TRAIN`)."""
    default = "" if train_required else f" (default: {DEFAULT_TRAIN}, UD English EWT dev)"
    p.add_argument(
        "--train", required=train_required, default=None, help="training data: " + HELP + default
    )
    p.add_argument(
        "--valid",
        default=None,
        help="validation data for early stopping (default: --valid-fraction "
        "of the training sentences)",
    )
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="share of the training sentences held out for early stopping when "
        "--valid is not given; 0 trains on all of them for --epochs epochs",
    )
    p.add_argument("--test", default=None, help="data to evaluate on after training")
    add_target(p)
    p.add_argument("--batch-size", type=positive_int, default=32, help="sentences per batch")


def load(spec, args):
    """The sentences of `spec` with the target of `args.tag`/`args.column`."""
    from keras_deeprnn.data import conll

    return conll.load_tagging(spec, tag=args.tag, column=-1 if args.column is None else args.column)


def split_valid(sentences, fraction, seed):
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
    return (
        [s for i, s in enumerate(sentences) if i not in held],
        [s for i, s in enumerate(sentences) if i in held],
    )


def word_counts(sentences):
    """The normalized training words, most frequent first, and their counts."""
    from .text import normalize_word

    counts = collections.Counter(normalize_word(t) for s in sentences for t in s.tokens)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    return words, [counts[w] for w in words]


def characters(sentences):
    """The characters of the training tokens, most frequent first."""
    counts = collections.Counter(c for s in sentences for t in s.tokens for c in t)
    return sorted(counts, key=lambda c: (-counts[c], c))


def datasets(args):
    """`Datasets` of `args`; `info` holds the sentences of each split
    (`"sentences"`, None where absent), the `"tags"`, the training
    `"vocabulary"` and its `"counts"`, and the `"characters"`."""
    from keras_deeprnn.data import conll

    sentences = load(args.train or DEFAULT_TRAIN, args)
    if args.valid:
        train, valid = sentences, load(args.valid, args)
    elif args.valid_fraction:
        train, valid = split_valid(sentences, args.valid_fraction, args.seed)
    else:
        train, valid = sentences, None
    test = load(args.test, args) if args.test else None
    tags = conll.tag_set(train)
    vocabulary, counts = word_counts(train)

    def batches(split, shuffle=False):
        if not split:
            return None
        return conll.tagging_dataset(
            split, tags, args.batch_size, shuffle=shuffle, seed=args.seed, unknown_tags="ignore"
        )

    return Datasets(
        batches(train, shuffle=True),
        batches(valid),
        batches(test),
        info={
            "sentences": {"train": train, "valid": valid, "test": test},
            "tags": tags,
            "vocabulary": vocabulary,
            "counts": counts,
            "characters": characters(train),
        },
    )
