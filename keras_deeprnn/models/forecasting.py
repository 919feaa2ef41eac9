"""Forecasting models: windows `(batch, seq_len, channels)` in, forecasts
`(batch, horizon, outputs)` out, as Keras models.

- `naive_forecaster`: repeat the last value, or the last season.
- `linear_forecaster`: one map along time shared by the channels (Zeng et
  al. 2023's Linear), with `decomposition` their DLinear.
- `rnn_forecaster`: many-to-one: any architecture of `deep_rnn` reads the
  window, a dense map gives all `horizon x outputs` values at once.
- `segrnn_forecaster`: SegRNN (Lin et al. 2023), `SegmentRNN`.
- `Seq2SeqForecaster`: an encoder-decoder decoding the horizon segment by
  segment (`SegmentSeq2Seq`), trained with teacher forcing.
- `average_forecaster`: the mean of several trained forecasters' forecasts.

`targets` are the indices of the forecast channels (default all: features
"M"). `normalization` puts the network between `ReversibleInstanceNorm`s: None,
"revin" (mean and scale, affine) or "last" (subtract the last value).
"""

import keras

from keras_deeprnn.layers.forecasting import NaiveForecast
from keras_deeprnn.layers.forecasting import ReversibleInstanceNorm
from keras_deeprnn.layers.forecasting import SegmentRNN
from keras_deeprnn.layers.forecasting import SegmentSeq2Seq
from keras_deeprnn.layers.forecasting import SelectChannels
from keras_deeprnn.layers.forecasting import SeriesDecomposition
from keras_deeprnn.layers.forecasting import TemporalDense
from keras_deeprnn.models.builder import deep_rnn

NORMALIZATIONS = {
    None: None,
    "revin": {"center": "mean", "scale": True, "affine": True},
    "last": {"center": "last", "scale": False, "affine": False},
}


def _model(seq_len, channels, core, normalization, targets, name, per_channel=True):
    """`core` (a layer, windows to forecasts) normalized and cut to `targets`.

    A `per_channel` core forecasts every input channel (the targets are
    picked after it); otherwise it forecasts the targets itself.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Unknown normalization {normalization!r}; choose None, 'revin' or 'last'."
        )
    window = keras.Input((seq_len, channels), name="window")
    if normalization:
        norm = ReversibleInstanceNorm(
            targets=None if per_channel else targets, **NORMALIZATIONS[normalization]
        )
        forecast = norm(window, forecast=core(norm(window)))
    else:
        forecast = core(window)
    if per_channel and targets is not None:
        forecast = SelectChannels(targets)(forecast)
    return keras.Model(window, forecast, name=name)


def naive_forecaster(seq_len, channels, horizon, period=1, targets=None):
    """Repeats the last value (`period=1`) or the last `period` steps."""
    return _model(
        seq_len,
        channels,
        NaiveForecast(horizon, period),
        None,
        targets,
        "last" if period == 1 else f"seasonal_naive_{period}",
    )


def linear_forecaster(
    seq_len,
    channels,
    horizon,
    decomposition=False,
    kernel_size=25,
    normalization=None,
    targets=None,
):
    """Linear (a `TemporalDense`) or, with `decomposition`, DLinear: one map
    of the trend (`SeriesDecomposition(kernel_size)`) plus one of the rest."""
    if decomposition:
        window = keras.Input((seq_len, channels))
        seasonal, trend = SeriesDecomposition(kernel_size)(window)
        forecast = keras.layers.Add()(
            [
                TemporalDense(horizon, name="seasonal")(seasonal),
                TemporalDense(horizon, name="trend")(trend),
            ]
        )
        core = keras.Model(window, forecast, name="dlinear_core")
    else:
        core = TemporalDense(horizon)
    return _model(
        seq_len, channels, core, normalization, targets, "dlinear" if decomposition else "linear"
    )


def rnn_forecaster(
    seq_len,
    channels,
    horizon,
    kind="rnn",
    units=128,
    cell="lstm",
    depth=None,
    unit_type="tanh",
    dropout=0.0,
    recurrent_dropout=0.0,
    normalization="revin",
    targets=None,
):
    """Many-to-one: the window through `deep_rnn(kind, ...)`, its last
    output (after `dropout`) mapped to every step of the horizon at once."""
    outputs = channels if targets is None else len(targets)
    cell_kwargs = {"recurrent_dropout": recurrent_dropout} if recurrent_dropout else None
    core = keras.Sequential(
        [
            keras.Input((seq_len, channels)),
            *deep_rnn(
                kind,
                units=units,
                cell=cell,
                depth=depth,
                unit_type=unit_type,
                cell_kwargs=cell_kwargs,
                return_sequences=False,
            ),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(horizon * outputs, name="forecast"),
            keras.layers.Reshape((horizon, outputs)),
        ],
        name=f"{cell}_{kind}".replace("-", "_"),
    )
    return _model(seq_len, channels, core, normalization, targets, "rnn", per_channel=False)


def segrnn_forecaster(
    seq_len,
    channels,
    horizon,
    seg_len=48,
    units=512,
    cell="gru",
    dropout=0.5,
    normalization="last",
    targets=None,
):
    """SegRNN: `SegmentRNN` in `ReversibleInstanceNorm` (by default SegRNN's
    own: subtract the last value)."""
    core = SegmentRNN(horizon, seg_len=seg_len, units=units, cell=cell, dropout=dropout)
    return _model(seq_len, channels, core, normalization, targets, "segrnn")


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class Seq2SeqForecaster(keras.Model):
    """An encoder-decoder forecaster (`SegmentSeq2Seq`) that `fit` trains
    with teacher forcing and that forecasts autoregressively.

    A functional model of windows `(batch, seq_len, channels)`: each window
    is centred on its last value (as SegRNN does), decoded from its own
    outputs, and shifted back. That is what `predict`, `evaluate`, the
    validation loss and an export compute. In `fit` the loss is taken on the
    teacher-forced decoding instead (each output segment from the true one
    before it), through `compute_loss`, which sees the targets; the
    training metrics stay those of the autoregressive forecast.

    Args:
        seq_len: Steps of the window.
        channels: Channels of the window; all of them are forecast.
        horizon, seg_len, units, cell, dropout: As `SegmentSeq2Seq`.

    Example:

    >>> model = Seq2SeqForecaster(96, 3, 48, seg_len=24, units=16)
    >>> tuple(model(np.zeros((2, 96, 3), "float32")).shape)
    (2, 48, 3)
    """

    def __init__(
        self,
        seq_len,
        channels,
        horizon,
        seg_len=48,
        units=256,
        cell="gru",
        dropout=0.0,
        name="seq2seq",
        **kwargs,
    ):
        core = SegmentSeq2Seq(
            horizon, seg_len=seg_len, units=units, cell=cell, dropout=dropout, name="seq2seq"
        )
        window = keras.Input((seq_len, channels), name="window")
        last = window[:, -1:]
        super().__init__(window, core(window - last) + last, name=name, **kwargs)
        self.core = core
        self.shape_args = {"seq_len": seq_len, "channels": channels}

    def teacher_forced(self, x, y, training=False):
        """The forecasts of windows `x` decoded with the true forecasts `y`."""
        last = x[:, -1:]
        return self.core(x - last, teacher=y - last, training=training) + last

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training and y is not None:
            y_pred = self.teacher_forced(x, y, training=True)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def get_config(self):
        core = self.core
        return {
            "name": self.name,
            **self.shape_args,
            "horizon": core.horizon,
            "seg_len": core.seg_len,
            "units": core.units,
            "cell": core.cell_name,
            "dropout": core.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def average_forecaster(members, name="ensemble"):
    """One model forecasting the mean of `members`' forecasts.

    A deep ensemble (Lakshminarayanan et al. 2017): forecasters of the same
    windows and horizon, each trained on its own (from its own seed), whose
    mean forecast has less of the variance that one training run leaves.
    It saves, loads and exports as one Keras model.

    Args:
        members: Trained Keras forecasters with distinct names, all of the
            same input and output shapes.
        name: The model's name.

    Example:

    >>> members = [segrnn_forecaster(96, 3, 48, seg_len=24, units=16) for _ in range(2)]
    >>> for i, member in enumerate(members):
    ...     member.name = f"member_{i}"
    >>> model = average_forecaster(members)
    >>> tuple(model(np.zeros((2, 96, 3), "float32")).shape)
    (2, 48, 3)
    """
    members = list(members)
    if not members:
        raise ValueError("average_forecaster needs at least one member.")
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in members}
    if len(shapes) > 1:
        raise ValueError(
            f"The members map different shapes (window -> forecast): {sorted(shapes)}."
        )
    names = [m.name for m in members]
    if len(set(names)) < len(names):
        raise ValueError(f"The members need distinct names, got {names}.")
    window = keras.Input(members[0].input_shape[1:], name="window")
    forecasts = [member(window) for member in members]
    mean = keras.layers.Average()(forecasts) if len(forecasts) > 1 else forecasts[0]
    return keras.Model(window, mean, name=name)
