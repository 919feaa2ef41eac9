"""The forecasting models by name (`keras_deeprnn.models.forecasting`)."""

import keras

from keras_deeprnn.models import forecasting

from ..common import runner

MODELS = ("last", "seasonal", "linear", "dlinear", "rnn", "segrnn", "seq2seq")
# What each model normalizes its windows with unless --normalization says.
NORMALIZATION = {"linear": None, "dlinear": None, "rnn": "revin", "segrnn": "last"}


def build_model(args, channels, outputs):
    """The model `args.model` for windows of `channels` columns forecasting
    the columns `outputs` (indices)."""
    targets = None if list(outputs) == list(range(channels)) else list(outputs)
    shape = (args.seq_len, channels, args.horizon)
    normalization = NORMALIZATION.get(args.model)
    if args.normalization is not None:
        normalization = None if args.normalization == "none" else args.normalization
    if args.model in ("last", "seasonal"):
        return forecasting.naive_forecaster(
            *shape, period=1 if args.model == "last" else args.period, targets=targets
        )
    if args.model in ("linear", "dlinear"):
        return forecasting.linear_forecaster(
            *shape,
            decomposition=args.model == "dlinear",
            kernel_size=args.kernel_size,
            normalization=normalization,
            targets=targets,
        )
    if args.model == "rnn":
        return forecasting.rnn_forecaster(
            *shape,
            kind=args.arch,
            units=args.units or 128,
            cell=args.cell,
            depth=args.depth,
            unit_type=args.unit_type,
            dropout=args.dropout,
            recurrent_dropout=args.recurrent_dropout,
            normalization=normalization,
            targets=targets,
        )
    if args.model == "segrnn":
        return forecasting.segrnn_forecaster(
            *shape,
            seg_len=args.seg_len,
            units=args.units or 512,
            cell=args.segment_cell,
            dropout=args.dropout,
            normalization=normalization,
            targets=targets,
        )
    if args.model == "seq2seq":
        if targets is not None:
            raise ValueError(
                "--model seq2seq decodes every input channel from its own past: use "
                "--features M or S, not MS."
            )
        if args.normalization is not None:
            raise ValueError("--model seq2seq centres windows on their last value itself.")
        return forecasting.Seq2SeqForecaster(
            *shape,
            seg_len=args.seg_len,
            units=args.units or 256,
            cell=args.segment_cell,
            dropout=args.dropout,
        )
    raise ValueError(f"Unknown --model {args.model!r}; choose one of {', '.join(MODELS)}.")


def compile_model(
    model, lr=1e-3, clipnorm=0.0, loss="mse", lr_decay=1.0, steps_per_epoch=1, ema=None
):
    """Adam on `loss` ("mse" or "mae"), MSE and MAE reported; `lr` a number
    or a schedule. A number is multiplied by `lr_decay` after each epoch
    (the published linear models halve it). `ema`: the momentum of Adam's
    moving average of the weights (`use_ema`), which `runner.fit` then
    validates and keeps; None: off."""
    if lr_decay != 1.0:
        lr = keras.optimizers.schedules.ExponentialDecay(
            lr, steps_per_epoch, lr_decay, staircase=True
        )
    model.compile(
        optimizer=runner.adam(lr, clipnorm, ema),
        loss=loss,
        metrics=["mse", "mae"],
    )
    return model
