"""Gated recurrent unit."""

import keras
from keras import ops

from keras_deeprnn.cells.base import FusedSpec
from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.cells.base import slices


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class GRUCell(RecurrentCell):
    """Gated recurrent unit (Cho et al. 2014).

    With s = `recurrent_activation` (sigmoid) and tanh = `activation`:

        z_t = s(x_t W_z + h_{t-1} U_z + b_z)                  update gate
        r_t = s(x_t W_r + h_{t-1} U_r + b_r)                  reset gate
        n_t = tanh(x_t W_h + (r_t * h_{t-1}) U_h + b_h)       candidate
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t

    With `reset_after=True` (the cuDNN form and Keras's default) the reset
    gate is applied after the recurrent product, and the input and recurrent
    products have biases of their own:

        n_t = tanh(x_t W_h + b^x_h + r_t * (h_{t-1} U_h + b^h_h))

    Weights: `kernel` (input_dim, 3 units) and `recurrent_kernel`
    (units, 3 units) with column blocks z, r, h; `bias` (3 units,), or
    (2, 3 units) with rows [input bias, recurrent bias] when
    `reset_after=True`. This is the layout of `keras.layers.GRUCell`, whose
    weights load unchanged through `set_weights`.

    Args:
        units: Positive integer, dimensionality of the state.
        reset_after: Apply the reset gate after the recurrent product
            (default True).
        activation, recurrent_activation, use_bias, initializers,
        regularizers, constraints, dropout, recurrent_dropout, seed:
            As in `keras.layers.GRUCell`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, one time step.
        states: `[h_{t-1}]`.
        training: Whether dropout is active.

    Example:

    >>> y = keras.layers.RNN(GRUCell(16))(np.zeros((2, 5, 3), "float32"))
    >>> tuple(y.shape)
    (2, 16)

    Reference: `tests/reference.py::gru`; fused kernel (`reset_after=True`)
    checked by `tests/test_fast_rnn.py::test_fused_kernels_match_stock_rnn`.
    """

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def build_weights(self, input_dim):
        self.kernel = self.add_kernel(3 * self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(3 * self.units)
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self.bias = self.add_bias(shape)

    def fused_spec(self):
        # The kernel applies the reset gate after the product only.
        if not self.reset_after or not self._fusable(GRUCell):
            return None
        return FusedSpec(
            "gru",
            self.recurrent_kernel,
            recurrent_bias=self.bias[1] if self.use_bias else None,
            cudnn=self._cudnn("gru"),
        )

    def project_inputs(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        if not self.use_bias:
            return x
        return x + (self.bias[0] if self.reset_after else self.bias)

    def step(self, projected, states, training=False):
        h_prev = states[0]
        h_rec = self.recurrent_input(h_prev, training)
        x_z, x_r, x_h = slices(projected, 3, self.units)
        u = self.units
        if self.reset_after:
            rec = ops.matmul(h_rec, self.recurrent_kernel)
            if self.use_bias:
                rec = rec + self.bias[1]
            r_z, r_r, r_h = slices(rec, 3, u)
            z = self.recurrent_activation(x_z + r_z)
            r = self.recurrent_activation(x_r + r_r)
            n = self.activation(x_h + r * r_h)
        else:
            rec = ops.matmul(h_rec, self.recurrent_kernel[:, : 2 * u])
            r_z, r_r = slices(rec, 2, u)
            z = self.recurrent_activation(x_z + r_z)
            r = self.recurrent_activation(x_r + r_r)
            n = self.activation(x_h + ops.matmul(r * h_rec, self.recurrent_kernel[:, 2 * u :]))
        h = z * h_prev + (1.0 - z) * n
        return h, [h]

    def get_config(self):
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config
