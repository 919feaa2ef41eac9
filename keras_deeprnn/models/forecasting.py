"""Forecasting models: windows `(batch, seq_len, channels)` in, forecasts
`(batch, horizon, outputs)` out, as Keras models.

- `naive_forecaster`: repeat the last value, or the last season.
- `linear_forecaster`: one map along time shared by the channels (Zeng et
  al. 2023's Linear), with `decomposition` their DLinear.
- `rnn_forecaster`: many-to-one: any architecture of `deep_rnn` reads the
  window, a dense map gives all `horizon x outputs` values at once.
- `segrnn_forecaster`: SegRNN (Lin et al. 2023), `SegmentRNN`.

`targets` are the indices of the forecast channels (default all: features
"M"). `normalization` puts the network between `ReversibleInstanceNorm`s: None,
"revin" (mean and scale, affine) or "last" (subtract the last value).
"""

import keras

from keras_deeprnn.layers.forecasting import NaiveForecast
from keras_deeprnn.layers.forecasting import ReversibleInstanceNorm
from keras_deeprnn.layers.forecasting import SegmentRNN
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
