"""Model walking: a Keras model as TensorFlow functions that convert to
TFLite builtin ops.

Keras's own `RNN` layer runs its cell in a `tf.while_loop` over a
`TensorArray` whose shapes depend on the batch and time of the call, which
the TFLite converter can only express with Flex ops. This module re-runs the
model's graph layer by layer instead, with every recurrent layer replaced by

* `sequence` mode: `cell.project_inputs(x)` over the whole (static-length)
  sequence in one matrix product, then a loop of `cell.step` (a static-shape
  `tf.while_loop`, which becomes a builtin `WHILE`, or an unrolled loop);
  masked steps (padding) carry the states and repeat the previous output, as
  Keras does;
* `streaming` mode: one `cell.step` with the states as explicit inputs and
  outputs (no loop at all).

Cells without the `project_inputs`/`step` split (Keras's own cells) run
their `call` at every step. Every other layer runs as itself (`sequence`) or
on one time step (`streaming`, only for layers that act on each step on its
own). A layer that cannot run this way raises `ExportError` naming it.
"""

import keras
import tensorflow as tf
from keras import tree

from keras_deeprnn.export._tflite_lstm import fusable
from keras_deeprnn.export._tflite_lstm import fused_lstm
from keras_deeprnn.layers.deep_output import DeepOutput
from keras_deeprnn.layers.nade import NADE
from keras_deeprnn.layers.tied_embedding import TiedEmbedding
from keras_deeprnn.utils import sublayers


class ExportError(ValueError):
    """A model, a layer or a file that cannot be exported or loaded; the
    message names it and says why."""


# Layers that act on each time step on their own (or on the last axis only),
# so that the streaming export may run them on one step.
PER_STEP_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Dense,
    keras.layers.Embedding,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
    keras.layers.LayerNormalization,
    keras.layers.BatchNormalization,
    keras.layers.Masking,
    keras.layers.Identity,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
    DeepOutput,
    TiedEmbedding,
)
# Identities at inference; SpatialDropout1D would refuse one step's 2D input.
INFERENCE_IDENTITY_LAYERS = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
STRING_LAYERS = (
    keras.layers.TextVectorization,
    keras.layers.StringLookup,
    keras.layers.Hashing,
)


def describe(layer):
    return f"layer '{layer.name}' ({type(layer).__name__})"


def state_sizes(cell):
    sizes = cell.state_size
    return [int(s) for s in tree.flatten(sizes)]


def check_model(model):
    """Refuses what no mode can export, naming the layer."""
    if not isinstance(model, keras.Model):
        raise ExportError(f"Expected a keras.Model, got {type(model).__name__}.")
    if not model.built or not model.inputs:
        raise ExportError(
            f"Model '{model.name}' has no known inputs: build it on a "
            "keras.Input (Sequential([keras.Input(...), ...]) or the "
            "functional API) before exporting."
        )
    for layer in sublayers(model):
        if isinstance(layer, STRING_LAYERS):
            raise ExportError(
                f"{describe(layer)} processes strings, which TFLite builtin "
                "ops cannot do: export the numeric sub-model behind it (ids "
                "in) and do this step in the app."
            )
        if isinstance(layer, NADE):
            raise ExportError(
                f"{describe(layer)} is a NADE output: its model reads the target "
                "frames, and a frame is drawn from it key by key, which the export "
                "(of per-step outputs) does not cover."
            )
        if isinstance(layer, keras.layers.RNN) and layer.stateful:
            raise ExportError(
                f"{describe(layer)} is stateful; rebuild it with "
                "stateful=False and use mode='streaming' to carry the states."
            )
    for tensor in model.inputs:
        if tensor.dtype == "string":
            raise ExportError(
                f"Input '{tensor.name}' of model '{model.name}' is a string "
                "tensor, which TFLite builtin ops cannot process."
            )


def _call_layer(layer, args, kwargs, masks):
    """Runs a non-recurrent layer as Keras would, with explicit masks."""
    kwargs = dict(kwargs)
    if getattr(layer, "_call_has_training_arg", False):
        kwargs["training"] = False
    mask = masks[0] if len(masks) == 1 else masks
    has_mask = any(m is not None for m in masks)
    if has_mask and getattr(layer, "_call_has_mask_arg", False):
        kwargs["mask"] = mask
    outputs = layer(*args, **kwargs)
    inputs = args[0]
    out_mask = layer.compute_mask(inputs, mask if has_mask else None)
    return outputs, out_mask


class Program:
    """A model as functions of TF tensors, for one export mode.

    Args:
        model: A built Keras model.
        mode: "sequence" or "streaming".
        unroll: Sequence mode: unroll the time loop instead of `WHILE`.
        fuse_lstm: Sequence mode: run the LSTM layers that TFLite's fused
            LSTM op computes as that op (`_tflite_lstm`); `fused` lists
            them ({name: `Fusable`}), `unfused` says why the others are not.
        float_weights: The file keeps float32 weights (no quantization),
            which the fused peephole and CIFG LSTMs need.
    """

    def __init__(self, model, mode, unroll=False, fuse_lstm=False, float_weights=True):
        check_model(model)
        self.model = model
        self.mode = mode
        self.unroll = unroll
        self.fuse_lstm = fuse_lstm
        self.float_weights = float_weights
        self.fused, self.unfused = {}, {}
        self.lengths = None
        self.base_mask = None
        # Streaming: the recurrent layers in the order the graph runs them,
        # with their state sizes (found by a first run, see `state_specs`).
        self.recurrent = []
        self._states_in = None
        self._states_out = None
        # The non-recurrent layers run and their input specs, to find the
        # one that does not convert when a conversion fails.
        self.visited = []

    # -- the graph --------------------------------------------------------
    def run(self, inputs, lengths=None, states=None):
        """The model's outputs (a list) for `inputs` (a list of tensors).

        Sequence mode: inputs are whole sequences `(batch, T, ...)` and
        `lengths` (batch,) masks the steps t >= length. Streaming mode:
        inputs are one step `(batch, ...)` and `states` the flat list of
        every recurrent layer's states; returns (outputs, new states).
        """
        self.base_mask = None
        self.lengths = lengths
        if lengths is not None:
            steps = inputs[0].shape[1]
            self.base_mask = tf.sequence_mask(lengths, steps)
        self._states_in = None if states is None else list(states)
        self._states_out = []
        self._recording = states is None and self.mode == "streaming"
        self.visited = []
        self.fused, self.unfused = {}, {}
        if self._recording:
            self.recurrent = []
        masks = [self.base_mask] * len(inputs)
        outputs, _ = self._run_model(self.model, list(inputs), masks)
        if self.mode == "streaming":
            return outputs, self._states_out
        return outputs

    def _run_model(self, model, inputs, masks):
        if isinstance(model, keras.Sequential):
            x, mask = inputs[0], masks[0]
            for layer in model.layers:
                x, mask = self._run_layer(layer, (x,), {}, [mask])
            return [x], [mask]
        values = {id(t): (value, mask) for t, value, mask in zip(model.inputs, inputs, masks)}
        results = [self._evaluate(t, values) for t in model.outputs]
        return [r[0] for r in results], [r[1] for r in results]

    def _evaluate(self, tensor, values):
        """(value, mask) of a symbolic tensor of a functional model, running
        only the nodes it depends on (not, e.g., Keras's mask nodes)."""
        if id(tensor) not in values:
            operation, node_index, _ = tensor._keras_history
            node = operation._inbound_nodes[node_index]
            needed = node.input_tensors
            if self.mode == "streaming" and "mask" in node.arguments.kwargs:
                # One step has no padding: leave the mask (and the nodes
                # that compute it) out.
                masks_in = {id(t) for t in tree.flatten(node.arguments.kwargs["mask"])}
                needed = [t for t in needed if id(t) not in masks_in]
            for t in needed:
                self._evaluate(t, values)
            args, kwargs = node.arguments.fill_in({k: v[0] for k, v in values.items()})
            if self.mode == "streaming":
                kwargs.pop("mask", None)
            masks = [
                values[id(t)][1]
                for t in tree.flatten(node.arguments.args)
                if isinstance(t, keras.KerasTensor)
            ]
            outputs, out_masks = self._run_layer(operation, args, kwargs, masks)
            outputs = tree.flatten(outputs)
            if not isinstance(out_masks, (list, tuple)):
                out_masks = [out_masks] * len(outputs)
            for t, y, m in zip(node.outputs, outputs, out_masks):
                values[id(t)] = (y, m)
        return values[id(tensor)]

    def _run_layer(self, layer, args, kwargs, masks):
        if isinstance(layer, keras.layers.InputLayer):
            return args[0], masks[0]
        if isinstance(layer, keras.Model):
            outputs, out_masks = self._run_model(layer, list(tree.flatten(args)), masks)
            if len(outputs) == 1:
                return outputs[0], out_masks[0]
            return outputs, out_masks
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            if set(kwargs) - {"training", "mask"}:
                raise ExportError(
                    f"{describe(layer)} is called with "
                    f"{sorted(set(kwargs) - {'training', 'mask'})}; only the "
                    "sequence input (and its mask) can be exported."
                )
            mask = kwargs.get("mask", masks[0])
            if isinstance(layer, keras.layers.Bidirectional):
                return self._bidirectional(layer, args[0], mask)
            return self._rnn(layer, args[0], mask)
        if not isinstance(layer, keras.layers.Layer) and self.mode == "sequence":
            # A keras.ops operation of a functional model (e.g. the
            # `x != 0` of a mask): it runs as it is, without masks.
            return layer(*args, **kwargs), None
        if all(isinstance(a, tf.Tensor) for a in args) and not kwargs:
            self.visited.append((layer, [tf.TensorSpec(a.shape, a.dtype) for a in args]))
        if self.mode == "streaming":
            return self._step_layer(layer, args, kwargs), None
        outputs, out_mask = _call_layer(layer, args, kwargs, masks)
        if (
            out_mask is not None
            and self.base_mask is not None
            and out_mask is not self.base_mask
            and not isinstance(out_mask, (list, tuple))
            and out_mask.shape.rank == 2
        ):
            out_mask = tf.logical_and(out_mask, self.base_mask)
        return outputs, out_mask

    def _step_layer(self, layer, args, kwargs):
        if isinstance(layer, keras.layers.TimeDistributed):
            return self._step_layer(layer.layer, args, kwargs)
        if not isinstance(layer, PER_STEP_LAYERS):
            raise ExportError(
                f"{describe(layer)} is not known to act on each time step on "
                "its own, so a streaming export (one time step per invoke) "
                "cannot run it; export it with mode='sequence'."
            )
        if isinstance(layer, keras.layers.Concatenate) and layer.axis != -1:
            raise ExportError(
                f"{describe(layer)} concatenates along axis {layer.axis}; a "
                "streaming export only supports axis=-1."
            )
        if isinstance(layer, INFERENCE_IDENTITY_LAYERS):
            return args[0]
        outputs, _ = _call_layer(layer, args, kwargs, [None])
        return outputs

    # -- recurrent layers -------------------------------------------------
    def _bidirectional(self, layer, x, mask):
        if self.mode == "streaming":
            raise ExportError(
                f"{describe(layer)} reads the sequence backwards, which needs "
                "the whole sequence: export it with mode='sequence'."
            )
        forward, out_mask = self._rnn(layer.forward_layer, x, mask)
        backward, _ = self._rnn(layer.backward_layer, x, mask)
        if layer.return_state:
            states = list(forward[1:]) + list(backward[1:])
            forward, backward = forward[0], backward[0]
        if layer.return_sequences:
            backward = tf.reverse(backward, [1])
        merge = layer.merge_mode
        if merge == "concat":
            output = tf.concat([forward, backward], axis=-1)
        elif merge == "sum":
            output = forward + backward
        elif merge == "ave":
            output = (forward + backward) / 2
        elif merge == "mul":
            output = forward * backward
        else:
            output = [forward, backward]
        outputs = output if isinstance(output, list) else [output]
        if layer.return_state:
            outputs = outputs + states
        masks = [out_mask] * (2 if merge is None else 1)
        masks += [None] * (len(outputs) - len(masks))
        if len(outputs) == 1:
            return outputs[0], masks[0]
        return outputs, masks

    def _cell_functions(self, layer):
        cell = layer.cell
        if hasattr(cell, "project_inputs") and hasattr(cell, "step"):
            return cell.project_inputs, lambda p, s: cell.step(p, s, training=False)

        def step(x, states):
            kwargs = {}
            if getattr(cell, "_call_has_training_arg", False):
                kwargs["training"] = False
            return cell(x, states, **kwargs)

        return (lambda x: x), step

    def _rnn(self, layer, x, mask):
        if self.mode == "streaming" and layer.go_backwards:
            raise ExportError(
                f"{describe(layer)} has go_backwards=True, which needs the "
                "whole sequence: export it with mode='sequence'."
            )
        project, step = self._cell_functions(layer)
        sizes = state_sizes(layer.cell)
        x = tf.cast(x, layer.compute_dtype)
        if self.mode == "sequence" and self.fuse_lstm:
            weights = fusable(layer, self.float_weights)
            if mask is not None or self.lengths is not None:
                weights = (
                    "its input is masked, and the fused op has no mask (export "
                    "with lengths=False, without masking layers)"
                )
            if isinstance(weights, str):
                self.unfused[layer.name] = weights
            else:
                self.fused[layer.name] = weights
                return fused_lstm(layer, x, weights), None
        if self.mode == "streaming":
            if self._recording:
                self.recurrent.append((layer, sizes))
                states = [tf.zeros((tf.shape(x)[0], s), x.dtype) for s in sizes]
            else:
                states = self._states_in[: len(sizes)]
                del self._states_in[: len(sizes)]
            output, new_states = step(project(x), states)
            new_states = tree.flatten(new_states)
            self._states_out.extend(new_states)
            if layer.return_state:
                return [output, *new_states], [None] * (1 + len(new_states))
            return output, None
        return self._rnn_sequence(layer, project(x), mask, sizes, step)

    def _rnn_sequence(self, layer, projected, mask, sizes, step):
        steps = projected.shape[1]
        if steps is None:
            raise ExportError(
                f"{describe(layer)}: the sequence export needs a static "
                "number of time steps (pass max_length)."
            )
        # Padding that only comes from `lengths` sits after the last real
        # step, so the loop can stop there instead of selecting at every
        # step (with batch 1 no select is left; with a larger batch the
        # shorter rows still select). A model's own mask can be anywhere.
        lengths_only = self.lengths is not None and (mask is None or mask is self.base_mask)
        if lengths_only:
            mask = self.base_mask
        elif self.base_mask is not None:
            mask = tf.logical_and(tf.cast(mask, "bool"), self.base_mask)
        elif mask is not None:
            mask = tf.cast(mask, "bool")
        out_mask = mask if layer.return_sequences else None
        start, stop = tf.constant(0), tf.constant(steps)
        if lengths_only:
            longest = tf.minimum(tf.reduce_max(self.lengths), steps)
            # Keras reads a backward layer's padding first: its real steps
            # are the last `longest` of the reversed sequence.
            if layer.go_backwards:
                start = steps - longest
            else:
                stop = longest
            if projected.shape[0] == 1:
                mask = None
        if layer.go_backwards:
            # Keras returns the outputs in the order it read them.
            projected = tf.reverse(projected, [1])
            mask = None if mask is None else tf.reverse(mask, [1])
        batch = tf.shape(projected)[0]
        dtype = projected.dtype
        states = [tf.zeros((batch, s), dtype) for s in sizes]
        units = getattr(layer.cell, "output_size", None) or sizes[0]
        previous = tf.zeros((batch, units), dtype)

        def one_step(t, states, previous):
            output, new_states = step(tf.gather(projected, t, axis=1), states)
            new_states = tree.flatten(new_states)
            if mask is not None:
                keep = tf.gather(mask, t, axis=1)[:, None]
                new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states)]
                fill = tf.zeros_like(output) if layer.zero_output_for_mask else previous
                output = tf.where(keep, output, fill)
            return output, new_states

        if self.unroll:
            outputs = []
            for t in range(steps):
                output, new_states = one_step(t, states, previous)
                if lengths_only:
                    # Steps outside [start, stop) keep the states and the
                    # output (a select per step: unrolled loops cannot stop).
                    run = tf.logical_and(t >= start, t < stop)
                    new_states = [tf.where(run, n, s) for n, s in zip(new_states, states)]
                    output = tf.where(run, output, previous)
                previous, states = output, new_states
                outputs.append(previous)
            sequence = tf.stack(outputs, axis=1) if layer.return_sequences else None
        else:
            array = tf.TensorArray(dtype, size=steps, element_shape=previous.shape)

            def body(t, states, previous, array):
                output, states = one_step(t, states, previous)
                if layer.return_sequences:
                    array = array.write(t, output)
                return t + 1, states, output, array

            _, states, previous, array = tf.while_loop(
                lambda t, *_: t < stop,
                body,
                (start, states, previous, array),
            )
            sequence = tf.transpose(array.stack(), [1, 0, 2]) if layer.return_sequences else None
            if sequence is not None and lengths_only:
                # The steps the loop skipped were never written: they are
                # the last output (or zeros) after the end, and zeros before
                # a backward layer's start (its states were still zero).
                time = tf.range(steps)[None, :, None]
                fill = (tf.zeros_like(previous) if layer.zero_output_for_mask else previous)[
                    :, None, :
                ]
                sequence = tf.where(time < start, tf.zeros_like(sequence), sequence)
                sequence = tf.where(time >= stop, fill, sequence)
        output = sequence if layer.return_sequences else previous
        if layer.return_state:
            return [output, *states], [out_mask] + [None] * len(states)
        return output, out_mask
