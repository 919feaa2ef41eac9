"""Token generation from a next-token model, one step per token.

The model (token ids (batch, T) in, logits (batch, T, V) out, e.g.
`language_model`) runs as a `keras_deeprnn.export.StreamingModel`: the
primer is read one token at a time, then each new token costs one
recurrent step with the carried states, never a re-run of the prefix.

- `sample_tokens`: ancestral sampling from softmax(logits / T), optionally
  from the `top_k` most likely tokens only; T = 0 is greedy decoding
  (the most likely token every step).
- `beam_search_tokens`: the `beam_width` most likely continuations
  (total log-probability), all beams stepping together as one batch.
"""

import numpy as np

from keras_deeprnn.export.streaming import StreamingModel


def _check(primer, length):
    primer = np.asarray(primer).reshape(-1)
    if len(primer) == 0:
        raise ValueError("The primer is empty: give at least one token to start from.")
    if not np.issubdtype(primer.dtype, np.integer):
        raise ValueError(f"The primer must hold integer token ids, got dtype {primer.dtype}.")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"The length must be a positive integer, got {length!r}.")
    return primer.astype(np.int32)


def _log_softmax(logits):
    z = logits - np.max(logits, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def prime(stepper, primer):
    """Runs `primer` (ids) through `stepper` (batch 1) from zero states;
    returns the logits after its last token (1, V) and the states."""
    states = stepper.initial_states()
    logits = None
    for token in primer:
        (logits,), states = stepper(np.array([token], np.int32), states)
    return logits, states


def sample_tokens(model, primer, length, temperature=1.0, top_k=None, seed=0):
    """`length` new token ids after `primer` (a non-empty list of ids).

    Args:
        model: A next-token model (ids in, logits out).
        primer: The ids to start from (at least one).
        length: How many ids to generate.
        temperature: T >= 0; 0 takes the most likely token (greedy).
        top_k: Sample among the k most likely tokens only (None: all).
        seed: Seed of the sampling.

    Returns:
        An int32 array of the `length` new ids (the primer left out).
    """
    primer = _check(primer, length)
    if not temperature >= 0:
        raise ValueError(f"The temperature must be >= 0, got {temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}.")
    stepper = StreamingModel(model, batch_size=1)
    rng = np.random.default_rng(seed)
    logits, states = prime(stepper, primer)
    out = np.empty(length, np.int32)
    for t in range(length):
        row = logits[0].astype(np.float64)
        if temperature == 0:
            token = int(np.argmax(row))
        else:
            if top_k is not None and top_k < len(row):
                cut = np.partition(row, -top_k)[-top_k]
                row = np.where(row >= cut, row, -np.inf)
            p = np.exp(_log_softmax(row / temperature))
            token = int(rng.choice(len(p), p=p / p.sum()))
        out[t] = token
        if t + 1 < length:
            (logits,), states = stepper(np.array([token], np.int32), states)
    return out


def beam_search_tokens(model, primer, length, beam_width=4):
    """The most likely continuation of `primer` of `length` ids that a beam
    of `beam_width` finds.

    Every step, each beam proposes every token; the `beam_width` (beam,
    token) pairs of highest total log-probability (at temperature 1)
    become the new beams, their states gathered from their parents'.

    Returns:
        An int32 array of the `length` new ids of the best beam.
    """
    primer = _check(primer, length)
    if isinstance(beam_width, bool) or not isinstance(beam_width, (int, np.integer)):
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}.")
    if beam_width < 1:
        raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}.")
    logits, states = prime(StreamingModel(model, batch_size=1), primer)
    stepper = StreamingModel(model, batch_size=beam_width)
    states = {n: np.repeat(s, beam_width, axis=0) for n, s in states.items()}
    logits = np.repeat(logits, beam_width, axis=0)
    # One live beam at the start; the copies score -inf until they diverge.
    scores = np.full(beam_width, -np.inf)
    scores[0] = 0.0
    paths = np.zeros((beam_width, 0), np.int32)
    for t in range(length):
        totals = scores[:, None] + _log_softmax(logits.astype(np.float64))
        best = np.argsort(-totals, axis=None, kind="stable")[:beam_width]
        parents, tokens = np.divmod(best, totals.shape[1])
        scores = totals[parents, tokens]
        paths = np.concatenate([paths[parents], tokens[:, None].astype(np.int32)], axis=1)
        if t + 1 < length:
            states = {n: s[parents] for n, s in states.items()}
            (logits,), states = stepper(tokens.astype(np.int32), states)
    return paths[int(np.argmax(scores))]
