"""Classic taggers to compare the networks with: the most frequent tag of
each word, and an averaged perceptron (Collins 2002) with the features of
Honnibal's tagger (the one NLTK ships as `PerceptronTagger`).

Both take and return plain lists of strings, need nothing beyond NumPy, and
look words up under `normalize_word` for the unseen/known distinction only
where the feature set says so.
"""

import collections
import random

from .text import normalize_word

START, END = ("-START-", "-START2-"), ("-END-", "-END2-")


class MostFrequentTagger:
    """Each known word gets its most frequent training tag (exact form first,
    then the normalized form); an unknown word gets the most frequent tag of
    the training data."""

    def fit(self, sentences):
        exact, normal, overall = (
            collections.defaultdict(collections.Counter),
            collections.defaultdict(collections.Counter),
            collections.Counter(),
        )
        for tokens, tags in sentences:
            for token, tag in zip(tokens, tags):
                exact[token][tag] += 1
                normal[normalize_word(token)][tag] += 1
                overall[tag] += 1
        if not overall:
            raise ValueError("no training tokens")
        best = lambda counts: min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]  # noqa: E731
        self.exact = {w: best(c) for w, c in exact.items()}
        self.normal = {w: best(c) for w, c in normal.items()}
        self.default = best(overall)
        return self

    def tag(self, tokens):
        return [
            self.exact.get(t) or self.normal.get(normalize_word(t), self.default) for t in tokens
        ]


class AveragedPerceptronTagger:
    """A greedy left-to-right averaged-perceptron tagger.

    Features (Honnibal 2013): the word, its prefix and 3-letter suffix, the
    two previous predicted tags, the neighbouring words and suffixes. Words
    seen at least 20 times with one tag 97% of the time are tagged from a
    dictionary, as in the original.
    """

    def __init__(self, iterations=5, seed=0):
        self.iterations = iterations
        self.seed = seed

    # -- the perceptron ----------------------------------------------------
    def _predict(self, features):
        scores = collections.defaultdict(float)
        for feature in features:
            for tag, weight in self.weights.get(feature, {}).items():
                scores[tag] += weight
        return max(self.tags, key=lambda tag: (scores[tag], tag))

    def _update(self, truth, guess, features):
        def bump(feature, tag, delta):
            weights = self.weights.setdefault(feature, {})
            key = (feature, tag)
            self._totals[key] += (self._step - self._stamps[key]) * weights.get(tag, 0.0)
            self._stamps[key] = self._step
            weights[tag] = weights.get(tag, 0.0) + delta

        self._step += 1
        if truth != guess:
            for feature in features:
                bump(feature, truth, 1.0)
                bump(feature, guess, -1.0)

    def _average(self):
        for feature, weights in self.weights.items():
            for tag, weight in list(weights.items()):
                key = (feature, tag)
                total = self._totals[key] + (self._step - self._stamps[key]) * weight
                averaged = round(total / self._step, 3)
                if averaged:
                    weights[tag] = averaged
                else:
                    del weights[tag]

    # -- features ----------------------------------------------------------
    @staticmethod
    def _shape(word):
        if "-" in word and word[0] != "-":
            return "!HYPHEN"
        if word.isdigit() and len(word) == 4:
            return "!YEAR"
        if word and word[0].isdigit():
            return "!DIGITS"
        return word.lower()

    def _features(self, i, word, context, prev, prev2):
        i += len(START)
        return (
            "bias",
            "i suffix " + word[-3:],
            "i pref1 " + word[:1],
            "i-1 tag " + prev,
            "i-2 tag " + prev2,
            "i tag+i-2 tag " + prev + " " + prev2,
            "i word " + context[i],
            "i-1 tag+i word " + prev + " " + context[i],
            "i-1 word " + context[i - 1],
            "i-1 suffix " + context[i - 1][-3:],
            "i-2 word " + context[i - 2],
            "i+1 word " + context[i + 1],
            "i+1 suffix " + context[i + 1][-3:],
            "i+2 word " + context[i + 2],
        )

    def _tag_sentence(self, tokens, gold=None):
        context = START + tuple(self._shape(t) for t in tokens) + END
        prev, prev2 = START
        out = []
        for i, token in enumerate(tokens):
            guess = self.dictionary.get(token)
            if guess is None:
                features = self._features(i, token, context, prev, prev2)
                guess = self._predict(features)
                if gold is not None:
                    self._update(gold[i], guess, features)
            out.append(guess)
            prev2, prev = prev, guess
        return out

    # -- public ------------------------------------------------------------
    def fit(self, sentences):
        sentences = [(list(tokens), list(tags)) for tokens, tags in sentences]
        counts = collections.defaultdict(collections.Counter)
        for tokens, tags in sentences:
            for token, tag in zip(tokens, tags):
                counts[token][tag] += 1
        self.tags = sorted({t for _, tags in sentences for t in tags})
        if not self.tags:
            raise ValueError("no training tokens")
        self.dictionary = {}
        for word, tag_counts in counts.items():
            tag, n = tag_counts.most_common(1)[0]
            total = sum(tag_counts.values())
            if total >= 20 and n / total >= 0.97:
                self.dictionary[word] = tag
        self.weights = {}
        self._totals = collections.defaultdict(float)
        self._stamps = collections.defaultdict(int)
        self._step = 0
        rng = random.Random(self.seed)
        for _ in range(self.iterations):
            for tokens, tags in sentences:
                self._tag_sentence(tokens, gold=tags)
            rng.shuffle(sentences)
        self._average()
        return self

    def tag(self, tokens):
        return self._tag_sentence(list(tokens))


class NLTKPerceptronTagger:
    """NLTK's `PerceptronTagger(load=False)`, trained on the same sentences
    (needs `pip install nltk`)."""

    def __init__(self, iterations=5, seed=0):
        self.iterations = iterations
        self.seed = seed

    def fit(self, sentences):
        try:
            from nltk.tag.perceptron import PerceptronTagger
        except ImportError as err:
            raise ValueError("the nltk baseline needs NLTK: pip install nltk") from err
        random.seed(self.seed)  # NLTK shuffles with the global generator
        self.tagger = PerceptronTagger(load=False)
        self.tagger.train(
            [list(zip(tokens, tags)) for tokens, tags in sentences], nr_iter=self.iterations
        )
        return self

    def tag(self, tokens):
        return [tag for _, tag in self.tagger.tag(list(tokens))]


BASELINES = {
    "most-frequent": MostFrequentTagger,
    "perceptron": AveragedPerceptronTagger,
    "nltk-perceptron": NLTKPerceptronTagger,
}


def make(name, iterations=5, seed=0):
    """A baseline tagger by name (a key of `BASELINES`)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    if name == "most-frequent":
        return MostFrequentTagger()
    return BASELINES[name](iterations=iterations, seed=seed)
