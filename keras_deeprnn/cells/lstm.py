"""The LSTM family: the LSTM with forget gate and Greff et al.'s variants."""

import keras
from keras import initializers
from keras import ops

from keras_deeprnn.cells.base import FusedSpec
from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.cells.base import check_choice
from keras_deeprnn.cells.base import slices

# The one list of the variants: the layers' kernels and the parameter counts
# of `keras_deeprnn.models` derive theirs from it and the two functions below.
VARIANTS = ("vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")
# The whole-sequence kernel of each variant (see `LSTMCell.fused_spec`).
FUSED_KINDS = {v: "lstm" if v == "np" else f"lstm-{v}" for v in VARIANTS}


def variant_gates(variant):
    """The gate blocks of `variant`, in the weight order i, f, c, o."""
    absent = {"nig": "i", "nfg": "f", "cifg": "f", "nog": "o"}.get(variant)
    return tuple(g for g in ("i", "f", "c", "o") if g != absent)


def variant_peepholes(variant):
    """The gates of `variant` with a peephole, in the order i, f, o."""
    if variant == "np":
        return ()
    return tuple(g for g in ("i", "f", "o") if g in variant_gates(variant))


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class LSTMCell(RecurrentCell):
    """LSTM cell with the variants of Greff et al. 2015.

    "LSTM: A Search Space Odyssey" compares a vanilla LSTM (with forget gate
    and peepholes) against eight variants, each changing one thing. With
    g = h = `activation` (tanh), s = `recurrent_activation` (sigmoid):

        z_t = g(x_t W_z + h_{t-1} R_z + b_z)                  block input
        i_t = s(x_t W_i + h_{t-1} R_i + p_i * c_{t-1} + b_i)   input gate
        f_t = s(x_t W_f + h_{t-1} R_f + p_f * c_{t-1} + b_f)   forget gate
        c_t = i_t * z_t + f_t * c_{t-1}                        cell
        o_t = s(x_t W_o + h_{t-1} R_o + p_o * c_t + b_o)       output gate
        h_t = o_t * h(c_t)                                     output

    Variants (`variant=`):

    - `"vanilla"`: exactly the above, peepholes p_i, p_f, p_o.
    - `"nig"`: no input gate, i_t = 1.
    - `"nfg"`: no forget gate, f_t = 1.
    - `"nog"`: no output gate, o_t = 1.
    - `"niaf"`: no input activation, g is the identity.
    - `"noaf"`: no output activation, h_t = o_t * c_t.
    - `"np"` (default): no peepholes; the LSTM of Keras and PyTorch.
    - `"cifg"`: coupled input and forget gate, f_t = 1 - i_t.
    - `"fgr"`: full gate recurrence: i, f and o each also receive
      `[i_{t-1}, f_{t-1}, o_{t-1}] G`, with G = `gate_recurrent_kernel`
      (3 units, 3 units); the previous gate values are a third state.

    Every variant but `"np"` keeps the peepholes of the gates it has.

    Weights: `kernel` (input_dim, k units), `recurrent_kernel` (units,
    k units) and `bias` (k units,), column blocks in Keras's order
    i, f, c (= z), o, with the blocks of absent gates left out (k = 4, or 3
    for nig, nfg, nog and cifg). So `LSTMCell(units, variant="np")` takes the
    weights of `keras.layers.LSTMCell` through `set_weights` unchanged.
    Peepholes are separate vectors `peephole_i`, `peephole_f`, `peephole_o`
    of shape (units,), one per gate that exists.

    Args:
        units: Positive integer, dimensionality of h and c.
        variant: One of "vanilla", "nig", "nfg", "nog", "niaf", "noaf",
            "np", "cifg", "fgr".
        forget_bias: Added to the initial forget-gate bias (default 1.0,
            as recommended by Gers et al. 2000 and Jozefowicz et al. 2015).
            Unused by variants without a forget gate (nfg, cifg).
        peephole_initializer: Initializer of the peephole vectors
            (default zeros, so training starts from the peephole-free cell).
        activation, recurrent_activation, use_bias, initializers,
        regularizers, constraints, dropout, recurrent_dropout, seed:
            As in `keras.layers.LSTMCell`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, one time step.
        states: `[h_{t-1}, c_{t-1}]`; for `"fgr"` also the previous gates
            `[i, f, o]_{t-1}` of width 3 units.
        training: Whether dropout is active.

    Example:

    >>> cell = LSTMCell(64, variant="cifg")
    >>> y = keras.layers.RNN(cell)(np.zeros((2, 5, 3), "float32"))
    >>> tuple(y.shape)
    (2, 64)

    Reference: `tests/reference.py::lstm`; fused kernels checked by
    `tests/test_fast_rnn.py::test_fused_kernels_match_stock_rnn` ("np",
    "vanilla") and `::test_fused_lstm_variants_match_stock_rnn`.
    """

    def __init__(
        self,
        units,
        variant="np",
        forget_bias=1.0,
        peephole_initializer="zeros",
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.variant = check_choice("variant", variant, VARIANTS)
        self.forget_bias = float(forget_bias)
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.has_i = variant != "nig"
        self.has_f = variant not in ("nfg", "cifg")
        self.has_o = variant != "nog"
        self.gates = variant_gates(variant)
        self.input_activation = keras.activations.linear if variant == "niaf" else self.activation
        self.output_activation = keras.activations.linear if variant == "noaf" else self.activation
        self.state_size = [self.units, self.units]
        if variant == "fgr":
            self.state_size.append(3 * self.units)

    def build_weights(self, input_dim):
        width = len(self.gates) * self.units
        self.kernel = self.add_kernel(width)
        self.recurrent_kernel = self.add_recurrent_kernel(width)
        self.bias = self.add_bias((width,), initializer=self._bias_initializer)
        self.peepholes = {
            gate: self.add_weight(
                shape=(self.units,),
                name=f"peephole_{gate}",
                initializer=self.peephole_initializer,
            )
            for gate in variant_peepholes(self.variant)
        }
        if self.variant == "fgr":
            self.gate_recurrent_kernel = self.add_recurrent_kernel(
                3 * self.units, name="gate_recurrent_kernel", rows=3 * self.units
            )

    def _bias_initializer(self, shape, dtype=None):
        blocks = [self.bias_initializer((self.units,), dtype=dtype) for _ in self.gates]
        if self.has_f:
            f = self.gates.index("f")
            blocks[f] = blocks[f] + self.forget_bias
        return ops.concatenate(blocks)

    @property
    def peephole_i(self):
        return self.peepholes.get("i")

    @property
    def peephole_f(self):
        return self.peepholes.get("f")

    @property
    def peephole_o(self):
        return self.peepholes.get("o")

    def fused_spec(self):
        if not self._fusable(LSTMCell):
            return None
        extra = tuple(self.peepholes.values())  # built in the order i, f, o
        if self.variant == "fgr":
            extra += (self.gate_recurrent_kernel,)
        return FusedSpec(
            FUSED_KINDS[self.variant],
            self.recurrent_kernel,
            extra=extra,
            # `forget_bias` is only an initial value of `bias`: the step
            # adds nothing cuDNN would not.
            cudnn=self._cudnn("lstm") if self.variant == "np" else None,
        )

    def project_inputs(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        return x + self.bias if self.use_bias else x

    def step(self, projected, states, training=False):
        h_prev, c_prev = states[0], states[1]
        h_rec = self.recurrent_input(h_prev, training)
        pre = projected + ops.matmul(h_rec, self.recurrent_kernel)
        pre = dict(zip(self.gates, slices(pre, len(self.gates), self.units)))
        if self.variant == "fgr":
            pre_i, pre_f, pre_o = slices(
                ops.matmul(states[2], self.gate_recurrent_kernel), 3, self.units
            )
            pre["i"] += pre_i
            pre["f"] += pre_f
            pre["o"] += pre_o

        def gate(name, cell):
            value = pre[name]
            if name in self.peepholes:
                value = value + self.peepholes[name] * cell
            return self.recurrent_activation(value)

        i = gate("i", c_prev) if self.has_i else None
        if self.has_f:
            f = gate("f", c_prev)
        elif self.variant == "cifg":
            f = 1.0 - i
        else:
            f = None
        z = self.input_activation(pre["c"])
        c = (z if i is None else i * z) + (c_prev if f is None else f * c_prev)
        out = self.output_activation(c)
        if self.has_o:
            o = gate("o", c)
            h = o * out
        else:
            h = out
        if self.variant == "fgr":
            return h, [h, c, ops.concatenate([i, f, o], axis=-1)]
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "variant": self.variant,
                "forget_bias": self.forget_bias,
                "peephole_initializer": initializers.serialize(self.peephole_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class PeepholeLSTMCell(LSTMCell):
    """The LSTM with peephole connections (Gers & Schmidhuber 2000).

    `LSTMCell(units, variant="vanilla")` under its common name; see
    `LSTMCell` for the equations and arguments.

    Reference: `tests/reference.py::lstm` (variant "vanilla"); fused kernel
    checked by `tests/test_fast_rnn.py::test_fused_kernels_match_stock_rnn`.
    """

    def __init__(self, units, **kwargs):
        variant = kwargs.pop("variant", "vanilla")
        if variant != "vanilla":
            raise ValueError(
                "PeepholeLSTMCell is the 'vanilla' variant; for "
                f"variant={variant!r} use LSTMCell(units, variant={variant!r})."
            )
        super().__init__(units, variant="vanilla", **kwargs)
