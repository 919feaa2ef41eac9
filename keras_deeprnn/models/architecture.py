"""The resolved configuration of a deep RNN: arguments checked once, shared
by the builder (`deep_rnn`) and the parameter count (`count_params`), and
the construction of its cell and output layer."""

import dataclasses

from keras_deeprnn import cells
from keras_deeprnn.cells import CELL_NAMES
from keras_deeprnn.cells.base import check_choice
from keras_deeprnn.cells.base import check_units
from keras_deeprnn.layers._units import HiddenUnits
from keras_deeprnn.layers._units import check_bool
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.layers._units import check_widths
from keras_deeprnn.layers.deep_output import DeepOutput
from keras_deeprnn.layers.deep_transition_cell import DeepTransitionCell
from keras_deeprnn.layers.deep_transition_cell import check_time_skip
from keras_deeprnn.layers.deep_transition_gru_cell import DeepTransitionGRUCell
from keras_deeprnn.layers.deep_transition_lstm_cell import DeepTransitionLSTMCell
from keras_deeprnn.layers.stacked_cells import StackedCells

KINDS = ("rnn", "dt", "dts", "dot", "dots", "srnn")
DEEP_TRANSITION_KINDS = ("dt", "dts", "dot", "dots")
DEEP_OUTPUT_KINDS = ("dot", "dots")
# Cells with a deep-transition version: the RNN, every LSTM variant, the GRU.
DEEP_TRANSITION_CELLS = tuple(
    name for name in CELL_NAMES if name in ("rnn", "gru") or name.startswith("lstm")
)
UNIT_ARGS = ("maxout_pieces", "lp_group", "lp_epsilon", "lp_p_init")
# Set by deep_rnn's own arguments, so not accepted in cell_kwargs / output_kwargs.
BUILDER_CELL_ARGS = ("units", "depth", "widths", "unit_type", "shortcut", "time_skip", *UNIT_ARGS)
BUILDER_OUTPUT_ARGS = ("units", "depth", "widths", "unit_type", "activation")


def _check_kwargs(name, kwargs, reserved):
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"Argument `{name}` must be a dict or None, got {kwargs!r}.")
    clash = sorted(set(kwargs) & set(reserved))
    if clash:
        raise ValueError(
            f"Argument `{name}` may not set {clash}: pass them as arguments "
            "of deep_rnn / count_params."
        )
    return dict(kwargs)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A checked deep RNN configuration (see `deep_rnn` for the fields)."""

    kind: str
    units: int
    cell: str
    family: str  # "rnn", "lstm", "gru", "mut1", "mut2" or "mut3"
    cell_kwargs: dict  # the cell's own arguments, variant included
    depth: int  # transition layers (dt kinds) or stacked layers (srnn)
    widths: list  # intermediate widths of the deep transition
    hidden: HiddenUnits
    shortcut: bool
    time_skip: int
    input_skip: bool
    output_skip: bool
    residual: bool
    output_units: object  # None or int
    output_depth: int
    output_widths: list
    output_hidden: HiddenUnits
    output_activation: object
    output_kwargs: dict

    @property
    def transition_depth(self):
        return self.depth if self.kind in DEEP_TRANSITION_KINDS else 1

    @property
    def layers(self):
        return self.depth if self.kind == "srnn" else 1

    @property
    def rnn_output_size(self):
        return self.units * self.layers if self.output_skip else self.units

    def rnn_cell(self):
        """A new cell for `keras.layers.RNN` (a `StackedCells` for "srnn")."""
        if self.kind == "srnn":
            return StackedCells(
                [self._cell(depth=1) for _ in range(self.depth)],
                input_skip=self.input_skip,
                output_skip=self.output_skip,
                residual=self.residual,
            )
        return self._cell(self.transition_depth)

    def _cell(self, depth):
        if self.family == "rnn":
            return DeepTransitionCell(
                self.units,
                depth=depth,
                widths=self.widths if depth > 1 else None,
                shortcut=self.shortcut,
                time_skip=self.time_skip,
                **self.hidden.get_config(),
                **self.cell_kwargs,
            )
        if self.kind in DEEP_TRANSITION_KINDS:
            deep = {"lstm": DeepTransitionLSTMCell, "gru": DeepTransitionGRUCell}
            return deep[self.family](
                self.units,
                depth=depth,
                widths=self.widths,
                shortcut=self.shortcut,
                **self.hidden.get_config(),
                **self.cell_kwargs,
            )
        return cells.get(self.family, self.units, **self.cell_kwargs)

    def output_layer(self, name=None):
        """A new `DeepOutput` (None without `output_units`)."""
        if self.output_units is None:
            return None
        return DeepOutput(
            self.output_units,
            depth=self.output_depth,
            widths=self.output_widths,
            activation=self.output_activation,
            name=name,
            **{**self.output_hidden.get_config(), **self.output_kwargs},
        )


def resolve(
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
):
    """Check the arguments of `deep_rnn` and return an `Architecture`.

    Besides the checks here, the cell and output layer are constructed once
    (and dropped), so that the arguments they check themselves (cell_kwargs,
    the GRU's reset_after with a deep transition, ...) fail here too.
    """
    kind = check_choice("kind", kind, KINDS)
    units = check_units(units)
    cell = check_choice("cell", cell, CELL_NAMES)
    if kind in DEEP_TRANSITION_KINDS and cell not in DEEP_TRANSITION_CELLS:
        raise ValueError(
            f"Argument `cell`={cell!r} has no deep transition (kind={kind!r}); "
            "allowed: " + ", ".join(repr(c) for c in DEEP_TRANSITION_CELLS) + "."
        )
    family = cell.split("-")[0]
    cell_kwargs = _check_kwargs("cell_kwargs", cell_kwargs, BUILDER_CELL_ARGS)
    if "-" in cell:
        if "variant" in cell_kwargs:
            raise ValueError(
                f"Argument `cell_kwargs` sets a variant and `cell`={cell!r} "
                "names one; use cell='lstm' with cell_kwargs={'variant': ...}."
            )
        cell_kwargs["variant"] = cell.split("-", 1)[1]

    default_depth = 1 if kind == "rnn" else 2
    depth = check_int("depth", default_depth if depth is None else depth, 1)
    if kind in ("dts", "dots") and depth < 2:
        raise ValueError(
            f"Argument `depth` must be >= 2 for kind={kind!r} (the shortcut "
            "needs a deep transition), got 1."
        )
    if kind == "rnn" and depth != 1:
        raise ValueError(
            f"Argument `depth` must be 1 (or None) for kind='rnn', got {depth}; "
            "use kind='dt' for a deep transition or 'srnn' for a stack."
        )
    if kind in DEEP_TRANSITION_KINDS:
        widths = check_widths("widths", widths, depth - 1, units)
    elif widths is not None:
        raise ValueError(
            "Argument `widths` sets the intermediate widths of a deep "
            f"transition; kind={kind!r} has none (got {widths!r})."
        )
    else:
        widths = []
    unit_values = dict(
        maxout_pieces=maxout_pieces,
        lp_group=lp_group,
        lp_epsilon=lp_epsilon,
        lp_p_init=lp_p_init,
    )
    hidden = HiddenUnits(unit_type, **unit_values)

    time_skip = check_time_skip(time_skip)
    if time_skip and family != "rnn":
        raise ValueError(
            f"Argument `time_skip` (skip connections across time) needs "
            f"cell='rnn', got cell={cell!r}."
        )
    for name, value in (
        ("input_skip", input_skip),
        ("output_skip", output_skip),
        ("residual", residual),
    ):
        if check_bool(name, value) and kind != "srnn":
            raise ValueError(f"Argument `{name}` applies to kind='srnn' only, got kind={kind!r}.")

    if output_units is not None:
        output_units = check_int("output_units", output_units, 1)
    elif kind in DEEP_OUTPUT_KINDS:
        raise ValueError(
            f"Argument `output_units` is required for kind={kind!r} (the deep "
            "output's dimensionality)."
        )
    if kind in DEEP_OUTPUT_KINDS:
        output_depth = check_int("output_depth", 2 if output_depth is None else output_depth, 2)
    elif output_depth not in (None, 1) or output_widths is not None:
        raise ValueError(
            f"Arguments `output_depth` / `output_widths` make a deep output: "
            f"use kind='dot' or 'dots', not kind={kind!r}."
        )
    else:
        output_depth = 1
    output_widths = check_widths("output_widths", output_widths, output_depth - 1, units)
    output_kwargs = _check_kwargs("output_kwargs", output_kwargs, BUILDER_OUTPUT_ARGS)
    if output_kwargs and output_units is None:
        raise ValueError("Argument `output_kwargs` needs `output_units`.")
    output_hidden = HiddenUnits(
        unit_type if output_unit_type is None else output_unit_type,
        **{**unit_values, **{k: output_kwargs[k] for k in UNIT_ARGS if k in output_kwargs}},
        type_argument="output_unit_type",
    )
    arch = Architecture(
        kind=kind,
        units=units,
        cell=cell,
        family=family,
        cell_kwargs=cell_kwargs,
        depth=depth,
        widths=widths,
        hidden=hidden,
        shortcut=kind in ("dts", "dots"),
        time_skip=time_skip,
        input_skip=input_skip,
        output_skip=output_skip,
        residual=residual,
        output_units=output_units,
        output_depth=output_depth,
        output_widths=output_widths,
        output_hidden=output_hidden,
        output_activation=output_activation,
        output_kwargs=output_kwargs,
    )
    arch.rnn_cell()
    arch.output_layer()
    return arch
