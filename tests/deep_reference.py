"""NumPy references of the deep RNN architectures (Pascanu et al. 2014).

Written from the equations in the layers' docstrings, not from their code:
plain loops over time in ``x.dtype`` (float64 inputs give a float64
reference). Conventions as in ``reference.py``: ``x`` is (batch, T, d),
weights are a dict of NumPy arrays keyed by weight name, row vectors
(``x @ W``), and every function returns ``(outputs, final_states)``.

Intermediate units g (argument ``unit``: a dict with "unit_type",
"maxout_pieces", "lp_group", "lp_epsilon"): a pre-activation of m * w
columns holds m blocks of w columns, filter j of unit i in column j * w + i.

    tanh, relu:  g(a) = tanh(a), max(a, 0)
    maxout:      y_i = max_j a_ji
    lp:          y_i = (sum_j (a_ji^2 + eps^2)^(p_i / 2))^(1 / p_i),
                 p_i = 1 + log(1 + exp(rho_i))
"""

import numpy as np
import reference as ref

UNIT_DEFAULTS = {"unit_type": "tanh", "maxout_pieces": 2, "lp_group": 2, "lp_epsilon": 1e-6}


def _w(weights, name, dtype):
    return np.asarray(weights[name]).astype(dtype)


def _blocks(a, m):
    w = a.shape[-1] // m
    return [a[..., j * w : (j + 1) * w] for j in range(m)]


def unit_fn(unit, a, rho=None):
    unit = {**UNIT_DEFAULTS, **unit}
    kind = unit["unit_type"]
    if kind == "tanh":
        return np.tanh(a)
    if kind == "relu":
        return np.maximum(a, 0.0)
    if kind == "maxout":
        return np.max(np.stack(_blocks(a, unit["maxout_pieces"])), axis=0)
    if kind == "lp":
        p = 1.0 + np.log1p(np.exp(rho))
        eps = unit["lp_epsilon"]
        total = sum((b * b + eps * eps) ** (p / 2.0) for b in _blocks(a, unit["lp_group"]))
        return total ** (1.0 / p)
    raise ValueError(kind)


def _layer(weights, kernel, bias, rho, z, unit, dtype):
    """g(z K + b) for the named weights (bias / rho may be absent)."""
    a = z @ _w(weights, kernel, dtype)
    if bias in weights:
        a = a + _w(weights, bias, dtype)
    return unit_fn(unit, a, _w(weights, rho, dtype) if rho in weights else None)


def mlp(weights, z, count, unit, kernel="transition_kernel_{}", bias="transition_bias_{}", first=1):
    """`count` hidden layers k = first .. first+count-1: z = g(z W_k + b_k)."""
    for k in range(first, first + count):
        z = _layer(weights, kernel.format(k), bias.format(k), f"lp_rho_{k}", z, unit, z.dtype)
    return z


def dt_rnn(x, weights, depth, unit=None, shortcut=False, time_skip=0):
    """DT-RNN / DT(S)-RNN with skip across time (DeepTransitionCell).

        a_1 = x_t U + h_{t-1} W_1 [+ h_{t-d} W_d] + b_1
        z_1 = g(a_1); z_k = g(z_{k-1} W_k + b_k), k = 2..L-1
        h_t = tanh(z_{L-1} W_L + b_L [+ x_t U' + h_{t-1} W'])
        (L = 1: h_t = tanh(a_1))

    kernel = [U | U'], recurrent_kernel = [W_1 | W'], bias = b_1,
    skip_kernel = W_d, transition_kernel_k = W_k, transition_bias_k = b_k.
    States: [h_T] or, with time_skip d, [h_T, [h_{T-d+1}, ..., h_T]].
    """
    unit = unit or {}
    dt = x.dtype
    K = _w(weights, "kernel", dt)
    R = _w(weights, "recurrent_kernel", dt)
    batch, T, _ = x.shape
    u = R.shape[0]
    p1 = K.shape[1] - (u if shortcut else 0)
    b1 = _w(weights, "bias", dt) if "bias" in weights else np.zeros(p1, dt)
    hs = []
    h = np.zeros((batch, u), dt)
    for t in range(T):
        xt = x[:, t]
        a1 = xt @ K[:, :p1] + h @ R[:, :p1] + b1
        if time_skip:
            h_skip = hs[t - time_skip] if t - time_skip >= 0 else np.zeros_like(h)
            a1 = a1 + h_skip @ _w(weights, "skip_kernel", dt)
        if depth == 1:
            h_new = np.tanh(a1)
        else:
            rho1 = _w(weights, "lp_rho_1", dt) if "lp_rho_1" in weights else None
            z = unit_fn(unit, a1, rho1)
            z = mlp(weights, z, depth - 2, unit, first=2)
            last = z @ _w(weights, f"transition_kernel_{depth}", dt)
            if f"transition_bias_{depth}" in weights:
                last = last + _w(weights, f"transition_bias_{depth}", dt)
            if shortcut:
                last = last + xt @ K[:, p1:] + h @ R[:, p1:]
            h_new = np.tanh(last)
        h = h_new
        hs.append(h)
    outputs = np.stack(hs, axis=1)
    if not time_skip:
        return outputs, [h]
    padded = [np.zeros_like(h)] * max(0, time_skip - T) + hs[-time_skip:]
    return outputs, [h, np.concatenate(padded, axis=-1)]


def _recurrent_input(weights, h, depth, unit, shortcut):
    """m_t of the deep-transition gated cells: MLP(h) [, h]."""
    m = mlp(weights, h, depth - 1, unit)
    return np.concatenate([m, h], axis=-1) if shortcut else m


def dt_lstm(x, weights, depth, unit=None, shortcut=False, peepholes=False):
    """DT-LSTM, variants "np" (peepholes=False) and "vanilla" (True).

    m_t = MLP(h_{t-1}) [, h_{t-1}];  pre = x_t W + m_t R + b (blocks i f c o)
    i = s(pre_i + p_i c_{t-1}), f = s(pre_f + p_f c_{t-1}), z = tanh(pre_c)
    c_t = i z + f c_{t-1}, o = s(pre_o + p_o c_t), h_t = o tanh(c_t)
    """
    unit = unit or {}
    dt = x.dtype
    W = _w(weights, "kernel", dt)
    R = _w(weights, "recurrent_kernel", dt)
    b = _w(weights, "bias", dt)
    batch, T, _ = x.shape
    u = W.shape[1] // 4
    peep = {g: _w(weights, f"peephole_{g}", dt) if peepholes else 0.0 for g in "ifo"}
    h = np.zeros((batch, u), dt)
    c = np.zeros((batch, u), dt)
    outputs = []
    for t in range(T):
        m = _recurrent_input(weights, h, depth, unit, shortcut)
        pi, pf, pc, po = _blocks(x[:, t] @ W + m @ R + b, 4)
        i = ref.sigmoid(pi + peep["i"] * c)
        f = ref.sigmoid(pf + peep["f"] * c)
        c = i * np.tanh(pc) + f * c
        h = ref.sigmoid(po + peep["o"] * c) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), [h, c]


def dt_gru(x, weights, depth, unit=None, shortcut=False, reset_after=True):
    """DT-GRU (blocks z, r, h):

    m_t = MLP(h_{t-1}) [, h_{t-1}]
    z = s(x W_z + m U_z + b_z), r = s(x W_r + m U_r + b_r)
    n = tanh(x W_h + b^x_h + r * (m U_h + b^h_h))     (reset_after)
    n = tanh(x W_h + (r * m) U_h + b_h)               (reset_after=False)
    h_t = z h_{t-1} + (1 - z) n
    """
    unit = unit or {}
    dt = x.dtype
    W = _w(weights, "kernel", dt)
    R = _w(weights, "recurrent_kernel", dt)
    b = _w(weights, "bias", dt)
    b_in, b_rec = (b[0], b[1]) if reset_after else (b, np.zeros_like(b))
    batch, T, _ = x.shape
    u = W.shape[1] // 3
    h = np.zeros((batch, u), dt)
    outputs = []
    for t in range(T):
        m = _recurrent_input(weights, h, depth, unit, shortcut)
        xz, xr, xh = _blocks(x[:, t] @ W + b_in, 3)
        Rz, Rr, Rh = _blocks(R, 3)
        bz, br, bh = _blocks(b_rec, 3)
        z = ref.sigmoid(xz + m @ Rz + bz)
        r = ref.sigmoid(xr + m @ Rr + br)
        if reset_after:
            n = np.tanh(xh + r * (m @ Rh + bh))
        else:
            n = np.tanh(xh + (r * m) @ Rh)
        h = z * h + (1.0 - z) * n
        outputs.append(h)
    return np.stack(outputs, axis=1), [h]


def deep_output(x, weights, depth, unit=None, activation=lambda a: a):
    """y = psi_0(z_{D-1} V + c), z_k = psi(z_{k-1} V_k + c_k), z_0 = x."""
    z = mlp(weights, x, depth - 1, unit or {}, kernel="hidden_kernel_{}", bias="hidden_bias_{}")
    y = z @ _w(weights, "kernel", x.dtype)
    if "bias" in weights:
        y = y + _w(weights, "bias", x.dtype)
    return activation(y)


def stacked(x, layers, input_skip=False, output_skip=False, residual=False):
    """sRNN from per-layer sequence references `layers[l](inputs)`.

        i^(1) = x, i^(l) = o^(l-1) or [x, o^(l-1)];  h^(l) = layer_l(i^(l))
        o^(1) = h^(1), o^(l) = h^(l) [+ o^(l-1)];  y = o^(L) or [h^(1..L)]

    Each layer runs over the whole sequence (layer l at step t needs layer
    l-1 at step t only). States: every layer's final states, in order.
    """
    below, hs, states = x, [], []
    for k, layer in enumerate(layers):
        inputs = np.concatenate([x, below], axis=-1) if k > 0 and input_skip else below
        h, s = layer(inputs)
        below = h + below if residual and k > 0 else h
        hs.append(h)
        states += s
    return (np.concatenate(hs, axis=-1) if output_skip else below), states
