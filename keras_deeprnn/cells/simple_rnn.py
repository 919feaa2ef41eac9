"""Elman RNN cell with optional leaky units."""

import keras
from keras import constraints
from keras import ops

from keras_deeprnn.cells.base import FusedSpec
from keras_deeprnn.cells.base import RecurrentCell


class LeakRange(constraints.Constraint):
    """Clips a leak rate into [0, max_value] after each update."""

    def __init__(self, max_value=0.999):
        self.max_value = max_value

    def __call__(self, w):
        return ops.clip(w, 0.0, self.max_value)

    def get_config(self):
        return {"max_value": self.max_value}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SimpleRNNCell(RecurrentCell):
    """Elman RNN cell (Elman 1990), optionally with leaky units.

    Math (row vectors, `x W` is a matrix product):

        a_t = phi(x_t W + h_{t-1} U + b)
        h_t = alpha * h_{t-1} + (1 - alpha) * a_t

    With `leak=0` (alpha = 0) this is the plain tanh RNN and accepts the
    weights of `keras.layers.SimpleRNNCell` unchanged. Leaky integration
    (Jaeger et al. 2007; Bengio et al. 2013) gives each unit a time constant
    of about 1 / (1 - alpha) steps.

    Args:
        units: Positive integer, dimensionality of the state.
        activation: phi, default `"tanh"`.
        leak: alpha, float in [0, 1). Default 0 (no leak).
        trainable_leak: If True, alpha is a trainable weight `leak` of shape
            `(units,)` (one rate per unit) initialised to `leak` and kept in
            [0, 0.999] by a constraint; otherwise alpha is a fixed scalar.
        **kwargs: Initializers, regularizers, constraints, `use_bias`,
            `dropout`, `recurrent_dropout` and `seed` as in
            `keras.layers.SimpleRNNCell`.

    Weights: `kernel` (input_dim, units), `recurrent_kernel` (units, units),
    `bias` (units,), and `leak` (units,) when `trainable_leak=True`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, one time step.
        states: `[h_{t-1}]`.
        training: Whether dropout is active.

    Example:

    >>> layer = keras.layers.RNN(SimpleRNNCell(32, leak=0.5))
    >>> tuple(layer(np.zeros((4, 10, 8), "float32")).shape)
    (4, 32)

    Reference: `tests/reference.py::simple_rnn`; fused kernel (fixed leak)
    checked by `tests/test_fast_rnn.py::test_fused_kernels_match_stock_rnn`.
    """

    def __init__(self, units, activation="tanh", leak=0.0, trainable_leak=False, **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)
        if isinstance(leak, bool) or not isinstance(leak, (int, float)):
            raise ValueError(f"Argument `leak` must be a float in [0, 1), got {leak!r}.")
        if not 0.0 <= leak < 1.0:
            raise ValueError(f"Argument `leak` must be in [0, 1), got {leak!r}.")
        self.leak = float(leak)
        self.trainable_leak = bool(trainable_leak)

    def build_weights(self, input_dim):
        self.kernel = self.add_kernel(self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units)
        self.bias = self.add_bias((self.units,))
        if self.trainable_leak:
            self.leak_rate = self.add_weight(
                shape=(self.units,),
                name="leak",
                # ops.full keeps the rate exact in float64 (Constant rounds
                # it through float32).
                initializer=lambda shape, dtype=None: ops.full(shape, self.leak, dtype=dtype),
                constraint=LeakRange(),
            )
        else:
            self.leak_rate = self.leak

    def fused_spec(self):
        # The kernel takes one fixed leak rate, not a learned one per unit.
        if self.trainable_leak or not self._fusable(SimpleRNNCell, gated=False):
            return None
        return FusedSpec("rnn", self.recurrent_kernel, leak=self.leak)

    def project_inputs(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        return x + self.bias if self.use_bias else x

    def step(self, projected, states, training=False):
        h_prev = states[0]
        h_rec = self.recurrent_input(h_prev, training)
        h = self.activation(projected + ops.matmul(h_rec, self.recurrent_kernel))
        if self.trainable_leak:
            alpha = ops.cast(self.leak_rate, h.dtype)
            h = alpha * h_prev + (1.0 - alpha) * h
        elif self.leak > 0:
            # A Python float takes h's dtype exactly (no float32 rounding).
            h = self.leak * h_prev + (1.0 - self.leak) * h
        return h, [h]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_activation"]
        config.update({"leak": self.leak, "trainable_leak": self.trainable_leak})
        return config
