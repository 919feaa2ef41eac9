"""The next-frame model of polyphonic music: an RNN and 88 Bernoulli outputs."""

import keras

from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.metrics import FrameNLLMetric
from keras_deeprnn.models import KINDS
from keras_deeprnn.models import deep_rnn
from keras_deeprnn.training import GradientNoise

KEYS = 88
ARCHS = KINDS


def build_model(
    cell="lstm",
    arch="rnn",
    units=128,
    depth=None,
    dropout=0.0,
    unit_type="tanh",
    keys=KEYS,
    input_dropout=0.0,
    recurrent_dropout=0.0,
    cell_kwargs=None,
):
    """x_1..x_{T-1} (batch, T-1, keys) -> logits of x_2..x_T.

    Args:
        cell: A cell name (`keras_deeprnn.cells.CELL_NAMES`), e.g. "lstm".
        arch: An architecture of `keras_deeprnn.models.deep_rnn`: "rnn",
            "dt", "dts", "dot", "dots" (deep transition / output, with or
            without shortcuts) or "srnn" (stacked).
        units: Units of the recurrent state (of each layer for "srnn").
        depth: Transition layers (dt kinds) or stacked layers (srnn);
            default 2; "rnn" takes only 1 (or None).
        dropout: Dropout on the recurrent layer's output sequence.
        unit_type: Units of the intermediate layers: "tanh", "relu",
            "maxout" or "lp".
        keys: Keys per frame (88 for a piano).
        input_dropout: Dropout on the input frames (notes of the past
            frames are hidden at random while training, so the model cannot
            lean on any single one).
        recurrent_dropout: Dropout on the recurrent state inside the cells,
            one mask per sequence (Gal & Ghahramani 2016).
        cell_kwargs: More arguments for every recurrent cell (e.g.
            `{"forget_bias": 2.0}` for an LSTM).
    """
    if arch not in ARCHS:
        raise ValueError(f"Unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}.")
    if units < 1 or (depth is not None and depth < 1):
        raise ValueError("--units and --depth must be positive.")
    if arch == "rnn" and depth not in (None, 1):
        raise ValueError(
            "--depth applies to the deep architectures (--arch dt, dts, dot, "
            "dots, srnn); rnn is one layer."
        )
    for option, rate in (
        ("--dropout", dropout),
        ("--input-dropout", input_dropout),
        ("--recurrent-dropout", recurrent_dropout),
    ):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{option} must be in [0, 1), got {rate}.")
    if recurrent_dropout:
        cell_kwargs = {**(cell_kwargs or {}), "recurrent_dropout": recurrent_dropout}
    deep_output = arch in ("dot", "dots")
    rnn, *output = deep_rnn(
        arch,
        units=units,
        cell=cell,
        depth=None if arch == "rnn" else depth or 2,
        unit_type=unit_type,
        output_units=keys if deep_output else None,
        cell_kwargs=cell_kwargs,
    )
    model = keras.Sequential(name=f"music_{cell}_{arch}".replace("-", "_"))
    model.add(keras.Input((None, keys), name="frames"))
    if input_dropout:
        model.add(keras.layers.Dropout(input_dropout, name="input_dropout"))
    model.add(rnn)
    if dropout:
        model.add(keras.layers.Dropout(dropout))
    model.add(output[0] if deep_output else keras.layers.Dense(keys, name="logits"))
    return model


def compile_model(model, lr=1e-3, clipnorm=1.0, gradient_noise=0.0, seed=None):
    """Adam with norm clipping and optional annealed gradient noise.

    `gradient_noise` is the eta of `keras_deeprnn.training.GradientNoise`
    (variance eta / (1 + t)^0.55 at step t; 0: off).
    """
    if gradient_noise < 0:
        raise ValueError(f"--gradient-noise must be >= 0, got {gradient_noise}.")
    optimizer = keras.optimizers.Adam(lr, clipnorm=clipnorm or None)
    if gradient_noise:
        optimizer = GradientNoise(optimizer, eta=gradient_noise, seed=seed)
    model.compile(
        optimizer=optimizer,
        loss=FrameNLL(),
        weighted_metrics=[FrameNLLMetric()],
    )
    return model
