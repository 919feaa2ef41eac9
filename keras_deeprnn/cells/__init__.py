"""Recurrent cells for stock `keras.layers.RNN`, `Bidirectional` and
`StackedRNNCells`."""

from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.cells.graph import GraphCell
from keras_deeprnn.cells.gru import GRUCell
from keras_deeprnn.cells.lstm import VARIANTS as LSTM_VARIANTS
from keras_deeprnn.cells.lstm import LSTMCell
from keras_deeprnn.cells.lstm import PeepholeLSTMCell
from keras_deeprnn.cells.mut import MUT1Cell
from keras_deeprnn.cells.mut import MUT2Cell
from keras_deeprnn.cells.mut import MUT3Cell
from keras_deeprnn.cells.registry import CELL_NAMES
from keras_deeprnn.cells.registry import FORGET_GATE_CELLS
from keras_deeprnn.cells.registry import get
from keras_deeprnn.cells.simple_rnn import SimpleRNNCell

__all__ = [
    "RecurrentCell",
    "SimpleRNNCell",
    "LSTMCell",
    "LSTM_VARIANTS",
    "PeepholeLSTMCell",
    "GRUCell",
    "MUT1Cell",
    "MUT2Cell",
    "MUT3Cell",
    "GraphCell",
    "CELL_NAMES",
    "FORGET_GATE_CELLS",
    "get",
]
