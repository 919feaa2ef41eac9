"""Bad configuration fails at construction; bad inputs fail clearly at call."""

import keras
import numpy as np
import pytest
from cell_zoo import CONFIGS
from cell_zoo import IDS

from keras_deeprnn import cells


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match=r"variant.*'fancy'.*'vanilla'.*'cifg'"):
        cells.LSTMCell(4, variant="fancy")


def test_peephole_cell_refuses_another_variant():
    with pytest.raises(ValueError, match="vanilla"):
        cells.PeepholeLSTMCell(4, variant="np")


@pytest.mark.parametrize("units", [0, -3, 2.5, None, True])
@pytest.mark.parametrize("name", IDS)
def test_units_must_be_positive_integer(name, units):
    with pytest.raises(ValueError, match="units"):
        CONFIGS[name](units)


@pytest.mark.parametrize("arg", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, "0.2"])
@pytest.mark.parametrize("name", ["rnn", "lstm-np", "gru", "mut1"])
def test_dropout_must_be_in_unit_interval(name, arg, value):
    with pytest.raises(ValueError, match=arg):
        CONFIGS[name](4, **{arg: value})


@pytest.mark.parametrize("leak", [-0.1, 1.0, 2, "0.5"])
def test_leak_must_be_in_unit_interval(leak):
    with pytest.raises(ValueError, match="leak"):
        cells.SimpleRNNCell(4, leak=leak)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError):
        cells.GRUCell(4, activation="no-such-activation")


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 3, 1)])
@pytest.mark.parametrize("name", ["rnn", "lstm-fgr", "gru", "mut2"])
def test_wrong_rank_is_a_clear_error(name, shape):
    layer = keras.layers.RNN(CONFIGS[name](4))
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        layer(np.zeros(shape, "float32"))


@pytest.mark.parametrize("name", IDS)
def test_wrong_feature_width_is_a_clear_error(name):
    layer = keras.layers.RNN(CONFIGS[name](4))
    layer(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="built for 3 input features"):
        layer(np.zeros((2, 5, 6), "float32"))


def test_wrong_feature_width_in_a_compiled_model():
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.RNN(cells.LSTMCell(4)), keras.layers.Dense(1)]
    )
    with pytest.raises(ValueError, match="3"):
        model.predict(np.zeros((2, 5, 6), "float32"), verbose=0)


def test_cells_by_name():
    cell = cells.get("lstm-cifg", 5, dropout=0.1)
    assert isinstance(cell, cells.LSTMCell) and cell.variant == "cifg" and cell.dropout == 0.1
    assert isinstance(cells.get("mut3", 2), cells.MUT3Cell)
    assert all(cells.get(name, 2).units == 2 for name in cells.CELL_NAMES)
    with pytest.raises(ValueError, match="Unknown cell 'lstn'.*gru"):
        cells.get("lstn", 4)
    with pytest.raises(ValueError, match="variant"):
        cells.get("lstm-xyz", 4)
