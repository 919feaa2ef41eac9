"""The next-frame model of polyphonic music: an RNN and 88 Bernoulli outputs."""

import keras

from keras_deeprnn import cells
from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.metrics import FrameNLLMetric

KEYS = 88
ARCHS = ("rnn", "srnn")


def build_model(cell="lstm", arch="rnn", units=128, layers=1, dropout=0.0, keys=KEYS):
    """x_1..x_{T-1} (batch, T-1, keys) -> logits of x_2..x_T.

    Args:
        cell: A cell name (`keras_deeprnn.cells.get`), e.g. "lstm", "gru".
        arch: "rnn" (one recurrent layer) or "srnn" (`layers` stacked).
        units: Units per recurrent layer.
        layers: Depth of the stack for "srnn".
        dropout: Dropout on each recurrent layer's output sequence.
    """
    if arch not in ARCHS:
        raise ValueError(f"Unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}.")
    if units < 1 or layers < 1:
        raise ValueError("--units and --layers must be positive.")
    depth = layers if arch == "srnn" else 1
    model = keras.Sequential(name=f"music_{cell}_{arch}")
    model.add(keras.Input((None, keys), name="frames"))
    for _ in range(depth):
        model.add(keras.layers.RNN(cells.get(cell, units), return_sequences=True))
        if dropout:
            model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(keys, name="logits"))
    return model


def compile_model(model, lr=1e-3, clipnorm=1.0):
    optimizer = keras.optimizers.Adam(lr, clipnorm=clipnorm or None)
    model.compile(
        optimizer=optimizer,
        loss=FrameNLL(),
        weighted_metrics=[FrameNLLMetric()],
    )
    return model
