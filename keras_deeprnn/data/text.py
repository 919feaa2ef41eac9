"""Text-classification data: labelled sentences and documents, folds.

A data set here is a :class:`TextSet`: ``texts`` (a list of ``str``),
``labels`` (an ``int64`` NumPy array of indices into ``label_names``) and
``label_names`` (a tuple of ``str``). Every loader returns one.

Sources:

* :func:`load_mr` -- the sentence polarity data set v1.0 of Pang & Lee
  (2005), "MR": ``rt-polarity.pos`` and ``rt-polarity.neg``, one sentence a
  line, Latin-1. Labels ``("negative", "positive")``.
* :func:`load_delimited` -- a tab- or comma-separated file of ``text, label``
  rows (optionally with a header naming the columns, as GLUE's
  ``SST-2/train.tsv``).
* :func:`load_class_folders` -- a folder per class, one document per file
  (as ``aclImdb/train/pos``, ``aclImdb/train/neg``).
* :func:`load_tfds` -- the TFDS data sets ``imdb_reviews`` and ``glue/sst2``
  (needs ``tensorflow_datasets`` and, the first time, the network).
* :func:`load_text` -- one string (``"mr"``, ``"imdb"``, ``"sst2"``,
  ``"tfds:NAME:SPLIT"``, or a path) to a dict of splits: what an
  application's ``--data`` option calls.

:func:`kfold_indices` and :func:`split_indices` make stratified
cross-validation folds and hold-out splits. :func:`vectorize` turns texts
into 0-padded token ids with a ``keras.layers.TextVectorization``, and
:func:`bucketed_dataset` batches them by length (each batch cut to its
longest text), so padding stays small.

Files are split into lines at ``"\\n"`` (and ``"\\r\\n"``) only: Latin-1
text can hold the byte ``0x85`` (NEL), which Python's ``str.splitlines``
would also take for a line break (MR has such lines). Bytes that are not
valid in the file's encoding are replaced by U+FFFD and reported (with the
line numbers) in a logged warning. Other problems that spoil a single line
or file (a row without a label, a label outside the label set, an empty
text) skip that line or file with a logged warning, logger
``keras_deeprnn.data.text``; a source that yields no example at all, or is
missing, raises :class:`TextDataError` (a ``ValueError``) whose message
starts with the path. Bad *arguments* raise ``ValueError``.

Example:

>>> from keras_deeprnn.data import text
>>> mr = text.load_text("mr")["train"]                   # doctest: +SKIP
>>> len(mr), mr.label_names                             # doctest: +SKIP
(10662, ('negative', 'positive'))
>>> for train_idx, test_idx in text.kfold_indices(mr.labels, k=10):  # doctest: +SKIP
...     train, test = mr.subset(train_idx), mr.subset(test_idx)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from pathlib import Path

import numpy as np

from keras_deeprnn.data import registry

__all__ = [
    "TextDataError",
    "TextSet",
    "BINARY_LABELS",
    "MR_FILES",
    "TFDS_SETS",
    "TEXT_COLUMNS",
    "LABEL_COLUMNS",
    "decode",
    "read_lines",
    "load_mr",
    "load_delimited",
    "load_class_folders",
    "load_tfds",
    "tfds_texts",
    "load_text",
    "encode_labels",
    "kfold_indices",
    "split_indices",
]

logger = logging.getLogger(__name__)

#: Label names of the binary sentiment sets, index 0 and 1.
BINARY_LABELS = ("negative", "positive")
#: The two files of the MR data set (positive, negative).
MR_FILES = ("rt-polarity.pos", "rt-polarity.neg")
#: The TFDS data sets :func:`load_tfds` knows: name -> (text feature, splits
#: with labels, short aliases).
TFDS_SETS = {
    "imdb_reviews": ("text", ("train", "test"), ("imdb",)),
    "glue/sst2": ("sentence", ("train", "validation"), ("sst2", "sst-2")),
}
#: Header names recognised as the text column of a delimited file.
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "phrase")
#: Header names recognised as the label column of a delimited file.
LABEL_COLUMNS = ("label", "labels", "sentiment", "polarity", "class", "target")
_MAX_LISTED = 5  # line numbers quoted in a warning


class TextDataError(ValueError):
    """A text data source is missing, unreadable or yields no example.

    The message starts with the path (or TFDS name) and says what is wrong.
    """


@dataclasses.dataclass(frozen=True)
class TextSet:
    """Labelled texts: ``texts[i]`` has label ``label_names[labels[i]]``."""

    texts: list
    labels: np.ndarray
    label_names: tuple

    def __post_init__(self):
        labels = np.asarray(self.labels, np.int64).reshape(-1)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "label_names", tuple(self.label_names))
        if len(labels) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise ValueError(f"labels must be in 0..{len(self.label_names) - 1}")

    def __len__(self):
        return len(self.texts)

    def subset(self, indices):
        """The examples at ``indices`` (an index array), same label names."""
        indices = np.asarray(indices, np.int64)
        return TextSet([self.texts[i] for i in indices], self.labels[indices], self.label_names)

    def counts(self):
        """``{label name: number of examples}``."""
        n = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c) for name, c in zip(self.label_names, n)}


# ----------------------------------------------------------------------------
# Decoding and lines
# ----------------------------------------------------------------------------


def _line_numbers(numbers):
    shown = ", ".join(str(n) for n in numbers[:_MAX_LISTED])
    more = len(numbers) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def decode(data, encoding="utf-8", source="<bytes>"):
    """``bytes`` to ``str``; undecodable bytes become U+FFFD, with a warning.

    The warning names ``source`` and the numbers of the lines that held bad
    bytes. An unknown ``encoding`` raises ``ValueError``.
    """
    if isinstance(data, str):
        return data
    try:
        return data.decode(encoding)
    except LookupError as err:
        raise ValueError(f"unknown text encoding {encoding!r}") from err
    except UnicodeDecodeError:
        pass
    bad = []
    for number, line in enumerate(data.split(b"\n"), 1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError:
            bad.append(number)
    logger.warning(
        "%s: line(s) %s hold bytes that are not valid %s; they were replaced "
        "by U+FFFD (give the right encoding, e.g. latin-1, if the file is "
        "not %s)",
        source,
        _line_numbers(bad),
        encoding,
        encoding,
    )
    return data.decode(encoding, errors="replace")


def _read_bytes(path):
    path = Path(path)
    if not path.exists():
        raise TextDataError(f"{path}: no such file")
    if not path.is_file():
        raise TextDataError(f"{path}: not a file")
    try:
        return path.read_bytes()
    except OSError as err:
        raise TextDataError(f"{path}: cannot be read: {err}") from err


def _split_lines(text):
    """Lines at "\\n" only (a trailing "\\r" is dropped), never at NEL."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def read_lines(path, encoding="utf-8"):
    """The lines of a text file, without line ends, as ``(number, line)``.

    Split at ``"\\n"`` only (see the module docstring); numbers start at 1.
    A final empty line (after the last newline) is not returned.
    """
    text = decode(_read_bytes(path), encoding, str(path))
    lines = _split_lines(text)
    if lines and lines[-1] == "":
        lines.pop()
    return list(enumerate(lines, 1))


# ----------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def encode_labels(raw, label_names=None, source="<labels>", where=None):
    """Label strings to indices.

    Args:
        raw: the labels as strings (surrounding spaces are ignored).
        label_names: the label set, in index order. A label is matched to a
            name exactly, else case-insensitively, else, when it is an
            integer ``0 .. len(label_names) - 1`` that is no name, taken as
            that index (so ``0``/``1`` files match ``("negative",
            "positive")``). ``None``: the sorted distinct labels (numerically
            if all are integers).
        source: named in the warning.
        where: the line number (or name) of each label, for the warning.

    Returns:
        ``(indices, label_names, keep)``: ``indices`` (``int64``) for the
        labels kept, the label names, and the boolean mask of the labels
        kept. Labels outside the label set are dropped with a warning that
        names them and their lines.
    """
    raw = [str(r).strip() for r in raw]
    where = list(range(1, len(raw) + 1)) if where is None else list(where)
    if label_names is None:
        distinct = sorted(set(raw))
        if distinct and all(_is_int(d) for d in distinct):
            distinct.sort(key=int)
        label_names = tuple(distinct)
    label_names = tuple(str(n) for n in label_names)
    if not label_names:
        raise ValueError("the label set is empty")
    exact = {name: i for i, name in enumerate(label_names)}
    folded = {}
    for i, name in enumerate(label_names):
        folded.setdefault(name.lower(), i)
    indices, keep, unknown = [], [], {}
    for label, at in zip(raw, where):
        index = exact.get(label, folded.get(label.lower()))
        if index is None and _is_int(label) and 0 <= int(label) < len(label_names):
            index = int(label)
        keep.append(index is not None)
        if index is None:
            unknown.setdefault(label, []).append(at)
        else:
            indices.append(index)
    if unknown:
        listed = "; ".join(
            f"{label!r} (line {_line_numbers(at)})"
            for label, at in sorted(unknown.items())[:_MAX_LISTED]
        )
        logger.warning(
            "%s: %d example(s) skipped, their label is not in the label set %s: %s",
            source,
            sum(map(len, unknown.values())),
            list(label_names),
            listed,
        )
    return np.asarray(indices, np.int64), label_names, np.asarray(keep, bool)


def _finish(texts, raw_labels, where, label_names, source):
    """Drop empty texts (warning), encode labels, build the TextSet."""
    empty = [at for text, at in zip(texts, where) if not text.strip()]
    if empty:
        logger.warning(
            "%s: %d example(s) with an empty text skipped (line %s)",
            source,
            len(empty),
            _line_numbers(empty),
        )
    kept = [(t, r, at) for t, r, at in zip(texts, raw_labels, where) if t.strip()]
    if not kept:
        raise TextDataError(f"{source}: no example found")
    texts, raw_labels, where = map(list, zip(*kept))
    labels, names, keep = encode_labels(raw_labels, label_names, source, where)
    texts = [t for t, k in zip(texts, keep) if k]
    if not texts:
        raise TextDataError(f"{source}: no example with a label in {list(names)}")
    return TextSet(texts, labels, names)


# ----------------------------------------------------------------------------
# File formats
# ----------------------------------------------------------------------------


def _mr_paths(path):
    """(pos, neg) from a folder, a ``.pos``/``.neg`` file or a common prefix."""
    path = Path(path)
    if path.is_dir():
        return path / MR_FILES[0], path / MR_FILES[1]
    if path.suffix in (".pos", ".neg"):
        stem = path.with_suffix("")
    else:
        stem = path
    return stem.with_name(stem.name + ".pos"), stem.with_name(stem.name + ".neg")


def load_mr(path, encoding="latin-1"):
    """The MR sentence polarity data set (Pang & Lee 2005).

    Args:
        path: the folder holding ``rt-polarity.pos`` and ``rt-polarity.neg``,
            either of the two files, or their common prefix
            (``.../rt-polarity``); any ``NAME.pos``/``NAME.neg`` pair works.
        encoding: of both files; the original release is Latin-1.

    Returns:
        a :class:`TextSet`, positives first, labels ``("negative",
        "positive")``. Empty lines are skipped (with a warning).
    """
    return _load_mr_files(*_mr_paths(path), encoding)


def _load_mr_files(pos_path, neg_path, encoding):
    texts, raw, where = [], [], []
    for file, label in ((pos_path, "positive"), (neg_path, "negative")):
        for number, line in read_lines(file, encoding):
            texts.append(line.strip())
            raw.append(label)
            where.append(f"{file.name}:{number}")
    return _finish(texts, raw, where, BINARY_LABELS, f"{pos_path.parent}/{pos_path.stem}.pos|.neg")


def _delimiter_for(path, first_line):
    suffix = Path(path).suffix.lower()
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    return "\t" if "\t" in first_line else ","


def _column(header, names, default):
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return default


def load_delimited(path, delimiter=None, encoding="utf-8", label_names=None, header=None):
    """A file of ``text, label`` rows, tab- or comma-separated.

    Comma-separated files follow the CSV quoting rules (a text holding
    commas, quotes or line breaks is quoted); tab-separated files are read
    without quoting (as GLUE's TSV files, whose texts hold bare quotes). A
    row with more fields than expected and no header keeps the last field as
    the label and joins the others back into the text, so unquoted commas in
    a text are harmless.

    Args:
        path: the file.
        delimiter: ``"\\t"`` or ``","``; default: tab for ``.tsv``, comma for
            ``.csv``, else tab if the first line holds one, else comma.
        encoding: of the file.
        label_names: the label set in index order (see :func:`encode_labels`);
            default: the sorted distinct labels of the file.
        header: whether the first row names the columns; default: it does if
            its last field, or any field, is one of :data:`LABEL_COLUMNS`.
            With a header, the text column is the first of
            :data:`TEXT_COLUMNS` found (else the first column) and the label
            column the first of :data:`LABEL_COLUMNS` (else the last).

    Returns:
        a :class:`TextSet`. Malformed rows (one field, an empty label) and
        rows whose label is outside ``label_names`` are skipped with a
        warning naming their line numbers.
    """
    path = Path(path)
    text = decode(_read_bytes(path), encoding, str(path))
    if text.startswith("\ufeff"):
        text = text[1:]
    first = _split_lines(text)[0] if text else ""
    delimiter = delimiter or _delimiter_for(path, first)
    if delimiter not in ("\t", ","):
        raise ValueError(f"delimiter must be a tab or a comma, got {delimiter!r}")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, len(text) + 1))
    rows = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
        start = 1
        for fields in reader:
            rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as err:
        raise TextDataError(
            f"{path}:{reader.line_num}: not a valid "
            f"{'TSV' if delimiter == chr(9) else 'CSV'} row: {err}"
        ) from err
    finally:
        csv.field_size_limit(old_limit)
    rows = [(n, f) for n, f in rows if any(x.strip() for x in f)]  # blank lines
    if not rows:
        raise TextDataError(f"{path}: no example found (the file is empty)")
    text_col, label_col = 0, -1
    first_fields = [f.strip().lower() for f in rows[0][1]]
    if header is None:
        header = bool(first_fields) and (
            first_fields[-1] in LABEL_COLUMNS or any(f in LABEL_COLUMNS for f in first_fields)
        )
    named = False
    if header:
        text_col = _column(rows[0][1], TEXT_COLUMNS, 0)
        label_col = _column(rows[0][1], LABEL_COLUMNS, len(rows[0][1]) - 1)
        named = len(rows[0][1]) > 2
        rows = rows[1:]
    texts, raw, where, malformed = [], [], [], []
    for number, fields in rows:
        if len(fields) < 2:
            malformed.append(number)
            continue
        if named:
            if max(text_col, label_col) >= len(fields):
                malformed.append(number)
                continue
            body, label = fields[text_col], fields[label_col]
        else:
            body, label = delimiter.join(fields[:-1]), fields[-1]
        if not label.strip():
            malformed.append(number)
            continue
        texts.append(body.strip())
        raw.append(label)
        where.append(number)
    if malformed:
        logger.warning(
            "%s: %d malformed row(s) skipped (no text and label separated by %r) at line %s",
            path,
            len(malformed),
            delimiter,
            _line_numbers(malformed),
        )
    if not texts:
        raise TextDataError(f"{path}: no row of the form text{delimiter}label found")
    return _finish(texts, raw, where, label_names, str(path))


def load_class_folders(path, encoding="utf-8", label_names=None):
    """A folder with one subfolder per class, one document per file.

    Hidden files and folders (``.name``) are ignored. Subfolders that are
    not in ``label_names`` (when given) are skipped with a warning; empty
    files are skipped with a warning.

    Args:
        path: the folder, e.g. ``aclImdb/train``.
        encoding: of the files.
        label_names: the classes (subfolder names) in index order; default:
            all subfolders, sorted.

    Returns:
        a :class:`TextSet` (documents in label, then file-name order).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise TextDataError(f"{folder}: not a folder")
    subfolders = sorted(
        p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if label_names is None:
        label_names = tuple(subfolders)
    label_names = tuple(label_names)
    missing = [n for n in label_names if n not in subfolders]
    if missing:
        raise TextDataError(
            f"{folder}: no subfolder for the class(es) {missing} (subfolders: {subfolders})"
        )
    extra = [n for n in subfolders if n not in label_names]
    if extra:
        logger.warning(
            "%s: subfolder(s) %s are not in the label set %s: skipped",
            folder,
            extra,
            list(label_names),
        )
    texts, raw, where = [], [], []
    for name in label_names:
        for file in sorted((folder / name).iterdir()):
            if file.name.startswith(".") or not file.is_file():
                continue
            texts.append(decode(_read_bytes(file), encoding, str(file)).strip())
            raw.append(name)
            where.append(f"{name}/{file.name}")
    if not texts:
        raise TextDataError(f"{folder}: no file in the class subfolders {list(label_names)}")
    return _finish(texts, raw, where, label_names, str(folder))


# ----------------------------------------------------------------------------
# TFDS
# ----------------------------------------------------------------------------


def _tfds_name(name):
    key = name.strip().lower()
    for canonical, (_, _, aliases) in TFDS_SETS.items():
        if key == canonical or key in aliases:
            return canonical
    raise ValueError(
        f"unsupported TFDS data set {name!r}; supported: "
        f"{', '.join(TFDS_SETS)} (aliases "
        f"{', '.join(a for v in TFDS_SETS.values() for a in v[2])})"
    )


def tfds_texts(examples, text_key, label_names, source="tfds"):
    """TFDS examples (dicts of NumPy values) to a :class:`TextSet`.

    Examples whose label is negative (the unlabelled test split of GLUE)
    are skipped with a warning; texts are decoded as UTF-8.
    """
    texts, labels, unlabelled = [], [], 0
    for example in examples:
        label = int(example["label"])
        if label < 0:
            unlabelled += 1
            continue
        value = example[text_key]
        texts.append(decode(value, "utf-8", source) if isinstance(value, bytes) else str(value))
        labels.append(str(label))
    if unlabelled:
        logger.warning("%s: %d unlabelled example(s) skipped", source, unlabelled)
    if not texts:
        raise TextDataError(f"{source}: no labelled example")
    return _finish(texts, labels, range(1, len(texts) + 1), label_names, source)


def load_tfds(name, split="train", data_dir=None, download=True):
    """A split of a TFDS sentiment data set.

    Args:
        name: ``"imdb_reviews"`` (alias ``"imdb"``) or ``"glue/sst2"``
            (``"sst2"``).
        split: a TFDS split, e.g. ``"train"``, ``"test"``, ``"validation"``,
            ``"train[:10%]"``. (GLUE's ``test`` split has no labels.)
        data_dir: TFDS data folder (default: TFDS's own,
            ``~/tensorflow_datasets``).
        download: download and prepare the data if it is not there yet.

    Returns:
        a :class:`TextSet` with TFDS's label names (``("neg", "pos")`` for
        IMDB, ``("negative", "positive")`` for SST-2).

    Raises:
        TextDataError: TFDS could not load the split (no network to download
            it, say); the message says what TFDS reported.
        ValueError: an unsupported data set.
        ImportError: ``tensorflow_datasets`` is not installed.
    """
    canonical = _tfds_name(name)
    text_key = TFDS_SETS[canonical][0]
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_tfds needs tensorflow_datasets: pip install tensorflow-datasets"
        ) from err
    source = f"tfds:{canonical}:{split}"
    try:
        dataset, info = tfds.load(
            canonical, split=split, data_dir=data_dir, download=download, with_info=True
        )
        examples = tfds.as_numpy(dataset)
        label_names = tuple(info.features["label"].names)
        return tfds_texts(examples, text_key, label_names, source)
    except TextDataError:
        raise
    except Exception as err:  # TFDS and its downloader raise many types
        raise TextDataError(
            f"{source}: TFDS could not load it ({type(err).__name__}: {err}). "
            "The first use downloads it and needs the network; offline, use "
            "a local file (MR files, a TSV/CSV file or a folder per class)."
        ) from err


# ----------------------------------------------------------------------------
# One string to a data set
# ----------------------------------------------------------------------------


def load_text(spec, data_dir=None, encoding=None, label_names=None, download=True):
    """A data set from one string, the form of an application's ``--data``.

    Accepted forms:

    * ``"mr"`` -- :func:`load_mr` on the registered MR files
      (:mod:`keras_deeprnn.data.registry`: looked up in ``data_dir``, then
      ``$DEEPRNN_DATA_DIR``, then Keras's cache, else downloaded; their
      SHA-256 checked).
    * ``"imdb"``, ``"sst2"``, ``"imdb_reviews"``, ``"glue/sst2"``,
      ``"tfds:NAME"`` -- :func:`load_tfds`, both labelled splits;
      ``"tfds:NAME:SPLIT"`` -- that split only (``data_dir`` is TFDS's).
    * a path to a ``.pos`` or ``.neg`` file, or a folder holding
      ``rt-polarity.pos``/``.neg`` -- :func:`load_mr`.
    * a path to any other file -- :func:`load_delimited`.
    * a path to another folder -- :func:`load_class_folders`.

    Args:
        spec: the specification.
        data_dir: for ``"mr"``, a folder searched first; for TFDS, its data folder.
        encoding: of local files (default Latin-1 for MR, UTF-8 otherwise).
        label_names: the label set, for delimited files and folders.
        download: fetch the data if absent (MR from its URL, TFDS sets).

    Returns:
        ``{"train": TextSet}`` for local sources and ``"tfds:NAME:SPLIT"``;
        ``{"train": TextSet, "test": TextSet}`` for a whole TFDS data set
        (IMDB's ``test``, SST-2's ``validation``).
    """
    text = os.fspath(spec)
    key = text.strip().lower()
    if key == "mr":
        files = registry.fetch("mr", data_dir=data_dir, download=download)
        pos, neg = (files[f"sentiment/{name}"] for name in MR_FILES)
        return {"train": _load_mr_files(pos, neg, encoding or "latin-1")}
    tfds_name = key[len("tfds:") :] if key.startswith("tfds:") else key
    parts = tfds_name.split(":")
    known = {n for n in TFDS_SETS} | {a for v in TFDS_SETS.values() for a in v[2]}
    if key.startswith("tfds:") or parts[0] in known:
        if len(parts) > 2 or not parts[0]:
            raise ValueError(f"expected tfds:NAME or tfds:NAME:SPLIT, got {text!r}")
        name = _tfds_name(parts[0])
        if len(parts) == 2:
            return {"train": load_tfds(name, parts[1], data_dir, download)}
        train_split, test_split = TFDS_SETS[name][1]
        return {
            "train": load_tfds(name, train_split, data_dir, download),
            "test": load_tfds(name, test_split, data_dir, download),
        }
    path = Path(text).expanduser()
    if path.suffix in (".pos", ".neg") or (
        path.is_dir() and all((path / f).is_file() for f in MR_FILES)
    ):
        return {"train": load_mr(path, encoding or "latin-1")}
    if path.is_file():
        return {
            "train": load_delimited(path, encoding=encoding or "utf-8", label_names=label_names)
        }
    if path.is_dir():
        return {"train": load_class_folders(path, encoding or "utf-8", label_names)}
    raise TextDataError(
        f"{text}: no such file or folder, and not a data set name; accepted: 'mr', "
        f"'imdb', 'sst2', 'tfds:NAME[:SPLIT]', MR .pos/.neg files, a TSV/CSV file of "
        f"text,label rows, or a folder with one subfolder per class"
    )


# ----------------------------------------------------------------------------
# Folds
# ----------------------------------------------------------------------------


def _check_labels(labels):
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("no labels")
    return labels


def kfold_indices(labels, k=10, seed=0):
    """Stratified k-fold cross-validation: a list of ``(train, test)`` index
    arrays.

    Every example is in exactly one test fold; each class is spread over the
    folds as evenly as it can be (fold sizes differ by at most one per
    class). The same ``labels`` and ``seed`` always give the same folds.
    """
    labels = _check_labels(labels)
    if int(k) != k or k < 2 or k > len(labels):
        raise ValueError(f"k must be an integer in 2..{len(labels)}, got {k!r}")
    k = int(k)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    offset = 0
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        fold[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]


def split_indices(labels, fraction, seed=0):
    """A stratified hold-out split: ``(rest, held_out)`` index arrays with
    about ``fraction`` of each class held out (at least one example when
    ``fraction`` > 0 and the class has two or more)."""
    labels = _check_labels(labels)
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    held = []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n = int(round(fraction * len(members)))
        if fraction > 0 and len(members) > 1:
            n = min(max(n, 1), len(members) - 1)
        held.append(members[:n])
    held = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(labels)), held)
    return rest, held


def vectorize(vectorizer, texts, chunk=2048):
    """Texts -> ``(n, max_length)`` int32 token ids, 0-padded, with a
    ``keras.layers.TextVectorization`` of fixed ``output_sequence_length``."""
    import tensorflow as tf

    out = [
        vectorizer(tf.constant(list(texts[i : i + chunk]), tf.string)).numpy()
        for i in range(0, len(texts), chunk)
    ]
    if not out:
        width = vectorizer.get_config()["output_sequence_length"] or 1
        return np.zeros((0, width), np.int32)
    return np.concatenate(out).astype(np.int32)


def token_lengths(ids):
    """Number of tokens of each row of 0-padded ids (at least 1: an empty
    text is one padding step, which a masking model ignores)."""
    return np.maximum((np.asarray(ids) != 0).sum(axis=1), 1)


def length_batches(ids, batch_size, shuffle=False, rng=None):
    """Index batches of texts of similar length.

    Texts are sorted by length (with random tie-breaking when shuffling), cut
    into batches of `batch_size`, and the batches visited in random order
    when shuffling (`rng`, a NumPy Generator): padding stays small and every
    epoch differs.
    """
    size = token_lengths(ids).astype(np.float64)
    if shuffle:
        size = size + rng.random(len(size))
    order = np.argsort(size, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def bucketed_dataset(ids, labels=None, batch_size=64, shuffle=False, seed=0):
    """A ``tf.data.Dataset`` of length-bucketed ``(ids, labels)`` batches (or
    ids alone), each cut to its longest text; reshuffled every epoch.

    Args:
        ids: ``(n, max_length)`` 0-padded token ids (:func:`vectorize`).
        labels: ``(n,)`` class indices, or None.
        batch_size: Texts per batch.
        shuffle: Shuffle within lengths and the order of the batches.
        seed: Seed of the shuffling.

    Example:

    >>> ds = bucketed_dataset(np.array([[3, 4, 0], [5, 0, 0]]), np.array([1, 0]),
    ...                       batch_size=2)
    >>> [tuple(x.shape) for x, _ in ds]
    [(2, 2)]
    """
    import tensorflow as tf

    ids = np.asarray(ids, np.int32)
    row_lengths = token_lengths(ids)
    rng = np.random.default_rng(seed)

    def batches():
        for batch in length_batches(ids, batch_size, shuffle, rng):
            cut = ids[batch, : row_lengths[batch].max()]
            yield cut if labels is None else (cut, labels[batch])

    spec = tf.TensorSpec((None, None), tf.int32)
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        spec = (spec, tf.TensorSpec((None,), tf.int64))
    count = -(-len(ids) // batch_size)
    dataset = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(2)
