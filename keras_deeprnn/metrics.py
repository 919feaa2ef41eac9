"""Frame-level negative log-likelihood, the metric of polyphonic music models.

Boulanger-Lewandowski et al. 2012 and the papers after them report the
negative log-likelihood of each frame under independent Bernoulli outputs,
summed over the keys, averaged over all frames of all test pieces (padding
excluded), in nats:

    NLL = (1 / F) * sum_frames sum_k -[y_k log p_k + (1 - y_k) log(1 - p_k)]

`FrameNLL` (loss) and `FrameNLLMetric` compute exactly this when padding is
given zero per-frame `sample_weight`: the loss divides each batch by the
number of real frames, the metric accumulates over the whole data set.

Given the conditional logits of a `keras_deeprnn.layers.NADE` (each key's
logit given the keys below it in the frame), the same sum is the negative
log-likelihood of the frame under the NADE's joint distribution: the two
functions are then the loss and metric of an RNN-NADE, in the same units.
"""

import keras
from keras import ops


def frame_nll(y_true, y_pred, from_logits=True):
    """Per-frame NLL: binary cross-entropy summed over the last axis.

    Args:
        y_true: 0/1 targets, shape (..., keys).
        y_pred: logits (or probabilities if `from_logits=False`), same shape.
        from_logits: Whether `y_pred` holds logits.

    Returns:
        A tensor of shape (...), one value per frame, in nats.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    if from_logits:
        # log(1 + exp(-|z|)) + max(z, 0) - z y: stable for any logit.
        per_key = ops.maximum(y_pred, 0.0) - y_pred * y_true + ops.log1p(ops.exp(-ops.abs(y_pred)))
    else:
        eps = keras.config.epsilon()
        p = ops.clip(y_pred, eps, 1.0 - eps)
        per_key = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    return ops.sum(per_key, axis=-1)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FrameNLL(keras.losses.Loss):
    """Frame NLL as a loss, averaged over the frames with non-zero weight.

    Args:
        from_logits: Whether predictions are logits (default True).
        name: Name of the loss.

    Example:

    >>> model.compile("adam", loss=FrameNLL(),
    ...               weighted_metrics=[FrameNLLMetric()])  # doctest: +SKIP
    >>> model.fit(dataset_of_inputs_targets_and_frame_weights)  # doctest: +SKIP
    """

    def __init__(self, from_logits=True, name="frame_nll", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        return frame_nll(y_true, y_pred, from_logits=self.from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FrameNLLMetric(keras.metrics.Metric):
    """Frame NLL accumulated over a whole data set: sum(w * nll) / sum(w).

    Pass it in `weighted_metrics` so per-frame sample weights exclude padding.
    Unlike `keras.metrics.MeanMetricWrapper`, which first averages each
    sequence over its padded length, the sums run over frames, so the result
    is exact when batches are padded to different lengths.

    Args:
        from_logits: Whether predictions are logits (default True).
        name: Name of the metric.
        dtype: Dtype of the accumulators.
    """

    def __init__(self, from_logits=True, name="nll", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = from_logits
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, self.dtype)
        values = frame_nll(y_true, y_pred, from_logits=self.from_logits)
        if sample_weight is None:
            weights = ops.ones_like(values)
        else:
            weights = ops.broadcast_to(ops.cast(sample_weight, self.dtype), ops.shape(values))
        self.total.assign_add(ops.sum(values * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"from_logits": self.from_logits, "name": self.name, "dtype": self.dtype}
