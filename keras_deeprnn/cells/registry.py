"""Cells by name, for command lines and hyperparameter searches."""

from keras_deeprnn.cells.gru import GRUCell
from keras_deeprnn.cells.lstm import VARIANTS
from keras_deeprnn.cells.lstm import LSTMCell
from keras_deeprnn.cells.mut import MUT1Cell
from keras_deeprnn.cells.mut import MUT2Cell
from keras_deeprnn.cells.mut import MUT3Cell
from keras_deeprnn.cells.simple_rnn import SimpleRNNCell

_FACTORIES = {
    "rnn": SimpleRNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "mut1": MUT1Cell,
    "mut2": MUT2Cell,
    "mut3": MUT3Cell,
}

CELL_NAMES = tuple(_FACTORIES) + tuple(f"lstm-{v}" for v in VARIANTS)
# The cells that take a `forget_bias`: every LSTM variant but nfg and cifg.
FORGET_GATE_CELLS = ("lstm",) + tuple(f"lstm-{v}" for v in VARIANTS if v not in ("nfg", "cifg"))


def get(name, units, **kwargs):
    """A new cell from its name.

    Args:
        name: `"rnn"` (tanh Elman RNN), `"lstm"` (the `"np"` variant),
            `"lstm-<variant>"` for any variant of `LSTMCell` (e.g.
            `"lstm-vanilla"`, `"lstm-cifg"`), `"gru"`, `"mut1"`, `"mut2"`,
            `"mut3"`.
        units: Number of units.
        **kwargs: Passed to the cell's constructor.

    Example:

    >>> cell = get("lstm-cifg", 64, dropout=0.1)
    """
    if name.startswith("lstm-"):
        kwargs["variant"] = name[len("lstm-") :]
        name = "lstm"
    if name not in _FACTORIES:
        raise ValueError(f"Unknown cell {name!r}. Known cells: {', '.join(CELL_NAMES)}.")
    return _FACTORIES[name](units, **kwargs)
