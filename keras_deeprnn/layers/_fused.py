"""Whole-sequence recurrences with a hand-written gradient (TensorFlow only).

`keras_deeprnn.layers.RNN` calls `run(kind, ...)` for the cells whose
`fused_spec()` names one of `KINDS`. The input projection P = x W + b of
every step is computed outside
(one matrix product, differentiated by TensorFlow); here the forward loop
runs the recurrence on P and keeps the gate activations, and the backward
loop computes only the pre-activation gradients dP_t and the state
gradients. The weight gradients then are single matrix products over all
steps:

    dR = sum_t h~_{t-1}^T dA_t = H~_prev^T dA        (one (T*B, U) product)

instead of one small product per step, and no per-step autodiff bookkeeping
is kept. On the CPU the two loops run as the C++ kernels of `_native`
(`kernels/sequence.cc`, the same math); the TensorFlow loops below are
their fallback and reference, XLA-compiled for small steps.

Notation: A_t = h~_{t-1} R (+ b_rec) is the recurrent product, with
h~ = h * (recurrent-dropout mask); a `mask` (B, T) holds the state and
repeats (or zeroes, with `zero_output`) the output at masked steps, exactly
as `keras.layers.RNN` does.
"""

import tensorflow as tf

from keras_deeprnn._compat import record
from keras_deeprnn.cells.lstm import FUSED_KINDS as LSTM_KINDS
from keras_deeprnn.cells.lstm import variant_gates
from keras_deeprnn.cells.lstm import variant_peepholes
from keras_deeprnn.layers import _native


def _sig_grad(s):
    return s * (1.0 - s)


def _tanh_grad(t):
    return 1.0 - t * t


# -- per-step forward / backward of each kind ---------------------------------
# forward(p, a, states, extra, leak, rmask) -> (new states, saved activations)
# backward(saved, prev states, d new states, extra, leak, rmask)
#     -> (dP_t, dA_t or None where it equals dP_t, d prev states except the
#         path through A_t, which the loop adds; None for a zero d h_{t-1})
# `extra` holds the LSTM's peepholes (those of its gates, in the order i, f,
# o), the MUT cells' recurrent matrices other than R, or is empty; `leak` is
# the SimpleRNN's fixed leak rate; `rmask` the recurrent-dropout mask (or
# None), which only the kinds with products other than A_t read.


class _LSTMVariant:
    """What an `LSTMCell` variant changes (see its docstring): the gate
    blocks present (in the order i, f, c, o), the peephole gates, the
    identity in place of the input or output activation, and (fgr) the
    gates' recurrence: a third state g = [i, f, o] of the step before,
    whose product g W_g (the last of `extra`) adds to the three gates."""

    def __init__(self, variant):
        self.fgr = variant == "fgr"
        self.gates = variant_gates(variant)
        self.peepholes = variant_peepholes(variant)
        self.cifg = variant == "cifg"
        self.input_activation = variant != "niaf"
        self.output_activation = variant != "noaf"

    def cell(self, gates, c_prev):
        """(i, f, g) with the absent gates as constants, and c_t."""
        i = gates.get("i", 1.0)
        f = 1.0 - i if self.cifg else gates.get("f", 1.0)
        return i, f, gates["c"], i * gates["c"] + f * c_prev


def _lstm_steps(variant):
    spec = _LSTMVariant(variant)

    def forward(p, a, states, extra, leak, rmask):
        c_prev = states[1]
        z = dict(zip(spec.gates, tf.split(p + a, len(spec.gates), axis=-1)))
        if spec.fgr:
            for g, r in zip("ifo", tf.split(tf.matmul(states[2], extra[-1]), 3, axis=-1)):
                z[g] = z[g] + r
        peep = dict(zip(spec.peepholes, extra))
        gates = {}
        for g in ("i", "f"):
            if g in z:
                gates[g] = tf.sigmoid(z[g] + peep[g] * c_prev if g in peep else z[g])
        gates["c"] = tf.tanh(z["c"]) if spec.input_activation else z["c"]
        _, _, _, c = spec.cell(gates, c_prev)
        out = tf.tanh(c) if spec.output_activation else c
        if "o" in z:
            gates["o"] = tf.sigmoid(z["o"] + peep["o"] * c if "o" in peep else z["o"])
            h = gates["o"] * out
        else:
            h = out
        new = [h, c]
        if spec.fgr:
            new.append(tf.concat([gates[g] for g in "ifo"], axis=-1))
        return new, tf.concat([gates[g] for g in spec.gates], axis=-1)

    def backward(saved, prev, d_new, extra, leak, rmask):
        gates = dict(zip(spec.gates, tf.split(saved, len(spec.gates), axis=-1)))
        peep = dict(zip(spec.peepholes, extra))
        c_prev = prev[1]
        dh, dc = d_new[:2]
        # fgr: the gradient of the emitted gates [i, f, o] (the third state).
        dg = dict(zip("ifo", tf.split(d_new[2], 3, axis=-1))) if spec.fgr else {}
        i, f, g, c = spec.cell(gates, c_prev)
        out = tf.tanh(c) if spec.output_activation else c
        dz = {}
        if "o" in gates:
            o = gates["o"]
            dz["o"] = (dh * out + dg["o"] if spec.fgr else dh * out) * _sig_grad(o)
            d_out = dh * o
        else:
            d_out = dh
        dc = dc + (d_out * _tanh_grad(out) if spec.output_activation else d_out)
        if "o" in peep:
            dc = dc + dz["o"] * peep["o"]
        di = dc * g
        df = dc * c_prev
        if spec.fgr:
            di, df = di + dg["i"], df + dg["f"]
        if spec.cifg:
            di = di - df  # f = 1 - i
        if "i" in gates:
            dz["i"] = di * _sig_grad(i)
        if "f" in gates:
            dz["f"] = df * _sig_grad(f)
        dz["c"] = dc * i * _tanh_grad(g) if spec.input_activation else dc * i
        dc_prev = dc * f
        for name in ("i", "f"):
            if name in peep:
                dc_prev = dc_prev + dz[name] * peep[name]
        dp = tf.concat([dz[name] for name in spec.gates], axis=-1)
        d_prev = [None, dc_prev]
        if spec.fgr:
            d_prev.append(
                tf.matmul(
                    tf.concat([dz[name] for name in "ifo"], axis=-1), extra[-1], transpose_b=True
                )
            )
        return dp, None, d_prev

    return forward, backward


def _lstm_extra_grads(kind, saved_seq, dP, c_prev, g_prev, dtype):
    """Gradients of `extra`, summed over time and batch: the peepholes,
    d p_i = sum dz_i c_{t-1}, d p_f = sum dz_f c_{t-1}, d p_o = sum dz_o c_t;
    then (fgr) d W_g = sum g_{t-1}^T [dz_i, dz_f, dz_o]."""
    spec = _VARIANTS[kind]
    saved = _stack(saved_seq, dtype)
    gates = dict(zip(spec.gates, tf.split(saved, len(spec.gates), axis=-1)))
    dz = dict(zip(spec.gates, tf.split(dP, len(spec.gates), axis=-1)))
    c = spec.cell(gates, c_prev)[3]
    grads = [
        tf.reduce_sum(dz[g] * (c if g == "o" else c_prev), axis=(0, 1)) for g in spec.peepholes
    ]
    if spec.fgr:
        width = 3 * tf.shape(c_prev)[-1]  # the traced shape may be unknown
        grads.append(
            tf.matmul(
                tf.reshape(g_prev, (-1, width)),
                tf.reshape(tf.concat([dz[name] for name in "ifo"], axis=-1), (-1, width)),
                transpose_a=True,
            )
        )
    return grads


def _gru_forward(p, a, states, extra, leak, rmask):
    h_prev = states[0]
    x_z, x_r, x_h = tf.split(p, 3, axis=-1)
    a_z, a_r, a_h = tf.split(a, 3, axis=-1)
    z = tf.sigmoid(x_z + a_z)
    r = tf.sigmoid(x_r + a_r)
    n = tf.tanh(x_h + r * a_h)
    h = z * h_prev + (1.0 - z) * n
    return [h], tf.concat([z, r, n, a_h], axis=-1)


def _gru_backward(saved, prev, d_new, extra, leak, rmask):
    z, r, n, a_h = tf.split(saved, 4, axis=-1)
    dh = d_new[0]
    dz = dh * (prev[0] - n) * _sig_grad(z)
    dn = dh * (1.0 - z) * _tanh_grad(n)
    dr = dn * a_h * _sig_grad(r)
    dp = tf.concat([dz, dr, dn], axis=-1)
    da = tf.concat([dz, dr, dn * r], axis=-1)
    return dp, da, [dh * z]


def _rnn_forward(p, a, states, extra, leak, rmask):
    s = tf.tanh(p + a)
    h = leak * states[0] + (1.0 - leak) * s if leak else s
    return [h], s


def _rnn_backward(saved, prev, d_new, extra, leak, rmask):
    dh = d_new[0]
    ds = (1.0 - leak) * dh if leak else dh
    dp = ds * _tanh_grad(saved)
    return dp, None, [leak * dh if leak else None]


def _mut_steps(kind):
    """The MUT cells (`keras_deeprnn.cells.mut`). P holds [x_z, x_r, x_h]
    (bias and MUT1's tanh(x) included); with q = r * h~ (h~ = h_{t-1} times
    the recurrent-dropout mask),

        MUT1: A = h~ W_hr,          z = s(x_z),            r = s(x_r + A)
        MUT2: A = h~ [W_hz, W_hr],  z = s(x_z + A_z),      r = s(x_r + A_r)
        MUT3: A = h~ W_hr,          z = s(x_z + tanh(h~) W_hz), r = s(x_r + A)
        n = tanh(q W_hh + x_h),     h_t = n z + h_{t-1} (1 - z);

    `extra` is (W_hh,), for MUT3 (W_hz, W_hh). Kept per step: z, r, n."""

    def split_extra(extra):
        return (extra[0], extra[1]) if kind == "mut3" else (None, extra[0])

    def forward(p, a, states, extra, leak, rmask):
        w_hz, w_hh = split_extra(extra)
        h_prev = states[0]
        h_rec = h_prev if rmask is None else h_prev * rmask
        x_z, x_r, x_h = tf.split(p, 3, axis=-1)
        if kind == "mut2":
            a_z, a_r = tf.split(a, 2, axis=-1)
            z = tf.sigmoid(x_z + a_z)
        else:
            a_r = a
            z = tf.sigmoid(x_z if kind == "mut1" else x_z + tf.matmul(tf.tanh(h_rec), w_hz))
        r = tf.sigmoid(x_r + a_r)
        n = tf.tanh(tf.matmul(r * h_rec, w_hh) + x_h)
        h = n * z + h_prev * (1.0 - z)
        return [h], tf.concat([z, r, n], axis=-1)

    def backward(saved, prev, d_new, extra, leak, rmask):
        w_hz, w_hh = split_extra(extra)
        z, r, n = tf.split(saved, 3, axis=-1)
        h_prev = prev[0]
        h_rec = h_prev if rmask is None else h_prev * rmask
        dh = d_new[0]
        dz = dh * (n - h_prev) * _sig_grad(z)
        dn = dh * z * _tanh_grad(n)
        dq = tf.matmul(dn, w_hh, transpose_b=True)
        dr = dq * h_rec * _sig_grad(r)
        dh_rec = dq * r
        if kind == "mut3":
            t = tf.tanh(h_rec)
            dh_rec += tf.matmul(dz, w_hz, transpose_b=True) * _tanh_grad(t)
        dh_prev = dh * (1.0 - z) + (dh_rec if rmask is None else dh_rec * rmask)
        dp = tf.concat([dz, dr, dn], axis=-1)
        da = tf.concat([dz, dr], axis=-1) if kind == "mut2" else dr
        return dp, da, [dh_prev]

    return forward, backward


def _mut_extra_grads(kind, saved_seq, dP, h_prev_rec, dtype):
    """Gradients of `extra` summed over time and batch: dW_hh = sum (r *
    h~)^T dx_h, and for MUT3 dW_hz = sum tanh(h~)^T dx_z."""
    _, r, _ = tf.split(_stack(saved_seq, dtype), 3, axis=-1)
    dz, _, dn = tf.split(dP, 3, axis=-1)

    def flat(x):
        return tf.reshape(x, (-1, tf.shape(x)[-1]))

    d_w_hh = tf.matmul(flat(r * h_prev_rec), flat(dn), transpose_a=True)
    if kind != "mut3":
        return [d_w_hh]
    return [tf.matmul(flat(tf.tanh(h_prev_rec)), flat(dz), transpose_a=True), d_w_hh]


# Every variant of `LSTMCell` has a kernel here.
_VARIANTS = {kind: _LSTMVariant(v) for v, kind in LSTM_KINDS.items()}
_STEPS = {
    "gru": (_gru_forward, _gru_backward),
    "rnn": (_rnn_forward, _rnn_backward),
    **{kind: _lstm_steps(v) for v, kind in LSTM_KINDS.items()},
    **{k: _mut_steps(k) for k in ("mut1", "mut2", "mut3")},
}
KINDS = tuple(_STEPS)
# The kinds whose backward step reads h_{t-1}, and those whose dA_t (the
# gradient of the recurrent product) differs from dP_t.
_READ_H_PREV = ("gru", "mut1", "mut2", "mut3")
_SEPARATE_DA = ("gru", "mut1", "mut2", "mut3")
# Width of the activations kept per step, in units.
_SAVED_WIDTH = {
    "gru": 4,
    "rnn": 1,
    "mut1": 3,
    "mut2": 3,
    "mut3": 3,
    **{k: len(v.gates) for k, v in _VARIANTS.items()},
}


# -- the two loops (time-major: P is (T, B, G), mask (T, B, 1) bool) ----------
def _forward(kind, leak, zero_output, keep, jit, P, states, R, b_rec, extra, rmask, mask):
    """The forward loop; with `keep`, also the previous states and the saved
    activations of every step, for `_backward`. Without a mask h_{t-1} is
    the previous output, so only the other states are kept. Outside XLA the
    kept sequences stay TensorArrays: stacking them would copy them."""
    step = _STEPS[kind][0]
    steps = tf.shape(P)[0]
    kept = range(0 if mask is not None else 1, len(states)) if keep else ()

    def body(t, states, y_prev, arrays):
        h_rec = states[0] if rmask is None else states[0] * rmask
        a = tf.matmul(h_rec, R)
        if b_rec is not None:
            a = a + b_rec
        new, saved = step(P[t], a, states, extra, leak, rmask)
        y = new[0]
        if mask is not None:
            m = mask[t]
            y = tf.where(m, y, tf.zeros_like(y) if zero_output else y_prev)
            new = [tf.where(m, n, s) for n, s in zip(new, states)]
        written = [y] + ([saved] if keep else []) + [states[k] for k in kept]
        arrays = [ta.write(t, v) for ta, v in zip(arrays, written)]
        return t + 1, new, y, arrays

    arrays = [tf.TensorArray(P.dtype, size=steps) for _ in range(1 + bool(keep) + len(kept))]
    _, final, _, arrays = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (0, list(states), tf.zeros_like(states[0]), arrays),
        maximum_iterations=steps,
    )
    return final, [arrays[0].stack()] + [ta.stack() if jit else ta for ta in arrays[1:]]


def _read(sequence, t, dtype, shape):
    """Step t of a stacked tensor or of a TensorArray (returned by a
    tf.function as its TensorList handle)."""
    if isinstance(sequence, tf.TensorArray):
        sequence = sequence.flow
    if sequence.dtype != tf.variant:
        return sequence[t]
    item = tf.raw_ops.TensorListGetItem(
        input_handle=sequence, index=t, element_shape=-1, element_dtype=dtype
    )
    item.set_shape(shape)
    return item


def _stack(sequence, dtype):
    if isinstance(sequence, tf.TensorArray):
        sequence = sequence.flow
    if sequence.dtype != tf.variant:
        return sequence
    return tf.raw_ops.TensorListStack(input_handle=sequence, element_shape=-1, element_dtype=dtype)


def _backward(
    kind,
    leak,
    zero_output,
    dY,
    d_final,
    R,
    has_bias,
    extra,
    rmask,
    mask,
    prev_seqs,
    saved_seq,
    h0,
):
    """The backward loop and the weight gradients (`_gradients`)."""
    dP, dA, d_states0 = _backward_loop(
        kind,
        leak,
        zero_output,
        dY,
        d_final,
        R,
        extra,
        rmask,
        mask,
        prev_seqs,
        saved_seq,
        h0,
    )
    return _gradients(
        kind,
        dP,
        dA,
        d_states0,
        has_bias,
        extra,
        rmask,
        mask,
        prev_seqs,
        saved_seq,
        h0,
        dY.dtype,
    )


def _backward_loop(
    kind,
    leak,
    zero_output,
    dY,
    d_final,
    R,
    extra,
    rmask,
    mask,
    prev_seqs,
    saved_seq,
    h0,
):
    """dP_t (and dA_t where it differs, else None) of every step and the
    initial states' gradients. Without a mask, `prev_seqs[0]` is the
    outputs Y, so h_{t-1} is Y[t-1] (h0 at t = 0)."""
    step = _STEPS[kind][1]
    steps = tf.shape(dY)[0]
    r_t = tf.transpose(R)
    separate_da = kind in _SEPARATE_DA
    # Under `reduce_retracing` the traced shapes may be unknown.
    units = h0.shape[1]
    saved_shape = (h0.shape[0], None if units is None else _SAVED_WIDTH[kind] * units)

    def body(k, d_states, dy_carry, dp_ta, da_ta):
        t = steps - 1 - k
        # Only masked steps carry an output gradient on.
        gy = dY[t] if mask is None else dY[t] + dy_carry
        d_new = list(d_states)
        if mask is None:
            d_new[0] = d_new[0] + gy
        else:
            m = mask[t]
            zeros = tf.zeros_like(gy)
            d_new = [tf.where(m, d, tf.zeros_like(d)) for d in d_states]
            d_new[0] = d_new[0] + tf.where(m, gy, zeros)
            # A masked step passes the state and (unless zeroed) the output on.
            direct = [tf.where(m, tf.zeros_like(d), d) for d in d_states]
            dy_carry = zeros if zero_output else tf.where(m, zeros, gy)
        if mask is None:
            # h_{t-1} is the output one step back (h0 at t = 0); only some
            # kinds read it.
            h_prev = None
            if kind in _READ_H_PREV:
                h_prev = tf.where(t > 0, prev_seqs[0][tf.maximum(t - 1, 0)], h0)
            prev = [h_prev] + [_read(s, t, dY.dtype, h0.shape) for s in prev_seqs[1:]]
        else:
            prev = [_read(s, t, dY.dtype, h0.shape) for s in prev_seqs]
        dp, da, d_prev = step(
            _read(saved_seq, t, dY.dtype, saved_shape), prev, d_new, extra, leak, rmask
        )
        da = dp if da is None else da
        dh_rec = tf.matmul(da, r_t)
        dh_rec = dh_rec if rmask is None else dh_rec * rmask
        d_prev[0] = dh_rec if d_prev[0] is None else d_prev[0] + dh_rec
        if mask is not None:
            d_prev = [a + b for a, b in zip(d_prev, direct)]
        dp_ta = dp_ta.write(t, dp)
        if separate_da:
            da_ta = da_ta.write(t, da)
        return k + 1, d_prev, dy_carry, dp_ta, da_ta

    dp_ta = tf.TensorArray(dY.dtype, size=steps)
    da_ta = tf.TensorArray(dY.dtype, size=steps if separate_da else 0)
    _, d_states0, _, dp_ta, da_ta = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (0, list(d_final), tf.zeros_like(d_final[0]), dp_ta, da_ta),
        maximum_iterations=steps,
    )
    dP = dp_ta.stack()
    return dP, (da_ta.stack() if separate_da else None), d_states0


def _gradients(
    kind,
    dP,
    dA,
    d_states0,
    has_bias,
    extra,
    rmask,
    mask,
    prev_seqs,
    saved_seq,
    h0,
    dtype,
):
    """All of `sequence`'s gradients from the backward loop's: the weight
    gradients as single products over all steps."""
    dA = dP if dA is None else dA
    # h~_{t-1} of every step; without a mask prev_seqs[0] holds the outputs,
    # one step ahead. (Shifting H, not dA, copies the narrower tensor.)
    h_rec = _stack(prev_seqs[0], dtype)
    if mask is None:
        h_rec = tf.concat([h0[None], h_rec[:-1]], axis=0)
    h_rec = h_rec if rmask is None else h_rec * rmask

    def flat(x):
        return tf.reshape(x, (-1, tf.shape(x)[-1]))

    dR = tf.matmul(flat(h_rec), flat(dA), transpose_a=True)
    grads = [dP, dR] + list(d_states0)
    if has_bias:
        grads.append(tf.reduce_sum(dA, axis=(0, 1)))
    if kind.startswith("mut"):
        grads += _mut_extra_grads(kind, saved_seq, dP, h_rec, dtype)
    elif extra:
        g_prev = _stack(prev_seqs[2], dtype) if len(prev_seqs) > 2 else None
        grads += _lstm_extra_grads(kind, saved_seq, dP, _stack(prev_seqs[1], dtype), g_prev, dtype)
    return grads


# XLA fuses a step's gate arithmetic and removes the per-op overhead, which
# dominates when the per-step tensors are small (streaming, batch 1: 3-6x
# faster here); with larger ones it saved no CPU time on this 2-core CPU and
# each compiled loop kept 70-90 MiB more resident memory, so it is used only
# below this many elements per step (batch x gate width, known at trace).
XLA_MAX_STEP_SIZE = 2**14
_COMPILED = {
    jit: (
        tf.function(_forward, jit_compile=jit, reduce_retracing=True, autograph=False),
        tf.function(_backward, jit_compile=jit, reduce_retracing=True, autograph=False),
    )
    for jit in (True, False)
}


def run(
    kind,
    P,
    states,
    R,
    b_rec=None,
    extra=(),
    rmask=None,
    mask=None,
    zero_output=False,
    leak=0.0,
):
    """Runs recurrence `kind` over the time-major projected inputs `P`.

    Args:
        kind: One of `KINDS`.
        P: (T, B, G) input projections, bias included.
        states: List of initial states (B, U) (h first).
        R: (U, G) recurrent kernel.
        b_rec: Optional (G,) bias of the recurrent product (the GRU's).
        extra: The other weights of `kind` (`FusedSpec.extra`): the LSTM's
            peepholes (of its gates, in the order i, f, o) and the gate
            recurrent kernel of "lstm-fgr", the MUT cells' W_hh (MUT3:
            W_hz, W_hh), or ().
        rmask: Optional (B, U) recurrent-dropout mask applied to h_{t-1}
            in the recurrent product.
        mask: Optional (T, B, 1) boolean mask.
        zero_output: Output zeros (instead of the previous output) at masked
            steps.
        leak: The SimpleRNN's fixed leak rate.

    Returns:
        (outputs (T, B, U), list of final states); differentiable with
        respect to P, states, R, b_rec and extra.
    """
    if _native.usable(P.dtype):
        spec = _VARIANTS.get(kind)
        kernel = kind if spec is None else "lstm"

        def forward(kind, leak, zero_output, keep, jit, *args):
            return _native.forward(spec, kernel, leak, zero_output, keep, *args)

        def backward(
            kind,
            leak,
            zero_output,
            dY,
            d_final,
            R,
            has_bias,
            extra,
            rmask,
            mask,
            prev_seqs,
            saved_seq,
            h0,
        ):
            dP, dA, d_states0 = _native.backward(
                spec,
                kernel,
                leak,
                zero_output,
                dY,
                d_final,
                R,
                extra,
                rmask,
                mask,
                prev_seqs,
                saved_seq,
                h0,
                kind in _SEPARATE_DA,
            )
            dP.set_shape(P.shape)
            return _gradients(
                kind,
                dP,
                dA,
                d_states0,
                has_bias,
                extra,
                rmask,
                mask,
                prev_seqs,
                saved_seq,
                h0,
                dY.dtype,
            )

        jit = False
    else:
        batch, width = P.shape[1], P.shape[2]
        jit = batch is not None and batch * width <= XLA_MAX_STEP_SIZE
        forward, backward = _COMPILED[jit]
    if not record.could_possibly_record():
        # No tape can ask for a gradient (inference): keep nothing.
        if _native.exporting() and tf.inside_function():
            # An export's trace: the loop goes into the export's own graph
            # with its static shapes. The shared function, relaxed by earlier
            # calls, may have lost them, and TFLite lowers a loop's
            # TensorLists only where they are known.
            forward, jit = _forward, False
        final, (Y,) = forward(
            kind,
            leak,
            zero_output,
            False,
            jit,
            P,
            states,
            R,
            b_rec,
            list(extra),
            rmask,
            mask,
        )
        return _with_shapes(Y, final, P, states)
    n_states, has_bias = len(states), b_rec is not None

    @tf.custom_gradient
    def sequence(P, R, *rest):
        # Cut the tape inside: an active tape would make TensorFlow export
        # the loops' TensorLists for its own gradient, which XLA refuses.
        P, R, rest = tf.stop_gradient(P), tf.stop_gradient(R), [tf.stop_gradient(r) for r in rest]
        states = rest[:n_states]
        b = rest[n_states] if has_bias else None
        ex = rest[n_states + has_bias :]
        final, (Y, saved, *prev_seqs) = forward(
            kind,
            leak,
            zero_output,
            True,
            jit,
            P,
            states,
            R,
            b,
            ex,
            rmask,
            mask,
        )
        if mask is None:
            prev_seqs.insert(0, Y)

        def grad(dY, *d_final):
            d_final = [tf.zeros_like(s) if d is None else d for s, d in zip(final, d_final)]
            return backward(
                kind,
                leak,
                zero_output,
                dY,
                d_final,
                R,
                has_bias,
                ex,
                rmask,
                mask,
                prev_seqs,
                saved,
                states[0],
            )

        return (Y, *final), grad

    inputs = [P, R, *states] + ([b_rec] if has_bias else []) + list(extra)
    Y, *final = sequence(*inputs)
    return _with_shapes(Y, final, P, states)


def _with_shapes(Y, final, P, states):
    """The static shapes that the compiled loops (traced with
    `reduce_retracing`) may have lost, so that the layers after this one
    see their input widths."""
    Y = tf.ensure_shape(Y, (P.shape[0], P.shape[1], states[0].shape[-1]))
    return Y, [tf.ensure_shape(f, s.shape) for f, s in zip(final, states)]
