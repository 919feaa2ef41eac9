"""Attention decoders: a cell for stock `keras.layers.RNN`, and a fast one.

Both read a memory (the encoder's outputs h_1..h_S, their attention keys
and a source mask) and emit the attentional vector of Luong et al. 2015,

    h~_t = tanh([c_t; s_t] W_c)                          (eq. 5)

from which a `Dense` layer computes the logits. `s_t` is the wrapped
cell's output and `c_t` the context of an attention layer of
`keras_deeprnn.seq2seq.attention`. They differ in where the context comes
from:

- `AttentionCell(cell, attention, style="bahdanau")` (Bahdanau et al.
  2015): the context is computed from the previous output s_{t-1} and
  fed to the cell, s_t = cell([x_t; c_t], s_{t-1}) with
  c_t = attend(s_{t-1}).
- `AttentionCell(..., style="luong")` (Luong et al. 2015 with input
  feeding, section 3.3): s_t = cell([x_t; h~_{t-1}], s_{t-1}),
  c_t = attend(s_t).
- `FastAttentionDecoder` (Luong et al. without input feeding): s_t does
  not depend on any context, so the recurrence runs as whole-sequence
  layers (`keras_deeprnn.layers.RNN`, the fused kernels), and the
  attention of all steps is one batched product afterwards.

Every decoder also runs one step at a time with explicit tensors
(`step`), the streaming form used for generation, which computes what
the whole-sequence call computes.
"""

import keras
from keras import ops
from keras import tree

from keras_deeprnn._compat import DropoutRNNCell
from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.cells.base import check_choice
from keras_deeprnn.cells.base import check_units
from keras_deeprnn.layers.rnn import RNN
from keras_deeprnn.layers.stacked_cells import StackedCells

STYLES = ("bahdanau", "luong")


def state_sizes(cell):
    """The flat list of a cell's state sizes."""
    sizes = cell.state_size
    return [int(s) for s in tree.flatten(sizes if isinstance(sizes, (list, tuple)) else [sizes])]


def output_size(cell):
    size = getattr(cell, "output_size", None)
    return int(size) if size is not None else state_sizes(cell)[0]


def output_state_index(cell):
    """The index of the state that equals the cell's output (h), or None.

    The library's cells output their first state; `StackedCells` outputs
    the top cell's (without output skips and residuals)."""
    if isinstance(cell, RecurrentCell):
        return 0
    if isinstance(cell, StackedCells) and not (cell.output_skip or cell.residual):
        top = output_state_index(cell.cells[-1])
        return None if top is None else sum(cell.state_counts[:-1]) + top
    if isinstance(cell, (keras.layers.LSTMCell, keras.layers.GRUCell, keras.layers.SimpleRNNCell)):
        return 0
    return None


def as_tensor(x):
    """`x` as a tensor; symbolic tensors (functional models) stay as they are."""
    return x if isinstance(x, keras.KerasTensor) else ops.convert_to_tensor(x)


def zeros(like, width):
    """Zeros `(batch, width)` with the batch (and dtype) of `like` (batch, ...),
    also for symbolic tensors, whose batch size is unknown."""
    while len(like.shape) > 2:
        like = like[:, 0]
    return ops.zeros_like(like[:, :1]) * ops.zeros((1, width), like.dtype)


def _call_cell(cell, inputs, states, training):
    kwargs = {}
    if getattr(cell, "_call_has_training_arg", False):
        kwargs["training"] = training
    output, new_states = cell(inputs, list(states), **kwargs)
    return output, list(tree.flatten(new_states))


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class AttentionCell(keras.layers.Layer, DropoutRNNCell):
    """An RNN cell with attention over a memory, for `keras.layers.RNN`.

    Wraps any RNN cell (the library's cells, `StackedCells`, deep-transition
    cells, Keras's own) and an attention layer (`BahdanauAttention`,
    `LuongAttention`). With x_t the step input, s the wrapped cell, h the
    memory and h~ the attentional vector (`output_units` wide):

    style="bahdanau" (Bahdanau et al. 2015, the context read before the
    cell, from its previous output):

        c_t = attend(s_{t-1}, h)
        s_t = cell([x_t; c_t], s_{t-1})
        h~_t = tanh([c_t; s_t] W_c)

    style="luong" (Luong et al. 2015 with input feeding):

        s_t = cell([x_t; h~_{t-1}], s_{t-1})
        c_t = attend(s_t, h)
        h~_t = tanh([c_t; s_t] W_c)

    The output is h~_t. The states are the wrapped cell's states, then one
    more: s_{t-1} (the query of the next step, "bahdanau") or h~_{t-1}
    ("luong"), then the memory: its values h, its attention keys and its
    mask (float, 1 = a real step). Keras 3's `RNN` has no `constants`, so
    the memory rides along as states the cell returns unchanged; build the
    initial states with `initial_states(memory, mask, cell_states)`.
    `state_size` lists the recurrent states only. Call the RNN without a
    mask (Keras tiles a step mask to every state's shape, which fails for a
    memory of unknown length): teacher forcing needs none, since the steps
    after a target's end do not change the steps before it; mask them out
    of the loss.

    Weights: those of the wrapped cell (input width: x_t's plus
    `memory_size` ("bahdanau") or `output_units` ("luong")), of the
    attention, and `readout` (W_c, no bias).

    Args:
        cell: The RNN cell to wrap.
        attention: A `MemoryAttention` layer (`BahdanauAttention`,
            `LuongAttention`).
        memory_size: Width of the memory's steps (the encoder's outputs).
        style: "bahdanau" or "luong" (see above).
        output_units: Width of h~ (default: the wrapped cell's output size).

    Call arguments:
        inputs: A step `(batch, features)`.
        states: The list made by `initial_states` (or the previous step's).
        training: Whether dropout (of the wrapped cell) is active.

    Example:

    >>> from keras_deeprnn.seq2seq import BahdanauAttention
    >>> cell = AttentionCell(LSTMCell(8), BahdanauAttention(8), memory_size=6)
    >>> memory = np.ones((2, 5, 6), "float32")
    >>> states = cell.initial_states(memory, mask=np.ones((2, 5), bool))
    >>> y = keras.layers.RNN(cell, return_sequences=True)(
    ...     np.ones((2, 3, 4), "float32"), initial_state=states)
    >>> tuple(y.shape)
    (2, 3, 8)
    """

    def __init__(self, cell, attention, memory_size, style="bahdanau", output_units=None, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(cell, "state_size") or not callable(cell):
            raise ValueError(f"Argument `cell` must be an RNN cell, got {cell!r}.")
        if not hasattr(attention, "attend") or not hasattr(attention, "keys"):
            raise ValueError(
                "Argument `attention` must be a layer of keras_deeprnn.seq2seq "
                f"(BahdanauAttention, LuongAttention), got {attention!r}."
            )
        self.cell = cell
        self.attention = attention
        self.memory_size = check_units(memory_size)
        self.style = check_choice("style", style, STYLES)
        self.cell_output_size = output_size(cell)
        self.output_units = check_units(output_units or self.cell_output_size)
        self.cell_state_sizes = state_sizes(cell)
        feedback = self.cell_output_size if self.style == "bahdanau" else self.output_units
        self.state_size = [*self.cell_state_sizes, feedback]
        self.output_size = self.output_units
        self.readout = keras.layers.Dense(
            self.output_units, activation="tanh", use_bias=False, name="readout"
        )

    @property
    def feed_size(self):
        """Width of what the cell reads besides x_t (c_t or h~_{t-1})."""
        return self.memory_size if self.style == "bahdanau" else self.output_units

    def build(self, input_shape):
        width = int(input_shape[-1]) + self.feed_size
        if isinstance(self.cell, keras.layers.Layer) and not self.cell.built:
            self.cell.build((input_shape[0], width))
        if not self.attention.built:
            self.attention.build((None, self.cell_output_size), (None, None, self.memory_size))
        if not self.readout.built:
            self.readout.build((None, self.memory_size + self.cell_output_size))
        self.built = True

    def initial_states(self, memory, mask=None, cell_states=None, keys=None):
        """The states of the first step: the wrapped cell's (default: its
        initial states), the feedback state, the memory, its keys (default:
        `attention.keys(memory)`) and its mask (default: all ones).

        For "bahdanau" the first query s_0 is the wrapped cell's output
        state (h) among `cell_states` (zeros when the cell's output is not
        one of its states); for "luong" h~_0 = 0.
        """
        memory = as_tensor(memory)
        if not self.attention.built:
            self.attention.build((None, self.cell_output_size), (None, None, self.memory_size))
        if cell_states is None:
            initial = getattr(self.cell, "get_initial_state", None)
            if initial is not None:
                cell_states = tree.flatten(initial(batch_size=ops.shape(memory)[0]))
            else:
                cell_states = [zeros(memory, s) for s in self.cell_state_sizes]
        cell_states = list(cell_states)
        if len(cell_states) != len(self.cell_state_sizes):
            raise ValueError(
                f"AttentionCell '{self.name}': the wrapped cell has "
                f"{len(self.cell_state_sizes)} states, got {len(cell_states)} cell_states."
            )
        index = output_state_index(self.cell)
        if self.style == "bahdanau" and index is not None:
            feedback = cell_states[index]
        else:
            feedback = zeros(memory, self.state_size[-1])
        if mask is None:
            mask = ops.ones_like(memory[..., 0])
        mask = ops.cast(mask, memory.dtype)
        if keys is None:
            keys = self.attention.keys(memory)
        return [*cell_states, feedback, memory, keys, mask]

    def get_initial_state(self, batch_size=None):
        raise ValueError(
            f"AttentionCell '{self.name}' needs its memory: call the RNN with "
            "initial_state=cell.initial_states(memory, mask, cell_states)."
        )

    def step(self, inputs, states, values, keys, mask, training=False):
        """One step with explicit tensors.

        Args:
            inputs: x_t `(batch, features)`.
            states: The wrapped cell's states and the feedback state.
            values, keys, mask: The memory `(batch, S, memory_size)`, its
                keys and its mask `(batch, S)`.
            training: Whether dropout is active.

        Returns:
            `(h~_t, new states, attention weights (batch, S))`.
        """
        count = len(self.cell_state_sizes)
        cell_states, feedback = list(states[:count]), states[count]
        if self.style == "bahdanau":
            context, weights = self.attention.attend(feedback, keys, values, mask)
            output, cell_states = _call_cell(
                self.cell, ops.concatenate([inputs, context], -1), cell_states, training
            )
            attentional = self.readout(ops.concatenate([context, output], -1))
            feedback = output
        else:
            output, cell_states = _call_cell(
                self.cell, ops.concatenate([inputs, feedback], -1), cell_states, training
            )
            context, weights = self.attention.attend(output, keys, values, mask)
            attentional = self.readout(ops.concatenate([context, output], -1))
            feedback = attentional
        return attentional, [*cell_states, feedback], weights

    def call(self, inputs, states, training=False):
        count = len(self.state_size)
        if len(states) != count + 3:
            raise ValueError(
                f"AttentionCell '{self.name}' expects {count} states and the "
                f"memory (values, keys, mask), got {len(states)} states: build "
                "them with `initial_states(memory, mask, cell_states)`."
            )
        memory = list(states[count:])
        output, new_states, _ = self.step(inputs, states[:count], *memory, training=training)
        return output, [*new_states, *memory]

    # -- dropout: the wrapped cell's masks, created once per sequence ------
    def get_dropout_mask(self, step_input):
        if isinstance(self.cell, DropoutRNNCell):
            batch = ops.shape(step_input)[0]
            width = step_input.shape[-1] + self.feed_size
            self.cell.get_dropout_mask(ops.zeros((batch, width), step_input.dtype))
            first = ops.zeros((batch, self.cell_state_sizes[0]), step_input.dtype)
            self.cell.get_recurrent_dropout_mask(first)
        return None

    def get_recurrent_dropout_mask(self, step_input):
        return None

    def reset_dropout_mask(self):
        if isinstance(self.cell, DropoutRNNCell):
            self.cell.reset_dropout_mask()
            self.cell.reset_recurrent_dropout_mask()

    def reset_recurrent_dropout_mask(self):
        self.reset_dropout_mask()

    def get_config(self):
        return {
            **super().get_config(),
            "cell": keras.saving.serialize_keras_object(self.cell),
            "attention": keras.saving.serialize_keras_object(self.attention),
            "memory_size": self.memory_size,
            "style": self.style,
            "output_units": self.output_units,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("cell", "attention"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FastAttentionDecoder(keras.layers.Layer):
    """Luong et al. 2015's decoder without input feeding, fused.

    With no context fed back, the recurrence does not depend on the
    attention, so it runs first over the whole target sequence, as one
    `keras_deeprnn.layers.RNN` per cell of `cells` (stacked, with dropout
    between them; the library's LSTM, GRU, RNN and MUT cells run as fused
    whole-sequence kernels), and the attention of all steps follows as
    batched products (one `(T, S)` score matrix per sentence):

        s_1..s_T = RNN_L(... RNN_1(x_1..x_T, s^1_0) ..., s^L_0)
        c_t = attend(s_t, h),    h~_t = tanh([c_t; s_t] W_c)     all t at once

    `step` computes one step (each cell once, then the attention), the
    streaming form of the same function for generation.

    Args:
        cells: A list of RNN cells (one per stacked layer) or one cell.
        attention: A `MemoryAttention` layer.
        memory_size: Width of the memory's steps.
        output_units: Width of h~ (default: the top cell's output size).
        dropout: Dropout rate between stacked layers (training only).

    Call arguments:
        inputs: `(batch, T, features)`.
        states: The flat list of every layer's initial states (layer 1's
            first).
        values, keys, memory_mask: The memory `(batch, S, memory_size)`,
            its keys (`attention.keys(values)`) and its mask `(batch, S)`.
        training: Whether dropout is active.
        return_attention: Also return the weights `(batch, T, S)`.

    Returns:
        h~ `(batch, T, output_units)` (and the weights).

    Example:

    >>> from keras_deeprnn.seq2seq import LuongAttention
    >>> decoder = FastAttentionDecoder([LSTMCell(6)], LuongAttention("dot"), memory_size=6)
    >>> memory = np.ones((2, 5, 6), "float32")
    >>> states = [np.zeros((2, 6), "float32")] * 2
    >>> y = decoder(np.ones((2, 3, 4), "float32"), states, memory, memory, np.ones((2, 5)))
    >>> tuple(y.shape)
    (2, 3, 6)
    """

    def __init__(self, cells, attention, memory_size, output_units=None, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells) if isinstance(cells, (list, tuple)) else [cells]
        if not cells:
            raise ValueError("Argument `cells` must hold at least one RNN cell.")
        for k, cell in enumerate(cells):
            if not hasattr(cell, "state_size") or not callable(cell):
                raise ValueError(f"Argument `cells` must hold RNN cells; cells[{k}] is {cell!r}.")
        if not hasattr(attention, "attend") or not hasattr(attention, "keys"):
            raise ValueError(
                "Argument `attention` must be a layer of keras_deeprnn.seq2seq "
                f"(BahdanauAttention, LuongAttention), got {attention!r}."
            )
        self.cells = cells
        self.attention = attention
        self.memory_size = check_units(memory_size)
        self.cell_output_size = output_size(cells[-1])
        self.output_units = check_units(output_units or self.cell_output_size)
        self.dropout = float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1), got {dropout!r}.")
        self.layer_state_sizes = [state_sizes(cell) for cell in cells]
        self.state_size = [s for sizes in self.layer_state_sizes for s in sizes]
        self.rnns = [
            RNN(cell, return_sequences=True, return_state=True, name=f"rnn_{k}")
            for k, cell in enumerate(cells)
        ]
        self.dropouts = [keras.layers.Dropout(self.dropout) for _ in cells[1:]]
        self.readout = keras.layers.Dense(
            self.output_units, activation="tanh", use_bias=False, name="readout"
        )

    def build(self, inputs_shape):
        width = int(inputs_shape[-1])
        for rnn in self.rnns:
            if not rnn.built:
                rnn.build((None, None, width))
            width = output_size(rnn.cell)
        if not self.attention.built:
            self.attention.build(
                (None, None, self.cell_output_size), (None, None, self.memory_size)
            )
        if not self.readout.built:
            self.readout.build((None, self.memory_size + self.cell_output_size))
        self.built = True

    def _split(self, states):
        states = list(states)
        if len(states) != len(self.state_size):
            raise ValueError(
                f"FastAttentionDecoder '{self.name}' has {len(self.state_size)} "
                f"states (of its {len(self.cells)} layers), got {len(states)}."
            )
        result, start = [], 0
        for sizes in self.layer_state_sizes:
            result.append(states[start : start + len(sizes)])
            start += len(sizes)
        return result

    def call(
        self, inputs, states, values, keys, memory_mask, training=False, return_attention=False
    ):
        x = inputs
        for k, (rnn, layer_states) in enumerate(zip(self.rnns, self._split(states))):
            if k:
                x = self.dropouts[k - 1](x, training=training)
            x = rnn(x, initial_state=layer_states, training=training)[0]
        context, weights = self.attention.attend(x, keys, values, memory_mask)
        outputs = self.readout(ops.concatenate([context, x], -1))
        return (outputs, weights) if return_attention else outputs

    def step(self, inputs, states, values, keys, mask, training=False):
        """One step: `(h~_t, new states, attention weights (batch, S))`."""
        x, new_states = inputs, []
        for k, (rnn, layer_states) in enumerate(zip(self.rnns, self._split(states))):
            if k:
                x = self.dropouts[k - 1](x, training=training)
            x, layer_states = _call_cell(rnn.cell, x, layer_states, training)
            new_states.extend(layer_states)
        context, weights = self.attention.attend(x, keys, values, mask)
        return self.readout(ops.concatenate([context, x], -1)), new_states, weights

    def get_config(self):
        return {
            **super().get_config(),
            "cells": [keras.saving.serialize_keras_object(c) for c in self.cells],
            "attention": keras.saving.serialize_keras_object(self.attention),
            "memory_size": self.memory_size,
            "output_units": self.output_units,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["cells"] = [
            keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)
            for c in config["cells"]
        ]
        config["attention"] = keras.saving.deserialize_keras_object(
            config["attention"], custom_objects=custom_objects
        )
        return cls(**config)
