"""MUT1, MUT2 and MUT3: the cells found by Jozefowicz et al.'s search.

"An Empirical Exploration of Recurrent Network Architectures" (Jozefowicz,
Zaremba & Sutskever, ICML 2015) evolved GRU-like cells; these three were the
best. All three share the GRU's update h_t = n_t * z_t + h_{t-1} * (1 - z_t)
and differ in how z, r and the candidate n see x and h.
"""

import keras
from keras import ops

from keras_deeprnn.cells.base import FusedSpec
from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.cells.base import slices


class MUTCell(RecurrentCell):
    """Shared layout of the MUT cells.

    `project_inputs` returns three blocks [z, r, h] of input terms (bias
    included); `kernel` holds only the blocks a cell multiplies by a matrix.
    The subclasses set `raw_input_block`: the block where x enters without a
    matrix (MUT1: inside tanh(x) of the candidate, MUT2: the reset gate).
    Such a raw term needs input_dim == units; otherwise a learned projection
    P (input_dim, units) is used in its place and stored as that block of
    `kernel`.
    """

    raw_input_block = None  # "r", "h" or None

    def build_weights(self, input_dim):
        self.project = self.raw_input_block is not None and input_dim != self.units
        blocks = 3 if self.raw_input_block is None or self.project else 2
        self.kernel = self.add_kernel(blocks * self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.recurrent_blocks * self.units)
        self.bias = self.add_bias((3 * self.units,))

    def project_inputs(self, inputs):
        k = ops.matmul(inputs, self.kernel)
        u = self.units
        if self.raw_input_block is None:
            blocks = slices(k, 3, u)
        else:
            raw_at = "zrh".index(self.raw_input_block)
            if self.project:
                blocks = slices(k, 3, u)
            else:
                blocks = slices(k, 2, u)
                blocks.insert(raw_at, ops.cast(inputs, k.dtype))
            if self.raw_input_block == "h":
                blocks[raw_at] = self.activation(blocks[raw_at])
        x = ops.concatenate(blocks, axis=-1)
        return x + self.bias if self.use_bias else x

    def update(self, n, z, h_prev):
        h = n * z + h_prev * (1.0 - z)
        return h, [h]


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class MUT1Cell(MUTCell):
    """MUT1 (Jozefowicz et al. 2015). With s = sigmoid:

        z_t = s(x_t W_xz + b_z)
        r_t = s(x_t W_xr + h_{t-1} W_hr + b_r)
        h_t = tanh((r_t * h_{t-1}) W_hh + tanh(x_t) + b_h) * z_t
              + h_{t-1} * (1 - z_t)

    The raw term tanh(x_t) needs input_dim == units; when they differ it
    becomes tanh(x_t P) with a learned projection P (input_dim, units).

    Weights: `kernel` (input_dim, 2 units) with blocks [z, r], or
    (input_dim, 3 units) with blocks [z, r, P] when projecting;
    `recurrent_kernel` (units, 2 units) with blocks [r (W_hr), h (W_hh)];
    `bias` (3 units,) with blocks [z, r, h].

    Args:
        units: Positive integer, dimensionality of the state.
        activation: tanh in the equations (default `"tanh"`).
        recurrent_activation: s in the equations (default `"sigmoid"`).
        **kwargs: `use_bias`, initializers, regularizers, constraints,
            `dropout`, `recurrent_dropout`, `seed`, as for the GRU.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, one time step.
        states: `[h_{t-1}]`.
        training: Whether dropout is active.

    Example:

    >>> y = keras.layers.RNN(MUT1Cell(8))(np.zeros((2, 5, 8), "float32"))
    >>> tuple(y.shape)
    (2, 8)

    Reference: `tests/reference.py::mut1`; fused kernel checked by
    `tests/test_fast_rnn.py::test_fused_mut_kernels_match_stock_rnn`.
    """

    raw_input_block = "h"
    recurrent_blocks = 2

    def fused_spec(self):
        if not self._fusable(MUT1Cell):
            return None
        w_hr, w_hh = slices(self.recurrent_kernel, 2, self.units)
        return FusedSpec("mut1", w_hr, extra=(w_hh,))

    def step(self, projected, states, training=False):
        h_prev = states[0]
        h_rec = self.recurrent_input(h_prev, training)
        x_z, x_r, x_h = slices(projected, 3, self.units)
        w_hr, w_hh = slices(self.recurrent_kernel, 2, self.units)
        z = self.recurrent_activation(x_z)
        r = self.recurrent_activation(x_r + ops.matmul(h_rec, w_hr))
        n = self.activation(ops.matmul(r * h_rec, w_hh) + x_h)
        return self.update(n, z, h_prev)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class MUT2Cell(MUTCell):
    """MUT2 (Jozefowicz et al. 2015). With s = sigmoid:

        z_t = s(x_t W_xz + h_{t-1} W_hz + b_z)
        r_t = s(x_t + h_{t-1} W_hr + b_r)
        h_t = tanh((r_t * h_{t-1}) W_hh + x_t W_xh + b_h) * z_t
              + h_{t-1} * (1 - z_t)

    The raw term x_t in r_t needs input_dim == units; when they differ it
    becomes x_t P with a learned projection P (input_dim, units).

    Weights: `kernel` (input_dim, 2 units) with blocks [z, h], or
    (input_dim, 3 units) with blocks [z, P, h] when projecting;
    `recurrent_kernel` (units, 3 units) with blocks [z, r, h];
    `bias` (3 units,) with blocks [z, r, h].

    Args, call arguments: as `MUT1Cell`.

    Example:

    >>> y = keras.layers.RNN(MUT2Cell(8))(np.zeros((2, 5, 3), "float32"))
    >>> tuple(y.shape)
    (2, 8)

    Reference: `tests/reference.py::mut2`; fused kernel checked by
    `tests/test_fast_rnn.py::test_fused_mut_kernels_match_stock_rnn`.
    """

    raw_input_block = "r"
    recurrent_blocks = 3

    def fused_spec(self):
        if not self._fusable(MUT2Cell):
            return None
        u = self.units
        return FusedSpec(
            "mut2",
            self.recurrent_kernel[:, : 2 * u],  # [W_hz, W_hr]
            extra=(self.recurrent_kernel[:, 2 * u :],),
        )

    def step(self, projected, states, training=False):
        h_prev = states[0]
        h_rec = self.recurrent_input(h_prev, training)
        x_z, x_r, x_h = slices(projected, 3, self.units)
        u = self.units
        r_z, r_r = slices(ops.matmul(h_rec, self.recurrent_kernel[:, : 2 * u]), 2, u)
        z = self.recurrent_activation(x_z + r_z)
        r = self.recurrent_activation(x_r + r_r)
        n = self.activation(ops.matmul(r * h_rec, self.recurrent_kernel[:, 2 * u :]) + x_h)
        return self.update(n, z, h_prev)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class MUT3Cell(MUTCell):
    """MUT3 (Jozefowicz et al. 2015). With s = sigmoid:

        z_t = s(x_t W_xz + tanh(h_{t-1}) W_hz + b_z)
        r_t = s(x_t W_xr + h_{t-1} W_hr + b_r)
        h_t = tanh((r_t * h_{t-1}) W_hh + x_t W_xh + b_h) * z_t
              + h_{t-1} * (1 - z_t)

    Weights: `kernel` (input_dim, 3 units) and `recurrent_kernel`
    (units, 3 units) with blocks [z, r, h]; `bias` (3 units,).

    Args, call arguments: as `MUT1Cell`.

    Example:

    >>> y = keras.layers.RNN(MUT3Cell(8))(np.zeros((2, 5, 3), "float32"))
    >>> tuple(y.shape)
    (2, 8)

    Reference: `tests/reference.py::mut3`; fused kernel checked by
    `tests/test_fast_rnn.py::test_fused_mut_kernels_match_stock_rnn`.
    """

    recurrent_blocks = 3

    def fused_spec(self):
        if not self._fusable(MUT3Cell):
            return None
        w_hz, w_hr, w_hh = slices(self.recurrent_kernel, 3, self.units)
        return FusedSpec("mut3", w_hr, extra=(w_hz, w_hh))

    def step(self, projected, states, training=False):
        h_prev = states[0]
        h_rec = self.recurrent_input(h_prev, training)
        x_z, x_r, x_h = slices(projected, 3, self.units)
        w_hz, w_hr, w_hh = slices(self.recurrent_kernel, 3, self.units)
        z = self.recurrent_activation(x_z + ops.matmul(self.activation(h_rec), w_hz))
        r = self.recurrent_activation(x_r + ops.matmul(h_rec, w_hr))
        n = self.activation(ops.matmul(r * h_rec, w_hh) + x_h)
        return self.update(n, z, h_prev)
