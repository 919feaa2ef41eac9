"""Decoding searches over a step function: greedy, sampling, beam search.

The searches are NumPy loops around one call per step of

    step_fn(tokens, state, *context) -> (log_probs, new_state[, attention])

- `tokens`: int32 `(N,)`, the previous token of every row;
- `state`: a list of arrays whose first axis is the N rows (the decoder's
  recurrent states), carried from step to step: each step costs the same,
  the prefix never runs again;
- `context`: arrays with N rows that every step reads unchanged (the
  encoder's memory, its keys and mask);
- `log_probs` `(N, V)`: log-probabilities or logits of the next token (the
  searches apply a log-softmax, which leaves log-probabilities unchanged);
- `attention` (optional) `(N, S)`: returned to the caller along the tokens.

So the same search drives a Keras model's step (a compiled `tf.function`,
see `Seq2Seq.generate`) or a LiteRT interpreter's. The searches take the
initial state and the context with one row per sentence (`batch_size`
rows) and repeat them as they need: `num_samples` rows per sentence for
sampling, `beam_width` for beam search, sentence-major (the rows of
sentence b are b*K .. b*K+K-1), so that beams are reordered with
`np.take` on the first axis.

Results are padded with `pad_id` after the end-of-sentence token (which is
kept); a hypothesis that reaches `max_length` without one ends there.

keras-hub's `keras_hub.samplers.BeamSampler` was considered and not used:
its `next(prompt, cache, index)` runs inside a backend `while_loop` over a
fixed-size token buffer (so it cannot drive a LiteRT interpreter from
Python), its hypotheses keep growing after the end token (no finished set,
no length penalty, no n-best list of finished hypotheses), it returns no
attention, and it would add keras-hub (and tensorflow-text) as a
dependency for one function.
"""

import numpy as np


def gnmt_length_penalty(length, alpha):
    """The length penalty of Wu et al. 2016 (GNMT), eq. (14):
    lp(Y) = ((5 + |Y|) / 6) ** alpha; scores are log P(Y|X) / lp(Y)."""
    return ((5.0 + np.asarray(length, np.float64)) / 6.0) ** alpha


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    top = np.max(logits, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    shifted = logits - top
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _check(batch_size, bos_id, eos_id, max_length, pad_id, width=1, name="beam_width"):
    for arg, value, low in (
        ("batch_size", batch_size, 1),
        ("max_length", max_length, 1),
        (name, width, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"Argument `{arg}` must be an integer >= {low}, got {value!r}.")
    ids = {"bos_id": bos_id, "eos_id": eos_id, "pad_id": pad_id}
    for arg, value in ids.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"Argument `{arg}` must be a token id >= 0, got {value!r}.")
    if eos_id == pad_id:
        raise ValueError(f"eos_id and pad_id must differ, both are {eos_id}.")


def _rows(arrays, batch_size, repeats, what):
    """`arrays` (one row per sentence) with each row repeated `repeats`
    times, sentence-major."""
    result = []
    for k, array in enumerate(arrays):
        array = np.asarray(array)
        if array.ndim == 0 or array.shape[0] != batch_size:
            raise ValueError(
                f"{what}[{k}] must have batch_size={batch_size} rows (one per "
                f"sentence) on its first axis, got shape {array.shape}."
            )
        result.append(np.repeat(array, repeats, axis=0) if repeats > 1 else array)
    return result


def _run_step(step_fn, tokens, state, context, rows, want_attention):
    result = step_fn(tokens, state, *context)
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise ValueError(
            "step_fn must return (log_probs, new_state) or (log_probs, "
            f"new_state, attention), got {type(result).__name__}."
        )
    log_probs = np.asarray(result[0])
    if log_probs.ndim != 2 or log_probs.shape[0] != rows:
        raise ValueError(
            f"step_fn returned log_probs of shape {log_probs.shape}; expected ({rows}, vocabulary)."
        )
    if np.isnan(log_probs).any():
        raise ValueError("step_fn returned NaN log-probabilities.")
    new_state = [np.asarray(s) for s in result[1]]
    attention = None
    if want_attention:
        if len(result) < 3 or result[2] is None:
            raise ValueError("return_attention=True needs a step_fn that returns attention.")
        attention = np.asarray(result[2], np.float32)
    return log_softmax(log_probs), new_state, attention


def _sequential(
    step_fn,
    initial_state,
    batch_size,
    bos_id,
    eos_id,
    max_length,
    context,
    pad_id,
    repeats,
    pick,
    return_attention,
):
    """The loop shared by greedy search and sampling: one token per row."""
    rows = batch_size * repeats
    state = _rows(initial_state, batch_size, repeats, "initial_state")
    context = _rows(context, batch_size, repeats, "context")
    tokens = np.full((rows,), bos_id, np.int32)
    out = np.full((rows, max_length), pad_id, np.int32)
    scores = np.zeros((rows,), np.float64)
    done = np.zeros((rows,), bool)
    attention = []
    steps = 0
    for t in range(max_length):
        log_probs, state, weights = _run_step(
            step_fn, tokens, state, context, rows, return_attention
        )
        log_probs[:, pad_id] = -np.inf
        chosen = pick(log_probs)
        scores += np.where(done, 0.0, log_probs[np.arange(rows), chosen])
        chosen = np.where(done, pad_id, chosen).astype(np.int32)
        out[:, t] = chosen
        if return_attention:
            attention.append(np.where(done[:, None], 0.0, weights))
        done |= chosen == eos_id
        steps = t + 1
        tokens = np.where(done, eos_id, chosen).astype(np.int32)
        if done.all():
            break
    result = (
        out[:, :steps].reshape(batch_size, repeats, steps),
        scores.astype(np.float32).reshape(batch_size, repeats),
    )
    if return_attention:
        weights = np.stack(attention, axis=1)
        return result + (weights.reshape(batch_size, repeats, steps, -1),)
    return result


def greedy_search(
    step_fn,
    initial_state,
    batch_size,
    bos_id,
    eos_id,
    max_length,
    context=(),
    pad_id=0,
    return_attention=False,
):
    """Greedy decoding: the most probable token at every step.

    Args:
        step_fn: `step_fn(tokens, state, *context) -> (log_probs, new_state
            [, attention])`, see the module docstring.
        initial_state: List of arrays, one row per sentence.
        batch_size: Number of sentences.
        bos_id, eos_id: The first input token and the end token.
        max_length: Most tokens generated (the end token included).
        context: Arrays, one row per sentence, passed to every step.
        pad_id: Written after the end token; never generated.
        return_attention: Also return the attention of every step.

    Returns:
        `(tokens, scores)`: int32 `(batch_size, 1, L)` and the summed
        log-probabilities `(batch_size, 1)`; with `return_attention`,
        `(tokens, scores, attention (batch_size, 1, L, S))`, zero after the
        end.

    Example:

    A bigram table: row k is p(next | token k), ids pad 0, bos 1, eos 2, a
    word 3.

    >>> table = np.log([[.25] * 4, [.1, .1, .2, .6], [.25] * 4, [.1, .1, .7, .1]])
    >>> step = lambda tokens, state: (table[tokens], state)
    >>> tokens, scores = greedy_search(step, [np.zeros((1, 1))], 1, bos_id=1,
    ...                                eos_id=2, max_length=5)
    >>> tokens.tolist(), f"{scores[0, 0]:.2f}"          # log .6 + log .7
    ([[[3, 2]]], '-0.87')
    """
    _check(batch_size, bos_id, eos_id, max_length, pad_id)
    return _sequential(
        step_fn,
        initial_state,
        batch_size,
        bos_id,
        eos_id,
        max_length,
        context,
        pad_id,
        1,
        lambda log_probs: np.argmax(log_probs, axis=-1),
        return_attention,
    )


def sample_search(
    step_fn,
    initial_state,
    batch_size,
    bos_id,
    eos_id,
    max_length,
    context=(),
    pad_id=0,
    temperature=1.0,
    num_samples=1,
    seed=None,
    return_attention=False,
):
    """Ancestral sampling from softmax(log_probs / temperature).

    Args:
        step_fn, initial_state, batch_size, bos_id, eos_id, max_length,
        context, pad_id, return_attention: As in `greedy_search`.
        temperature: > 0; below 1 sharpens the distribution, above 1
            flattens it.
        num_samples: Samples per sentence.
        seed: Seed of NumPy's generator (or a `np.random.Generator`).

    Returns:
        `(tokens (batch_size, num_samples, L), scores (batch_size,
        num_samples)[, attention])`; the scores are the model's
        log-probabilities of the samples (at temperature 1).
    """
    _check(batch_size, bos_id, eos_id, max_length, pad_id, num_samples, "num_samples")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"Argument `temperature` must be a number > 0, got {temperature!r}.")
    if not temperature > 0:
        raise ValueError(f"Argument `temperature` must be > 0, got {temperature!r}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def pick(log_probs):
        probs = np.exp(log_softmax(log_probs / temperature))
        cumulative = np.cumsum(probs, axis=-1)
        draws = rng.random((len(probs), 1)) * cumulative[:, -1:]
        chosen = np.sum(cumulative <= draws, axis=-1)
        # Never past the last token with non-zero probability.
        last = probs.shape[-1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=-1)
        return np.minimum(chosen, last)

    return _sequential(
        step_fn,
        initial_state,
        batch_size,
        bos_id,
        eos_id,
        max_length,
        context,
        pad_id,
        num_samples,
        pick,
        return_attention,
    )


def beam_search(
    step_fn,
    initial_state,
    batch_size,
    bos_id,
    eos_id,
    beam_width=5,
    max_length=50,
    length_penalty=0.6,
    n_best=1,
    context=(),
    pad_id=0,
    return_attention=False,
):
    """Beam search with the length penalty of Wu et al. 2016, batched.

    All sentences and their K = `beam_width` beams run as one batch of
    N = batch_size * K rows (sentence-major). At every step each sentence's
    K live hypotheses are extended by every token; of the 2K best
    extensions (by log P(y_1..y_t | x)), those among the first K that end
    in `eos_id` join the sentence's finished hypotheses (as in fairseq, so
    that a beam of 1 is greedy search), scored log P / lp(t), lp(t) =
    ((5 + t) / 6) ** length_penalty (t counts the end token), and the K
    best that do not end stay alive; the states are reordered with
    `np.take`. At `max_length` the K best extensions are finished as they
    are. A sentence is done when
    it has `n_best` finished hypotheses and no live one can still beat
    the n-th: the best live log P divided by lp(max_length) bounds every
    continuation's score (log P only falls, lp only grows for alpha >= 0).
    The loop stops when every sentence is done; finished sentences keep
    their rows, so every step costs the same (the batch keeps its shape,
    as a fixed-shape LiteRT model needs).

    Args:
        step_fn: `step_fn(tokens, state, *context) -> (log_probs, new_state
            [, attention])` for N rows, see the module docstring.
        initial_state: List of arrays, one row per sentence.
        batch_size: Number of sentences.
        bos_id, eos_id: The first input token and the end token.
        beam_width: K.
        max_length: Most tokens generated (the end token included).
        length_penalty: alpha >= 0 (0: raw log-probabilities; Wu et al.
            use 0.2 to 0.6).
        n_best: Hypotheses returned per sentence, 1 <= n_best <= K.
        context: Arrays, one row per sentence, repeated to N rows once and
            passed to every step.
        pad_id: Written after the end token; never generated.
        return_attention: Also return the attention of every step.

    Returns:
        `(tokens, scores)`: int32 `(batch_size, n_best, L)`, best first, and
        their length-normalised scores `(batch_size, n_best)`; with
        `return_attention`, also the attention `(batch_size, n_best, L, S)`.

    Example:

    >>> table = np.log([[.25] * 4, [.1, .1, .3, .5], [.25] * 4, [.1, .05, .8, .05]])
    >>> step = lambda tokens, state: (table[tokens], state)
    >>> tokens, scores = beam_search(step, [np.zeros((1, 1))], 1, bos_id=1, eos_id=2,
    ...                              beam_width=2, max_length=4, length_penalty=0.0,
    ...                              n_best=2)
    >>> tokens.tolist()
    [[[3, 2], [2, 0]]]
    """
    _check(batch_size, bos_id, eos_id, max_length, pad_id, beam_width)
    if isinstance(n_best, bool) or not isinstance(n_best, (int, np.integer)):
        raise ValueError(f"Argument `n_best` must be an integer, got {n_best!r}.")
    if not 1 <= n_best <= beam_width:
        raise ValueError(
            f"Argument `n_best` must be in [1, beam_width={beam_width}], got {n_best}."
        )
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)):
        raise ValueError(
            f"Argument `length_penalty` must be a number >= 0, got {length_penalty!r}."
        )
    if length_penalty < 0:
        raise ValueError(f"Argument `length_penalty` must be >= 0, got {length_penalty}.")
    alpha = float(length_penalty)
    B, K = batch_size, beam_width
    rows = B * K
    state = _rows(initial_state, B, K, "initial_state")
    context = _rows(context, B, K, "context")
    tokens = np.full((rows,), bos_id, np.int32)
    # Only the first beam of each sentence is live at the start.
    alive = np.full((B, K), -np.inf)
    alive[:, 0] = 0.0
    # lp of the longest hypothesis: no live one can score above its log P / this.
    longest = float(gnmt_length_penalty(max_length, alpha))
    parents, words, attentions = [], [], []
    finished = [[] for _ in range(B)]  # (score, log P, step, parent beam, token)
    done = np.zeros((B,), bool)
    for t in range(max_length):
        log_probs, state, weights = _run_step(
            step_fn, tokens, state, context, rows, return_attention
        )
        log_probs[:, pad_id] = -np.inf
        vocabulary = log_probs.shape[-1]
        if return_attention:
            attentions.append(weights.reshape(B, K, -1))
        total = (alive[:, :, None] + log_probs.reshape(B, K, vocabulary)).reshape(B, -1)
        count = min(2 * K, total.shape[1])
        top = np.argpartition(-total, count - 1, axis=1)[:, :count]
        order = np.argsort(-np.take_along_axis(total, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        top_scores = np.take_along_axis(total, top, 1)
        last = t == max_length - 1
        lp = float(gnmt_length_penalty(t + 1, alpha))
        new_parent = np.zeros((B, K), np.int64)
        new_word = np.full((B, K), eos_id, np.int32)
        new_alive = np.full((B, K), -np.inf)
        for b in range(B):
            if done[b]:
                continue
            live = 0
            for j in range(count):
                score = top_scores[b, j]
                if score == -np.inf:
                    break
                beam, word = divmod(int(top[b, j]), vocabulary)
                if word == eos_id or last:
                    # Only among the K best, so that K = 1 is greedy search.
                    if j < K:
                        finished[b].append((score / lp, score, t, beam, word))
                elif live < K:
                    new_parent[b, live], new_word[b, live] = beam, word
                    new_alive[b, live] = score
                    live += 1
            ranked = sorted(entry[0] for entry in finished[b])
            if last or (
                len(ranked) >= n_best and ranked[-n_best] >= np.max(new_alive[b]) / longest
            ):
                done[b] = True
        parents.append(new_parent)
        words.append(new_word)
        if done.all():
            break
        alive = new_alive
        index = (np.arange(B)[:, None] * K + new_parent).reshape(-1)
        state = [np.take(s, index, axis=0) for s in state]
        tokens = new_word.reshape(-1)
    return _collect(finished, parents, words, attentions, n_best, pad_id, return_attention)


def _collect(finished, parents, words, attentions, n_best, pad_id, return_attention):
    """The n best finished hypotheses of every sentence, traced back
    through the beams' parents."""
    B = len(finished)
    chosen = [sorted(f, key=lambda e: -e[0])[:n_best] for f in finished]
    length = max(entry[2] + 1 for best in chosen for entry in best)
    tokens = np.full((B, n_best, length), pad_id, np.int32)
    scores = np.full((B, n_best), -np.inf, np.float32)
    source = attentions[0].shape[-1] if return_attention else 0
    weights = np.zeros((B, n_best, length, source), np.float32)
    for b, best in enumerate(chosen):
        for n, (score, _, step, beam, word) in enumerate(best):
            scores[b, n] = score
            tokens[b, n, step] = word
            if return_attention:
                weights[b, n, step] = attentions[step][b, beam]
            for s in range(step - 1, -1, -1):
                tokens[b, n, s] = words[s][b, beam]
                beam = parents[s][b, beam]
                if return_attention:
                    weights[b, n, s] = attentions[s][b, beam]
    if return_attention:
        return tokens, scores, weights
    return tokens, scores
