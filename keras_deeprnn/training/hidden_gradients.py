"""The norm of dL/dh_t against the distance from step t to the loss."""

import io

import keras
import numpy as np
import tensorflow as tf


class HiddenGradientLogger(keras.callbacks.Callback):
    """Logs ||dL_T / dh_t|| against T - t to TensorBoard, every few epochs.

    Vanishing and exploding gradients (Bengio et al. 1994; Pascanu et al.
    2013) are about how the gradient of a loss at step T reaches the hidden
    state of an earlier step t: through the product of the recurrent
    Jacobians,

        dL_T/dh_t = dL_T/dh_T * prod_{s=t+1..T} dh_s/dh_{s-1},

    whose norm shrinks or grows roughly geometrically with the distance
    T - t. On a fixed probe batch the callback runs the layers before the
    recurrent layer, unrolls its cell step by step, runs the layers after
    it, takes the compiled loss at the last step only, and differentiates
    it with respect to the whole recurrent state s_t of every step (h_t;
    (h_t, c_t) for an LSTM; all layers' states for stacked cells). It logs,
    under `log_dir`:

    * `epoch_NNNN/`: the scalar `dL_dh_norm` at TensorBoard step T - t, one
      curve per logged epoch (TensorBoard shows each run as a line);
    * the image `dL_dh_norm` (log scale, against T - t) at step `epoch`;
    * the scalar `dL_dh_norm/log10_ratio` = log10(||dL/ds_1|| /
      ||dL/ds_T||), the decades lost (< 0) or gained (> 0) over the batch's
      length.

    The probe runs without dropout (`training=False`) and ignores masks: use
    a batch of unpadded sequences.

    Args:
        batch: `(x, y)` or `(x, y, sample_weight)`, the probe batch; `y` of
            a sequence model has a time axis, and only its last step is used.
        layer: The recurrent layer (a `keras.layers.RNN` of the model, or its
            name); None: the model's first `keras.layers.RNN`.
        log_dir: Folder for the TensorBoard event files (None: no logging;
            `norms()` still works).
        every: Log every this many epochs.

    Example:

    >>> model = keras.Sequential([keras.Input((20, 2)),
    ...     keras.layers.RNN(SimpleRNNCell(4), return_sequences=True),
    ...     keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> probe = HiddenGradientLogger((np.ones((3, 20, 2)), np.ones((3, 20, 1))))
    >>> probe.set_model(model)
    >>> probe.norms().shape
    (20,)
    """

    def __init__(self, batch, layer=None, log_dir=None, every=1):
        super().__init__()
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(
                "Argument `batch` must be (x, y) or (x, y, sample_weight), "
                f"got {type(batch).__name__}."
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Argument `every` must be an integer >= 1, got {every!r}.")
        self.batch = tuple(batch) + (None,) * (3 - len(batch))
        self.layer = layer
        self.log_dir = log_dir
        self.every = every
        self._writers = {}

    def _split(self):
        model = self.model
        if not isinstance(model, keras.Sequential):
            raise ValueError(
                "HiddenGradientLogger needs a keras.Sequential model (it runs "
                f"the layers around the recurrent one in order); got {type(model).__name__}."
            )
        layers = model.layers
        if self.layer is None:
            rnn = next((x for x in layers if isinstance(x, keras.layers.RNN)), None)
            if rnn is None:
                raise ValueError(
                    "The model has no keras.layers.RNN layer (Bidirectional "
                    "layers are not supported)."
                )
        else:
            rnn = model.get_layer(self.layer) if isinstance(self.layer, str) else self.layer
            if not isinstance(rnn, keras.layers.RNN) or rnn not in layers:
                raise ValueError(
                    f"Argument `layer` must be a keras.layers.RNN of the model, got {rnn!r}."
                )
        if rnn.go_backwards:
            raise ValueError("A `go_backwards` RNN has no forward distance to the loss.")
        index = layers.index(rnn)
        return layers[:index], rnn, layers[index + 1 :]

    def norms(self):
        """A NumPy array of length T: entry d is ||dL_T/ds_{T-d}||, the
        Frobenius norm over the probe batch."""
        before, rnn, after = self._split()
        x, y, sample_weight = self.batch
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            inputs = x
            for layer in before:
                inputs = layer(inputs, training=False)
            states = rnn.get_initial_state(int(inputs.shape[0]))
            tape.watch(states)
            outputs, history = [], []
            for t in range(inputs.shape[1]):
                output, states = rnn.cell(inputs[:, t], states, training=False)
                if not keras.tree.is_nested(states):
                    states = [states]
                history.append(keras.tree.flatten(states))
                outputs.append(output)
            y_pred = tf.stack(outputs, axis=1) if rnn.return_sequences else outputs[-1]
            for layer in after:
                y_pred = layer(y_pred, training=False)
            if rnn.return_sequences:
                y, y_pred = y[:, -1:], y_pred[:, -1:]
                if sample_weight is not None and np.ndim(sample_weight) > 1:
                    sample_weight = sample_weight[:, -1:]
            loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        grads = tape.gradient(loss, history)
        squares = [
            sum(float(tf.reduce_sum(tf.square(g))) for g in step if g is not None) for step in grads
        ]
        return np.sqrt(np.array(squares[::-1]))

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(
                f"{self.log_dir}/{name}" if name else self.log_dir
            )
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or self.log_dir is None:
            return
        norms = self.norms()
        with self._writer(f"epoch_{epoch:04d}").as_default():
            for distance, value in enumerate(norms):
                tf.summary.scalar("dL_dh_norm", value, step=distance)
        with self._writer("").as_default(step=epoch):
            if norms[0] > 0 and norms[-1] > 0:
                tf.summary.scalar("dL_dh_norm/log10_ratio", np.log10(norms[-1] / norms[0]))
            tf.summary.image("dL_dh_norm", _plot(norms, epoch)[None])
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _plot(norms, epoch):
    """The curve as an image tensor (height, width, 4)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2), dpi=80)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.semilogy(np.arange(len(norms)), np.maximum(norms, 1e-30))
    axes.set_xlabel("distance to the loss, T - t")
    axes.set_ylabel("||dL_T / dh_t||")
    axes.set_title(f"epoch {epoch + 1}")
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png")
    return tf.image.decode_png(png.getvalue(), channels=4)
