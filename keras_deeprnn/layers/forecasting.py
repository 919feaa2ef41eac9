"""Layers of long-horizon forecasting: windows `(batch, seq_len, channels)`
in, forecasts `(batch, horizon, channels)` out."""

import keras
from keras import ops

from keras_deeprnn.cells.base import check_rate
from keras_deeprnn.layers._units import check_bool
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.layers._units import check_positive_float
from keras_deeprnn.layers.rnn import RNN


def _channels_last(layer, input_shape):
    if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' takes windows (batch, seq_len, "
            f"channels) of static seq_len and channels, got {input_shape}."
        )
    return input_shape[1], input_shape[2]


def _segments(series, seg_len):
    """(batch, time, channels) -> (batch * channels, time / seg_len, seg_len):
    one series per channel, cut into segments."""
    return ops.reshape(ops.transpose(series, (0, 2, 1)), (-1, series.shape[1] // seg_len, seg_len))


def _unsegmented(rows, batch, channels, horizon):
    """(batch * channels, ...) rows of `horizon` values in all -> (batch,
    horizon, channels): the inverse of `_segments`."""
    return ops.transpose(ops.reshape(rows, (batch, channels, horizon)), (0, 2, 1))


def _segment_count(layer, seq_len):
    """The window's segments; a window that is not whole segments is refused."""
    if seq_len % layer.seg_len:
        raise ValueError(
            f"{type(layer).__name__}: the window ({seq_len} steps) must be a multiple of "
            f"seg_len={layer.seg_len}."
        )
    return seq_len // layer.seg_len


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class NaiveForecast(keras.layers.Layer):
    """Seasonal naive forecast: each step repeats the value `period` steps
    before it (`period=1`: the last value, for every step).

    y_t = x_{L - period + (t mod period)} for t = 0 .. horizon - 1.

    Args:
        horizon: Steps forecast.
        period: The season in steps (24 for a daily season of hourly data);
            at most the window's length.

    Example:

    >>> x = np.arange(6, dtype="float32").reshape(1, 6, 1)
    >>> NaiveForecast(4, period=2)(x)[0, :, 0].numpy().tolist()
    [4.0, 5.0, 4.0, 5.0]
    """

    def __init__(self, horizon, period=1, **kwargs):
        super().__init__(**kwargs)
        self.horizon = check_int("horizon", horizon, 1)
        self.period = check_int("period", period, 1)

    def build(self, input_shape):
        seq_len, _ = _channels_last(self, input_shape)
        if self.period > seq_len:
            raise ValueError(
                f"NaiveForecast: period {self.period} is longer than the window ({seq_len})."
            )

    def call(self, inputs):
        seq_len = inputs.shape[1]
        index = [seq_len - self.period + t % self.period for t in range(self.horizon)]
        return ops.take(inputs, index, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon, "period": self.period}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class TemporalDense(keras.layers.Layer):
    """An affine map along the time axis, the same for every channel.

    y[:, :, c] = W^T x[:, :, c] + b with W of shape `(seq_len, horizon)`:
    the linear forecaster of Zeng et al. 2023 (one map, channel-independent).

    Args:
        horizon: Steps forecast.
        kernel_initializer, bias_initializer: Initializers of W and b.

    Example:

    >>> layer = TemporalDense(24)
    >>> tuple(layer(np.zeros((2, 96, 7), "float32")).shape)
    (2, 24, 7)
    """

    def __init__(
        self, horizon, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs
    ):
        super().__init__(**kwargs)
        self.horizon = check_int("horizon", horizon, 1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        seq_len, _ = _channels_last(self, input_shape)
        self.kernel = self.add_weight(
            shape=(seq_len, self.horizon), initializer=self.kernel_initializer, name="kernel"
        )
        self.bias = self.add_weight(
            shape=(self.horizon,), initializer=self.bias_initializer, name="bias"
        )

    def call(self, inputs):
        y = ops.matmul(ops.transpose(inputs, (0, 2, 1)), self.kernel) + self.bias
        return ops.transpose(y, (0, 2, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "horizon": self.horizon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SeriesDecomposition(keras.layers.Layer):
    """Trend and seasonal parts of a window (Autoformer; DLinear).

    trend = the centred moving average of `kernel_size` steps, the window
    padded by repeating its first and last values; seasonal = x - trend.

    Args:
        kernel_size: Odd number of steps averaged (25 in DLinear).

    Call arguments:
        inputs: `(batch, time, channels)`.

    Returns:
        `(seasonal, trend)`, each shaped as the input.

    Example:

    >>> seasonal, trend = SeriesDecomposition(3)(np.array([[[0.], [3.], [6.]]], "float32"))
    >>> trend[0, :, 0].numpy().tolist()
    [1.0, 3.0, 5.0]
    """

    def __init__(self, kernel_size=25, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = check_int("kernel_size", kernel_size, 1)
        if kernel_size % 2 == 0:
            raise ValueError(f"Argument `kernel_size` must be odd, got {kernel_size}.")

    def call(self, inputs):
        half = (self.kernel_size - 1) // 2
        padded = ops.concatenate(
            [
                ops.repeat(inputs[:, :1], half, axis=1),
                inputs,
                ops.repeat(inputs[:, -1:], half, axis=1),
            ],
            axis=1,
        )
        trend = ops.average_pool(padded, self.kernel_size, strides=1, padding="valid")
        return inputs - trend, trend

    def compute_output_shape(self, input_shape):
        return input_shape, input_shape

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class ReversibleInstanceNorm(keras.layers.Layer):
    """Normalizes each window by its own statistics, and maps a forecast
    made from it back (RevIN, Kim et al. 2022).

    Per window and channel: x' = (x - center) / scale (times `gamma`, plus
    `beta`, with `affine`); a forecast y' of x' is mapped back by the
    inverse, with the statistics of x. This takes the level shifts between
    training and test periods off the model. Call the same layer twice: on
    the window, and on the window with `forecast=` (a shared layer, so the
    exported graph stays one of plain layers).

    Args:
        center: "mean" (RevIN) or "last" (subtract the last value, as
            SegRNN and NLinear do).
        scale: Divide by the window's standard deviation (RevIN).
        affine: A learned scale and shift per channel after normalizing.
        targets: The input channels that the forecast's channels are
            (e.g. `[6]` when only channel 6 is forecast); default all.
        epsilon: Added to the variance.

    Call arguments:
        inputs: Windows `(batch, seq_len, channels)`.
        forecast: None: normalize `inputs`. Otherwise a forecast `(batch,
            horizon, outputs)` of the normalized `inputs`, returned mapped
            back.

    Example:

    >>> window = keras.Input((96, 7))
    >>> norm = ReversibleInstanceNorm()
    >>> forecast = norm(window, forecast=TemporalDense(24)(norm(window)))
    >>> keras.Model(window, forecast).output_shape
    (None, 24, 7)
    """

    def __init__(
        self, center="mean", scale=True, affine=True, targets=None, epsilon=1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        if center not in ("mean", "last"):
            raise ValueError(f"Argument `center` must be 'mean' or 'last', got {center!r}.")
        self.center = center
        self.scale = check_bool("scale", scale)
        self.affine = check_bool("affine", affine)
        if targets is not None:
            targets = [check_int("targets", t, 0) for t in targets]
        self.targets = targets
        self.epsilon = check_positive_float("epsilon", epsilon)

    def build(self, input_shape):
        _, channels = _channels_last(self, input_shape)
        if self.targets and max(self.targets) >= channels:
            raise ValueError(
                f"ReversibleInstanceNorm: targets {self.targets} out of range for "
                f"{channels} channels."
            )
        if self.affine:
            self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def _pick(self, stat):
        return stat if self.targets is None else ops.take(stat, self.targets, axis=-1)

    def call(self, inputs, forecast=None):
        center = (
            ops.mean(inputs, axis=1, keepdims=True) if self.center == "mean" else inputs[:, -1:]
        )
        std = ops.sqrt(ops.var(inputs, axis=1, keepdims=True) + self.epsilon)
        if forecast is None:
            x = inputs - center
            if self.scale:
                x = x / std
            return x * self.gamma + self.beta if self.affine else x
        y = forecast
        if self.affine:
            y = (y - self._pick(self.beta)) / (self._pick(self.gamma) + self.epsilon**2)
        if self.scale:
            y = y * self._pick(std)
        return y + self._pick(center)

    def get_config(self):
        return {
            **super().get_config(),
            "center": self.center,
            "scale": self.scale,
            "affine": self.affine,
            "targets": self.targets,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SegmentRNN(keras.layers.Layer):
    """SegRNN's forecaster (Lin et al. 2023): a recurrent network over
    segments of the window, decoding every horizon segment in parallel.

    Each channel is a separate series (channel-independent, shared
    weights). Its window of L steps is cut into L / `seg_len` segments; each
    is embedded (a dense map to `units`, ReLU) and `cell` runs over the
    segments. Each of the H / `seg_len` output segments then takes one more
    step of the same cell from that final state, its input the
    concatenation of a learned position embedding and a learned channel
    embedding (`units / 2` each); a dense map of its output (after
    `dropout`) gives the segment's `seg_len` values. Normalize the windows
    with `ReversibleInstanceNorm` (SegRNN subtracts the last value:
    `center="last", scale=False, affine=False`).

    Args:
        horizon: Steps forecast; a multiple of `seg_len`.
        seg_len: Steps per segment; must divide the window's length too.
        units: The state size (SegRNN's d_model); even.
        cell: A name of `keras_deeprnn.cells.CELL_NAMES` (SegRNN: "gru").
        dropout: Dropout before the output map.

    Example:

    >>> layer = SegmentRNN(96, seg_len=48, units=64)
    >>> tuple(layer(np.zeros((2, 336, 7), "float32")).shape)
    (2, 96, 7)
    """

    def __init__(self, horizon, seg_len=48, units=512, cell="gru", dropout=0.0, **kwargs):
        from keras_deeprnn.cells import get

        super().__init__(**kwargs)
        self.horizon = check_int("horizon", horizon, 1)
        self.seg_len = check_int("seg_len", seg_len, 1)
        self.units = check_int("units", units, 2)
        if units % 2 or horizon % seg_len:
            raise ValueError(
                f"SegmentRNN: `units` must be even and `horizon` a multiple of `seg_len`, "
                f"got units={units}, horizon={horizon}, seg_len={seg_len}."
            )
        self.cell_name = cell
        self.dropout = check_rate("dropout", dropout)
        self.embed = keras.layers.Dense(units, activation="relu", name="segment_embedding")
        self.rnn = RNN(get(cell, units), return_state=True, name="segment_rnn")
        self.drop = keras.layers.Dropout(dropout)
        self.project = keras.layers.Dense(seg_len, name="segment_output")

    def build(self, input_shape):
        seq_len, channels = _channels_last(self, input_shape)
        segments = _segment_count(self, seq_len)
        self.embed.build((None, segments, self.seg_len))
        self.rnn.build((None, segments, self.units))
        self.project.build((None, self.units))
        half = self.units // 2
        self.position = self.add_weight(
            shape=(self.horizon // self.seg_len, half),
            initializer="random_normal",
            name="position_embedding",
        )
        self.channel = self.add_weight(
            shape=(channels, half), initializer="random_normal", name="channel_embedding"
        )

    def call(self, inputs, training=None):
        _, _, channels = inputs.shape
        batch = ops.shape(inputs)[0]
        out_segments = self.horizon // self.seg_len
        # (batch * channels, segments, seg_len): one series per channel.
        x = _segments(inputs, self.seg_len)
        _, *states = self.rnn(self.embed(x), training=training)
        # One decoder input per (channel, output segment), the same in every window.
        half = self.units // 2
        queries = ops.concatenate(
            [
                ops.broadcast_to(self.position[None], (channels, out_segments, half)),
                ops.broadcast_to(self.channel[:, None], (channels, out_segments, half)),
            ],
            axis=-1,
        )
        queries = ops.reshape(
            ops.broadcast_to(queries[None], (batch, channels, out_segments, self.units)),
            (-1, self.units),
        )
        states = [ops.repeat(s, out_segments, axis=0) for s in states]
        y, _ = self.rnn.cell(queries, states, training=training)
        y = self.project(self.drop(y, training=training))
        return _unsegmented(y, batch, channels, self.horizon)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "horizon": self.horizon,
            "seg_len": self.seg_len,
            "units": self.units,
            "cell": self.cell_name,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SegmentSeq2Seq(keras.layers.Layer):
    """An encoder-decoder over segments: the horizon decoded one segment at a
    time, each from the one before (SegRNN's recurrent multi-step decoding,
    Lin et al. 2023), trained with teacher forcing.

    Channel-independent, like `SegmentRNN`. The encoder embeds each of the
    window's L / `seg_len` segments (dense map to `units`, ReLU) and runs
    `cell` over them. The decoder, a second `cell` started from the
    encoder's final state, takes J = H / `seg_len` steps; step j reads

        u_j = relu(E y_{j-1} + e) + p_j + c_ch

    where y_{-1} is the window's last segment and y_{j-1} the previous output
    segment (or, with `teacher`, the true one), p_j a learned position
    embedding and c_ch a learned channel embedding, and emits
    y_j = W dropout(s_j) + b. Unlike `SegmentRNN`'s parallel decoding, each
    output segment sees the one before it.

    Args:
        horizon: Steps forecast; a multiple of `seg_len`.
        seg_len: Steps per segment; must divide the window's length too.
        units: The state size of encoder and decoder.
        cell: A name of `keras_deeprnn.cells.CELL_NAMES`.
        dropout: Dropout before the output map.

    Call arguments:
        inputs: Windows `(batch, seq_len, channels)`, normalized.
        teacher: None (autoregressive decoding), or the true forecasts
            `(batch, horizon, channels)`, normalized like `inputs`: step j
            then reads the true segment j - 1 (teacher forcing).
        training: Python boolean, for dropout.

    Example:

    >>> layer = SegmentSeq2Seq(96, seg_len=24, units=32)
    >>> tuple(layer(np.zeros((2, 96, 7), "float32")).shape)
    (2, 96, 7)
    """

    def __init__(self, horizon, seg_len=48, units=256, cell="gru", dropout=0.0, **kwargs):
        from keras_deeprnn.cells import get

        super().__init__(**kwargs)
        self.horizon = check_int("horizon", horizon, 1)
        self.seg_len = check_int("seg_len", seg_len, 1)
        self.units = check_int("units", units, 1)
        if horizon % seg_len:
            raise ValueError(
                f"SegmentSeq2Seq: `horizon` must be a multiple of `seg_len`, got "
                f"horizon={horizon}, seg_len={seg_len}."
            )
        self.cell_name = cell
        self.dropout = check_rate("dropout", dropout)
        self.embed = keras.layers.Dense(units, activation="relu", name="segment_embedding")
        self.encoder = RNN(get(cell, units), return_state=True, name="encoder")
        self.decoder = get(cell, units)
        self.feedback = keras.layers.Dense(units, activation="relu", name="feedback_embedding")
        self.drop = keras.layers.Dropout(dropout)
        self.project = keras.layers.Dense(seg_len, name="segment_output")

    def build(self, inputs_shape, teacher_shape=None):
        seq_len, channels = _channels_last(self, inputs_shape)
        segments = _segment_count(self, seq_len)
        self.embed.build((None, segments, self.seg_len))
        self.encoder.build((None, segments, self.units))
        self.decoder.build((None, self.units))
        self.feedback.build((None, self.seg_len))
        self.project.build((None, self.units))
        self.position = self.add_weight(
            shape=(self.horizon // self.seg_len, self.units),
            initializer="random_normal",
            name="position_embedding",
        )
        self.channel = self.add_weight(
            shape=(channels, self.units), initializer="random_normal", name="channel_embedding"
        )

    def call(self, inputs, teacher=None, training=None):
        _, _, channels = inputs.shape
        batch = ops.shape(inputs)[0]
        x = _segments(inputs, self.seg_len)
        _, *states = self.encoder(self.embed(x), training=training)
        truth = None if teacher is None else _segments(teacher, self.seg_len)
        # Row r of the flattened batch is channel r mod channels.
        channel = ops.reshape(
            ops.broadcast_to(self.channel[None], (batch, channels, self.units)), (-1, self.units)
        )
        previous, outputs = x[:, -1], []
        for j in range(self.horizon // self.seg_len):
            step = self.feedback(previous) + self.position[j] + channel
            y, states = self.decoder(step, states, training=training)
            segment = self.project(self.drop(y, training=training))
            outputs.append(segment)
            previous = segment if truth is None else truth[:, j]
        y = ops.concatenate(outputs, axis=-1)
        return _unsegmented(y, batch, channels, self.horizon)

    def compute_output_shape(self, inputs_shape, teacher_shape=None):
        return (inputs_shape[0], self.horizon, inputs_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "horizon": self.horizon,
            "seg_len": self.seg_len,
            "units": self.units,
            "cell": self.cell_name,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SelectChannels(keras.layers.Layer):
    """The channels `indices` of `(batch, time, channels)` (features "MS":
    forecast every channel, score the target).

    Example:

    >>> tuple(SelectChannels([2])(np.zeros((1, 4, 3), "float32")).shape)
    (1, 4, 1)
    """

    def __init__(self, indices, **kwargs):
        super().__init__(**kwargs)
        if not indices:
            raise ValueError("SelectChannels needs at least one index.")
        self.indices = [check_int("indices", i, 0) for i in indices]

    def call(self, inputs):
        return ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.indices))

    def get_config(self):
        return {**super().get_config(), "indices": self.indices}
