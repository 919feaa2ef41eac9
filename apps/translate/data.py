"""The translation app's data: sentence pairs.

`add_arguments(parser)` declares the data options, `load_pairs(...)` reads
a source of pairs into splits of `Pairs`, and `datasets(pairs, tokenizer,
...)` turns them into length-bucketed batches of
`((source ids, target input ids), target output ids)`.

Sources (`--data`, with `--src` and `--tgt` language codes):

* `multi30k`: the Multi30k files `{train,val,test_2016_flickr}.LANG.gz`
  of the data registry (`keras_deeprnn.data.registry`: `--data-dir`,
  `$DEEPRNN_DATA_DIR`, Keras's cache, then a download; every file checked
  against its SHA-256); languages en, de, fr.
* a folder of `SPLIT.LANG[.gz]` files: `train`; `val`, `valid`, `dev` or
  `validation`; `test` or `test_*` (the first in sorted order).
* a prefix `P` of two parallel files `P.SRC[.gz]` and `P.TGT[.gz]`, one
  sentence a line.
* a tab-separated file of `source<TAB>target` lines (further columns, as
  the attribution of Tatoeba's files, are ignored).
* `tfds:NAME` (e.g. `tfds:ted_hrlr_translate/pt_to_en`): a TFDS
  translation data set (train, validation and test splits), from
  `--data-dir` as TFDS's data folder; its first use downloads it and
  needs the network.

Files are UTF-8 (bytes that are not are replaced, with a warning), gzip
where they end in `.gz`, split into lines at "\\n" only. Two parallel files
of different lengths are refused, naming the first line without a partner;
a pair with an empty side is skipped with a warning naming its line. A
source without its own validation split holds out `--valid-size` of the
training pairs (seeded).
"""

import dataclasses
import gzip
import logging
import os
import re
from pathlib import Path

import numpy as np

from ..common.cli import non_negative_int
from ..common.cli import positive_int
from ..common.data import Datasets

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
#: The Multi30k files of each split, `{name}.{lang}.gz`, and its languages.
MULTI30K = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
MULTI30K_LANGUAGES = ("en", "de", "fr")
#: File names of a split in a folder of `SPLIT.LANG[.gz]` files, by preference.
SPLIT_NAMES = {"train": ("train",), "valid": ("val", "valid", "dev", "validation")}
_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][a-z0-9]+)?$")
_MAX_LISTED = 5


class PairDataError(ValueError):
    """A source of sentence pairs is missing, malformed or empty; the
    message starts with the file (or data set) and says what is wrong."""


@dataclasses.dataclass
class Pairs:
    """Parallel sentences: `source[i]` translates to `target[i]`; `where[i]`
    says where the pair was read (`FILE:LINE`)."""

    source: list
    target: list
    where: list

    def __len__(self):
        return len(self.source)

    def subset(self, indices):
        """The pairs at `indices`, in that order."""
        return Pairs(
            *([column[i] for i in indices] for column in (self.source, self.target, self.where))
        )


def add_arguments(p, training=False):
    """`--data --src --tgt --data-dir`; with `training` also the held-out
    share, the length limit and the batch size."""
    p.add_argument(
        "--data",
        required=training,
        default=None,
        help="multi30k; a folder of SPLIT.LANG[.gz] files; a prefix P of the parallel "
        "files P.SRC[.gz] and P.TGT[.gz]; a TSV file of source<TAB>target lines; or "
        "tfds:NAME (e.g. tfds:ted_hrlr_translate/pt_to_en, needs the network once)"
        + ("" if training else " (default: the data the model was trained on)"),
    )
    p.add_argument(
        "--src",
        default=None if not training else "en",
        type=language,
        help="source language code (e.g. en)",
    )
    p.add_argument(
        "--tgt",
        default=None if not training else "de",
        type=language,
        help="target language code (e.g. de)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a folder searched for the Multi30k files before $DEEPRNN_DATA_DIR and "
        "Keras's cache (see `deeprnn data list`), or TFDS's data folder for tfds:NAME",
    )
    if training:
        p.add_argument(
            "--valid-size",
            type=non_negative_int,
            default=1000,
            help="training pairs held out for validation when the data has no validation split",
        )
        p.add_argument(
            "--batch-size", type=positive_int, default=64, help="sentence pairs per batch"
        )


def language(text):
    """A language code as written in file names: `en`, `pt`, `pt_br`."""
    code = text.strip().lower()
    if not _LANGUAGE.match(code):
        import argparse

        raise argparse.ArgumentTypeError(
            f"not a language code: {text!r} (two or three letters, e.g. en, de, fr)"
        )
    return code


# -- reading files --------------------------------------------------------------


def _listed(numbers):
    shown = ", ".join(str(n) for n in numbers[:_MAX_LISTED])
    more = len(numbers) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def read_lines(path):
    """The lines of a UTF-8 text file (gzip if it ends in `.gz`), without
    line ends; a final empty line (after the last newline) is dropped."""
    from keras_deeprnn.data.text import decode

    path = Path(path)
    if not path.is_file():
        raise PairDataError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise PairDataError(f"{path}: cannot be read: {error}") from None
    text = decode(raw, "utf-8", str(path))
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _keep_complete(source, target, where, name):
    """Drops the pairs with an empty side, with a warning naming them."""
    empty = [w for s, t, w in zip(source, target, where) if not s.strip() or not t.strip()]
    if empty:
        logger.warning(
            "%s: %d pair(s) with an empty side skipped (line %s)",
            name,
            len(empty),
            _listed([w.rsplit(":", 1)[-1] for w in empty]),
        )
    kept = [(s.strip(), t.strip(), w) for s, t, w in zip(source, target, where)]
    kept = [k for k in kept if k[0] and k[1]]
    if not kept:
        raise PairDataError(f"{name}: no sentence pair found")
    return Pairs(*(list(c) for c in zip(*kept)))


def read_parallel(source_path, target_path):
    """`Pairs` of two parallel files, line i of one with line i of the other.

    Raises:
        PairDataError: a file is missing or unreadable, the two have
            different numbers of lines (naming the first line that has no
            partner), or no pair is complete.
    """
    source, target = read_lines(source_path), read_lines(target_path)
    if len(source) != len(target):
        (longer, n_long), (shorter, n_short) = sorted(
            ((source_path, len(source)), (target_path, len(target))), key=lambda x: -x[1]
        )
        raise PairDataError(
            f"{source_path} has {len(source)} lines but {target_path} has {len(target)}: "
            f"line {n_short + 1} of {longer} has no partner in {shorter}"
        )
    where = [f"{Path(source_path).name}:{i}" for i in range(1, len(source) + 1)]
    return _keep_complete(source, target, where, f"{source_path} | {target_path}")


def read_tsv(path):
    """`Pairs` of a file of `source<TAB>target[<TAB>...]` lines.

    Raises:
        PairDataError: a non-empty line has no tab (no target), naming it.
    """
    source, target, where = [], [], []
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            fields = ["", ""]
        else:
            fields = line.split("\t")
        if len(fields) < 2:
            raise PairDataError(
                f"{path}: line {number} has no tab: a source sentence without its target "
                "(expected source<TAB>target)"
            )
        source.append(fields[0])
        target.append(fields[1])
        where.append(f"{Path(path).name}:{number}")
    return _keep_complete(source, target, where, str(path))


# -- sources --------------------------------------------------------------------


def multi30k_split(name, src, tgt, data_dir=None, download=True):
    """`Pairs` of the Multi30k split `name` (a file stem of `MULTI30K`),
    its two files found (or downloaded) and verified by the data registry."""
    from keras_deeprnn.data import registry

    paths = [
        registry.fetch_file("multi30k", f"{name}.{lang}", data_dir, download) for lang in (src, tgt)
    ]
    return read_parallel(*paths)


def _language_file(base, lang):
    """`base.lang`, or `base.lang.gz`, or None."""
    for candidate in (Path(f"{base}.{lang}"), Path(f"{base}.{lang}.gz")):
        if candidate.is_file():
            return candidate
    return None


def _languages_of(base):
    """The language codes of the files `base.*[.gz]`."""
    base = Path(base)
    found = set()
    if base.parent.is_dir():
        for p in base.parent.iterdir():
            name = p.name.removesuffix(".gz")
            if name.startswith(base.name + ".") and p.is_file():
                found.add(name[len(base.name) + 1 :])
    return sorted(found)


def _parallel_at(base, src, tgt):
    paths = [_language_file(base, lang) for lang in (src, tgt)]
    for lang, path in zip((src, tgt), paths):
        if path is None:
            found = _languages_of(base)
            raise PairDataError(
                f"{base}.{lang}: no such file (nor {base}.{lang}.gz): unknown language "
                f"code {lang!r} here; found {', '.join(found) or 'no language'}"
            )
    return read_parallel(*paths)


def _folder_splits(folder):
    """The split files of a folder of `SPLIT.LANG[.gz]` files."""
    stems = sorted(
        {p.name.removesuffix(".gz").rsplit(".", 1)[0] for p in folder.iterdir() if p.is_file()}
    )
    names = {
        **SPLIT_NAMES,
        "test": ("test", *(s for s in stems if s.startswith("test_"))),
    }
    bases = {}
    for split, candidates in names.items():
        for stem in candidates:
            if stem in stems:
                bases[split] = folder / stem
                break
    if "train" not in bases:
        raise PairDataError(f"{folder}: no train.LANG[.gz] files (SPLIT.LANG files expected)")
    return bases


def _check_languages(src, tgt, known=None, name=None):
    if src == tgt:
        raise PairDataError(f"--src and --tgt are both {src!r}: pick two languages")
    for lang in (src, tgt):
        if known is not None and lang not in known:
            raise PairDataError(
                f"{name}: unknown language code {lang!r}; choose among {', '.join(known)}"
            )


def load_pairs(spec, src, tgt, data_dir=None, valid_size=1000, seed=0, download=True):
    """Splits of sentence pairs from one `--data` string (module docstring).

    Returns:
        `{split: Pairs}` with "train", "valid" and, where the data has one,
        "test". Without a validation split, `valid_size` training pairs
        (seeded by `seed`) are held out for it.
    """
    if spec is None:
        raise PairDataError("no --data given")
    _check_languages(src, tgt)
    text = os.fspath(spec)
    if text.lower() == "multi30k":
        _check_languages(src, tgt, MULTI30K_LANGUAGES, "multi30k")
        splits = {
            s: multi30k_split(name, src, tgt, data_dir, download) for s, name in MULTI30K.items()
        }
    elif text.lower().startswith("tfds:"):
        splits = load_tfds(text[len("tfds:") :], src, tgt, data_dir, download)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            bases = _folder_splits(path)
            splits = {s: _parallel_at(base, src, tgt) for s, base in bases.items()}
        elif path.is_file():
            splits = {"train": read_tsv(path)}
        elif _languages_of(path):
            splits = {"train": _parallel_at(path, src, tgt)}
        else:
            raise PairDataError(
                f"{text}: no such file, folder or file prefix (no {text}.{src} nor "
                f"{text}.{tgt}), and not a data set name; accepted: multi30k, a folder of "
                "SPLIT.LANG[.gz] files, a prefix of two parallel files, a TSV file, tfds:NAME"
            )
    if "valid" not in splits:
        train = splits["train"]
        if valid_size >= len(train):
            raise PairDataError(
                f"{text}: {len(train)} training pairs cannot spare --valid-size {valid_size} "
                "for validation: lower it or give a validation split"
            )
        order = np.random.default_rng(seed).permutation(len(train))
        held, rest = np.sort(order[:valid_size]), np.sort(order[valid_size:])
        splits["train"], splits["valid"] = train.subset(rest), train.subset(held)
    return splits


def load_tfds(name, src, tgt, data_dir=None, download=True):
    """The train, validation and test splits of a TFDS translation data set
    whose examples are `{language: text}` (as `ted_hrlr_translate`,
    `wmt14_translate`).

    Raises:
        PairDataError: TFDS could not load it (offline, say: the message
            says what TFDS reported), or a language is not in it.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tfds:NAME needs tensorflow_datasets: pip install tensorflow-datasets"
        ) from error
    source = f"tfds:{name}"
    try:
        builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
        languages = tuple(getattr(builder.info.features, "languages", ()) or ())
    except Exception as error:  # TFDS raises many types for unknown names
        raise PairDataError(
            f"{source}: not a TFDS data set here ({type(error).__name__}: {error})"
        ) from None
    if not languages:
        raise PairDataError(f"{source}: not a translation data set (no languages in its features)")
    _check_languages(src, tgt, languages, source)
    prepared = list(builder.info.splits)  # empty until TFDS has prepared it
    splits = {}
    for split, tfds_split in (("train", "train"), ("valid", "validation"), ("test", "test")):
        if prepared and tfds_split not in prepared:
            continue
        try:
            dataset = tfds.load(
                name,
                split=tfds_split,
                data_dir=None if data_dir is None else str(data_dir),
                download=download,
            )
            examples = list(tfds.as_numpy(dataset))
        except Exception as error:  # TFDS and its downloader raise many types
            raise PairDataError(
                f"{source}:{tfds_split}: TFDS could not load it ({type(error).__name__}: "
                f"{error}). The first use downloads it and needs the network; offline, use "
                "local files (a prefix of parallel files, a TSV file or a folder)"
            ) from None
        where = [f"{source}:{tfds_split}:{i}" for i in range(1, len(examples) + 1)]
        splits[split] = _keep_complete(
            [e[src].decode("utf-8", "replace") for e in examples],
            [e[tgt].decode("utf-8", "replace") for e in examples],
            where,
            f"{source}:{tfds_split}",
        )
    if "train" not in splits:
        raise PairDataError(f"{source}: no train split")
    return splits


# -- batches --------------------------------------------------------------------


def encode_pairs(pairs, tokenizer, max_length, name="train"):
    """Token ids of `pairs`: source ids, and target ids with BOS/EOS.

    Pairs whose source, or whose target with its EOS, is longer than
    `max_length` tokens are left out, with a logged count.

    Returns:
        `(source, target)`: 0-padded int32 arrays `(n, max_length)` and
        `(n, max_length + 1)` (BOS, the target's ids, EOS).
    """
    source = tokenizer.encode_source(pairs.source)
    target = tokenizer.encode_target(pairs.target)
    keep = [
        i
        for i, (s, t) in enumerate(zip(source, target))
        if len(s) <= max_length and len(t) < max_length
    ]
    if len(keep) < len(pairs):
        logger.warning(
            "%s: %d of %d pairs are longer than --max-length %d tokens; left out",
            name,
            len(pairs) - len(keep),
            len(pairs),
            max_length,
        )
    if not keep:
        raise PairDataError(f"{name}: no pair within --max-length {max_length} tokens")
    src = np.zeros((len(keep), max_length), np.int32)
    tgt = np.zeros((len(keep), max_length + 1), np.int32)
    for row, i in enumerate(keep):
        src[row, : len(source[i])] = source[i]
        ids = [tokenizer.bos_id, *target[i], tokenizer.eos_id]
        tgt[row, : len(ids)] = ids
    return src, tgt


def batches(source, target, batch_size, shuffle=False, seed=0):
    """A `tf.data.Dataset` of `((source, target_in), target_out)` batches of
    pairs of similar length (`keras_deeprnn.data.text.length_batches` on the
    total length), each cut to its longest sentence; reshuffled every epoch.
    """
    import tensorflow as tf

    from keras_deeprnn.data.text import length_batches
    from keras_deeprnn.data.text import token_lengths

    both = np.concatenate([source, target], axis=1)
    src_len, tgt_len = token_lengths(source), token_lengths(target)
    rng = np.random.default_rng(seed)

    def generate():
        for rows in length_batches(both, batch_size, shuffle, rng):
            s = source[rows, : src_len[rows].max()]
            t = target[rows, : tgt_len[rows].max()]
            yield (s, t[:, :-1]), t[:, 1:]

    spec = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=((spec, spec), spec))
    count = -(-len(source) // batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(2)


def datasets(pairs, tokenizer, max_length, batch_size, seed=0):
    """`Datasets` of the splits of `pairs` (`load_pairs`); `info["pairs"]`
    is `pairs` and `info["kept"]` the number of pairs of each split within
    `max_length`."""
    out, kept = {}, {}
    for split, split_pairs in pairs.items():
        source, target = encode_pairs(split_pairs, tokenizer, max_length, split)
        kept[split] = len(source)
        out[split] = batches(source, target, batch_size, shuffle=split == "train", seed=seed)
    return Datasets(**out, info={"pairs": pairs, "kept": kept})
