"""Deep-transition machinery shared by the deep-transition cells.

`DeepTransitionMixin` holds the arguments every deep transition has (depth,
intermediate widths, unit type, shortcut) and their validation and config.

`GatedTransitionMixin` turns a gated cell of `keras_deeprnn.cells` into its
deep-transition version without touching its equations: those cells read
h_{t-1} in their recurrent products only through `recurrent_input(h_{t-1})`
(see `RecurrentCell.recurrent_input`), so the mixin overrides that method to
return the recurrent input

    m_t = MLP(h_{t-1})                      (shortcut=False)
    m_t = [MLP(h_{t-1}), h_{t-1}]           (shortcut=True)

and gives the cell's `recurrent_kernel` width(m_t) rows instead of `units`.
The MLP (depth - 1 hidden layers, from `units` to `widths[-1]`) is
`z_0 = h_{t-1}`, `z_k = g(z_{k-1} W_k + b_k)`, weights `transition_kernel_k`,
`transition_bias_k` and, for Lp units, `lp_rho_k`. Recurrent dropout is
applied to h_{t-1} before the MLP. Everything else (the gates, the cell
update, the use of the raw h_{t-1} in the GRU's interpolation, peepholes) is
the parent cell's own code.
"""

from keras import ops

from keras_deeprnn.layers._units import HiddenStack
from keras_deeprnn.layers._units import HiddenUnits
from keras_deeprnn.layers._units import check_bool
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.layers._units import check_widths


class DeepTransitionMixin:
    """Arguments of a deep transition (for subclasses of `RecurrentCell`)."""

    def _configure_transition(
        self,
        depth,
        widths,
        unit_type,
        maxout_pieces,
        lp_group,
        lp_epsilon,
        lp_p_init,
        shortcut,
    ):
        self.depth = check_int("depth", depth, 1)
        self.widths = check_widths("widths", widths, self.depth - 1, self.units)
        self.hidden_units = HiddenUnits(unit_type, maxout_pieces, lp_group, lp_epsilon, lp_p_init)
        self.shortcut = check_bool("shortcut", shortcut)
        if self.shortcut and self.depth < 2:
            raise ValueError(
                "Argument `shortcut=True` needs `depth` >= 2 (with a one-layer "
                "transition the shortcut duplicates it), got depth=1."
            )

    def _transition_config(self):
        return {
            "depth": self.depth,
            "widths": list(self.widths),
            "shortcut": self.shortcut,
            **self.hidden_units.get_config(),
        }

    def _add_transition_matrix(self, name, rows, columns):
        return self.add_recurrent_kernel(columns, name=name, rows=rows)

    def _add_transition_bias(self, name, size):
        if not self.use_bias:
            return None
        return self.add_weight(
            shape=(size,),
            name=name,
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def _hidden_stack(self, input_width, widths, first_index):
        return HiddenStack(
            self.hidden_units,
            input_width,
            widths,
            self._add_transition_matrix,
            self._add_transition_bias,
            self,
            prefix="transition_",
            first_index=first_index,
        )


class GatedTransitionMixin(DeepTransitionMixin):
    """Deep transition for a gated cell: the gates read MLP(h_{t-1})."""

    @property
    def recurrent_input_width(self):
        width = self.widths[-1] if self.depth > 1 else self.units
        return width + self.units if self.shortcut else width

    def build_weights(self, input_dim):
        super().build_weights(input_dim)
        self.transition = self._hidden_stack(self.units, self.widths, 1)

    def add_recurrent_kernel(self, columns, name="recurrent_kernel", rows=None):
        if name == "recurrent_kernel" and rows is None:
            rows = self.recurrent_input_width
        return super().add_recurrent_kernel(columns, name=name, rows=rows)

    def recurrent_input(self, h, training):
        """The recurrent input m_t of the gates (see the module docstring)."""
        h = super().recurrent_input(h, training)
        m = self.transition(h)
        return ops.concatenate([m, h], axis=-1) if self.shortcut else m

    def get_config(self):
        config = super().get_config()
        config.update(self._transition_config())
        return config
