"""`keras.layers.RNN` with the input projection hoisted out of the loop."""

import functools

import keras
from keras import backend
from keras import ops

from keras_deeprnn import _compat
from keras_deeprnn._compat import backend_rnn
from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.layers import _native
from keras_deeprnn.layers._units import check_bool


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class RNN(keras.layers.RNN):
    """Drop-in `keras.layers.RNN` that computes input products in one go.

    For a cell of `keras_deeprnn.cells` (a `RecurrentCell`) the layer splits
    every step into the input part and the recurrent part
    (`cell.project_inputs` and `cell.step`) and computes the input part of
    the whole sequence at once, before the loop:

        P = x W + b                    (B, T, G): one matrix product
        y_t, s_t = step(P_t, s_{t-1})  the loop: h_{t-1} R and the gates

    With `fused=True` (default) and the TensorFlow backend, a cell whose
    `fused_spec()` names a kernel runs as one whole-sequence operation with
    a hand-written gradient: the forward loop keeps the gate activations,
    the backward loop computes only dP_t and the state gradients, and the
    recurrent weights' gradients are one matrix product over all steps
    (dR = H_prev^T dA).
    On a CPU-only machine the two loops are C++ kernels
    (`keras_deeprnn/layers/kernels/sequence.cc`, compiled against the
    installed TensorFlow on first use, ~30 s, and cached; one block of
    batch rows per thread runs all steps); under XLA (`jit_compile=True`),
    with a GPU, in float16/bfloat16, while exporting, or where the
    kernels cannot be built (a warning says why) they are TensorFlow
    loops computing the same functions. `KERAS_DEEPRNN_NATIVE=0` turns
    the kernels off. This covers

    - `LSTMCell`, every variant (`PeepholeLSTMCell` too),
    - `GRUCell` with `reset_after=True`,
    - `SimpleRNNCell` without `trainable_leak`,
    - `MUT1Cell`, `MUT2Cell`, `MUT3Cell`,

    each with the default activations (tanh, sigmoid), with dropout and
    recurrent dropout. On a GPU the first two (`LSTMCell` "np", the GRU),
    with a bias and without recurrent dropout, run Keras's cuDNN loops
    instead, as `keras.layers.LSTM` / `GRU` do (not under XLA nor in
    exports; a batch whose mask is not right-padding takes the loop, and
    the outputs after a sequence's end are this layer's); see
    docs/speed.md. Every other `RecurrentCell` (`fused_spec()` is None:
    non-default activations, `reset_after=False`, trainable leak, the
    deep-transition cells) takes the hoisted loop above, differentiated
    by TensorFlow; any other cell (`StackedCells`, Keras's own cells) and
    `unroll=True` take `keras.layers.RNN`'s own loop unchanged. Masking,
    `zero_output_for_mask`, `go_backwards`, `stateful`, `return_state`,
    `Bidirectional` and `jit_compile` behave as in `keras.layers.RNN`, and
    the weights are the cell's own, so a model saved with either layer
    loads into the other.

    Args:
        cell: An RNN cell, as for `keras.layers.RNN`.
        fused: Use the whole-sequence kernels listed above where they apply
            (default True); False keeps the hoisted loop for every
            `RecurrentCell`.
        return_sequences, return_state, go_backwards, stateful, unroll,
        zero_output_for_mask: As in `keras.layers.RNN`.

    Call arguments:
        sequences: A 3D tensor `(batch, time, features)`.
        initial_state: Optional list of initial state tensors.
        mask: Optional boolean tensor `(batch, time)`.
        training: Whether dropout is active.

    Example:

    >>> from keras_deeprnn.cells import LSTMCell
    >>> layer = RNN(LSTMCell(16), return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(self, cell, fused=True, **kwargs):
        super().__init__(cell, **kwargs)
        self.fused = check_bool("fused", fused)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if self.unroll or not isinstance(cell, RecurrentCell):
            return super().inner_loop(sequences, initial_state, mask, training)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        x = ops.cast(sequences, cell.compute_dtype)
        if training and cell.dropout > 0:
            # One mask per sequence, the one the cell applies at every step.
            x = x * ops.expand_dims(cell.get_dropout_mask(x[:, 0, :]), 1)
        spec = self._fused_spec()
        if spec is None:
            loop = functools.partial(self._hoisted_loop, x, initial_state, mask, training)
        else:
            loop = functools.partial(self._fused_loop, spec, x, initial_state, mask, training)
        if spec is not None and spec.cudnn and _cudnn_here():
            try:
                return self._cudnn_loop(spec.cudnn, x, initial_state, mask, loop)
            except NotImplementedError:  # Keras's word: no cuDNN here
                pass
        return loop()

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        spec = self._fused_spec()
        if spec is not None and spec.cudnn and _native.has_gpu():
            # As for keras.layers.LSTM: `jit_compile="auto"` then leaves the
            # model to TensorFlow, whose cuDNN ops XLA cannot compile.
            self.supports_jit = False

    def _fused_spec(self):
        """The cell's `FusedSpec` where this layer runs a kernel, else None."""
        if (
            self.fused
            and not self.unroll
            and backend.backend() == "tensorflow"
            and isinstance(self.cell, RecurrentCell)
        ):
            return self.cell.fused_spec()
        return None

    def _hoisted_loop(self, x, initial_state, mask, training):
        cell = self.cell
        projected = cell.project_inputs(x)

        def step(p_t, states):
            return cell.step(p_t, list(states), training)

        return backend_rnn(
            step,
            projected,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            input_length=x.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def _cudnn_loop(self, kind, x, initial_state, mask, loop):
        """Keras's cuDNN LSTM or GRU (`kind`) over the cell's weights, with
        the results of `loop`: cuDNN reads a mask as sequence lengths, so
        a batch with a mask that is not right-padding (or a sequence with
        no step) runs `loop` instead."""
        cell = self.cell
        states = [ops.cast(s, x.dtype) for s in initial_state]
        args = dict(
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
        )
        if mask is not None:
            mask = ops.cast(mask, "bool")

        def cudnn():
            if kind == "lstm":
                last, outputs, final = _compat.backend_lstm(x, states[0], states[1], mask, **args)
            else:
                last, outputs, final = _compat.backend_gru(
                    x, states[0], mask, reset_after=True, **args
                )
            if mask is not None and not self.go_backwards:
                # cuDNN's outputs after a sequence's end are zeros and its
                # last output is the final h; keras.layers.RNN repeats the
                # last output there, or with `zero_output_for_mask` puts
                # zeros (the last output too). Backwards both agree.
                if self.zero_output_for_mask:
                    last = ops.where(mask[:, -1:], last, ops.zeros_like(last))
                elif self.return_sequences:
                    outputs = ops.where(mask[..., None], outputs, last[:, None])
            return last, outputs, list(final)

        if mask is None:
            return cudnn()
        right_padded = ops.logical_and(
            ops.all(mask[:, 0]),
            ops.logical_not(ops.any(ops.logical_and(ops.logical_not(mask[:, :-1]), mask[:, 1:]))),
        )
        return ops.cond(right_padded, cudnn, lambda: _as_cudnn_result(loop()))

    def _fused_loop(self, spec, x, initial_state, mask, training):
        from keras_deeprnn.layers import _fused

        cell = self.cell
        # Time-major before the projection: the transpose moves the narrower
        # tensor.
        P = cell.project_inputs(ops.transpose(x, (1, 0, 2)))
        dtype = P.dtype
        if mask is not None:
            mask = ops.expand_dims(ops.transpose(ops.cast(mask, "bool")), -1)
        if self.go_backwards:
            P = ops.flip(P, 0)
            mask = None if mask is None else ops.flip(mask, 0)
        states = [ops.cast(s, dtype) for s in initial_state]
        rmask = None
        if training and cell.recurrent_dropout > 0:
            rmask = cell.get_recurrent_dropout_mask(states[0])
        b_rec = spec.recurrent_bias
        outputs, final = _fused.run(
            spec.kind,
            P,
            states,
            ops.cast(spec.recurrent_kernel, dtype),
            b_rec=None if b_rec is None else ops.cast(b_rec, dtype),
            extra=tuple(ops.cast(w, dtype) for w in spec.extra),
            rmask=rmask,
            mask=mask,
            zero_output=self.zero_output_for_mask,
            leak=spec.leak,
        )
        return outputs[-1], ops.transpose(outputs, (1, 0, 2)), final

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}


def _cudnn_here():
    """Whether a cuDNN loop may run: a GPU, outside XLA (which cannot
    compile it) and outside exports (whose graphs hold TensorFlow's
    portable ops only)."""
    return _native.has_gpu() and not _native.exporting() and not _compat.in_xla_context()


def _as_cudnn_result(result):
    """`(last, outputs, states)` with states a list, the structure of the
    cuDNN branch of `RNN._cudnn_loop`'s condition."""
    last, outputs, states = result
    return last, outputs, list(states)
