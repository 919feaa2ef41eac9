"""Stacked RNN (sRNN) as one cell, with skip connections and residuals."""

import keras
from keras import ops
from keras import tree

from keras_deeprnn._compat import DropoutRNNCell
from keras_deeprnn.layers._units import check_bool


def _sizes(cell, index):
    """(state sizes, output size) of an RNN cell, checked."""
    if not callable(getattr(cell, "call", None)) or not hasattr(cell, "state_size"):
        raise ValueError(
            "Argument `cells` must hold RNN cells (with `call` and "
            f"`state_size`); cells[{index}] is {cell!r}."
        )
    state_size = cell.state_size
    sizes = list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]
    output = getattr(cell, "output_size", None)
    output = sizes[0] if output is None else output
    for size in sizes + [output]:
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError(
                "Argument `cells` must hold cells with integer (flat) state and "
                f"output sizes; cells[{index}] has state_size={state_size!r}, "
                f"output_size={output!r}."
            )
    return sizes, output


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class StackedCells(keras.layers.Layer, DropoutRNNCell):
    """Stacked RNN (sRNN) with skip connections and residual stacking.

    The stacked RNN of Pascanu et al. 2014 (their eq. for the sRNN),
    optionally with the skip connections of Graves 2013 and the residual
    connections of Wu et al. 2016, in one cell, so one `keras.layers.RNN`
    loop runs the whole stack (masking, `Bidirectional`, `return_state`,
    `stateful` come from the RNN layer). With L = len(cells), cell_l the
    l-th cell and o^(0)_t = x_t:

        i^(1)_t = x_t
        i^(l)_t = o^(l-1)_t,  or [x_t, o^(l-1)_t] with input_skip,  l >= 2
        h^(l)_t = cell_l(i^(l)_t, state^(l)_{t-1})
        o^(l)_t = h^(l)_t,    or h^(l)_t + o^(l-1)_t with residual, l >= 2
        output  = o^(L)_t,    or [h^(1)_t, ..., h^(L)_t] with output_skip

    For plain RNN cells this is h^(l)_t = phi(W_l h^(l)_{t-1} + U_l h^(l-1)_t)
    of the sRNN. `output_skip` feeds every layer to the output layer that
    follows (Graves: y_t = b + sum_l h^(l)_t W_l, a Dense on the
    concatenation). `residual` needs every cell after the first to have the
    output size of the one below.

    Unlike `keras.layers.StackedRNNCells`, the states are one flat list, the
    states of cell 1 first, so `RNN(..., return_state=True)` returns every
    state of every layer in order. The stack has no weights of its own; each
    cell keeps its own weights, dropout and project_inputs/step split (the
    stack's `project_inputs` is the identity: a layer above the first reads
    the same step's output of the layer below, so nothing else is
    input-only). Keras's RNN layer asks the stack for its dropout masks once
    per sequence; the stack creates those of its cells then.

    Args:
        cells: Non-empty list of RNN cells (any cell with flat integer state
            sizes: the cells of `keras_deeprnn.cells`, `DeepTransitionCell`,
            Keras's own cells, ...).
        input_skip: Feed the input x_t to every layer (Graves 2013).
        output_skip: Output the concatenation of all layers' h (Graves 2013).
        residual: Add each layer's input from below to its output (l >= 2).

    Example:

    >>> from keras_deeprnn.cells import LSTMCell
    >>> stack = StackedCells([LSTMCell(8), LSTMCell(8)], input_skip=True,
    ...                      output_skip=True)
    >>> tuple(keras.layers.RNN(stack)(np.zeros((2, 5, 3), "float32")).shape)
    (2, 16)
    """

    def __init__(self, cells, input_skip=False, output_skip=False, residual=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(
                f"Argument `cells` must be a non-empty list of RNN cells, got {cells!r}."
            )
        sizes = [_sizes(cell, k) for k, cell in enumerate(cells)]
        self.cells = list(cells)
        self.input_skip = check_bool("input_skip", input_skip)
        self.output_skip = check_bool("output_skip", output_skip)
        self.residual = check_bool("residual", residual)
        self.state_counts = [len(s) for s, _ in sizes]
        self.output_sizes = [o for _, o in sizes]
        if self.residual:
            for k in range(1, len(cells)):
                if self.output_sizes[k] != self.output_sizes[k - 1]:
                    raise ValueError(
                        "Argument `residual=True` needs every cell after the "
                        "first to have the output size of the cell below; "
                        f"got output sizes {self.output_sizes}."
                    )
        self.state_size = [size for s, _ in sizes for size in s]
        self.output_size = sum(self.output_sizes) if self.output_skip else self.output_sizes[-1]

    def build(self, input_shape):
        batch, input_dim = input_shape[0], input_shape[-1]
        below = input_dim
        for k, cell in enumerate(self.cells):
            width = below + input_dim if k > 0 and self.input_skip else below
            if isinstance(cell, keras.layers.Layer) and not cell.built:
                cell.build((batch, width))
                cell.built = True
            below = self.output_sizes[k]
        self.built = True

    def project_inputs(self, inputs):
        return inputs

    def step(self, projected, states, training=False):
        x = below = projected
        states = list(states)
        outputs, new_states, start = [], [], 0
        for k, cell in enumerate(self.cells):
            count = self.state_counts[k]
            cell_states = states[start : start + count]
            start += count
            cell_input = self._cell_input(k, x, below)
            kwargs = {}
            if getattr(cell, "_call_has_training_arg", False):
                kwargs["training"] = training
            h, cell_new = cell(cell_input, cell_states, **kwargs)
            new_states.extend(tree.flatten(cell_new))
            below = h + below if self.residual and k > 0 else h
            outputs.append(h)
        if self.output_skip:
            return ops.concatenate(outputs, axis=-1), new_states
        return below, new_states

    def call(self, inputs, states, training=False):
        return self.step(self.project_inputs(inputs), states, training)

    def _cell_input(self, k, x, below):
        if k > 0 and self.input_skip:
            return ops.concatenate([x, below], axis=-1)
        return below

    def get_initial_state(self, batch_size=None):
        states = []
        for cell, count in zip(self.cells, self.state_counts):
            initial = getattr(cell, "get_initial_state", None)
            if initial is not None:
                states.extend(tree.flatten(initial(batch_size=batch_size)))
            else:
                sizes = cell.state_size if count > 1 else [cell.state_size]
                states.extend(
                    ops.zeros((batch_size, s), dtype=self.compute_dtype)
                    for s in tree.flatten(sizes)
                )
        return states

    # -- dropout: create the cells' masks once per sequence ---------------
    def get_dropout_mask(self, step_input):
        batch = ops.shape(step_input)[0]
        dtype = step_input.dtype
        start = 0
        x = below = step_input
        for k, cell in enumerate(self.cells):
            if isinstance(cell, DropoutRNNCell):
                cell.get_dropout_mask(self._cell_input(k, x, below))
                first_state = ops.zeros((batch, self.state_size[start]), dtype=dtype)
                cell.get_recurrent_dropout_mask(first_state)
            start += self.state_counts[k]
            below = ops.zeros((batch, self.output_sizes[k]), dtype=dtype)
        return None

    def get_recurrent_dropout_mask(self, step_input):
        return None

    def reset_dropout_mask(self):
        for cell in self.cells:
            if isinstance(cell, DropoutRNNCell):
                cell.reset_dropout_mask()
                cell.reset_recurrent_dropout_mask()

    def reset_recurrent_dropout_mask(self):
        self.reset_dropout_mask()

    def get_config(self):
        config = {
            "cells": [keras.saving.serialize_keras_object(c) for c in self.cells],
            "input_skip": self.input_skip,
            "output_skip": self.output_skip,
            "residual": self.residual,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cells = [
            keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)
            for c in config.pop("cells")
        ]
        return cls(cells, **config)
