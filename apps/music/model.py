"""The next-frame model of polyphonic music: an RNN and its output.

Two outputs (`OUTPUTS`): "bernoulli", 88 independent Bernoulli keys (a
`Sequential` model of the input frames), and "nade", the joint distribution
of the frame given the recurrent state (an RNN-NADE, `keras_deeprnn.layers.NADE`:
a model of the input frames *and* the target frames, whose conditional
logits are scored by the same frame NLL). `feed(dataset, model)` gives each
model its inputs.
"""

import keras

from keras_deeprnn.layers import NADE
from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.metrics import FrameNLLMetric
from keras_deeprnn.models import KINDS
from keras_deeprnn.models import deep_rnn
from keras_deeprnn.training import GradientNoise

from ..common import runner

KEYS = 88
ARCHS = KINDS
OUTPUTS = ("bernoulli", "nade")


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
    output="bernoulli",
    nade_units=150,
):
    """x_1..x_{T-1} (batch, T-1, keys) -> logits of x_2..x_T.

    With `output="nade"` the model takes `{"frames": x_1..x_{T-1},
    "targets": x_2..x_T}` and returns the NADE's conditional logits of
    x_2..x_T (each key given the state and the lower keys of its frame);
    `FrameNLL` of either output is the frame NLL of its distribution.

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
        output: "bernoulli" (independent keys) or "nade" (RNN-NADE).
        nade_units: Hidden units of the NADE (with `output="nade"`).
    """
    if arch not in ARCHS:
        raise ValueError(f"Unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}.")
    if output not in OUTPUTS:
        raise ValueError(f"Unknown --output {output!r}; choose one of {', '.join(OUTPUTS)}.")
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
    if nade_units < 1:
        raise ValueError(f"--nade-units must be positive, got {nade_units}.")
    nade = output == "nade"
    deep_output = arch in ("dot", "dots")
    rnn, *deep = deep_rnn(
        arch,
        units=units,
        cell=cell,
        depth=None if arch == "rnn" else depth or 2,
        unit_type=unit_type,
        # Under a NADE the deep output is a feature map of the state.
        output_units=(units if nade else keys) if deep_output else None,
        cell_kwargs=cell_kwargs,
    )
    layers = [keras.layers.Dropout(input_dropout, name="input_dropout")] if input_dropout else []
    layers.append(rnn)
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.extend(deep)
    name = f"music_{cell}_{arch}".replace("-", "_")
    if not nade:
        if not deep_output:
            layers.append(keras.layers.Dense(keys, name="logits"))
        return keras.Sequential([keras.Input((None, keys), name="frames"), *layers], name=name)
    frames = keras.Input((None, keys), name="frames")
    targets = keras.Input((None, keys), name="targets")
    x = frames
    for layer in layers:
        x = layer(x)
    logits = NADE(nade_units, name="nade")([x, targets])
    return keras.Model({"frames": frames, "targets": targets}, logits, name=f"{name}_nade")


def uses_targets(model):
    """Whether `model` reads the target frames (an RNN-NADE)."""
    return any(isinstance(layer, NADE) for layer in model.layers)


def feed(dataset, model):
    """`dataset` of (inputs, targets, weights) as `model` takes it: for an
    RNN-NADE the targets are also an input."""
    if not uses_targets(model):
        return dataset
    return dataset.map(lambda x, y, w: ({"frames": x, "targets": y}, y, w))


def compile_model(model, lr=1e-3, clipnorm=1.0, gradient_noise=0.0, seed=None, ema=None):
    """Adam with norm clipping and optional annealed gradient noise; `lr` a
    number or a schedule (`apps.common.runner.learning_rate`).

    `gradient_noise` is the eta of `keras_deeprnn.training.GradientNoise`
    (variance eta / (1 + t)^0.55 at step t; 0: off). `ema`: the momentum of
    Adam's moving average of the weights (`use_ema`), which `runner.fit`
    then validates and keeps; None: off.
    """
    if gradient_noise < 0:
        raise ValueError(f"--gradient-noise must be >= 0, got {gradient_noise}.")
    optimizer = runner.adam(lr, clipnorm, ema)
    if gradient_noise:
        optimizer = GradientNoise(optimizer, eta=gradient_noise, seed=seed)
    model.compile(
        optimizer=optimizer,
        loss=FrameNLL(),
        weighted_metrics=[FrameNLLMetric()],
    )
    return model
