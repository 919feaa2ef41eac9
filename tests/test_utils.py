"""`keras_deeprnn.utils.sublayers`: the layers nested in wrappers and models."""

import keras

from keras_deeprnn.layers import RNN
from keras_deeprnn.layers import StackedCells
from keras_deeprnn.utils import sublayers


def test_sublayers_reach_into_wrappers_and_nested_models():
    lstm = keras.layers.LSTM(4, return_sequences=True)
    dense = keras.layers.Dense(2)
    inner = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Bidirectional(lstm),
            keras.layers.TimeDistributed(dense),
        ]
    )
    cells = [keras.layers.GRUCell(3), keras.layers.GRUCell(3)]
    stacked = StackedCells(cells)
    x = keras.Input((None, 3))
    model = keras.Model(x, RNN(stacked)(inner(x)))
    found = sublayers(model)
    assert model not in found
    assert len(found) == len({id(layer) for layer in found})  # each once
    wrapper = inner.layers[0]
    for layer in (
        inner,
        wrapper,
        wrapper.forward_layer,
        wrapper.backward_layer,
        wrapper.forward_layer.cell,
        dense,
        stacked,
        *cells,
    ):
        assert any(layer is f for f in found), layer.name
    # Depth first: a wrapper comes before what it holds.
    assert found.index(wrapper) < found.index(wrapper.forward_layer)
