"""Text corpora for language modelling: reading, splitting, vocabularies.

- `read_corpus(path)`: a UTF-8 text file as one string; an empty file, a
  binary file (NUL bytes) or bytes that are not UTF-8 raise `CorpusError`
  (a `ValueError`) naming the file and, for bad bytes, where they are.
- `split_corpus(text, valid_fraction)`: the first part trains, the rest
  validates (nanoGPT's `shakespeare_char`: the first 90% of the characters).
- `Vocabulary`: the tokens of a model and the ids it reads. Character level:
  every distinct character of the text. Word level: whitespace-separated
  words, each line ended by `<eos>` (the Penn Treebank convention of
  Mikolov et al.), the most frequent `max_size` words of the training part
  plus `<unk>`, which every other word becomes; a file already in Penn
  Treebank form (with its own `<unk>`) is read as it is.

Example:

>>> vocab = Vocabulary.characters("to be or not")
>>> vocab.tokens[:4], len(vocab)
([' ', 'b', 'e', 'n'], 7)
>>> vocab.decode(vocab.encode("note"))
'note'
>>> words = Vocabulary.words("a b a\\nc a", max_size=1)
>>> words.tokens, words.encode("a d\\n").tolist()
(['<unk>', '<eos>', 'a'], [2, 0, 1])
"""

import collections
from pathlib import Path

import numpy as np

LEVELS = ("char", "word")
UNK = "<unk>"
EOS = "<eos>"


class CorpusError(ValueError):
    """A corpus file that is missing, empty, binary or not UTF-8; the
    message starts with the path."""


def read_corpus(path):
    """The text of a UTF-8 file (a leading byte-order mark is dropped).

    Raises:
        CorpusError: No such file, an empty file, a binary file (it holds
            NUL bytes) or bytes that are not UTF-8 (the message gives the
            offset and line of the first).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file" + (" (a folder)" if path.is_dir() else ""))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read: {error}") from error
    if not data.strip():
        raise CorpusError(f"{path}: the file is empty (or only whitespace); there is no text.")
    if b"\0" in data:
        offset = data.index(b"\0")
        raise CorpusError(
            f"{path}: a binary file, not text (a NUL byte at offset {offset}); give a "
            "UTF-8 text file."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CorpusError(
            f"{path}: not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start} "
            f"(line {line}) is invalid ({error.reason}); convert the file to UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)."
        ) from None
    return text.removeprefix("\ufeff")


def split_corpus(text, valid_fraction=0.1, level="char"):
    """`(train, valid)`: the first `1 - valid_fraction` of the characters
    and the rest. At word level the cut moves forward to the next
    whitespace, so that no word is split."""
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}.")
    _check_level(level)
    cut = int(len(text) * (1 - valid_fraction))
    if level == "word":
        while cut < len(text) and not text[cut].isspace():
            cut += 1
    return text[:cut], text[cut:]


def _check_level(level):
    if level not in LEVELS:
        raise ValueError(f"Unknown level {level!r}; choose one of {', '.join(LEVELS)}.")


def tokenize(text, level="char"):
    """The tokens of `text`: its characters, or its words with `<eos>` at
    each line end (a last line without a newline gets none)."""
    _check_level(level)
    if level == "char":
        return list(text)
    tokens = []
    lines = text.split("\n")
    for number, line in enumerate(lines):
        tokens.extend(line.split())
        if number < len(lines) - 1:
            tokens.append(EOS)
    return tokens


class Vocabulary:
    """Tokens and their ids, at character or word level.

    Args:
        tokens: The tokens, id i for `tokens[i]`.
        level: "char" or "word".

    Word vocabularies start with `<unk>` (id 0) and `<eos>` (id 1); words
    not in the vocabulary encode as `<unk>`. Character vocabularies have no
    `<unk>`: `encode` of an unknown character raises `ValueError` naming
    it, or skips it with `unknown="skip"`.
    """

    def __init__(self, tokens, level="char"):
        _check_level(level)
        tokens = [str(t) for t in tokens]
        if not tokens:
            raise ValueError("A vocabulary needs at least one token.")
        if len(set(tokens)) != len(tokens):
            raise ValueError("The tokens of a vocabulary must be distinct.")
        if level == "char" and any(len(t) != 1 for t in tokens):
            raise ValueError("A character vocabulary holds single characters.")
        if level == "word" and tokens[:2] != [UNK, EOS]:
            raise ValueError(f"A word vocabulary starts with {UNK!r} and {EOS!r}.")
        self.tokens = tokens
        self.level = level
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def characters(cls, text):
        """Every distinct character of `text`, sorted."""
        return cls(sorted(set(text)), "char")

    @classmethod
    def words(cls, text, max_size=None):
        """`<unk>`, `<eos>` and the `max_size` most frequent other words of
        `text` (all of them by default; ties broken alphabetically)."""
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}.")
        counts = collections.Counter(tokenize(text, "word"))
        counts.pop(UNK, None)
        counts.pop(EOS, None)
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        return cls([UNK, EOS] + ranked[:max_size], "word")

    @classmethod
    def from_config(cls, config):
        return cls(config["tokens"], config["level"])

    def get_config(self):
        return {"level": self.level, "tokens": list(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def unknown(self, text):
        """The characters (char level) or words of `text` not in the
        vocabulary, in order of appearance."""
        seen = dict.fromkeys(t for t in tokenize(text, self.level) if t not in self.index)
        return list(seen)

    def encode(self, text, unknown="error"):
        """Token ids (int32) of `text`.

        Args:
            text: A string.
            unknown: For characters outside a character vocabulary:
                "error" (a `ValueError` naming them) or "skip" (left out).
                Word vocabularies always map unknown words to `<unk>`.
        """
        if unknown not in ("error", "skip"):
            raise ValueError(f"unknown must be 'error' or 'skip', got {unknown!r}.")
        tokens = tokenize(text, self.level)
        if self.level == "word":
            return np.array([self.index.get(t, 0) for t in tokens], np.int32)
        missing = self.unknown(text)
        if missing and unknown == "error":
            shown = ", ".join(repr(c) for c in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ValueError(
                f"The text holds {len(missing)} character(s) outside the model's "
                f"vocabulary of {len(self)}: {shown}{more}."
            )
        return np.array([self.index[t] for t in tokens if t in self.index], np.int32)

    def decode(self, ids):
        """The text of token ids: characters joined, or words joined by
        spaces with `<eos>` as a line break."""
        tokens = [self.tokens[int(i)] for i in np.asarray(ids).reshape(-1)]
        if self.level == "char":
            return "".join(tokens)
        pieces = []
        for token in tokens:
            if token == EOS:
                pieces.append("\n")
                continue
            if pieces and pieces[-1] != "\n":
                pieces.append(" ")
            pieces.append(token)
        return "".join(pieces)
