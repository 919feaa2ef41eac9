"""The deep output layer of Pascanu et al. 2014 (DOT-RNN)."""

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_deeprnn.cells.base import check_units
from keras_deeprnn.layers._units import HiddenStack
from keras_deeprnn.layers._units import HiddenUnits
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.layers._units import check_widths


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepOutput(keras.layers.Layer):
    """Deep output: an MLP applied to every time step (Pascanu et al. 2014).

    The DOT-RNN of "How to Construct Deep Recurrent Neural Networks" computes
    its output y_t = psi_0(V_L psi_L(... V_1 psi_1(V h_t))) from the hidden
    state with an MLP instead of one affine map. With D = `depth` affine
    maps, psi the `unit_type` of the D-1 intermediate layers and
    psi_0 = `activation` (row vectors):

        z_0 = h_t
        z_k = psi(z_{k-1} V_k + c_k)                    k = 1 .. D-1
        y_t = psi_0(z_{D-1} V_D + c_D)

    The layer acts on the last axis, so it takes (batch, features) or
    (batch, time, features) (apply it after any RNN with
    `return_sequences=True`), and passes the mask through. With `depth=1` it
    is `keras.layers.Dense(units, activation)`, with the same weights.

    Unit types: "tanh", "relu", "maxout" and "lp", as in
    `DeepTransitionCell`.

    Weights: `hidden_kernel_k` (widths[k-2] or input_dim for k = 1,
    m widths[k-1]), `hidden_bias_k` and, for Lp units, `lp_rho_k`
    (widths[k-1],), k = 1 .. D-1 (m = `maxout_pieces` / `lp_group` for
    maxout / Lp units, else 1); `kernel` (widths[-1] or input_dim, units)
    and `bias` (units,) for the last map.

    Args:
        units: Positive integer, dimensionality of y.
        depth: Number of affine maps D (integer >= 1, default 2).
        widths: Widths of the D-1 intermediate layers: None (each as wide
            as the input), an integer, or a list of D-1 integers.
        unit_type: psi: "tanh" (default), "relu", "maxout" or "lp".
        maxout_pieces, lp_group, lp_epsilon, lp_p_init: As in
            `DeepTransitionCell`.
        activation: psi_0 (default None: linear).
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, kernel_constraint, bias_constraint: As in
            `keras.layers.Dense`, for every layer.

    Example:

    >>> rnn = keras.layers.RNN(DeepTransitionCell(8), return_sequences=True)
    >>> out = DeepOutput(3, depth=3, unit_type="maxout", activation="softmax")
    >>> tuple(out(rnn(np.zeros((2, 5, 4), "float32"))).shape)
    (2, 5, 3)
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
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.depth = check_int("depth", depth, 1)
        # None: every intermediate width is the input width, known at build.
        self.widths_arg = (
            None if widths is None else check_widths("widths", widths, self.depth - 1, None)
        )
        self.widths = self.widths_arg
        self.hidden_units = HiddenUnits(unit_type, maxout_pieces, lp_group, lp_epsilon, lp_p_init)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.supports_masking = True

    def _add_matrix(self, name, rows, columns):
        return self.add_weight(
            shape=(rows, columns),
            name=name,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def _add_vector(self, name, size):
        if not self.use_bias:
            return None
        return self.add_weight(
            shape=(size,),
            name=name,
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if len(input_shape) < 2 or input_dim is None:
            raise ValueError(
                f"DeepOutput '{self.name}' needs inputs of shape (..., "
                f"features) with a known feature dimension, got {input_shape}."
            )
        self.widths = self.widths_arg or [input_dim] * (self.depth - 1)
        self.hidden = HiddenStack(
            self.hidden_units,
            input_dim,
            self.widths,
            self._add_matrix,
            self._add_vector,
            self,
            prefix="hidden_",
        )
        rows = self.widths[-1] if self.widths else input_dim
        self.kernel = self._add_matrix("kernel", rows, self.units)
        self.bias = self._add_vector("bias", self.units)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True

    def call(self, inputs):
        y = ops.matmul(self.hidden(inputs), self.kernel)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = {
            "units": self.units,
            "depth": self.depth,
            "widths": self.widths_arg,
            **self.hidden_units.get_config(),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
        return {**super().get_config(), **config}
