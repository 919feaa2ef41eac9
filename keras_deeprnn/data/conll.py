"""Sequence-tagging data: CoNLL-U and CoNLL column readers, TFDS, `tf.data`.

A *sentence* is a :class:`Sentence` ``(tokens, tags)``: two tuples of
strings of the same, non-zero length. Every reader returns a list of them.

Sources:

* :func:`read_conllu` -- a CoNLL-U file (Universal Dependencies). The target
  is the UPOS or XPOS column. Comment lines (``#``) are skipped, and so are
  the range lines of multi-word tokens (``3-4``) and empty nodes (``8.1``):
  the *syntactic words* are tagged, as in the treebank's own evaluation.
* :func:`read_conll` -- a CoNLL column file (CoNLL-2000 chunking,
  CoNLL-2003 NER, ...): one token a line with its tags in columns separated by
  whitespace (or ``separator``), a blank line between sentences; the target is
  a chosen column. ``-DOCSTART-`` lines are skipped.
* :func:`load_tfds` -- the TFDS data sets ``universal_dependencies/<treebank>``
  (UPOS or XPOS) and ``conll2003`` (``pos``, ``chunks`` or ``ner``); needs
  ``tensorflow_datasets`` and, the first time, the network.
* :func:`load_tagging` -- one string (paths separated by commas, or
  ``tfds:NAME:SPLIT``) to a list of sentences: what an application's
  ``--train``/``--test`` options call.

:func:`tagging_dataset` turns sentences into a ``tf.data.Dataset`` of
``(tokens, tag_ids, sample_weight)`` batches, padded with ``""`` / 0 / 0.0
and, optionally, bucketed by length.

Every problem with a data file raises :class:`ConllError` (a ``ValueError``)
whose message starts with ``path:line:``. Skipped material (sentences with no
word) is reported through the ``logging`` module, logger
``keras_deeprnn.data.conll``.

Example:

>>> from keras_deeprnn.data import conll
>>> train = conll.read_conllu("en_ewt-ud-dev.conllu")        # doctest: +SKIP
>>> train[0]                                                # doctest: +SKIP
Sentence(tokens=('From', 'the', 'AP', ...), tags=('ADP', 'DET', 'PROPN', ...))
>>> tags = conll.tag_set(train)                             # doctest: +SKIP
>>> ds = conll.tagging_dataset(train, tags, batch_size=32, shuffle=True)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import NamedTuple

from keras_deeprnn.data import registry

__all__ = [
    "ConllError",
    "Sentence",
    "CONLLU_TAGS",
    "TFDS_TAGS",
    "read_conllu",
    "parse_conllu",
    "read_conll",
    "parse_conll",
    "read_tagged",
    "load_tfds",
    "tfds_sentences",
    "load_tagging",
    "tag_set",
    "token_count",
    "tagging_dataset",
]

logger = logging.getLogger(__name__)

#: The CoNLL-U columns that can be the target, and their 0-based index.
CONLLU_TAGS = {"upos": 3, "xpos": 4}
#: The tag features of the TFDS data sets :func:`load_tfds` reads; the first
#: is the default.
TFDS_TAGS = {
    "universal_dependencies": ("upos", "xpos"),
    "conll2003": ("ner", "pos", "chunks"),
}
_CONLLU_COLUMNS = 10
_DOCSTART = "-DOCSTART-"


class ConllError(ValueError):
    """A tagging data file is missing or malformed.

    The message starts with ``path:line:`` (the 1-based line number) and says
    what is wrong.
    """


class Sentence(NamedTuple):
    """One tagged sentence: ``tokens[i]`` has the tag ``tags[i]``."""

    tokens: tuple
    tags: tuple


# ----------------------------------------------------------------------------
# CoNLL-U
# ----------------------------------------------------------------------------


def _open_lines(path):
    path = Path(path)
    if not path.is_file():
        raise ConllError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as err:
        raise ConllError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def _word_id(field, where):
    """The kind of a CoNLL-U ID: ("word", n), ("range", (a, b)), ("empty", None)."""
    if field.isdigit() and field.isascii():
        value = int(field)
        if value < 1:
            raise ConllError(f"{where}: word id must be 1 or more, got {field!r}")
        return "word", value
    if "-" in field:
        start, _, end = field.partition("-")
        if start.isdigit() and end.isdigit() and start.isascii() and end.isascii():
            if int(start) < 1 or int(end) <= int(start):
                raise ConllError(
                    f"{where}: multi-word token range {field!r} must be N-M with 1 <= N < M"
                )
            return "range", (int(start), int(end))
    if "." in field:
        major, _, minor = field.partition(".")
        if major.isdigit() and minor.isdigit() and major.isascii() and minor.isascii():
            return "empty", None
    raise ConllError(
        f"{where}: ID {field!r} is not an integer (word), N-M (multi-word token) "
        "or N.M (empty node)"
    )


def parse_conllu(lines, tag="upos", source="<lines>"):
    """Parse CoNLL-U text (an iterable of lines) into sentences.

    Args:
        lines: the lines, with or without their line ends.
        tag: ``"upos"`` or ``"xpos"``, the column to use as the target.
        source: the name used in error messages (a path, say).

    Returns:
        list of :class:`Sentence`, one per sentence that has at least one word.

    Raises:
        ConllError: ``source:line:`` and what is wrong: a line without the 10
            tab-separated columns, an ID that is not an integer, a range or a
            decimal, word IDs out of sequence, a multi-word token range that
            does not cover the words that follow it, or an empty form or tag.
        ValueError: ``tag`` is not a CoNLL-U tag column.
    """
    if tag not in CONLLU_TAGS:
        raise ValueError(f"tag must be one of {', '.join(CONLLU_TAGS)} for CoNLL-U; got {tag!r}")
    column = CONLLU_TAGS[tag]
    sentences = []
    tokens, tags = [], []
    range_end = 0  # last word id covered by the current multi-word token range
    start_line = None

    def finish(line_number):
        if tokens:
            if range_end > len(tokens):
                raise ConllError(
                    f"{source}:{line_number}: sentence ends inside a multi-word token "
                    f"that covers words up to {range_end}"
                )
            sentences.append(Sentence(tuple(tokens), tuple(tags)))
        elif start_line is not None:
            logger.warning("%s:%d: sentence without words, skipped", source, start_line)

    number = 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            finish(number)
            tokens, tags, range_end, start_line = [], [], 0, None
            continue
        if start_line is None:
            start_line = number
        if line.startswith("#"):
            continue
        where = f"{source}:{number}"
        fields = line.split("\t")
        if len(fields) != _CONLLU_COLUMNS:
            raise ConllError(
                f"{where}: expected {_CONLLU_COLUMNS} tab-separated columns, found "
                f"{len(fields)}" + (" (spaces instead of tabs?)" if len(fields) < 4 else "")
            )
        kind, value = _word_id(fields[0], where)
        if kind == "empty":
            continue  # empty nodes are not surface words
        if kind == "range":
            if value[0] != len(tokens) + 1:
                raise ConllError(
                    f"{where}: multi-word token {fields[0]} should start at word {len(tokens) + 1}"
                )
            range_end = value[1]
            continue
        if value != len(tokens) + 1:
            raise ConllError(
                f"{where}: word id {value} out of sequence, expected {len(tokens) + 1}"
            )
        form, label = fields[1], fields[column].strip()
        if not form or not label:
            raise ConllError(f"{where}: empty {'FORM' if not form else tag.upper()} column")
        tokens.append(form)
        tags.append(label)
    finish(number + 1)
    return sentences


def read_conllu(path, tag="upos"):
    """Read a CoNLL-U file; see :func:`parse_conllu` (errors name ``path``)."""
    return parse_conllu(_open_lines(path), tag=tag, source=str(path))


# ----------------------------------------------------------------------------
# CoNLL column files
# ----------------------------------------------------------------------------


def parse_conll(lines, column=-1, token_column=0, separator=None, source="<lines>"):
    """Parse CoNLL column text (CoNLL-2000 / CoNLL-2003 style) into sentences.

    Each non-blank line is a token and its annotations, in columns separated
    by whitespace (``separator=None``) or by ``separator``; a blank line ends
    a sentence; ``-DOCSTART-`` lines are skipped. Every token line of the
    file must have the same number of columns.

    Args:
        lines: the lines, with or without their line ends.
        column: index of the target column (negative counts from the end:
            ``-1`` is the last, the NER tag of CoNLL-2003).
        token_column: index of the token column.
        separator: column separator; ``None`` splits on runs of whitespace.
        source: the name used in error messages.

    Returns:
        list of :class:`Sentence`.

    Raises:
        ConllError: ``source:line:`` and what is wrong: a line with a
            different number of columns from the first token line, or too few
            columns for ``column``/``token_column``.
    """
    sentences = []
    tokens, tags = [], []
    width = None
    number = 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            if tokens:
                sentences.append(Sentence(tuple(tokens), tuple(tags)))
            tokens, tags = [], []
            continue
        fields = line.split(separator) if separator is not None else line.split()
        if fields[0] == _DOCSTART:
            continue
        where = f"{source}:{number}"
        if width is None:
            width = len(fields)
            for name, index in (("column", column), ("token_column", token_column)):
                if not -width <= index < width:
                    raise ConllError(
                        f"{where}: {name} {index} does not exist: the lines have {width} columns"
                    )
        elif len(fields) != width:
            raise ConllError(
                f"{where}: expected {width} columns like the first token line, found {len(fields)}"
            )
        token, label = fields[token_column], fields[column].strip()
        if not token or not label:
            raise ConllError(f"{where}: empty {'token' if not token else 'tag'} column")
        tokens.append(token)
        tags.append(label)
    if tokens:
        sentences.append(Sentence(tuple(tokens), tuple(tags)))
    return sentences


def read_conll(path, column=-1, token_column=0, separator=None):
    """Read a CoNLL column file; see :func:`parse_conll` (errors name ``path``)."""
    return parse_conll(
        _open_lines(path),
        column=column,
        token_column=token_column,
        separator=separator,
        source=str(path),
    )


def read_tagged(path, tag="upos", column=-1):
    """Read ``path`` as CoNLL-U if it ends in ``.conllu``, else as a column file.

    ``tag`` is the CoNLL-U target (``"upos"``/``"xpos"``), ``column`` the
    column-file target.
    """
    if str(path).lower().endswith(".conllu"):
        return read_conllu(path, tag=tag)
    return read_conll(path, column=column)


# ----------------------------------------------------------------------------
# TFDS
# ----------------------------------------------------------------------------


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def tfds_sentences(examples, name, tag, label_names=None):
    """Turn TFDS examples (dicts of NumPy values) into :class:`Sentence`.

    ``label_names`` maps the integer labels of ``tag`` to strings (for a
    ``ClassLabel`` feature). For ``universal_dependencies``, the rows of
    multi-word token ranges and empty nodes, which TFDS keeps (their HEAD is
    ``_``, stored as ``"None"``), are dropped, so the syntactic words are
    tagged as with :func:`read_conllu`.
    """
    is_ud = name.split("/")[0] == "universal_dependencies"
    sentences = []
    for number, example in enumerate(examples, 1):
        tokens = [_decode(t) for t in example["tokens"]]
        labels = [
            label_names[int(t)] if label_names is not None else _decode(t) for t in example[tag]
        ]
        heads = [_decode(h) for h in example["head"]] if is_ud else tokens
        if not len(tokens) == len(labels) == len(heads):
            raise ConllError(
                f"{name}: example {number} has {len(tokens)} tokens but {len(labels)} "
                f"{tag} tags" + (f" and {len(heads)} heads" if is_ud else "")
            )
        if is_ud:
            keep = [i for i, h in enumerate(heads) if h not in ("None", "_", "")]
            tokens = [tokens[i] for i in keep]
            labels = [labels[i] for i in keep]
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(labels)))
    return sentences


def load_tfds(name, split, tag=None, data_dir=None, download=True):
    """Sentences of a TFDS tagging data set.

    Args:
        name: ``"universal_dependencies/<treebank>"`` (e.g.
            ``"universal_dependencies/en_ewt"``) or ``"conll2003"``.
        split: a TFDS split, e.g. ``"train"``, ``"dev"``, ``"test"``,
            ``"train[:10%]"``.
        tag: the target feature: ``"upos"`` (default) or ``"xpos"`` for
            Universal Dependencies; ``"ner"`` (default), ``"pos"`` or
            ``"chunks"`` for CoNLL-2003.
        data_dir: TFDS data folder (default: TFDS's own, ``~/tensorflow_datasets``).
        download: download and prepare the data if it is not there yet.

    Raises:
        ValueError: an unsupported data set or tag.
        ConllError: TFDS could not load the data (not downloaded and no
            network, an unknown split, ...); the message has TFDS's error.
        ImportError: ``tensorflow_datasets`` is not installed.
    """
    base = name.split("/")[0]
    if base not in TFDS_TAGS:
        raise ValueError(
            f"unsupported TFDS data set {name!r}; supported: "
            "universal_dependencies/<treebank>, conll2003"
        )
    tag = tag or TFDS_TAGS[base][0]
    if tag not in TFDS_TAGS[base]:
        raise ValueError(f"{name} has no tag {tag!r}; choose one of {', '.join(TFDS_TAGS[base])}")
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_tfds needs tensorflow_datasets: pip install tensorflow-datasets"
        ) from err
    try:
        dataset, info = tfds.load(
            name, split=split, data_dir=data_dir, download=download, with_info=True
        )
    except Exception as err:  # TFDS raises many types (network, missing files, bad split)
        raise ConllError(
            f"tfds:{name}:{split}: could not load the TFDS data ({type(err).__name__}: {err}). "
            "Offline, prepare it on a machine with network and pass its data_dir, or use "
            "local CoNLL files."
        ) from err
    feature = info.features[tag]
    inner = getattr(feature, "feature", feature)
    label_names = list(inner.names) if hasattr(inner, "names") else None
    return tfds_sentences(tfds.as_numpy(dataset), name, tag, label_names)


# ----------------------------------------------------------------------------
# One string to sentences
# ----------------------------------------------------------------------------


def load_tagging(spec, tag=None, column=-1, data_dir=None):
    """Sentences from one string, the form of the apps' data options.

    ``spec`` is either ``tfds:NAME:SPLIT`` (see :func:`load_tfds`, e.g.
    ``tfds:universal_dependencies/en_ewt:train``) or one or more paths or
    registered files (``ud-en-gum:test``, see :mod:`keras_deeprnn.data.registry`)
    separated by commas, each read with :func:`read_tagged` and concatenated
    in order. ``tag`` is the CoNLL-U / TFDS target (default ``"upos"``, or
    the TFDS data set's default), ``column`` the column-file target.
    """
    spec = str(spec)
    if spec.startswith("tfds:"):
        parts = spec.split(":")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ValueError(f"expected tfds:NAME:SPLIT, got {spec!r}")
        return load_tfds(parts[1], parts[2], tag=tag, data_dir=data_dir)
    sentences = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        path = registry.resolve(part) or part
        sentences.extend(read_tagged(path, tag=tag or "upos", column=column))
    if not sentences:
        raise ConllError(f"{spec}: no sentence found")
    return sentences


# ----------------------------------------------------------------------------
# Vocabularies and tf.data
# ----------------------------------------------------------------------------


def tag_set(sentences):
    """The tags of ``sentences``, most frequent first (ties alphabetical)."""
    counts = collections.Counter(t for s in sentences for t in s.tags)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def token_count(sentences):
    """The number of tokens in ``sentences``."""
    return sum(len(s.tokens) for s in sentences)


def tagging_dataset(
    sentences,
    tags,
    batch_size=32,
    shuffle=False,
    seed=0,
    bucket_boundaries=(10, 20, 30, 45, 70),
    unknown_tags="error",
):
    """A ``tf.data.Dataset`` of padded ``(tokens, tag_ids, sample_weight)``
    batches (its ``cardinality()`` is the number of batches).

    ``tokens`` is a ``(batch, time)`` string tensor padded with ``""``,
    ``tag_ids`` the ``int32`` index of each tag in ``tags`` (0 at padding) and
    ``sample_weight`` ``float32`` 1 for a real token, 0 for padding.

    Args:
        sentences: list of :class:`Sentence` (or ``(tokens, tags)`` pairs).
        tags: the list of tag names; a tag's id is its index.
        batch_size: sentences per batch.
        shuffle: reshuffle the sentences at every pass (``seed`` fixes the
            order).
        bucket_boundaries: batch sentences of similar length together (fewer
            padded steps): the lengths that separate the buckets; ``None``
            keeps the order of ``sentences`` (or of the shuffle).
        unknown_tags: what to do with a tag that is not in ``tags``:
            ``"error"`` raises ``ValueError``; ``"ignore"`` gives its tokens
            weight 0 (they are neither trained on nor scored) and logs a
            warning with their count.
    """
    import numpy as np
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if unknown_tags not in ("error", "ignore"):
        raise ValueError(f"unknown_tags must be 'error' or 'ignore', got {unknown_tags!r}")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("no sentences")
    index = {t: i for i, t in enumerate(tags)}
    unknown = collections.Counter(t for s in sentences for t in s[1] if t not in index)
    if unknown:
        listing = ", ".join(f"{t} ({n})" for t, n in unknown.most_common(10))
        if unknown_tags == "error":
            raise ValueError(f"tags not in the tag set: {listing}")
        logger.warning(
            "%d tokens with tags not in the tag set are not scored: %s",
            sum(unknown.values()),
            listing,
        )
    lengths = [len(s[0]) for s in sentences]
    if min(lengths) == 0:
        raise ValueError(f"sentence {lengths.index(0)} has no token")
    flat_tokens = [t for s in sentences for t in s[0]]
    flat_ids = np.array([index.get(t, 0) for s in sentences for t in s[1]], np.int32)
    flat_w = np.array([float(t in index) for s in sentences for t in s[1]], np.float32)
    starts = np.cumsum([0] + lengths[:-1]).astype(np.int64)
    values = (tf.constant(flat_tokens, tf.string), tf.constant(flat_ids), tf.constant(flat_w))
    bounds = tf.constant(np.stack([starts, starts + lengths], 1))

    def sentence(i):
        start, end = bounds[i, 0], bounds[i, 1]
        return tuple(v[start:end] for v in values)

    ds = tf.data.Dataset.range(len(sentences))
    if shuffle:
        ds = ds.shuffle(len(sentences), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(sentence)
    padding = (tf.constant("", tf.string), np.int32(0), np.float32(0))
    if bucket_boundaries:
        ds = ds.bucket_by_sequence_length(
            lambda tokens, ids, w: tf.shape(tokens)[0],
            bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padding_values=padding,
        )
        buckets = np.bincount(np.searchsorted(bucket_boundaries, lengths, side="right"))
    else:
        ds = ds.padded_batch(batch_size, padding_values=padding)
        buckets = [len(sentences)]
    batches = sum(-(-int(n) // batch_size) for n in buckets)  # known, so Keras knows epoch ends
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    return ds.prefetch(tf.data.AUTOTUNE)
