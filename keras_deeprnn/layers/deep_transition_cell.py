"""The deep-transition RNN cell of Pascanu et al. 2014 (DT-RNN, DT(S)-RNN)."""

import keras
from keras import ops

from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.layers._transition import DeepTransitionMixin
from keras_deeprnn.layers._units import check_int


def check_time_skip(time_skip):
    if time_skip == 0 and not isinstance(time_skip, bool):
        return 0
    return check_int("time_skip", time_skip, 2, " (or 0 for no skip connection across time)")


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepTransitionCell(DeepTransitionMixin, RecurrentCell):
    """Deep-transition RNN cell (Pascanu, Gulcehre, Cho & Bengio 2014).

    "How to Construct Deep Recurrent Neural Networks" makes the transition
    h_{t-1} -> h_t an L-layer MLP (DT-RNN), optionally with shortcut
    connections that also feed h_{t-1} and x_t to the last layer (DT(S)-RNN).
    With L = `depth`, g the `unit_type` of the intermediate layers and
    phi = `activation` (row vectors, `x W` is a matrix product):

        a_1 = x_t U + h_{t-1} W_1 [+ h_{t-d} W_d] + b_1
        z_1 = g(a_1)
        z_k = g(z_{k-1} W_k + b_k)                       k = 2 .. L-1
        h_t = phi(z_{L-1} W_L + b_L [+ x_t U' + h_{t-1} W'])

    The bracketed terms are the shortcut (`shortcut=True`, DT(S)) and the
    skip connection across time (`time_skip=d`). With `depth=1` the cell is
    the plain RNN h_t = phi(x_t U + h_{t-1} W_1 [+ h_{t-d} W_d] + b_1), whose
    weights are those of `keras.layers.SimpleRNNCell`.

    Unit types g of the intermediate layers (z_1 .. z_{L-1}, widths
    `widths`): "tanh", "relu", "maxout" (max over `maxout_pieces` linear
    pieces) and "lp" (Gulcehre et al. 2014: y = (sum_j |a_j|^p)^(1/p) over
    a group of `lp_group` filters, p = 1 + softplus(rho) learned per unit,
    |a| smoothed to sqrt(a^2 + eps^2) with eps = `lp_epsilon`; see
    `keras_deeprnn.layers` for the exact formula). Maxout and Lp layers
    have `m * width` filters (m pieces or group size) in m column blocks.

    Skip connection across time (`time_skip=d`, d >= 2): h_t also receives
    h_{t-d} (zero for t <= d) through W_d. The cell then has a second state,
    the last d outputs [h_{t-d+1}, ..., h_t] (width d * units), shifted by
    one block each step.

    Weights (P_1 = m * widths[0], or `units` when depth=1):

    - `kernel` (input_dim, P_1 [+ units]): [U | U'];
    - `recurrent_kernel` (units, P_1 [+ units]): [W_1 | W'];
    - `bias` (P_1,): b_1;
    - `skip_kernel` (units, P_1): W_d, with `time_skip`;
    - `transition_kernel_k` (widths[k-2], m * widths[k-1], or units for
      k = L) and `transition_bias_k`: W_k and b_k, k = 2 .. L;
    - `lp_rho_k` (widths[k-1],): rho of the Lp layer k = 1 .. L-1.

    `project_inputs` returns [x_t U + b_1 | x_t U' + b_L] (the second block
    with the shortcut only); `step` adds the recurrent terms.

    Args:
        units: Positive integer, dimensionality of h.
        depth: Number of layers L of the transition (integer >= 1).
        widths: Widths of the L-1 intermediate layers: None (all `units`),
            an integer, or a list of L-1 integers.
        unit_type: g: "tanh" (default), "relu", "maxout" or "lp".
        maxout_pieces: Pieces per maxout unit (integer >= 2, default 2).
        lp_group: Filters per Lp unit (integer >= 1, default 2).
        lp_epsilon: eps of the Lp units (positive float, default 1e-6).
        lp_p_init: Initial p of the Lp units (float > 1, default 2).
        shortcut: DT(S): add x_t U' + h_{t-1} W' to the last layer (needs
            depth >= 2).
        time_skip: d, the delay of the skip connection across time; 0
            (default) for none, else an integer >= 2.
        activation: phi, the nonlinearity of the last layer (default tanh).
        use_bias, initializers, regularizers, constraints, dropout,
        recurrent_dropout, seed: As in `keras.layers.SimpleRNNCell`. The
            transition matrices W_k, W' and W_d use the recurrent
            initializer, regularizer and constraint; the biases b_k use the
            bias ones. Recurrent dropout masks h_{t-1} (and h_{t-d}).

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, one time step.
        states: `[h_{t-1}]`, or `[h_{t-1}, [h_{t-d}, ..., h_{t-1}]]` with
            `time_skip`.
        training: Whether dropout is active.

    Example:

    >>> cell = DeepTransitionCell(32, depth=3, unit_type="maxout", shortcut=True)
    >>> tuple(keras.layers.RNN(cell)(np.zeros((4, 10, 8), "float32")).shape)
    (4, 32)

    Reference: `tests/deep_reference.py::dt_rnn`; no fused kernel (the
    hoisted loop of `keras_deeprnn.layers.RNN`).
    """

    def __init__(
        self,
        units,
        depth=2,
        widths=None,
        unit_type="tanh",
        maxout_pieces=2,
        lp_group=2,
        lp_epsilon=1e-6,
        lp_p_init=2.0,
        shortcut=False,
        time_skip=0,
        activation="tanh",
        **kwargs,
    ):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)
        self._configure_transition(
            depth,
            widths,
            unit_type,
            maxout_pieces,
            lp_group,
            lp_epsilon,
            lp_p_init,
            shortcut,
        )
        self.time_skip = check_time_skip(time_skip)
        if self.time_skip:
            self.state_size = [self.units, self.time_skip * self.units]

    @property
    def first_width(self):
        """P_1, the width of the first layer's pre-activation a_1."""
        if self.depth == 1:
            return self.units
        return self.hidden_units.multiplier * self.widths[0]

    def build_weights(self, input_dim):
        p1 = self.first_width
        columns = p1 + (self.units if self.shortcut else 0)
        self.kernel = self.add_kernel(columns)
        self.recurrent_kernel = self.add_recurrent_kernel(columns)
        self.bias = self.add_bias((p1,))
        self.skip_kernel = (
            self.add_recurrent_kernel(p1, name="skip_kernel") if self.time_skip else None
        )
        if self.depth > 1:
            self.first_rho = self.hidden_units.add_rho(self, self.widths[0], "lp_rho_1")
            self.hidden = self._hidden_stack(self.widths[0], self.widths[1:], 2)
            self.last_kernel = self._add_transition_matrix(
                f"transition_kernel_{self.depth}", self.widths[-1], self.units
            )
            self.last_bias = self._add_transition_bias(f"transition_bias_{self.depth}", self.units)

    def project_inputs(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        if not self.use_bias:
            return x
        if self.shortcut:
            return x + ops.concatenate([self.bias, self.last_bias])
        return x + self.bias

    def step(self, projected, states, training=False):
        h_prev = states[0]
        h_rec = self.recurrent_input(h_prev, training)
        pre = projected + ops.matmul(h_rec, self.recurrent_kernel)
        if self.shortcut:
            p1 = self.first_width
            pre, short = pre[..., :p1], pre[..., p1:]
        if self.time_skip:
            history = states[1]
            h_skip = self.recurrent_input(history[..., : self.units], training)
            pre = pre + ops.matmul(h_skip, self.skip_kernel)
        if self.depth == 1:
            h = self.activation(pre)
        else:
            z = self.hidden(self.hidden_units(pre, self.first_rho))
            last = ops.matmul(z, self.last_kernel)
            if self.shortcut:
                last = last + short
            elif self.use_bias:
                last = last + self.last_bias
            h = self.activation(last)
        if not self.time_skip:
            return h, [h]
        return h, [h, ops.concatenate([history[..., self.units :], h], axis=-1)]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_activation"]
        config.update(self._transition_config())
        config["time_skip"] = self.time_skip
        return config
