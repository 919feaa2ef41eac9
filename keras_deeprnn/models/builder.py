"""`deep_rnn`: the architectures of Pascanu et al. 2014 by name."""

from keras_deeprnn.layers.rnn import RNN
from keras_deeprnn.models.architecture import resolve


def deep_rnn(
    kind="rnn",
    *,
    units,
    cell="rnn",
    depth=None,
    widths=None,
    unit_type="tanh",
    maxout_pieces=2,
    lp_group=2,
    lp_epsilon=1e-6,
    lp_p_init=2.0,
    time_skip=0,
    input_skip=False,
    output_skip=False,
    residual=False,
    output_units=None,
    output_depth=None,
    output_widths=None,
    output_unit_type=None,
    output_activation=None,
    cell_kwargs=None,
    output_kwargs=None,
    return_sequences=True,
    return_state=False,
    go_backwards=False,
    stateful=False,
    name=None,
):
    """The layers of a deep RNN of Pascanu, Gulcehre, Cho & Bengio (2014).

    Returns a list of Keras layers to apply in order (sequence in, sequence
    out): `[rnn]` or, with `output_units`, `[rnn, output]`. `rnn` is a stock
    `keras.layers.RNN` (so masking, `Bidirectional(layers[0])`,
    `return_state` and `stateful` work as usual) and `output` a
    `DeepOutput` (a `Dense` for depth 1) applied to every time step:

        model = keras.Sequential([keras.Input((None, 88)),
                                  *deep_rnn("dots", units=200, output_units=88,
                                            output_activation="sigmoid")])

    Kinds (L = `depth`):

    - "rnn": the one-layer transition h_t = phi(x_t U + h_{t-1} W + b) of
      `cell` (depth must be 1).
    - "dt": deep transition: `DeepTransitionCell` (cell="rnn") or
      `DeepTransitionLSTMCell` / `DeepTransitionGRUCell` with L layers.
    - "dts": "dt" with shortcuts (DT(S)).
    - "dot", "dots": "dt" / "dts" plus a deep output of `output_depth`
      affine maps (default 2).
    - "srnn": L stacked layers of `cell` in one `StackedCells`, with
      `input_skip`, `output_skip` and `residual`.

    For cell="rnn" the cell is always a `DeepTransitionCell` (depth 1 for
    "rnn" and "srnn"), so `time_skip` works with every kind.

    Args:
        kind: One of "rnn", "dt", "dts", "dot", "dots", "srnn".
        units: Units of the recurrent state (of every layer for "srnn").
        cell: A name of `keras_deeprnn.cells.CELL_NAMES` ("rnn", "lstm",
            "lstm-<variant>", "gru", "mut1", ...); the deep-transition kinds
            take "rnn", the LSTMs and "gru".
        depth: Layers of the transition (dt kinds, default 2) or of the
            stack (srnn, default 2); 1 for "rnn".
        widths: Intermediate widths of the deep transition (default units).
        unit_type: Intermediate unit type ("tanh", "relu", "maxout", "lp").
        maxout_pieces, lp_group, lp_epsilon, lp_p_init: Unit arguments, see
            `DeepTransitionCell` (shared by the deep output unless
            `output_kwargs` sets them).
        time_skip: Skip connection across time of delay d (cell="rnn").
        input_skip, output_skip, residual: Options of "srnn", see
            `StackedCells`.
        output_units: Output dimension; adds the output layer (required for
            "dot" and "dots").
        output_depth: Affine maps of the deep output (dot kinds, >= 2).
        output_widths: Its intermediate widths (default units).
        output_unit_type: Its intermediate unit type (default unit_type).
        output_activation: psi_0, its final activation (default linear).
        cell_kwargs: More arguments for every cell (e.g. `dropout`,
            `use_bias`, `reset_after`, `variant`).
        output_kwargs: More arguments for `DeepOutput`.
        return_sequences, return_state, go_backwards, stateful: Of the RNN
            layer. `return_state=True` is refused with an output layer (the
            RNN then returns a list): build without `output_units`.
        name: Prefix of the layer names ("{name}_rnn", "{name}_output").

    Raises:
        ValueError: For an unknown kind, cell or unit type, a depth < 1,
            an option the kind does not have, and other bad arguments; the
            message names the argument.
    """
    arch = resolve(
        kind,
        units=units,
        cell=cell,
        depth=depth,
        widths=widths,
        unit_type=unit_type,
        maxout_pieces=maxout_pieces,
        lp_group=lp_group,
        lp_epsilon=lp_epsilon,
        lp_p_init=lp_p_init,
        time_skip=time_skip,
        input_skip=input_skip,
        output_skip=output_skip,
        residual=residual,
        output_units=output_units,
        output_depth=output_depth,
        output_widths=output_widths,
        output_unit_type=output_unit_type,
        output_activation=output_activation,
        cell_kwargs=cell_kwargs,
        output_kwargs=output_kwargs,
    )
    if return_state and arch.output_units is not None:
        raise ValueError(
            "Argument `return_state=True` makes the RNN return a list, which "
            "the output layer cannot take: build without `output_units` and "
            "apply a DeepOutput to the first output."
        )
    layers = [
        RNN(
            arch.rnn_cell(),
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            name=None if name is None else f"{name}_rnn",
        )
    ]
    if arch.output_units is not None:
        layers.append(arch.output_layer(None if name is None else f"{name}_output"))
    return layers
