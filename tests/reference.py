"""Plain NumPy reference implementations of the recurrent cells.

Written independently from the equations (not from the cell code), so the
numerical tests in ``test_cell_numerics.py`` can compare against them.

Conventions (shared by every function here):

* ``x`` has shape ``(batch, T, input_dim)``; the computation runs in ``x.dtype``
  (weights are cast to it), so float64 inputs give a float64 reference.
* ``weights`` is a dict keyed by the cell's short weight names ("kernel",
  "recurrent_kernel", "bias", "peephole_i", ...), values NumPy arrays.
* Row-vector convention: ``x @ W`` with ``W`` of shape ``(in, out)``; a fused
  matrix is cut into column slices of ``units`` each, in the documented order.
* Every function starts from an all-zero state and returns
  ``(outputs, states)``: ``outputs`` has shape ``(batch, T, units)`` and
  ``states`` is the list of final states, in the cell's state order.

No TensorFlow / Keras here on purpose.
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def identity(a):
    return a


def _get(weights, name, dtype):
    return np.asarray(weights[name]).astype(dtype, copy=False)


def _cols(w, k, units):
    """Column slice k (of width `units`) of a fused matrix or bias vector."""
    return w[..., k * units : (k + 1) * units]


# ---------------------------------------------------------------------------
# Simple RNN (Elman), optionally leaky
# ---------------------------------------------------------------------------
def simple_rnn(x, weights, leak=0.0, activation=np.tanh):
    """Elman RNN with optional leak.

        h_t = alpha * h_{t-1} + (1 - alpha) * phi(x_t W + h_{t-1} U + b)

    alpha = weights["leak"] (per unit, shape (u,)) if present, else `leak`.
    With alpha = 0 this is h_t = phi(x_t W + h_{t-1} U + b).
    Weights: kernel W (d,u), recurrent_kernel U (u,u), bias b (u,).
    States: [h].
    """
    dt = x.dtype
    W = _get(weights, "kernel", dt)
    U = _get(weights, "recurrent_kernel", dt)
    b = _get(weights, "bias", dt)
    if "leak" in weights:
        alpha = _get(weights, "leak", dt)
    else:
        alpha = np.asarray(leak, dtype=dt)
    batch, T, _ = x.shape
    units = U.shape[0]
    h = np.zeros((batch, units), dtype=dt)
    outputs = np.zeros((batch, T, units), dtype=dt)
    for t in range(T):
        h = alpha * h + (1.0 - alpha) * activation(x[:, t] @ W + h @ U + b)
        outputs[:, t] = h
    return outputs, [h]


# ---------------------------------------------------------------------------
# LSTM family (Greff et al. 2015, "LSTM: A Search Space Odyssey")
# ---------------------------------------------------------------------------
LSTM_VARIANTS = ("vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")


def lstm_gate_slices(variant):
    """Column-slice order of kernel / recurrent_kernel / bias for a variant.

    Order i, f, c, o ("c" is the block input z) with missing gates dropped.
    """
    if variant == "nig":
        return ["f", "c", "o"]
    if variant in ("nfg", "cifg"):
        return ["i", "c", "o"]
    if variant == "nog":
        return ["i", "f", "c"]
    return ["i", "f", "c", "o"]


def lstm_peepholes(variant):
    """Names of the peephole vectors of a variant (gates that exist, not 'np')."""
    if variant == "np":
        return []
    return ["peephole_" + g for g in lstm_gate_slices(variant) if g != "c"]


def lstm(x, weights, variant="vanilla"):
    """LSTM variants of Greff et al. (2015); g = h = tanh unless stated.

        z   = g(x W_z + h_{t-1} R_z + b_z)
        i   = s(x W_i + h_{t-1} R_i + p_i * c_{t-1} + b_i)
        f   = s(x W_f + h_{t-1} R_f + p_f * c_{t-1} + b_f)
        c_t = i * z + f * c_{t-1}
        o   = s(x W_o + h_{t-1} R_o + p_o * c_t + b_o)      (new c_t)
        h_t = o * h(c_t)

    Variants: nig: i = 1; nfg: f = 1; nog: o = 1; niaf: g = identity;
    noaf: h = identity; np: no peepholes; cifg: f = 1 - i (no W_f, p_f);
    fgr: the preactivations of i, f, o additionally receive the column
    slices 0:u, u:2u, 2u:3u of [i, f, o]_{t-1} @ G (G = gate_recurrent_kernel,
    (3u, 3u), previous gates start at zero).

    Layout: kernel (d, k*u), recurrent_kernel (u, k*u), bias (k*u,), slices in
    order `lstm_gate_slices(variant)`; peepholes `lstm_peepholes(variant)`.
    States: [h, c]; fgr: [h, c, concat(i_t, f_t, o_t)].
    """
    if variant not in LSTM_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    dt = x.dtype
    W = _get(weights, "kernel", dt)
    R = _get(weights, "recurrent_kernel", dt)
    b = _get(weights, "bias", dt)
    units = R.shape[0]
    order = lstm_gate_slices(variant)
    Wg = {g: _cols(W, k, units) for k, g in enumerate(order)}
    Rg = {g: _cols(R, k, units) for k, g in enumerate(order)}
    bg = {g: _cols(b, k, units) for k, g in enumerate(order)}
    zeros_u = np.zeros((units,), dtype=dt)
    peep = {g: zeros_u for g in ("i", "f", "o")}
    for name in lstm_peepholes(variant):
        peep[name[-1]] = _get(weights, name, dt)

    g_act = identity if variant == "niaf" else np.tanh
    h_act = identity if variant == "noaf" else np.tanh
    fgr = variant == "fgr"
    if fgr:
        G = _get(weights, "gate_recurrent_kernel", dt)

    batch, T, _ = x.shape
    h = np.zeros((batch, units), dtype=dt)
    c = np.zeros((batch, units), dtype=dt)
    gates_prev = np.zeros((batch, 3 * units), dtype=dt)
    outputs = np.zeros((batch, T, units), dtype=dt)
    for t in range(T):
        xt = x[:, t]
        if fgr:
            gate_rec = gates_prev @ G
            fgr_i = _cols(gate_rec, 0, units)
            fgr_f = _cols(gate_rec, 1, units)
            fgr_o = _cols(gate_rec, 2, units)
        else:
            fgr_i = fgr_f = fgr_o = 0.0

        z = g_act(xt @ Wg["c"] + h @ Rg["c"] + bg["c"])
        if "i" in order:
            i = sigmoid(xt @ Wg["i"] + h @ Rg["i"] + peep["i"] * c + bg["i"] + fgr_i)
        else:  # nig
            i = np.ones_like(c)
        if variant == "cifg":
            f = 1.0 - i
        elif "f" in order:
            f = sigmoid(xt @ Wg["f"] + h @ Rg["f"] + peep["f"] * c + bg["f"] + fgr_f)
        else:  # nfg
            f = np.ones_like(c)
        c_new = i * z + f * c
        if "o" in order:
            o = sigmoid(xt @ Wg["o"] + h @ Rg["o"] + peep["o"] * c_new + bg["o"] + fgr_o)
        else:  # nog
            o = np.ones_like(c)
        h = o * h_act(c_new)
        c = c_new
        if fgr:
            gates_prev = np.concatenate([i, f, o], axis=-1)
        outputs[:, t] = h
    states = [h, c]
    if fgr:
        states.append(gates_prev)
    return outputs, states


# ---------------------------------------------------------------------------
# GRU (Cho et al. 2014), gate order z, r, h
# ---------------------------------------------------------------------------
def gru(x, weights, reset_after=True):
    """GRU, fused slices in order z, r, h.

    reset_after=False (bias (3u,)):
        z = s(x W_z + h R_z + b_z);  r = s(x W_r + h R_r + b_r)
        cand = tanh(x W_h + (r * h) R_h + b_h)
    reset_after=True (bias (2, 3u): row 0 input bias b^x, row 1 recurrent b^h):
        z = s(x W_z + b^x_z + h R_z + b^h_z);  r likewise
        cand = tanh(x W_h + b^x_h + r * (h R_h + b^h_h))
    h_t = z * h_{t-1} + (1 - z) * cand.   States: [h].
    """
    dt = x.dtype
    W = _get(weights, "kernel", dt)
    R = _get(weights, "recurrent_kernel", dt)
    b = _get(weights, "bias", dt)
    units = R.shape[0]
    if reset_after:
        bx, bh = b[0], b[1]
    else:
        bx, bh = b, np.zeros_like(b)
    Wz, Wr, Wh = (_cols(W, k, units) for k in range(3))
    Rz, Rr, Rh = (_cols(R, k, units) for k in range(3))
    bxz, bxr, bxh = (_cols(bx, k, units) for k in range(3))
    bhz, bhr, bhh = (_cols(bh, k, units) for k in range(3))

    batch, T, _ = x.shape
    h = np.zeros((batch, units), dtype=dt)
    outputs = np.zeros((batch, T, units), dtype=dt)
    for t in range(T):
        xt = x[:, t]
        z = sigmoid(xt @ Wz + bxz + h @ Rz + bhz)
        r = sigmoid(xt @ Wr + bxr + h @ Rr + bhr)
        if reset_after:
            cand = np.tanh(xt @ Wh + bxh + r * (h @ Rh + bhh))
        else:
            cand = np.tanh(xt @ Wh + (r * h) @ Rh + bxh)
        h = z * h + (1.0 - z) * cand
        outputs[:, t] = h
    return outputs, [h]


# ---------------------------------------------------------------------------
# MUT1 / MUT2 / MUT3 (Jozefowicz, Zaremba & Sutskever 2015)
# ---------------------------------------------------------------------------
def _infer_project(W, units, n_without_projection, project):
    if project is None:
        project = W.shape[1] == (n_without_projection + 1) * units
    return project


def mut1(x, weights, project=None):
    """MUT1.

        z   = s(x W_xz + b_z)
        r   = s(x W_xr + h W_hr + b_r)
        h_t = tanh((r * h) W_hh + tanh(x~) + b_h) * z + h * (1 - z)

    kernel: (d, 2u) slices [z, r] with x~ = x (d == u), or (d, 3u) slices
    [z, r, P] with x~ = x P (project=True, d != u).
    recurrent_kernel (u, 2u) slices [W_hr, W_hh]; bias (3u,) slices [z, r, h].
    `project=None` infers it from the kernel width.  States: [h].
    """
    dt = x.dtype
    W = _get(weights, "kernel", dt)
    R = _get(weights, "recurrent_kernel", dt)
    b = _get(weights, "bias", dt)
    units = R.shape[0]
    project = _infer_project(W, units, 2, project)
    W_xz, W_xr = _cols(W, 0, units), _cols(W, 1, units)
    P = _cols(W, 2, units) if project else None
    W_hr, W_hh = _cols(R, 0, units), _cols(R, 1, units)
    b_z, b_r, b_h = (_cols(b, k, units) for k in range(3))

    batch, T, _ = x.shape
    h = np.zeros((batch, units), dtype=dt)
    outputs = np.zeros((batch, T, units), dtype=dt)
    for t in range(T):
        xt = x[:, t]
        x_tilde = xt @ P if project else xt
        z = sigmoid(xt @ W_xz + b_z)
        r = sigmoid(xt @ W_xr + h @ W_hr + b_r)
        h = np.tanh((r * h) @ W_hh + np.tanh(x_tilde) + b_h) * z + h * (1.0 - z)
        outputs[:, t] = h
    return outputs, [h]


def mut2(x, weights, project=None):
    """MUT2.

        z   = s(x W_xz + h W_hz + b_z)
        r   = s(x~ + h W_hr + b_r)
        h_t = tanh((r * h) W_hh + x W_xh + b_h) * z + h * (1 - z)

    kernel: (d, 2u) slices [z (W_xz), h (W_xh)] with x~ = x (d == u), or
    (d, 3u) slices [z, P, h] with x~ = x P (project=True, d != u).
    recurrent_kernel (u, 3u) slices [W_hz, W_hr, W_hh]; bias (3u,) [z, r, h].
    `project=None` infers it from the kernel width.  States: [h].
    """
    dt = x.dtype
    W = _get(weights, "kernel", dt)
    R = _get(weights, "recurrent_kernel", dt)
    b = _get(weights, "bias", dt)
    units = R.shape[0]
    project = _infer_project(W, units, 2, project)
    if project:
        W_xz, P, W_xh = (_cols(W, k, units) for k in range(3))
    else:
        W_xz, W_xh = _cols(W, 0, units), _cols(W, 1, units)
        P = None
    W_hz, W_hr, W_hh = (_cols(R, k, units) for k in range(3))
    b_z, b_r, b_h = (_cols(b, k, units) for k in range(3))

    batch, T, _ = x.shape
    h = np.zeros((batch, units), dtype=dt)
    outputs = np.zeros((batch, T, units), dtype=dt)
    for t in range(T):
        xt = x[:, t]
        x_tilde = xt @ P if project else xt
        z = sigmoid(xt @ W_xz + h @ W_hz + b_z)
        r = sigmoid(x_tilde + h @ W_hr + b_r)
        h = np.tanh((r * h) @ W_hh + xt @ W_xh + b_h) * z + h * (1.0 - z)
        outputs[:, t] = h
    return outputs, [h]


def mut3(x, weights):
    """MUT3.

        z   = s(x W_xz + tanh(h) W_hz + b_z)
        r   = s(x W_xr + h W_hr + b_r)
        h_t = tanh((r * h) W_hh + x W_xh + b_h) * z + h * (1 - z)

    kernel (d, 3u) slices [W_xz, W_xr, W_xh]; recurrent_kernel (u, 3u) slices
    [W_hz, W_hr, W_hh]; bias (3u,) slices [z, r, h].  States: [h].
    """
    dt = x.dtype
    W = _get(weights, "kernel", dt)
    R = _get(weights, "recurrent_kernel", dt)
    b = _get(weights, "bias", dt)
    units = R.shape[0]
    W_xz, W_xr, W_xh = (_cols(W, k, units) for k in range(3))
    W_hz, W_hr, W_hh = (_cols(R, k, units) for k in range(3))
    b_z, b_r, b_h = (_cols(b, k, units) for k in range(3))

    batch, T, _ = x.shape
    h = np.zeros((batch, units), dtype=dt)
    outputs = np.zeros((batch, T, units), dtype=dt)
    for t in range(T):
        xt = x[:, t]
        z = sigmoid(xt @ W_xz + np.tanh(h) @ W_hz + b_z)
        r = sigmoid(xt @ W_xr + h @ W_hr + b_r)
        h = np.tanh((r * h) @ W_hh + xt @ W_xh + b_h) * z + h * (1.0 - z)
        outputs[:, t] = h
    return outputs, [h]
