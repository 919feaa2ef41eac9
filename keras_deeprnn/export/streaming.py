"""A sequence model run one time step at a time, its states explicit."""

import numpy as np

from keras_deeprnn.export.tflite import _Exporter


class StreamingModel:
    """One time step of a Keras sequence model, with the recurrent states
    as explicit inputs and outputs.

    It is the function that `export_tflite(mode="streaming")` converts,
    run by TensorFlow (a `tf.function` with a fixed batch size): every
    recurrent layer makes one `cell.step`, every other layer runs on the
    step's features alone. A generator calls it once per new token, so
    each token costs one step, never a re-run of the prefix; the states
    are arrays with the batch first, so beam search can reorder them.

    Args:
        model: A built Keras model of sequences (batch, time, ...) whose
            layers act step by step (as for the streaming export), not
            stateful.
        batch_size: The fixed batch size of the steps.

    Attributes:
        state_names: The state names, `<layer>_state_<k>`, as in the
            streaming TFLite file.

    Example:

    >>> from keras_deeprnn.cells import GRUCell
    >>> model = keras.Sequential([keras.Input((None, 3)),
    ...     keras.layers.RNN(GRUCell(4), return_sequences=True)])
    >>> step = StreamingModel(model)
    >>> x = np.ones((1, 5, 3), "float32")
    >>> states = step.initial_states()
    >>> for t in range(5):
    ...     (y,), states = step(x[:, t], states)
    >>> bool(np.allclose(y, model(x)[:, -1], atol=1e-5))
    True
    """

    def __init__(self, model, batch_size=1):
        self._exporter = _Exporter(model, "streaming", None, batch_size, unroll=False)
        self.batch_size = batch_size
        self.state_names = list(self._exporter.state_names)
        count = len(model.inputs)
        self.input_names = self._exporter.names[:count]
        specs = dict(zip(self._exporter.names, self._exporter.specs))
        self._input_dtypes = [specs[n].dtype.as_numpy_dtype for n in self.input_names]
        self._state_shapes = {n: tuple(specs[n].shape) for n in self.state_names}
        self._outputs = None

    def initial_states(self):
        """Zero states, `{name: array (batch_size, size)}`."""
        return {n: np.zeros(s, np.float32) for n, s in self._state_shapes.items()}

    def __call__(self, inputs, states):
        """One step: `inputs` (an array `(batch_size, ...)`, or a list for
        several inputs) and `states` -> (the list of outputs, new states)."""
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if len(inputs) != len(self.input_names):
            raise ValueError(f"Expected {len(self.input_names)} input(s), got {len(inputs)}.")
        args = [np.asarray(x, dtype) for x, dtype in zip(inputs, self._input_dtypes)]
        args += [states[n] for n in self.state_names]
        result = self._exporter.function(*args)
        if self._outputs is None:
            names = [n for n in result if n.startswith("output_")]
            self._outputs = sorted(names, key=lambda n: int(n.split("_")[1]))
        outputs = [result[n].numpy() for n in self._outputs]
        return outputs, {n: result[n].numpy() for n in self.state_names}
