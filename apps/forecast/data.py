"""The forecasting app's data: windows of a CSV series.

`add_arguments(parser)` declares the data options, `datasets(args)` reads
`--data` (`keras_deeprnn.data.timeseries`), splits it, standardizes it with
the training rows' statistics and cuts the windows. A trained model keeps
its protocol (`setup(...)`: window, features, splits, columns, scaler) in its
metadata; `evaluate`, `predict` and `export` read the data with it.
"""

import argparse

from ..common.cli import fraction
from ..common.cli import positive_int
from ..common.data import Datasets

SPLITS = ("train", "valid", "test")


def splits_type(text):
    """`ett-hour`, or `TRAIN,TEST` fractions (e.g. `0.7,0.2`)."""
    if text == "ett-hour":
        return text
    try:
        train, test = (fraction(part) for part in text.split(","))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"must be ett-hour or two fractions TRAIN,TEST, got {text!r}"
        ) from None
    return (train, test)


def add_arguments(p, training=False):
    """`--data`, `--batch-size`; with `training` the protocol: `--target
    --features --seq-len --horizon --splits`."""
    p.add_argument(
        "--data",
        required=True,
        help="etth1, etth2 (registered: `deeprnn data list`), or a CSV file: a 'date' "
        "column and numeric columns",
    )
    p.add_argument("--batch-size", type=positive_int, default=32, help="windows per batch")
    if training:
        p.add_argument("--target", default="OT", help="the target column (features S, MS)")
        p.add_argument(
            "--features",
            default="M",
            choices=("M", "S", "MS"),
            help="M: all columns in and out; S: the target alone; MS: all in, the target out",
        )
        p.add_argument("--seq-len", type=positive_int, default=336, help="input window (rows)")
        p.add_argument("--horizon", type=positive_int, default=96, help="rows forecast")
        p.add_argument(
            "--splits",
            type=splits_type,
            default="ett-hour",
            help="ett-hour: the ETT borders (8640/2880/2880 rows); or TRAIN,TEST "
            "fractions, valid between them (e.g. 0.7,0.2)",
        )


def setup(args, columns, scaler):
    """The protocol a model is trained in, as saved in its metadata."""
    return {
        "seq_len": args.seq_len,
        "horizon": args.horizon,
        "features": args.features,
        "target": args.target,
        "splits": args.splits,
        "columns": list(columns),
        "scaler": scaler.get_config(),
    }


def datasets(args, stored=None):
    """`Datasets` of `args.data` in the protocol of `args` (training) or
    `stored` (a trained model's `setup`).

    `info`: `setup`, `scaler`, `scaled` (all rows of the file,
    standardized), `borders` (`{split: (start, stop)}`), `inputs` and
    `outputs` (column indices).
    """
    from keras_deeprnn.data import registry
    from keras_deeprnn.data import timeseries as ts

    series = ts.read_csv(registry.resolve(args.data) or args.data)
    if stored is not None:
        if series.columns != stored["columns"]:
            raise ts.TimeSeriesError(
                f"{args.data} has the columns {series.columns}; the model was trained on "
                f"{stored['columns']}."
            )
        args = argparse.Namespace(**{**vars(args), **stored})
    inputs, outputs = ts.feature_columns(series.columns, args.features, args.target)
    borders = ts.split_borders(len(series.values), args.seq_len, args.horizon, args.splits)
    if stored is not None:
        scaler = ts.Scaler.from_config(stored["scaler"])
    else:
        scaler = ts.Scaler.fit(series.values[slice(*borders["train"])])
    scaled = scaler.transform(series.values)
    batches = {
        split: ts.window_dataset(
            scaled[slice(*borders[split])],
            args.seq_len,
            args.horizon,
            inputs,
            outputs,
            args.batch_size,
            shuffle=split == "train",
            seed=getattr(args, "seed", 0),
        )
        for split in SPLITS
    }
    return Datasets(
        **batches,
        info={
            "setup": setup(args, series.columns, scaler),
            "scaler": scaler,
            "scaled": scaled,
            "borders": borders,
            "inputs": inputs,
            "outputs": outputs,
        },
    )


def windows(ds, split):
    """NumPy `(x, y)` of every window of `split`, in order."""
    from keras_deeprnn.data import timeseries as ts

    info, setup = ds.info, ds.info["setup"]
    return ts.window_arrays(
        info["scaled"][slice(*info["borders"][split])],
        setup["seq_len"],
        setup["horizon"],
        info["inputs"],
        info["outputs"],
    )
