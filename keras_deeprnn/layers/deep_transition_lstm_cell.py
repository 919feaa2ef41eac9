"""The LSTM with a deep transition (DT-LSTM, DT(S)-LSTM)."""

import keras

from keras_deeprnn.cells.lstm import LSTMCell
from keras_deeprnn.layers._transition import GatedTransitionMixin


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepTransitionLSTMCell(GatedTransitionMixin, LSTMCell):
    """LSTM cell whose gates read an MLP of h_{t-1} (deep transition).

    Pascanu et al. 2014 deepen the transition of the plain RNN; for the LSTM
    this cell deepens the recurrent input of its gates. With L = `depth`, g
    the `unit_type` of the intermediate layers:

        z_0 = h_{t-1}
        z_k = g(z_{k-1} W_k + b_k)                       k = 1 .. L-1
        m_t = z_{L-1}                 or [z_{L-1}, h_{t-1}] with `shortcut`

    and then the equations of `LSTMCell` (any `variant`) with h_{t-1}
    replaced by m_t in every recurrent product, e.g. for "np":

        i_t = s(x_t W_i + m_t R_i + b_i)      f_t = s(x_t W_f + m_t R_f + b_f)
        z_t = tanh(x_t W_z + m_t R_z + b_z)   o_t = s(x_t W_o + m_t R_o + b_o)
        c_t = i_t * z_t + f_t * c_{t-1}       h_t = o_t * tanh(c_t)

    x_t enters the gates directly (so `project_inputs` is the LSTM's own,
    hoistable x_t W + b); peepholes, the cell c_t and the gate recurrence of
    "fgr" are unchanged. With `shortcut=True` (DT(S)) the gates also see
    h_{t-1} itself: m_t R = z_{L-1} R + h_{t-1} R', i.e. the rows of
    `recurrent_kernel` are [R; R']. With `depth=1`, m_t = h_{t-1}: the plain
    `LSTMCell`. The transition from h_{t-1} to the gate pre-activations thus
    has L layers, as in the DT-RNN.

    Weights: those of `LSTMCell`, with `recurrent_kernel` of shape
    (widths[-1] [+ units], k units) (k gate blocks), plus
    `transition_kernel_k` (widths[k-2] or units for k = 1, m widths[k-1]),
    `transition_bias_k` and, for Lp units, `lp_rho_k`, k = 1 .. L-1
    (m = `maxout_pieces` / `lp_group` for maxout / Lp units, else 1).

    Args:
        units: Positive integer, dimensionality of h and c.
        depth, widths, unit_type, maxout_pieces, lp_group, lp_epsilon,
        lp_p_init, shortcut: As in `DeepTransitionCell`.
        **kwargs: The arguments of `LSTMCell` (`variant`, `forget_bias`,
            ...). The MLP's matrices use the recurrent initializer,
            regularizer and constraint; recurrent dropout masks h_{t-1}
            before the MLP.

    Call arguments: as `LSTMCell`.

    Example:

    >>> cell = DeepTransitionLSTMCell(16, depth=2, unit_type="lp")
    >>> tuple(keras.layers.RNN(cell)(np.zeros((2, 5, 3), "float32")).shape)
    (2, 16)

    Reference: `tests/deep_reference.py::dt_lstm`; no fused kernel (its
    `recurrent_input` is not the LSTM's, so `fused_spec()` is None).
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
        **kwargs,
    ):
        super().__init__(units, **kwargs)
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
