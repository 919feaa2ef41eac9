"""Greedy, sampling and beam search of keras_deeprnn.seq2seq.search against
exhaustive enumeration and plain loops, on step functions whose next-token
distribution is a fixed random function of the prefix."""

import itertools

import numpy as np
import pytest

from keras_deeprnn.seq2seq import beam_search
from keras_deeprnn.seq2seq import gnmt_length_penalty
from keras_deeprnn.seq2seq import greedy_search
from keras_deeprnn.seq2seq import sample_search

PAD, BOS, EOS = 0, 1, 2


class PrefixModel:
    """log p(next | prefix, sentence) from a random table keyed by the
    prefix: the state carries the prefix as one integer code per row (so
    the search must reorder it right), the context the sentence index."""

    def __init__(self, vocabulary, seed=0, sentences=2, sharpness=2.0):
        self.vocabulary = vocabulary
        self.rng = np.random.default_rng(seed)
        self.sharpness = sharpness
        self.table = {}
        self.sentences = sentences
        self.calls = 0

    def log_probs(self, sentence, prefix):
        key = (sentence, tuple(prefix))
        if key not in self.table:
            logits = self.rng.normal(size=self.vocabulary) * self.sharpness
            self.table[key] = logits - np.log(np.exp(logits).sum())
        return self.table[key]

    def initial(self):
        # The state is an index into `prefixes` (the tokens generated so
        # far); index 0 is the start, before BOS is read.
        self.prefixes = [None]
        return [np.zeros((self.sentences, 1), np.int64)]

    def step(self, tokens, state, sentence):
        self.calls += 1
        codes = state[0][:, 0]
        new_codes, out = [], []
        for code, token, s in zip(codes, tokens, sentence[:, 0]):
            prefix = self.prefixes[code]
            prefix = () if prefix is None else prefix + (int(token),)
            self.prefixes.append(prefix)
            new_codes.append(len(self.prefixes) - 1)
            out.append(self.log_probs(int(s), prefix))
        attention = np.array([[len(self.prefixes[c]), t] for c, t in zip(new_codes, tokens)], float)
        return np.stack(out), [np.array(new_codes)[:, None]], attention

    def sequence_log_prob(self, sentence, tokens):
        total, prefix = 0.0, ()
        for token in tokens:
            total += self.log_probs(sentence, prefix)[token]
            prefix = prefix + (token,)
        return total


def exhaustive(model, sentence, max_length, alpha):
    """Every output (ending with EOS, or max_length tokens without it; no
    PAD), scored log P / lp, best first."""
    words = [t for t in range(model.vocabulary) if t not in (PAD, EOS)]
    results = []
    for length in range(1, max_length + 1):
        for body in itertools.product(words, repeat=length - 1):
            for last in [EOS] + (words if length == max_length else []):
                tokens = list(body) + [last]
                score = model.sequence_log_prob(sentence, tokens)
                results.append((score / gnmt_length_penalty(length, alpha), tokens))
    return sorted(results, key=lambda r: -r[0])


def unpad(row):
    row = list(row)
    return row[: row.index(EOS) + 1] if EOS in row else [t for t in row if t != PAD]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_search_equals_exhaustive_search(alpha):
    # V = 5: PAD, BOS, EOS and two words; up to 4 tokens. Width 108 keeps
    # every extension of every live prefix (at most 3 ** 3 * 4) among the
    # K best, so beam search is exact.
    model = PrefixModel(5, seed=3)
    max_length, n_best = 4, 6
    tokens, scores = beam_search(
        model.step, model.initial(), 2, BOS, EOS, beam_width=108, max_length=max_length,
        length_penalty=alpha, n_best=n_best, context=[np.arange(2)[:, None]],
    )  # fmt: skip
    assert tokens.shape[:2] == (2, n_best)
    for sentence in range(2):
        want = exhaustive(model, sentence, max_length, alpha)[:n_best]
        got = [unpad(row) for row in tokens[sentence]]
        assert got == [w[1] for w in want]
        np.testing.assert_allclose(scores[sentence], [w[0] for w in want], rtol=1e-5)


def test_narrow_beam_returns_sorted_finished_hypotheses_with_their_scores():
    model = PrefixModel(7, seed=5, sharpness=1.0)
    tokens, scores = beam_search(
        model.step, model.initial(), 2, BOS, EOS, beam_width=3, max_length=6,
        length_penalty=0.6, n_best=3, context=[np.arange(2)[:, None]],
    )  # fmt: skip
    for sentence in range(2):
        assert np.all(np.diff(scores[sentence]) <= 0)
        for row, score in zip(tokens[sentence], scores[sentence]):
            seq = unpad(row)
            assert PAD not in seq and (seq[-1] == EOS or len(seq) == 6)
            assert np.all(row[len(seq) :] == PAD)
            lp = gnmt_length_penalty(len(seq), 0.6)
            np.testing.assert_allclose(
                score, model.sequence_log_prob(sentence, seq) / lp, rtol=1e-5
            )


def test_beam_of_one_is_greedy():
    model = PrefixModel(9, seed=7, sentences=3)
    context = [np.arange(3)[:, None]]
    greedy = greedy_search(model.step, model.initial(), 3, BOS, EOS, 8, context=context)
    beam = beam_search(
        model.step, model.initial(), 3, BOS, EOS, beam_width=1, max_length=8,
        length_penalty=0.0, context=context,
    )  # fmt: skip
    width = max(greedy[0].shape[-1], beam[0].shape[-1])
    pad = lambda t: np.pad(t, [(0, 0), (0, 0), (0, width - t.shape[-1])])  # noqa: E731
    np.testing.assert_array_equal(pad(beam[0]), pad(greedy[0]))
    np.testing.assert_allclose(beam[1], greedy[1], rtol=1e-6)
    for sentence in range(3):
        seq = unpad(greedy[0][sentence, 0])
        # Greedy: every token the argmax after its prefix (PAD excluded).
        for k, token in enumerate(seq):
            log_probs = model.log_probs(sentence, tuple(seq[:k])).copy()
            log_probs[PAD] = -np.inf
            assert token == np.argmax(log_probs)
        np.testing.assert_allclose(greedy[1][sentence, 0], model.sequence_log_prob(sentence, seq))


def test_one_step_per_token_and_states_carried():
    model = PrefixModel(6, seed=2)
    beam_search(
        model.step, model.initial(), 2, BOS, EOS, beam_width=4, max_length=5,
        context=[np.arange(2)[:, None]],
    )  # fmt: skip
    assert model.calls <= 5  # one call per step for all sentences and beams


def test_attention_follows_the_returned_hypotheses():
    # The step's "attention" row is (prefix length, token read): traced
    # back right, step t of a hypothesis shows t and the token before it.
    model = PrefixModel(6, seed=11)
    for search in ("beam", "greedy", "sample"):
        kwargs = dict(context=[np.arange(2)[:, None]], return_attention=True)
        if search == "beam":
            result = beam_search(model.step, model.initial(), 2, BOS, EOS, beam_width=3,
                                 max_length=6, n_best=2, **kwargs)  # fmt: skip
        elif search == "greedy":
            result = greedy_search(model.step, model.initial(), 2, BOS, EOS, 6, **kwargs)
        else:
            result = sample_search(model.step, model.initial(), 2, BOS, EOS, 6, num_samples=2,
                                   seed=0, **kwargs)  # fmt: skip
        tokens, _, attention = result
        for sentence, n in itertools.product(range(2), range(tokens.shape[1])):
            seq = unpad(tokens[sentence, n])
            previous = [BOS] + seq[:-1]
            for t in range(len(seq)):
                np.testing.assert_array_equal(attention[sentence, n, t], [t, previous[t]])
            np.testing.assert_array_equal(attention[sentence, n, len(seq) :], 0.0)


def test_sampling_follows_the_tempered_distribution():
    probs = np.array([0.0, 0.1, 0.3, 0.6])
    table = np.log(np.array([probs] * 4) + 1e-300)
    step = lambda tokens, state: (table[tokens], state)  # noqa: E731
    for temperature in (1.0, 0.5):
        tokens, scores = sample_search(
            step, [np.zeros((1, 1))], 1, BOS, EOS, 1, temperature=temperature,
            num_samples=4000, seed=0,
        )  # fmt: skip
        counts = np.bincount(tokens[0, :, 0], minlength=4) / 4000
        tempered = probs ** (1 / temperature) / np.sum(probs ** (1 / temperature))
        np.testing.assert_allclose(counts, tempered, atol=0.03)
        np.testing.assert_allclose(scores[0], np.log(probs[tokens[0, :, 0]]))
    # The same seed gives the same samples.
    again = sample_search(step, [np.zeros((1, 1))], 1, BOS, EOS, 3, num_samples=5, seed=4)
    np.testing.assert_array_equal(
        again[0], sample_search(step, [np.zeros((1, 1))], 1, BOS, EOS, 3, num_samples=5, seed=4)[0]
    )


def test_length_penalty_is_wu_et_al():
    np.testing.assert_allclose(gnmt_length_penalty(7, 0.6), (12 / 6) ** 0.6)
    np.testing.assert_allclose(gnmt_length_penalty(1, 0.0), 1.0)


def test_bad_arguments_are_refused_by_name():
    model = PrefixModel(5)
    args = (model.step, model.initial(), 2, BOS, EOS)
    ctx = [np.arange(2)[:, None]]
    with pytest.raises(ValueError, match="n_best"):
        beam_search(*args, beam_width=2, n_best=3, context=ctx)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(*args, length_penalty=-1.0, context=ctx)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(*args, beam_width=0, context=ctx)
    with pytest.raises(ValueError, match="temperature"):
        sample_search(*args, 4, temperature=0.0, context=ctx)
    with pytest.raises(ValueError, match="batch_size=2"):
        greedy_search(model.step, [np.zeros((3, 1))], 2, BOS, EOS, 4, context=ctx)
    with pytest.raises(ValueError, match="differ"):
        greedy_search(*args, 4, pad_id=EOS, context=ctx)
    nan_step = lambda tokens, state: (np.full((len(tokens), 4), np.nan), state)  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        greedy_search(nan_step, [np.zeros((1, 1))], 1, BOS, EOS, 3)
    with pytest.raises(ValueError, match="attention"):
        greedy_search(
            lambda t, s: (np.zeros((len(t), 4)), s), [np.zeros((1, 1))], 1, BOS, EOS, 3,
            return_attention=True,
        )  # fmt: skip


def test_search_does_not_stop_before_a_longer_hypothesis_can_win():
    # EOS first scores log .5 = -0.69; with alpha = 2 the six-token
    # W W W W W EOS scores (log .45 + 5 log .95) / (11 / 6) ** 2 = -0.31
    # and wins, though after one step its prefix (-0.80) is below -0.69.
    W = 3

    def step(tokens, state):
        length = state[0][:, 0]
        probs = np.where(
            (length == 0)[:, None],
            [0.0, 0.05, 0.5, 0.45],
            np.where((length < 5)[:, None], [0.0, 0.01, 0.04, 0.95], [0.0, 0.01, 0.95, 0.04]),
        )
        return np.log(probs + 1e-300), [state[0] + 1]

    tokens, scores = beam_search(step, [np.zeros((1, 1))], 1, BOS, EOS, beam_width=2,
                                 max_length=8, length_penalty=2.0)  # fmt: skip
    assert unpad(tokens[0, 0]) == [W] * 5 + [EOS]
    want = (np.log(0.45) + 5 * np.log(0.95)) / gnmt_length_penalty(6, 2.0)
    np.testing.assert_allclose(scores[0, 0], want, rtol=1e-6)
