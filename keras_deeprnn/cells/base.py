"""Shared machinery of the library's recurrent cells.

Every cell splits its step into two parts:

* `project_inputs(x)`: everything that depends on the input alone (the input
  kernel product, biases, elementwise input terms). It works on a single step
  `(batch, input_dim)` or on a whole sequence `(batch, time, input_dim)`, so a
  sequence layer can compute it for all steps in one matrix product.
* `step(projected, states, training)`: the recurrent part that must stay in
  the loop.

`call(inputs, states)` is `step(project_inputs(inputs), states)`, which is what
stock `keras.layers.RNN` drives. A cell whose whole recurrence one of the
whole-sequence kernels of `keras_deeprnn.layers` computes says which, and
with what weights, in `fused_spec()`.
"""

import dataclasses

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_deeprnn._compat import DropoutRNNCell


def check_units(units):
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"Argument `units` must be a positive integer, got {units!r}.")
    return units


def check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"Argument `{name}` must be a float in [0, 1), got {value!r}.")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Argument `{name}` must be in [0, 1), got {value!r}.")
    return float(value)


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(
            f"Unknown `{name}`={value!r}. Allowed values: "
            + ", ".join(repr(a) for a in allowed)
            + "."
        )
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class FusedSpec:
    """The whole-sequence kernel that computes a cell, and its weights.

    `keras_deeprnn.layers.RNN` runs the kernel on P = `project_inputs(x)`
    of every step; at each step it multiplies h_{t-1} (times the
    recurrent-dropout mask) by `recurrent_kernel`.

    Attributes:
        kind: The kernel: "rnn", "gru", "lstm" (variant "np"),
            "lstm-<variant>" or "mut1", "mut2", "mut3".
        recurrent_kernel: The matrix R of that product, (units, G) with G
            the width of P.
        extra: The kernel's other weights: the LSTM's peepholes (of its
            gates, in the order i, f, o) and, for "lstm-fgr", the gate
            recurrent kernel; the MUT cells' recurrent blocks other than R;
            else empty.
        recurrent_bias: The bias added to the product (the GRU's), or None.
        leak: The SimpleRNN's fixed leak rate.
        cudnn: "lstm" or "gru" where Keras's cuDNN LSTM or GRU (with
            `reset_after=True`) computes the cell from its `kernel`,
            `recurrent_kernel` and `bias` as they are (Keras's layout):
            on a GPU the layer runs that instead; else None.
    """

    kind: str
    recurrent_kernel: object
    extra: tuple = ()
    recurrent_bias: object = None
    leak: float = 0.0
    cudnn: str = None


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class: argument handling, weights, dropout and input checks.

    Subclasses set `self.state_size`, implement `build_weights(input_dim)`,
    `project_inputs(x)` and `step(projected, states, training)`, and extend
    `get_config()` with their own arguments. A cell that a whole-sequence
    kernel computes overrides `fused_spec()`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the candidate/output nonlinearity.
        recurrent_activation: Activation of the gates.
        use_bias: Whether the cell uses bias vectors.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers of the input kernel, the recurrent kernel and the
            bias.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Optional regularizers of the same weights.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Optional constraints of the same weights.
        dropout: Float in [0, 1): fraction of the inputs to drop (one mask
            per sequence, as in Keras).
        recurrent_dropout: Float in [0, 1): fraction of the recurrent state
            `h_{t-1}` to drop in the recurrent products (Gal & Ghahramani).
        seed: Random seed for dropout.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [self.units]
        self.output_size = self.units
        self.input_dim = None

    # -- weights --------------------------------------------------------
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects step inputs of "
                "shape (batch, features), i.e. sequences of shape (batch, "
                f"time, features); got a step shape {input_shape}."
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the feature "
                "dimension of the inputs must be known; got shape "
                f"{input_shape}."
            )
        self.input_dim = int(input_shape[-1])
        self.build_weights(self.input_dim)
        self.built = True

    def build_weights(self, input_dim):
        raise NotImplementedError

    def add_kernel(self, columns, input_dim=None):
        """The input kernel `(input_dim, columns)`."""
        return self.add_weight(
            shape=(input_dim or self.input_dim, columns),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def add_recurrent_kernel(self, columns, name="recurrent_kernel", rows=None):
        """A recurrent matrix `(rows or units, columns)`."""
        return self.add_weight(
            shape=(rows or self.units, columns),
            name=name,
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )

    def add_bias(self, shape, initializer=None):
        if not self.use_bias:
            return None
        return self.add_weight(
            shape=shape,
            name="bias",
            initializer=initializer or self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    # -- the step -------------------------------------------------------
    def project_inputs(self, inputs):
        raise NotImplementedError

    def step(self, projected, states, training=False):
        raise NotImplementedError

    def fused_spec(self):
        """The whole-sequence kernel that computes this (built) cell.

        `keras_deeprnn.layers.RNN` runs the kernel in place of the loop
        over `step` on the TensorFlow backend; the weights are the cell's
        own variables (or slices of them), which the layer casts to the
        compute dtype. The base class returns None: the layer then loops
        over `step`, differentiated by the backend.

        Returns:
            A `FusedSpec`, or None when no kernel computes this cell (e.g.
            with activations other than the kernels' tanh and sigmoid).
        """
        return None

    def _fusable(self, owner, gated=True):
        """Whether the kernel written for `owner`'s equations computes this
        cell: a subclass that changes `project_inputs`, `step` or
        `recurrent_input` (the deep-transition cells) computes something
        else, and the kernels hard-code tanh and, for `gated` cells,
        sigmoid gates."""
        cls = type(self)
        if any(
            getattr(cls, name) is not getattr(owner, name)
            for name in ("project_inputs", "step", "recurrent_input")
        ):
            return False
        return self.activation is activations.tanh and (
            not gated or self.recurrent_activation is activations.sigmoid
        )

    def _cudnn(self, kind):
        """`kind` for `FusedSpec.cudnn` where cuDNN computes this cell as
        it is: cuDNN's kernels always add biases and have no recurrent
        dropout (like `keras.layers.LSTM` / `GRU`, a cell with recurrent
        dropout keeps its loop in inference too)."""
        return kind if self.use_bias and not self.recurrent_dropout else None

    def check_inputs(self, inputs):
        shape = tuple(inputs.shape)
        if len(shape) != 2 or (shape[-1] is not None and shape[-1] != self.input_dim):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was built for "
                f"{self.input_dim} input features per step, got a step "
                f"input of shape {shape} (sequences must be (batch, time, "
                f"{self.input_dim}))."
            )

    def call(self, inputs, states, training=False):
        self.check_inputs(inputs)
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        return self.step(self.project_inputs(inputs), states, training)

    def recurrent_input(self, h, training):
        """What the recurrent products read in place of `h_{t-1}`.

        Here `h_{t-1}` itself, with the recurrent dropout mask in training.
        Deep-transition cells (`keras_deeprnn.layers`) override this hook to
        pass `h_{t-1}` through an MLP; the cell's own update (peepholes, the
        GRU interpolation) keeps reading the raw state.
        """
        if training and self.recurrent_dropout > 0:
            return h * self.get_recurrent_dropout_mask(h)
        return h

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def slices(tensor, count, units):
    """Split the last axis of `tensor` into `count` slices of `units` (the
    first `count * units` columns)."""
    if tensor.shape[-1] == count * units:
        # One split op instead of `count` strided slices (fewer ops per step
        # in the loop, and in exported TFLite graphs).
        return ops.split(tensor, count, axis=-1)
    return [tensor[..., k * units : (k + 1) * units] for k in range(count)]
