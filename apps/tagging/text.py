"""Text helpers without TensorFlow: word normalization and a tokenizer."""

import re

_DIGITS = re.compile("[0-9]")
# Clitics that English UD treebanks (EWT, GUM) split off: do|n't, it|'s, we|'re ...
_CLITIC = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|re|ve|ll|d|m))$")
_OPENING = "\"'“‘([{«"
_CLOSING = "\"'”’)]}»,;:!?."
_ABBREVIATION = re.compile(
    r"(?i)^(?:[a-z]\.)+$|^(?:mr|mrs|ms|dr|prof|st|jr|sr|vs|etc|inc|ltd|co|corp|no|e\.g|i\.e|"
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.$"
)


def normalize_word(word):
    """The form under which a word is looked up: lower case (Unicode), ASCII
    digits replaced by 0. The tagger's `NormalizeWords` layer does the same in
    TensorFlow; "unseen words" are those whose normalized form is not among
    the normalized training words."""
    return _DIGITS.sub("0", word.lower())


def tokenize(text):
    """Splits an English sentence roughly as the English UD treebanks do:
    at spaces, punctuation off the ends of words ("..." kept whole, the
    period of abbreviations such as "Dr." and "U.S." kept), and the clitics
    n't 's 're 've 'll 'd 'm off their host ("don't" -> "do", "n't")."""
    tokens = []
    for chunk in text.split():
        lead, trail = [], []
        while len(chunk) > 1 and chunk[0] in _OPENING:
            lead.append(chunk[0])
            chunk = chunk[1:]
        while len(chunk) > 1 and chunk[-1] in _CLOSING and not _ABBREVIATION.match(chunk):
            if chunk.endswith("..."):
                trail.insert(0, "...")
                chunk = chunk[:-3]
            else:
                trail.insert(0, chunk[-1])
                chunk = chunk[:-1]
        clitic = _CLITIC.match(chunk)
        middle = [clitic.group(1), clitic.group(2)] if clitic else [chunk]
        tokens.extend(t for t in lead + middle + trail if t)
    return tokens
