"""The sentiment app's data: labelled texts, token ids, length buckets.

`add_arguments(parser)` declares the data options, `load(args)` reads the
texts (`keras_deeprnn.data.text.load_text`), and `prepare(args, train)` (or
`datasets(args)`, both in one) holds out the validation texts, adapts the
vocabulary and makes length-bucketed batches of token ids.
"""

import numpy as np

from ..common.cli import fraction
from ..common.cli import positive_int
from ..common.data import Datasets

DEFAULT_MAX_LENGTH = 60
#: Texts are cut to this many characters per token of --max-length before
#: tokenising (the tokens after max_length are dropped anyway).
CHARS_PER_TOKEN = 100


def add_source(p, default="mr"):
    """Where the texts come from: `--data`, `--data-dir`, `--encoding`."""
    p.add_argument(
        "--data",
        default=default,
        help="mr (the registered MR files, found or downloaded: `deeprnn data list`; "
        "the default), imdb, sst2 or tfds:NAME[:SPLIT] (TFDS, needs the network the first "
        "time), a .pos/.neg file, a TSV/CSV file of text,label rows, or a folder with "
        "one subfolder per class",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="a folder searched first for the MR files, or TFDS's data folder",
    )
    p.add_argument(
        "--encoding",
        default=None,
        help="encoding of local files (default: latin-1 for MR, utf-8 otherwise)",
    )


def add_arguments(p):
    """The training data options."""
    add_source(p)
    p.add_argument(
        "--labels",
        default=None,
        help="the label set, comma-separated, in class order (default: the "
        "data's own); rows with other labels are skipped",
    )
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=DEFAULT_MAX_LENGTH,
        help="texts are cut after this many tokens (default 60: every MR "
        "sentence fits; use 400 or more for IMDB reviews)",
    )
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=20000,
        help="vocabulary size, padding and [UNK] included",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="texts per batch")
    p.add_argument(
        "--valid-fraction",
        type=fraction,
        default=0.1,
        help="part of the training texts held out for early stopping",
    )
    p.add_argument(
        "--test-fraction",
        type=fraction,
        default=0.1,
        help="part held out for testing when the data has no test split",
    )


def load(args, label_names=None):
    """The splits of `args.data`: a dict of `keras_deeprnn.data.text.TextSet`."""
    from keras_deeprnn.data import text

    if label_names is None and getattr(args, "labels", None):
        label_names = args.labels.split(",")
    return text.load_text(
        args.data, data_dir=args.data_dir, encoding=args.encoding, label_names=label_names
    )


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


def token_ids(vectorizer, texts, max_length):
    """0-padded token ids of `texts` (clipped first)."""
    from keras_deeprnn.data.text import vectorize

    return vectorize(vectorizer, clip_texts(texts, max_length))


def prepare(args, train_set, test_set=None, vocabulary_from_all=False):
    """Splits `train_set` into fitting and validation texts (stratified,
    seeded), adapts a vocabulary and vectorizes every split.

    Args:
        args: The parsed options (`--max-length`, `--max-tokens`,
            `--valid-fraction`, `--batch-size`, `--seed`).
        train_set, test_set: `TextSet`s; `test_set` may be None.
        vocabulary_from_all: Adapt the vocabulary on all of `train_set`
            (validation part included) rather than the fitting part alone.

    Returns:
        `Datasets` of length-bucketed `(ids, labels)` batches; `info` holds
        the `"vectorizer"`, the `"sets"` (`TextSet`s `train`, `valid`,
        `test`, `all`) and their `"ids"`.
    """
    from keras_deeprnn.data import text

    from .model import make_vectorizer

    rest, held = text.split_indices(train_set.labels, args.valid_fraction, seed=args.seed)
    sets = {
        "train": train_set.subset(rest),
        "valid": train_set.subset(held),
        "test": test_set,
        "all": train_set,
    }
    vectorizer = make_vectorizer(args.max_tokens, args.max_length)
    vocabulary_texts = train_set.texts if vocabulary_from_all else sets["train"].texts
    vectorizer.adapt(np.array(clip_texts(vocabulary_texts, args.max_length), dtype=object))
    ids = {
        split: token_ids(vectorizer, s.texts, args.max_length)
        for split, s in sets.items()
        if s is not None
    }

    def batches(split, shuffle=False):
        if sets[split] is None:
            return None
        return text.bucketed_dataset(
            ids[split], sets[split].labels, args.batch_size, shuffle=shuffle, seed=args.seed
        )

    return Datasets(
        batches("train", shuffle=True),
        batches("valid"),
        batches("test"),
        info={"vectorizer": vectorizer, "sets": sets, "ids": ids},
    )


def split_test(args, data):
    """`(train, test)` `TextSet`s: the data's own test split, or a seeded
    `--test-fraction` of its training texts."""
    from keras_deeprnn.data import text

    if "test" in data:
        return data["train"], data["test"]
    rest, held = text.split_indices(data["train"].labels, args.test_fraction, seed=args.seed)
    return data["train"].subset(rest), data["train"].subset(held)


def datasets(args):
    """`prepare` on `load(args)`'s training texts and test split."""
    return prepare(args, *split_test(args, load(args)))
