"""Per-layer gradient norms, logged to TensorBoard."""

import keras
import numpy as np
import tensorflow as tf


class GradientNormLogger(keras.callbacks.Callback):
    """Logs the gradient norm of every layer on a fixed batch.

    Exploding and vanishing gradients (Bengio et al. 1994; Pascanu et al.
    2013) show up as per-layer gradient norms that grow or shrink by orders
    of magnitude. At the end of every `every`-th epoch this callback computes
    the gradient of the compiled loss on one fixed batch and writes, under
    `log_dir`, the scalars `grad_norm/<layer name>` and `grad_norm/global`.
    The global norm also goes into the epoch logs as `grad_norm`, so it
    appears in the progress bar and in other callbacks. Place it before
    `keras.callbacks.TensorBoard` in the callback list.

    Args:
        batch: `(x, y)` or `(x, y, sample_weight)`, one batch of data.
        log_dir: Folder for the TensorBoard event files (None: logs only).
        every: Log every this many epochs.

    Example:

    >>> logger = GradientNormLogger(next(iter(train_ds)), "logs/grad")  # doctest: +SKIP
    >>> model.fit(train_ds, epochs=10, callbacks=[logger])  # doctest: +SKIP
    """

    def __init__(self, batch, log_dir=None, every=1):
        super().__init__()
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(
                "Argument `batch` must be (x, y) or (x, y, sample_weight), "
                f"got {type(batch).__name__}."
            )
        if every < 1:
            raise ValueError(f"Argument `every` must be >= 1, got {every}.")
        self.batch = tuple(batch) + (None,) * (3 - len(batch))
        self.log_dir = log_dir
        self.every = every
        self._writer = None

    def layer_norms(self):
        """{layer name: gradient norm} and the global norm, on the batch."""
        x, y, sample_weight = self.batch
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)
            loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        grads = dict(zip((id(v) for v in variables), tape.gradient(loss, variables)))
        norms = {}
        for layer in self.model.layers:
            squares = [
                float(tf.reduce_sum(tf.square(grads[id(v)])))
                for v in layer.trainable_variables
                if grads.get(id(v)) is not None
            ]
            if squares:
                norms[layer.name] = float(np.sqrt(sum(squares)))
        total = float(np.sqrt(sum(n * n for n in norms.values())))
        return norms, total

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        norms, total = self.layer_norms()
        if logs is not None:
            logs["grad_norm"] = total
        if self.log_dir is None:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default(step=epoch):
            for name, value in norms.items():
                tf.summary.scalar(f"grad_norm/{name}", value)
            tf.summary.scalar("grad_norm/global", total)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
