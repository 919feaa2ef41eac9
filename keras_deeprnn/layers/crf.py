"""A linear-chain conditional random field (CRF) output layer for tagging."""

import keras
from keras import ops

_NEVER = -1e4  # log-potential of a tag change inside the padding


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over per-token tag scores (Lafferty et al. 2001).

    With unary scores u_t (the previous layer's output, one score per tag),
    a learned transition matrix A (A[j, k]: score of tag k after tag j) and
    start scores s, a tag sequence y_1..y_n has the score

        score(y) = s[y_1] + u_1[y_1] + sum_{t=2..n} (A[y_{t-1}, y_t] + u_t[y_t])

    and probability exp(score(y)) / Z, Z summing over every tag sequence.

    So that the loss stays an ordinary Keras loss of `(y_true, y_pred)`, the
    layer outputs the *edge potentials* of every step:

        P[t, j, k] = u_t[k] + A[j, k]      t >= 2
        P[1, j, k] = u_1[k] + s[k]         (the same for every j)

    `CRFLoss` turns them into the negative log-likelihood, split over the
    tokens so that per-token sample weights (0 at padding) give the exact
    sequence NLL; `viterbi_decode` returns the best tag sequence. Sequences
    must be padded at the end (as Keras's padding and masking do). Where the
    input carries a Keras mask, padded steps get potentials that keep the
    previous tag (0 for j = k, -1e4 otherwise), so decoding a padded batch
    gives each sequence's own best tags.

    Input shape: `(batch, time, tags)`. Output shape:
    `(batch, time, tags, tags)`. The mask, if any, passes through.

    Args:
        transitions_initializer: Initializer of A and s (default zeros).
        transitions_regularizer: Optional regularizer of A.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, 8)),
    ...     keras.layers.Bidirectional(
    ...         keras.layers.LSTM(16, return_sequences=True)),
    ...     keras.layers.Dense(5),
    ...     CRF()])
    >>> model.compile("adam", CRFLoss())
    >>> tags = viterbi_decode(model(np.zeros((2, 7, 8))))
    >>> tuple(tags.shape)
    (2, 7)
    """

    def __init__(self, transitions_initializer="zeros", transitions_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.transitions_regularizer = keras.regularizers.get(transitions_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "CRF expects (batch, time, tags) scores with a known number of "
                f"tags, got shape {input_shape}"
            )
        tags = input_shape[-1]
        self.transitions = self.add_weight(
            name="transitions",
            shape=(tags, tags),
            initializer=self.transitions_initializer,
            regularizer=self.transitions_regularizer,
        )
        self.start = self.add_weight(
            name="start", shape=(tags,), initializer=self.transitions_initializer
        )

    def call(self, inputs, mask=None):
        unary = inputs[:, :, None, :]  # (batch, time, 1, tags)
        tags = inputs.shape[-1]
        first = ops.broadcast_to(unary[:, :1] + self.start, (ops.shape(inputs)[0], 1, tags, tags))
        potentials = ops.concatenate([first, unary[:, 1:] + self.transitions], axis=1)
        if mask is None:
            return potentials
        # Padding keeps the previous tag at no cost, so decoding and the
        # partition function of the whole padded row equal those of the
        # sequence's real tokens.
        keep = ops.where(ops.eye(tags, dtype="bool"), 0.0, _NEVER)
        keep = ops.cast(keep, potentials.dtype)
        return ops.where(mask[:, :, None, None], potentials, keep)

    def compute_output_shape(self, input_shape):
        return (*input_shape, input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        return {
            **super().get_config(),
            "transitions_initializer": keras.initializers.serialize(self.transitions_initializer),
            "transitions_regularizer": keras.regularizers.serialize(self.transitions_regularizer),
        }


def _check_potentials(potentials):
    if len(potentials.shape) != 4 or potentials.shape[-1] != potentials.shape[-2]:
        raise ValueError(
            "expected CRF edge potentials of shape (batch, time, tags, tags), "
            f"got {tuple(potentials.shape)}"
        )


def crf_token_nll(y_true, potentials):
    """Per-token terms of the CRF negative log-likelihood.

    With alpha_t[k] = log sum over prefixes ending in tag k (the forward
    algorithm: alpha_1 = P[1, 0, :], alpha_t[k] = logsumexp_j(alpha_{t-1}[j]
    + P[t, j, k])) and log Z_t = logsumexp_k alpha_t[k], token t contributes

        l_t = (log Z_t - log Z_{t-1}) - P[t, y_{t-1}, y_t]     (log Z_0 = 0)

    so that sum_{t=1..n} l_t = log Z - score(y), the sequence NLL, for any
    length n: terms after the end of a (right-padded) sequence only need a
    zero weight.

    Args:
        y_true: integer tags, `(batch, time)`.
        potentials: edge potentials from `CRF`, `(batch, time, tags, tags)`.

    Returns:
        `(batch, time)` per-token NLL terms.
    """
    _check_potentials(potentials)
    y = ops.cast(y_true, "int32")
    if len(y.shape) == 3:  # (batch, time, 1) labels
        y = ops.squeeze(y, -1)
    steps = ops.transpose(potentials, (1, 0, 2, 3))  # time-major
    alpha0 = steps[0, :, 0, :]

    def forward(alpha, p):
        alpha = ops.logsumexp(alpha[:, :, None] + p, axis=1)
        return alpha, alpha

    _, alphas = ops.scan(forward, alpha0, steps[1:])
    alphas = ops.concatenate([alpha0[None], alphas], axis=0)  # (time, batch, tags)
    log_z = ops.transpose(ops.logsumexp(alphas, axis=-1))  # (batch, time)
    log_z_before = ops.pad(log_z[:, :-1], [[0, 0], [1, 0]])
    previous = ops.pad(y[:, :-1], [[0, 0], [1, 0]])  # row 0 for t = 1: all rows equal
    tags = potentials.shape[-1]
    rows = ops.take_along_axis(
        potentials,
        ops.broadcast_to(previous[:, :, None, None], ops.shape(potentials)[:2] + (1, tags)),
        axis=2,
    )[:, :, 0, :]
    gold = ops.take_along_axis(rows, y[:, :, None], axis=2)[:, :, 0]
    return log_z - log_z_before - gold


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of the gold tags under a `CRF` layer's output.

    The loss is split over the tokens (`crf_token_nll`), so with per-token
    sample weights that are 0 at padding (or the mask Keras propagates from
    an `Embedding(mask_zero=True)`), the default reduction gives the sum of
    the sequence NLLs divided by the number of real tokens.

    Args:
        name: Name of the loss.
    """

    def __init__(self, name="crf_nll", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return crf_token_nll(y_true, y_pred)


def viterbi_decode(potentials):
    """The most probable tag sequence under `CRF` edge potentials.

    delta_1 = P[1, 0, :], delta_t[k] = max_j (delta_{t-1}[j] + P[t, j, k])
    with back-pointers b_t[k] = argmax_j; the best path ends in
    argmax_k delta_T[k] and is traced back through b. For right-padded
    sequences the first n tags are the best tags of the n real tokens when
    the `CRF` layer saw the mask (its padding potentials keep the tag);
    otherwise decode each sequence with its own length (`potentials[:, :n]`).

    Args:
        potentials: `(batch, time, tags, tags)` from `CRF`.

    Returns:
        `(batch, time)` int32 tags.
    """
    potentials = ops.convert_to_tensor(potentials)
    _check_potentials(potentials)
    steps = ops.transpose(potentials, (1, 0, 2, 3))
    delta0 = steps[0, :, 0, :]

    def forward(delta, p):
        scores = delta[:, :, None] + p
        return ops.max(scores, axis=1), ops.cast(ops.argmax(scores, axis=1), delta.dtype)

    # In TensorFlow, scan's outputs must match the carry's dtype: back-pointers
    # travel as floats (exact for any realistic number of tags).
    delta, pointers = ops.scan(forward, delta0, steps[1:])
    last = ops.cast(ops.argmax(delta, axis=-1), "int32")

    def backward(tag, b):
        previous = ops.take_along_axis(ops.cast(b, "int32"), tag[:, None], axis=1)[:, 0]
        return previous, previous

    _, earlier = ops.scan(backward, last, pointers, reverse=True)
    path = ops.concatenate([earlier, last[None]], axis=0)
    return ops.transpose(path)
