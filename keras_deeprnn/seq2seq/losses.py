"""Token-level cross-entropy and accuracy with padding masked out.

For targets y (batch, T) padded with `pad_id` and logits z (batch, T, V),
with p = softmax(z) and eps = `label_smoothing`, the loss of one token is
the cross-entropy against the smoothed target (1 - eps) onehot(y) + eps / V
(Szegedy et al. 2016):

    l_t = (1 - eps) (-log p_{y_t}) + eps * mean_v(-log p_v)

and the loss of a batch is the mean of l_t over its non-padding tokens (so
every token weighs the same, whatever the sentence lengths).
"""

import keras
from keras import ops


def masked_cross_entropy(y_true, logits, pad_id=0, label_smoothing=0.0):
    """Per-token cross-entropy `(batch, T)` (zero at padding) and the mask.

    Args:
        y_true: Target ids `(batch, T)`, `pad_id` at padding.
        logits: `(batch, T, V)`.
        pad_id: The padding id.
        label_smoothing: eps in [0, 1).

    Returns:
        `(losses, mask)`, both `(batch, T)` floats.
    """
    logits = ops.cast(logits, "float32")
    y_true = ops.cast(y_true, "int32")
    # One fused softmax cross-entropy op; mean_v(-log p_v) = logsumexp(z) - mean(z).
    nll = ops.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
    if label_smoothing:
        uniform = ops.logsumexp(logits, axis=-1) - ops.mean(logits, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    mask = ops.cast(ops.not_equal(y_true, pad_id), "float32")
    return nll * mask, mask


def _check_smoothing(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"Argument `label_smoothing` must be in [0, 1), got {value!r}.")
    return float(value)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class MaskedCrossEntropy(keras.losses.Loss):
    """Cross-entropy of logits over the non-padding tokens, label-smoothed.

    The mean of `masked_cross_entropy` over the tokens whose target is not
    `pad_id` (times any `sample_weight`).

    Args:
        pad_id: The padding id of the targets.
        label_smoothing: eps in [0, 1) (default 0: the plain NLL).
        name: Name of the loss.

    Example:

    >>> loss = MaskedCrossEntropy(pad_id=0)
    >>> logits = np.log(np.array([[[.5, .25, .25], [.2, .2, .6]]], "float32"))
    >>> round(float(loss(np.array([[1, 0]]), logits)), 4)     # -log .25
    1.3863
    """

    def __init__(self, pad_id=0, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        self.pad_id = int(pad_id)
        self.label_smoothing = _check_smoothing(label_smoothing)

    def __call__(self, y_true, y_pred, sample_weight=None):
        mask = ops.cast(ops.not_equal(ops.cast(y_true, "int32"), self.pad_id), "float32")
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) == 1:
                sample_weight = sample_weight[:, None]
            mask = mask * sample_weight
        return super().__call__(y_true, y_pred, sample_weight=mask)

    def call(self, y_true, y_pred):
        losses, _ = masked_cross_entropy(y_true, y_pred, self.pad_id, self.label_smoothing)
        return losses

    def get_config(self):
        return {
            **super().get_config(),
            "pad_id": self.pad_id,
            "label_smoothing": self.label_smoothing,
        }


class _MaskedMean(keras.metrics.Metric):
    """A sum over non-padding tokens divided by their count, over the whole
    data set (so batches padded to different lengths weigh by tokens)."""

    def __init__(self, pad_id=0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_id = int(pad_id)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, mask = self.values(y_true, y_pred)
        if sample_weight is not None:
            weight = ops.cast(sample_weight, "float32")
            mask = mask * (weight[:, None] if len(weight.shape) == 1 else weight)
        self.total.assign_add(ops.cast(ops.sum(values * mask), self.dtype))
        self.count.assign_add(ops.cast(ops.sum(mask), self.dtype))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"pad_id": self.pad_id, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class MaskedAccuracy(_MaskedMean):
    """Token accuracy (argmax of the logits) over the non-padding targets.

    Example:

    >>> metric = MaskedAccuracy(pad_id=0)
    >>> metric.update_state(np.array([[2, 1, 0]]), np.eye(3)[None, [2, 0, 1]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, pad_id=0, name="accuracy", dtype=None):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)

    def values(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        hits = ops.cast(
            ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32"
        )
        return hits, ops.cast(ops.not_equal(y_true, self.pad_id), "float32")

    def result(self):
        return ops.divide_no_nan(self.total, self.count)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class MaskedPerplexity(_MaskedMean):
    """exp(mean NLL per non-padding token), unsmoothed, over the data set.

    Example:

    >>> metric = MaskedPerplexity(pad_id=0)
    >>> metric.update_state(np.array([[1, 0]]), np.zeros((1, 2, 4), "float32"))
    >>> round(float(metric.result()), 4)          # uniform over 4 tokens
    4.0
    """

    def __init__(self, pad_id=0, name="perplexity", dtype=None):
        super().__init__(pad_id=pad_id, name=name, dtype=dtype)

    def values(self, y_true, y_pred):
        return masked_cross_entropy(y_true, y_pred, self.pad_id)

    def result(self):
        return ops.exp(ops.divide_no_nan(self.total, self.count))
