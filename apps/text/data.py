"""The text app's data: a UTF-8 file as token streams.

`add_arguments(parser)` declares the data options, `datasets(args)` reads
`--data` (`keras_deeprnn.data.corpus`), splits it (the first 90% of the
characters train, the rest validates, as nanoGPT's `shakespeare_char`; or
`--valid FILE`), builds the vocabulary (every character of the text; or
the `--vocab-size` most frequent training words plus `<unk>` and `<eos>`)
and cuts each split into `--batch-size` parallel streams of `--bptt`-step
windows (`keras_deeprnn.data.streams`). A trained model keeps its protocol
(`setup`: level, split, vocabulary) in its metadata; `evaluate`, `sample`
and `export` read the data with it.
"""

from ..common.cli import fraction
from ..common.cli import positive_int
from ..common.data import Datasets

SPLITS = ("train", "valid", "all")


def add_arguments(p, training=False, required=True):
    """`--data`; with `training` `--level --vocab-size --valid-fraction
    --valid --batch-size --bptt`."""
    p.add_argument(
        "--data",
        required=required,
        help="a UTF-8 text file (e.g. ../shared/data/text/tinyshakespeare.txt)",
    )
    if not training:
        return
    p.add_argument(
        "--level",
        default="char",
        choices=("char", "word"),
        help="char: every character is a token; word: whitespace-separated words, "
        "<eos> at each line end (Penn Treebank files work as they are)",
    )
    p.add_argument(
        "--vocab-size",
        type=positive_int,
        default=10000,
        help="word level: keep this many most frequent training words; the rest become <unk>",
    )
    p.add_argument(
        "--valid-fraction",
        type=fraction,
        default=0.1,
        help="the last fraction of the characters validates (default 0.1, nanoGPT's split)",
    )
    p.add_argument(
        "--valid",
        default=None,
        help="a separate validation file (e.g. ptb.valid.txt); then all of --data trains",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=64, help="B, parallel streams per batch"
    )
    p.add_argument(
        "--bptt",
        type=positive_int,
        default=128,
        help="k, steps per window: gradients stop at window borders, states carry on",
    )


def setup(args, vocabulary):
    """The protocol a model is trained in, as saved in its metadata."""
    return {
        "level": vocabulary.level,
        "valid_fraction": None if args.valid else args.valid_fraction,
        "valid": args.valid,
        "vocabulary": vocabulary.get_config()["tokens"],
    }


def vocabulary(stored):
    from keras_deeprnn.data.corpus import Vocabulary

    return Vocabulary(stored["vocabulary"], stored["level"])


def split_texts(path, valid_fraction, level, valid=None):
    """`{"train", "valid", "all"}` texts of a file (and a validation file)."""
    from keras_deeprnn.data import corpus

    text = corpus.read_corpus(path)
    if valid:
        return {"train": text, "valid": corpus.read_corpus(valid), "all": text}
    if valid_fraction is None:  # trained with a separate validation file
        return {"train": text, "valid": text, "all": text}
    train, held_out = corpus.split_corpus(text, valid_fraction, level)
    return {"train": train, "valid": held_out, "all": text}


def encode(vocab, text, split, path):
    """The ids of `text`; an error naming the file for characters outside
    the vocabulary or a split with fewer than 2 tokens."""
    from keras_deeprnn.data.corpus import CorpusError

    try:
        ids = vocab.encode(text)
    except ValueError as error:
        raise CorpusError(f"{path} ({split} part): {error}") from None
    if len(ids) < 2:
        raise CorpusError(
            f"{path}: the {split} part holds {len(ids)} {vocab.level} token(s); a "
            "language model needs at least 2 (give a longer text or another split)."
        )
    return ids


def datasets(args):
    """`Datasets` of `args.data` for training: stream batches of the
    training and validation parts. `info`: `setup`, `vocabulary`, `ids`
    (`{split: ids}`)."""
    from keras_deeprnn.data import corpus
    from keras_deeprnn.data.streams import stream_dataset

    texts = split_texts(args.data, args.valid_fraction, args.level, args.valid)
    if args.level == "char":
        vocab = corpus.Vocabulary.characters(texts["train"] + texts["valid"])
    else:
        vocab = corpus.Vocabulary.words(texts["train"], args.vocab_size)
    paths = {"train": args.data, "valid": args.valid or args.data}
    ids = {split: encode(vocab, texts[split], split, paths[split]) for split in paths}
    batches = {
        split: stream_dataset(ids[split], args.batch_size, args.bptt)
        for split in ("train", "valid")
    }
    return Datasets(**batches, info={"setup": setup(args, vocab), "vocabulary": vocab, "ids": ids})


def split_ids(path, stored, split):
    """The ids of `split` of `path` in a trained model's protocol (for a
    model trained with `--valid`, every split is the whole file)."""
    vocab = vocabulary(stored)
    texts = split_texts(path, stored["valid_fraction"], stored["level"])
    return encode(vocab, texts[split], split, path)
