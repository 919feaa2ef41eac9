"""Parameter counts of the deep RNNs, and units for a parameter budget.

Pascanu et al. compare their architectures at (roughly) equal numbers of
parameters. `count_params` gives the count of `deep_rnn(...)` in closed
form (the formulas below, one per architecture), and `size_to_budget` picks
the `units` whose count is closest to a budget.

Notation: d input_dim, u units, o output_dim, L depth, w_1..w_{L-1} the
intermediate widths, m the filters per intermediate unit (maxout pieces or
Lp group size, else 1), [.] a term present only with that option, B = 1
with biases (else 0), lp = 1 for Lp units (one p per unit, else 0).

    hidden layers from width a through w_1..w_k:
        H(a; w) = sum_k (w_{k-1} m w_k + B m w_k + lp w_k),  w_0 = a

    DT-RNN / DT(S)-RNN, L >= 2 (P = m w_1):
        (d + u)(P [+ u]) + B P + lp w_1 + H(w_1; w_2..w_{L-1})
        + w_{L-1} u + B u [+ u P  (time_skip)]
    plain RNN (L = 1):  (d + u) u + B u [+ u u  (time_skip)]

    DT-LSTM / DT-GRU (r = w_{L-1} [+ u], or u when L = 1; k gate blocks):
        H(u; w_1..w_{L-1}) + d k u + r k u + bias + peepholes (+ 9 u^2 fgr)
        LSTM: k = 4 (3 for nig, nfg, nog, cifg: `variant_gates`), bias
        B k u, peepholes (gates among i, f, o) u unless variant "np"
        (`variant_peepholes`); GRU: k = 3, bias B 6u (reset_after) or B 3u.

    sRNN: the layers' cells with inputs d, then u [+ d] (input_skip).

    output (DeepOutput of D maps from a = u, or L u with output_skip):
        H(a; w'_1..w'_{D-1}) + w'_{D-1} o + B o     (w'_0 = a)
"""

from keras_deeprnn.cells.lstm import variant_gates
from keras_deeprnn.cells.lstm import variant_peepholes
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.models.architecture import resolve


def _hidden(rows, widths, m, lp, bias):
    total = 0
    for width in widths:
        total += rows * m * width + bias * m * width + lp * width
        rows = width
    return total


def _rnn_cell(d, u, depth, widths, m, lp, shortcut, time_skip, bias):
    if depth == 1:
        return (d + u) * u + bias * u + (u * u if time_skip else 0)
    p = m * widths[0]
    return (
        (d + u) * (p + (u if shortcut else 0))
        + bias * p
        + lp * widths[0]
        + _hidden(widths[0], widths[1:], m, lp, bias)
        + widths[-1] * u
        + bias * u
        + (u * p if time_skip else 0)
    )


def _gated_cell(family, kwargs, d, u, depth, widths, m, lp, shortcut, bias):
    r = (widths[-1] if depth > 1 else u) + (u if shortcut else 0)
    total = _hidden(u, widths, m, lp, bias)
    if family == "lstm":
        variant = kwargs.get("variant", "np")
        k = len(variant_gates(variant))
        total += (d + r) * k * u + bias * k * u
        total += len(variant_peepholes(variant)) * u
        if variant == "fgr":
            total += 9 * u * u
    elif family == "gru":
        total += (d + r) * 3 * u + bias * (6 if kwargs.get("reset_after", True) else 3) * u
    else:  # MUT1-3: raw x blocks become a projection when d != u.
        kernel_blocks = 3 if family == "mut3" or d != u else 2
        recurrent_blocks = 2 if family == "mut1" else 3
        total += (d * kernel_blocks + u * recurrent_blocks) * u + bias * 3 * u
    return total


def _cell_params(arch, d, depth):
    bias = int(arch.cell_kwargs.get("use_bias", True))
    m = arch.hidden.multiplier
    lp = int(arch.hidden.unit_type == "lp")
    widths = arch.widths if depth > 1 else []
    if arch.family == "rnn":
        return _rnn_cell(d, arch.units, depth, widths, m, lp, arch.shortcut, arch.time_skip, bias)
    return _gated_cell(
        arch.family,
        arch.cell_kwargs,
        d,
        arch.units,
        depth,
        widths,
        m,
        lp,
        arch.shortcut,
        bias,
    )


def count_params(kind="rnn", *, input_dim, units, output_dim=None, **options):
    """Number of parameters of `deep_rnn(kind, units=units, ...)` built for
    `input_dim` input features, from the formulas of this module.

    Args:
        kind: As in `deep_rnn`.
        input_dim: Input features per step.
        units: Units of the recurrent state.
        output_dim: `output_units` of `deep_rnn` (None: no output layer;
            required for "dot" and "dots").
        **options: The structural arguments of `deep_rnn` (`cell`, `depth`,
            `widths`, `unit_type`, `maxout_pieces`, `lp_group`,
            `time_skip`, `input_skip`, `output_skip`, `residual`,
            `output_depth`, `output_widths`, `output_unit_type`,
            `cell_kwargs`, `output_kwargs`, ...).

    Example:

    >>> count_params("dt", input_dim=3, units=4, depth=2)  # (3+4)4 + 4 + 4*4 + 4
    52
    """
    d = check_int("input_dim", input_dim, 1)
    arch = resolve(kind, units=units, output_units=output_dim, **options)
    u = arch.units
    if arch.kind == "srnn":
        above = u + (d if arch.input_skip else 0)
        total = sum(_cell_params(arch, d if k == 0 else above, 1) for k in range(arch.depth))
    else:
        total = _cell_params(arch, d, arch.transition_depth)
    if arch.output_units is not None:
        o = arch.output_units
        out = arch.output_hidden
        bias = int(arch.output_kwargs.get("use_bias", True))
        rows = arch.rnn_output_size
        total += _hidden(rows, arch.output_widths, out.multiplier, int(out.unit_type == "lp"), bias)
        last = arch.output_widths[-1] if arch.output_widths else rows
        total += last * o + bias * o
    return total


def size_to_budget(kind, budget, input_dim, output_dim=None, **options):
    """The `units` whose `count_params` is closest to `budget`.

    Intermediate widths left at their default follow `units`, so the whole
    network grows with it. Ties go to the smaller network.

    Args:
        kind, input_dim, output_dim, **options: As in `count_params`.
        budget: Target number of parameters (positive integer).

    Returns:
        The number of units (>= 1).

    Example:

    >>> units = size_to_budget("dots", 20000, input_dim=88, output_dim=88)
    >>> layers = deep_rnn("dots", units=units, output_units=88)
    """
    check_int("budget", budget, 1)

    def count(units):
        return count_params(
            kind, input_dim=input_dim, units=units, output_dim=output_dim, **options
        )

    # The count grows with units: bracket the budget, then bisect.
    low, high = 1, 2
    while count(high) < budget:
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        if count(mid) < budget:
            low = mid
        else:
            high = mid
    return min((low, high), key=lambda u: (abs(count(u) - budget), u))
