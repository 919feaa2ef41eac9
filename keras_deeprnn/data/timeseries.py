"""Multivariate time series for forecasting: CSV, splits, scaling, windows.

The long-horizon forecasting protocol of Informer, Autoformer, DLinear,
PatchTST and SegRNN, in four steps:

1. `read_csv`: a CSV whose first column named `date` holds the time stamps
   and whose other columns are numbers (no missing values).
2. `split_borders`: chronological splits. `"ett-hour"` are the standard
   ETT borders (12 / 4 / 4 months of hours); a pair of fractions
   `(train, test)` are the borders of the other data sets (70% / rest /
   20%). Each later split starts `seq_len` rows before its border, so that
   its first window forecasts the split's first row.
3. `Scaler.fit`: z-scores with the training rows' mean and standard
   deviation only.
4. `window_dataset`: `(inputs, targets)` batches of `seq_len` rows in and
   the next `horizon` rows out, with features "M" (all columns in, all
   out), "S" (the target alone) or "MS" (all in, the target out).

Example:

```python
series = read_csv("ETTh1.csv")
borders = split_borders(len(series.values), seq_len=336, splits="ett-hour")
scaler = Scaler.fit(series.values[slice(*borders["train"])])
inputs, outputs = feature_columns(series.columns, "M", target="OT")
train = window_dataset(scaler.transform(series.values)[slice(*borders["train"])],
                       336, 96, inputs, outputs, batch_size=32, shuffle=True)
```
"""

import csv
import dataclasses
import math

import numpy as np

SPLITS = ("train", "valid", "test")
FEATURES = ("M", "S", "MS")
# ETT hourly borders: 12 months train, 4 validation, 4 test, of 30-day months.
ETT_HOUR_ROWS = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)


class TimeSeriesError(ValueError):
    """A time-series file or option that cannot be used, with the reason."""


@dataclasses.dataclass
class Series:
    """A multivariate series read by `read_csv`.

    Attributes:
        dates: The time stamps, as written in the file, shape `(rows,)`.
        values: float32 array `(rows, len(columns))`.
        columns: The names of the value columns, in file order.
    """

    dates: np.ndarray
    values: np.ndarray
    columns: list


def read_csv(path, date_column="date"):
    """Reads a CSV of a date column and numeric columns.

    Raises:
        TimeSeriesError: For a file without `date_column`, with no value
            column or no rows, with a cell that is not a number, or with a
            missing value (an empty cell or NaN; fill them before, the
            protocol has none), naming the row and column.
    """
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        raise TimeSeriesError(f"{path} is empty.")
    header = [name.strip() for name in rows[0]]
    if date_column not in header:
        raise TimeSeriesError(
            f"{path} has no {date_column!r} column (columns: {', '.join(header)}); the "
            "first line must name a date column and the value columns."
        )
    where = header.index(date_column)
    columns = [name for i, name in enumerate(header) if i != where]
    if not columns or len(rows) < 2:
        raise TimeSeriesError(f"{path} has no value columns or no rows.")
    values = np.empty((len(rows) - 1, len(columns)), "float32")
    for r, row in enumerate(rows[1:]):
        line = r + 2
        if len(row) != len(header):
            raise TimeSeriesError(
                f"{path}, line {line}: {len(row)} fields, the header has {len(header)}."
            )
        cells = [cell.strip() for i, cell in enumerate(row) if i != where]
        for c, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                what = "a missing value" if cell == "" else f"{cell!r} is not a number"
                raise TimeSeriesError(
                    f"{path}, line {line}, column {columns[c]!r}: {what}."
                ) from None
            if math.isnan(value):
                raise TimeSeriesError(
                    f"{path}, line {line}, column {columns[c]!r}: a missing value (NaN)."
                )
            values[r, c] = value
    dates = np.array([row[where] for row in rows[1:]])
    return Series(dates, values, columns)


def split_borders(rows, seq_len, horizon=0, splits="ett-hour"):
    """`{split: (start, stop)}` row ranges of the train, valid, test splits.

    The windows of a split are the `seq_len + horizon` consecutive rows
    inside its range, so the forecasts of a split are its own rows only;
    the inputs of the valid and test splits reach `seq_len` rows back into
    the split before (as in the published code).

    Args:
        rows: Rows in the series.
        seq_len: Rows of each input window.
        horizon: Rows forecast; used to check that every split has a window.
        splits: `"ett-hour"` (the ETT borders: 8640 / 2880 / 2880 rows from
            the start; the rows after them are unused) or a pair
            `(train, test)` of fractions: train = the first
            `int(rows * train)` rows, test = the last `int(rows * test)`,
            valid = those between.

    Raises:
        TimeSeriesError: If a split has fewer than `seq_len + horizon` rows.
    """
    if splits == "ett-hour":
        train, valid, test = ETT_HOUR_ROWS
        if rows < train + valid + test:
            raise TimeSeriesError(
                f"The ETT borders need {train + valid + test} rows; the series has {rows}."
            )
    else:
        train_fraction, test_fraction = splits
        if not (0 < train_fraction and 0 < test_fraction and train_fraction + test_fraction < 1):
            raise TimeSeriesError(
                f"Split fractions must be positive and leave rows for validation, got {splits}."
            )
        train, test = int(rows * train_fraction), int(rows * test_fraction)
        valid = rows - train - test
    ends = np.cumsum([train, valid, test])
    borders = {
        "train": (0, int(ends[0])),
        "valid": (int(ends[0]) - seq_len, int(ends[1])),
        "test": (int(ends[1]) - seq_len, int(ends[2])),
    }
    for split, (start, stop) in borders.items():
        if start < 0 or stop - start < seq_len + horizon:
            raise TimeSeriesError(
                f"seq_len + horizon = {seq_len + horizon} rows do not fit in the {split} "
                f"split ({stop - max(start, 0)} rows with its look-back); shorten "
                "--seq-len or --horizon, or use a longer series."
            )
    return borders


@dataclasses.dataclass
class Scaler:
    """Per-column z-scores: `(x - mean) / std`.

    Fitted on the training rows only (`Scaler.fit`); constant columns get
    std 1 (they become 0 instead of NaN).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows):
        rows = np.asarray(rows, "float64")
        std = rows.std(axis=0)
        return cls(
            rows.mean(axis=0).astype("float32"), np.where(std > 0, std, 1.0).astype("float32")
        )

    def transform(self, values):
        return ((np.asarray(values, "float32") - self.mean) / self.std).astype("float32")

    def inverse(self, values, columns=None):
        """Back to the data's units; `columns` are the indices of `values`'
        last axis (default all)."""
        columns = slice(None) if columns is None else list(columns)
        return np.asarray(values) * self.std[columns] + self.mean[columns]

    def get_config(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_config(cls, config):
        return cls(np.array(config["mean"], "float32"), np.array(config["std"], "float32"))


def feature_columns(columns, features="M", target="OT"):
    """`(input indices, output indices)` into `columns` for features M, S, MS.

    Raises:
        TimeSeriesError: For unknown `features`, or a `target` (S, MS) that is
            not a column.
    """
    if features not in FEATURES:
        raise TimeSeriesError(
            f"Unknown features {features!r}; choose one of {', '.join(FEATURES)}."
        )
    everything = list(range(len(columns)))
    if features == "M":
        return everything, everything
    if target not in columns:
        raise TimeSeriesError(
            f"The target column {target!r} is not in the data (columns: {', '.join(columns)})."
        )
    one = [list(columns).index(target)]
    return (one if features == "S" else everything), one


def window_dataset(
    values, seq_len, horizon, inputs, outputs, batch_size=32, shuffle=False, seed=None
):
    """`(x, y)` batches of every window of `values`, in order unless shuffled.

    Window i is x = `values[i : i + seq_len, inputs]`, y =
    `values[i + seq_len : i + seq_len + horizon, outputs]`, for i = 0 ..
    `len(values) - seq_len - horizon`.
    """
    import keras
    import tensorflow as tf

    values = np.asarray(values, "float32")
    count = len(values) - seq_len - horizon + 1
    if count < 1:
        raise TimeSeriesError(
            f"{len(values)} rows hold no window of seq_len + horizon = {seq_len + horizon}."
        )
    data = keras.utils.timeseries_dataset_from_array(
        values, None, seq_len + horizon, batch_size=batch_size, shuffle=shuffle, seed=seed
    )

    def split(window):
        # Static shapes: the models take windows of a fixed length.
        x = tf.ensure_shape(
            tf.gather(window[:, :seq_len], inputs, axis=2), (None, seq_len, len(inputs))
        )
        y = tf.ensure_shape(
            tf.gather(window[:, seq_len:], outputs, axis=2), (None, horizon, len(outputs))
        )
        return x, y

    return data.map(split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def window_arrays(values, seq_len, horizon, inputs, outputs):
    """NumPy `(x, y)` of every window, as `window_dataset` yields them:
    shapes `(windows, seq_len, len(inputs))` and `(windows, horizon,
    len(outputs))`."""
    values = np.asarray(values, "float32")
    windows = np.lib.stride_tricks.sliding_window_view(values, seq_len + horizon, axis=0)
    windows = windows.transpose(0, 2, 1)  # (windows, time, columns)
    return windows[:, :seq_len][..., inputs], windows[:, seq_len:][..., outputs]
