"""LSTM layers as TFLite's fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op.

The TFLite converter replaces a function that carries the attribute
`api_implements="lstm_<id>"` (the one tf.keras's LSTM layer used to set) by
the fused op, built from the function's arguments

    (inputs (batch, time, features), h_0, c_0, kernel (features, 4 units),
     recurrent_kernel (units, 4 units), bias (4 units,))

with the gate blocks in Keras's order i, f, c, o, and the function's
`time_major` / `go_backwards` attributes; of its five results (last output,
outputs, h_T, c_T, runtime) only the first two may be used. The op has no
peepholes on this path, no mask and no coupled gates, so only the plain
LSTM fuses:

    i = sigmoid(x W_i + h R_i + b_i)    f = sigmoid(x W_f + h R_f + b_f)
    c' = f * c + i * tanh(x W_c + h R_c + b_c)
    o = sigmoid(x W_o + h R_o + b_o)    h' = o * tanh(c')

`fusable_weights` says whether a layer is such an LSTM; `fused_lstm` runs
it (in TensorFlow, the same recurrence written out, which the converter
then discards).
"""

import copy
import uuid

import keras
import tensorflow as tf

from keras_deeprnn.cells.lstm import LSTMCell


def _name(function):
    return getattr(function, "__name__", None)


def fusable_weights(layer):
    """``(kernel, recurrent_kernel, bias)`` of a `keras.layers.RNN` whose
    output TFLite's fused LSTM op computes exactly, or a string saying why
    not."""
    cell = layer.cell
    if isinstance(cell, LSTMCell):
        if cell.variant != "np":
            return f"variant {cell.variant!r} (only 'np', without peepholes, fuses)"
        activations = (cell.input_activation, cell.output_activation, cell.recurrent_activation)
    elif isinstance(cell, keras.layers.LSTMCell):
        activations = (cell.activation, cell.activation, cell.recurrent_activation)
    else:
        return f"its cell is a {type(cell).__name__}, not an LSTM cell"
    if tuple(_name(a) for a in activations) != ("tanh", "tanh", "sigmoid"):
        return "its activations are not tanh (input, output) and sigmoid (gates)"
    if layer.return_state:
        return "it returns its states (the fused op gives only the outputs)"
    bias = cell.bias if cell.use_bias else tf.zeros((4 * cell.units,), layer.compute_dtype)
    return tuple(tf.convert_to_tensor(w) for w in (cell.kernel, cell.recurrent_kernel, bias))


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
        _, h, c, array = tf.while_loop(
            lambda t, *_: t < steps, body, (0, init_h, init_c, array)
        )
        outputs = tf.transpose(array.stack(), [1, 0, 2])
        return h, outputs, h, c, tf.constant(0.0)

    return lstm


def fused_lstm(layer, inputs, weights):
    """The output of LSTM `layer` on `inputs` (static batch and time) as one
    function that the converter fuses; returns the sequence of outputs or
    the last one, as the layer does."""
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
    kernel, recurrent_kernel, bias = weights
    zeros = tf.zeros((inputs.shape[0], recurrent_kernel.shape[0]), inputs.dtype)
    last, outputs, _, _, _ = function(inputs, zeros, zeros, kernel, recurrent_kernel, bias)
    return outputs if layer.return_sequences else last


#: The fused op's inputs that hold its states (TFLite's lstm_shared.h:
#: kOutputStateTensor, kCellStateTensor). LiteRT keeps them as variable
#: tensors: the op starts from them and leaves its final states there.
STATE_INPUTS = (18, 19)


def unshare_states(flatbuffer):
    """`flatbuffer` with a tensor of its own for each state input of each
    fused LSTM op. The converter merges equal constants, so the zeros that
    start a fused LSTM can be the same tensor as another layer's zero
    states; LiteRT writes the LSTM's final states into it, and the other
    layer would then start from them."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    code = flatbuffer_utils.schema_fb.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    fused = {
        k for k, c in enumerate(model.operatorCodes)
        if flatbuffer_utils.schema_util.get_builtin_code_from_operator_code(c) == code
    }
    changed = False
    for subgraph in model.subgraphs:
        uses = {}
        for op in subgraph.operators:
            for index in op.inputs:
                uses[index] = uses.get(index, 0) + 1
        for op in subgraph.operators:
            if op.opcodeIndex not in fused:
                continue
            for slot in STATE_INPUTS:
                index = op.inputs[slot]
                if uses[index] > 1:
                    tensor = copy.deepcopy(subgraph.tensors[index])
                    tensor.name = (tensor.name or b"") + b"_state"
                    tensor.isVariable = True
                    subgraph.tensors.append(tensor)
                    op.inputs[slot] = len(subgraph.tensors) - 1
                    uses[index] -= 1
                    changed = True
    if not changed:
        return flatbuffer
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
