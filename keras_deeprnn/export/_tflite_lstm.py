"""LSTM layers as TFLite's fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op.

The TFLite converter replaces a function that carries the attribute
`api_implements="lstm_<id>"` (the one tf.keras's LSTM layer used to set) by
the fused op, built from the function's arguments

    (inputs (batch, time, features), h_0, c_0, kernel (features, 4 units),
     recurrent_kernel (units, 4 units), bias (4 units,))

with the gate blocks in Keras's order i, f, c, o, and the function's
`time_major` / `go_backwards` attributes; of its five results (last output,
outputs, h_T, c_T, runtime) only the first two may be used. That op is the
plain LSTM:

    i = s(x W_i + h R_i + b_i)    f = s(x W_f + h R_f + b_f)
    c' = f * c + i * tanh(x W_c + h R_c + b_c)
    o = s(x W_o + h R_o + b_o)    h' = o * tanh(c')

The op itself also has peepholes (p_i c and p_f c in i and f, p_o c' in o)
and CIFG (no input-gate weights: i = 1 - f), which no converter path fills
from a Keras model, so `finish` adds them to the converted file:
the peephole vectors as the op's `cell_to_*` inputs, and for our CIFG
(f = 1 - i) the input gate's weights, negated, in the forget gate's place,
since 1 - s(-z) = s(z). These take float32 weights only.

`fusable` says whether a layer is such an LSTM; `fused_lstm` runs it (in
TensorFlow, the plain recurrence written out, which the converter
discards).
"""

import copy
import uuid

import keras
import numpy as np
import tensorflow as tf

from keras_deeprnn.cells.lstm import LSTMCell


def _name(function):
    return getattr(function, "__name__", None)


class Fusable:
    """The fused op's weights for one LSTM layer: the plain LSTM's 4-gate
    `kernel`, `recurrent_kernel`, `bias` (tensors of the traced function,
    what the converter reads) and what `finish` adds: `peepholes`
    {op input slot: (our gate, sign)} and `cifg`. `cell` gives the
    values, read after the conversion."""

    def __init__(self, cell, kernel, recurrent_kernel, bias, peepholes=None, cifg=False):
        self.cell = cell
        self.kernel, self.recurrent_kernel, self.bias = kernel, recurrent_kernel, bias
        self.peepholes = dict(peepholes or {})
        self.cifg = cifg

    @property
    def attached(self):
        return bool(self.peepholes) or self.cifg

    def peephole_values(self):
        """{op input slot: float32 vector}."""
        return {
            slot: sign * np.asarray(self.cell.peepholes[gate], np.float32)
            for slot, (gate, sign) in self.peepholes.items()
        }

    def cell_weights(self):
        """The cell gate's input weights as the op holds them, (units, features)."""
        units = self.cell.units
        at = 1 if self.cifg else 2  # our blocks: [i, c, o] (CIFG), [i, f, c, o]
        return np.asarray(self.cell.kernel, np.float32)[:, at * units : (at + 1) * units].T


# TFLite's lstm_shared.h: kInputToInputWeightsTensor, kRecurrentToInputWeightsTensor,
# kInputGateBiasTensor; kCellToInputWeightsTensor, ...ToForget..., ...ToOutput...
_INPUT_GATE_INPUTS = (1, 5, 12)
_PEEPHOLE_INPUTS = {"i": 9, "f": 10, "o": 11}
_CELL_WEIGHTS = 3  # kInputToCellWeightsTensor, (units, features): finds a layer's op


def fusable(layer, float_weights=True):
    """A `Fusable` for a `keras.layers.RNN` whose output TFLite's fused LSTM
    op computes exactly, or a string saying why not. The peephole and CIFG
    variants need `float_weights` (no quantization)."""
    cell = layer.cell
    if isinstance(cell, LSTMCell):
        if cell.variant not in ("np", "vanilla", "cifg"):
            return (
                f"variant {cell.variant!r} (the fused op has the plain LSTM, "
                "peepholes and CIFG: 'np', 'vanilla', 'cifg')"
            )
        if cell.variant != "np" and not float_weights:
            return f"variant {cell.variant!r} fuses with float32 weights only (quantize=None)"
        activations = (cell.input_activation, cell.output_activation, cell.recurrent_activation)
    elif isinstance(cell, keras.layers.LSTMCell):
        activations = (cell.activation, cell.activation, cell.recurrent_activation)
    else:
        return f"its cell is a {type(cell).__name__}, not an LSTM cell"
    if tuple(_name(a) for a in activations) != ("tanh", "tanh", "sigmoid"):
        return "its activations are not tanh (input, output) and sigmoid (gates)"
    if layer.return_state:
        return "it returns its states (the fused op gives only the outputs)"
    kernel, recurrent_kernel = (
        tf.convert_to_tensor(w) for w in (cell.kernel, cell.recurrent_kernel)
    )
    bias = (
        tf.convert_to_tensor(cell.bias)
        if cell.use_bias
        else tf.zeros((kernel.shape[-1],), kernel.dtype)
    )
    variant = getattr(cell, "variant", "np")
    if variant != "cifg":
        slots = {_PEEPHOLE_INPUTS[g]: (g, 1.0) for g in getattr(cell, "peepholes", {})}
        return Fusable(cell, kernel, recurrent_kernel, bias, slots)

    def four_gates(w):  # our blocks [i, c, o] -> the op's [unused, -i, c, o]
        i, c, o = tf.split(w, 3, axis=-1)
        return tf.concat([tf.zeros_like(i), -i, c, o], axis=-1)

    return Fusable(
        cell,
        four_gates(kernel),
        four_gates(recurrent_kernel),
        four_gates(bias),
        {_PEEPHOLE_INPUTS["f"]: ("i", -1.0), _PEEPHOLE_INPUTS["o"]: ("o", 1.0)},
        cifg=True,
    )


def _recurrence(go_backwards):
    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps = inputs.shape[1]
        projected = tf.einsum("btd,dg->tbg", inputs, kernel) + bias
        if go_backwards:
            projected = tf.reverse(projected, [0])

        def body(t, h, c, array):
            i, f, g, o = tf.split(projected[t] + tf.matmul(h, recurrent_kernel), 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            return t + 1, h, c, array.write(t, h)

        array = tf.TensorArray(inputs.dtype, size=steps, element_shape=init_h.shape)
        _, h, c, array = tf.while_loop(lambda t, *_: t < steps, body, (0, init_h, init_c, array))
        outputs = tf.transpose(array.stack(), [1, 0, 2])
        return h, outputs, h, c, tf.constant(0.0)

    return lstm


def fused_lstm(layer, inputs, weights):
    """The output of LSTM `layer` on `inputs` (static batch and time) as one
    function that the converter fuses (`weights`: a `Fusable`); returns the
    sequence of outputs or the last one, as the layer does."""
    function = tf.function(
        _recurrence(layer.go_backwards),
        autograph=False,
        experimental_attributes={
            # A name of its own per call, as tf.keras did, so that two layers
            # are two functions.
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": bool(layer.go_backwards),
        },
    )
    kernel, recurrent_kernel, bias = weights.kernel, weights.recurrent_kernel, weights.bias
    zeros = tf.zeros((inputs.shape[0], recurrent_kernel.shape[0]), inputs.dtype)
    last, outputs, _, _, _ = function(inputs, zeros, zeros, kernel, recurrent_kernel, bias)
    return outputs if layer.return_sequences else last


#: The fused op's inputs that hold its states (TFLite's lstm_shared.h:
#: kOutputStateTensor, kCellStateTensor). LiteRT keeps them as variable
#: tensors: the op starts from them and leaves its final states there.
STATE_INPUTS = (18, 19)


def finish(flatbuffer, fused):
    """The converted `flatbuffer` made right for the `Fusable`s `fused`:

    - each state input of each fused op gets a tensor of its own. The
      converter merges equal constants, so the zeros that start a fused LSTM
      can be the same tensor as another layer's zero states; LiteRT writes
      the LSTM's final states into it, and the other layer would then start
      from them;
    - the peepholes and CIFG of the layers that have them (module
      docstring), each layer's op found by its input-to-cell weights."""
    from tensorflow.lite.tools import flatbuffer_utils as fb

    model = fb.convert_bytearray_to_object(bytearray(flatbuffer))
    code = fb.schema_fb.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    opcodes = {
        k
        for k, c in enumerate(model.operatorCodes)
        if fb.schema_util.get_builtin_code_from_operator_code(c) == code
    }
    pending = [f for f in fused if f.attached]
    for subgraph in model.subgraphs:
        uses = {}
        for op in subgraph.operators:
            for index in op.inputs:
                uses[index] = uses.get(index, 0) + 1

        def new_tensor(like, name, data=None, subgraph=subgraph):
            tensor = copy.deepcopy(like)
            tensor.name = name
            if data is not None:
                model.buffers.append(fb.schema_fb.BufferT())
                model.buffers[-1].data = np.frombuffer(data.tobytes(), np.uint8)
                tensor.buffer = len(model.buffers) - 1
                tensor.shape = np.array(data.shape, np.int32)
                tensor.isVariable = False
            subgraph.tensors.append(tensor)
            return len(subgraph.tensors) - 1

        for op in subgraph.operators:
            if op.opcodeIndex not in opcodes:
                continue
            inputs = list(op.inputs)
            for slot in STATE_INPUTS:
                index = inputs[slot]
                if uses[index] > 1:
                    uses[index] -= 1
                    inputs[slot] = new_tensor(
                        subgraph.tensors[index], (subgraph.tensors[index].name or b"") + b"_state"
                    )
                    subgraph.tensors[inputs[slot]].isVariable = True
            spec = _find(pending, model, subgraph, inputs)
            if spec is not None:
                pending.remove(spec)
                like = subgraph.tensors[inputs[_CELL_WEIGHTS]]
                for slot, vector in spec.peephole_values().items():
                    inputs[slot] = new_tensor(like, b"peephole_%d" % slot, vector)
                if spec.cifg:
                    for slot in _INPUT_GATE_INPUTS:
                        inputs[slot] = -1
            op.inputs = np.array(inputs, np.int32)
    if pending:
        raise ValueError(
            f"{len(pending)} fused LSTM op(s) with peepholes or CIFG were not "
            "found in the converted model."
        )
    return bytes(fb.convert_object_to_bytearray(model))


def _find(pending, model, subgraph, inputs):
    """The `Fusable` of `pending` whose cell-gate input weights (transposed)
    are the op's, or None."""
    tensor = subgraph.tensors[inputs[_CELL_WEIGHTS]]
    data = model.buffers[tensor.buffer].data
    if data is None or tensor.type != 0:  # FLOAT32
        return None
    weights = np.frombuffer(bytes(data), np.float32).reshape(tuple(tensor.shape))
    for spec in pending:
        ours = spec.cell_weights()
        if ours.shape == weights.shape and np.array_equal(ours, weights):
            return spec
    return None
