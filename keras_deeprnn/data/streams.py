"""One long token sequence as parallel streams, for stateful truncated BPTT.

A language model reads a text as one sequence of token ids x_0 .. x_{n-1}
and predicts x_{t+1} from x_0 .. x_t. Training cuts the n - 1 predictions
into `batch_size` contiguous streams, stream b covering the predictions
[b L, (b + 1) L) with L = ceil((n - 1) / batch_size), and each stream into
windows of k steps (Mikolov 2012; Zaremba et al. 2014; char-rnn):

    batch j, row b = inputs x[b L + j k : b L + (j + 1) k],
                     targets x[b L + j k + 1 : b L + (j + 1) k + 1]

so row b of batch j + 1 continues row b of batch j. A stateful model that
carries its recurrent states from batch to batch (and resets them at the
start of each pass) sees each stream as one sequence, while gradients stop
at window borders (`keras_deeprnn.training.truncated_bptt`). The streams
past the end of the text (the last one is shorter, and the last window may
be cut short) are padded with zeros of weight 0, so every prediction is
made once per pass, with weight 1, and none twice.

Example:

>>> w = stream_windows(np.arange(11), batch_size=2, k=3)
>>> w["x"].shape                     # 2 batches of 2 streams of 3 steps
(2, 2, 3)
>>> w["x"][:, 1].tolist(), w["y"][:, 1].tolist(), w["weight"][:, 1].tolist()
([[5, 6, 7], [8, 9, 0]], [[6, 7, 8], [9, 10, 0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
"""

import numpy as np
import tensorflow as tf


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Argument `{name}` must be a positive integer, got {value!r}.")


def stream_length(tokens, batch_size):
    """L, the predictions per stream of `tokens` ids in `batch_size` streams."""
    return -(-(tokens - 1) // batch_size)


def stream_windows(ids, batch_size, k):
    """Cuts a sequence of ids into batches of `batch_size` streams of k steps.

    Args:
        ids: 1D integer array, the whole text (at least 2 ids).
        batch_size: B, the number of parallel streams.
        k: Window length in steps (the truncation of BPTT).

    Returns:
        A dict of NumPy arrays over the N = ceil(L / k) batches: `"x"`
        (inputs) and `"y"` (targets), int32 `(N, B, k)`, and `"weight"`
        float32 `(N, B, k)`, 1 for a real prediction and 0 for padding.
    """
    _check_positive("batch_size", batch_size)
    _check_positive("k", k)
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"Argument `ids` must be a 1D array of integer ids, got shape {ids.shape} "
            f"and dtype {ids.dtype}."
        )
    if len(ids) < 2:
        raise ValueError(
            f"Argument `ids` holds {len(ids)} token(s); a language model needs at least 2 "
            "(an input and the token it predicts)."
        )
    length = stream_length(len(ids), batch_size)
    batches = -(-length // k)
    padded = batches * k
    x = np.zeros((batch_size, padded), np.int32)
    y = np.zeros((batch_size, padded), np.int32)
    weight = np.zeros((batch_size, padded), np.float32)
    for b in range(batch_size):
        start = b * length
        stop = min(start + length, len(ids) - 1)
        if stop <= start:
            continue  # more streams than predictions: this one is all padding
        x[b, : stop - start] = ids[start:stop]
        y[b, : stop - start] = ids[start + 1 : stop + 1]
        weight[b, : stop - start] = 1.0

    def cut(a):
        return a.reshape(batch_size, batches, k).transpose(1, 0, 2)

    return {"x": cut(x), "y": cut(y), "weight": cut(weight)}


def stream_dataset(ids, batch_size, k):
    """`stream_windows` as a `tf.data.Dataset` of `(x, y, weight)` batches,
    in order (never shuffle it: the order carries the states), for
    `model.fit` / `model.evaluate` of a stateful model with batch size
    `batch_size`; `weight` is the sample weight that leaves the padding
    out."""
    w = stream_windows(ids, batch_size, k)
    return tf.data.Dataset.from_tensor_slices((w["x"], w["y"], w["weight"]))
