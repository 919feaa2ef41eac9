"""The GRU with a deep transition (DT-GRU, DT(S)-GRU)."""

import keras

from keras_deeprnn.cells.gru import GRUCell
from keras_deeprnn.layers._transition import GatedTransitionMixin


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepTransitionGRUCell(GatedTransitionMixin, GRUCell):
    """GRU cell whose gates and candidate read an MLP of h_{t-1}.

    With L = `depth` and g the `unit_type` of the intermediate layers:

        z_0 = h_{t-1}
        z_k = g(z_{k-1} W_k + b_k)                       k = 1 .. L-1
        m_t = z_{L-1}                 or [z_{L-1}, h_{t-1}] with `shortcut`

    and then the equations of `GRUCell` with h_{t-1} replaced by m_t in the
    recurrent products (the interpolation keeps the state itself):

        z_t = s(x_t W_z + m_t U_z + b_z)
        r_t = s(x_t W_r + m_t U_r + b_r)
        n_t = tanh(x_t W_h + b^x_h + r_t * (m_t U_h + b^h_h))  (reset_after)
        n_t = tanh(x_t W_h + (r_t * m_t) U_h + b_h)         (reset_after=False)
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t

    (bias terms as in `GRUCell`). With `reset_after=False` the reset gate
    multiplies m_t elementwise, so m_t must have `units` columns: the last
    intermediate width must be `units` and `shortcut` is not available.
    With `depth=1`, m_t = h_{t-1}: the plain `GRUCell`.

    Weights: those of `GRUCell`, with `recurrent_kernel` of shape
    (widths[-1] [+ units], 3 units), plus `transition_kernel_k`,
    `transition_bias_k` and, for Lp units, `lp_rho_k`, k = 1 .. L-1, as in
    `DeepTransitionLSTMCell`.

    Args:
        units: Positive integer, dimensionality of h.
        depth, widths, unit_type, maxout_pieces, lp_group, lp_epsilon,
        lp_p_init, shortcut: As in `DeepTransitionCell`.
        **kwargs: The arguments of `GRUCell` (`reset_after`, ...).

    Call arguments: as `GRUCell`.

    Example:

    >>> cell = DeepTransitionGRUCell(16, depth=3, unit_type="relu")
    >>> tuple(keras.layers.RNN(cell)(np.zeros((2, 5, 3), "float32")).shape)
    (2, 16)

    Reference: `tests/deep_reference.py::dt_gru`; no fused kernel (its
    `recurrent_input` is not the GRU's, so `fused_spec()` is None).
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
        if not self.reset_after and self.recurrent_input_width != self.units:
            raise ValueError(
                "With `reset_after=False` the reset gate multiplies the "
                "recurrent input elementwise, so it must have `units` "
                f"columns: the last of `widths` must be {self.units} and "
                f"`shortcut` must be False; got widths={self.widths}, "
                f"shortcut={self.shortcut}."
            )
