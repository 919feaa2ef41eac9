"""`keras_deeprnn.data.timeseries`: the ETT protocol's splits, scaler and
windows, against indices and statistics computed here from the formulas."""

import numpy as np
import pytest

from keras_deeprnn.data import timeseries as ts


def write_csv(path, values, columns=None, date="date"):
    columns = columns or [f"c{i}" for i in range(values.shape[1] - 1)] + ["OT"]
    lines = [",".join([date] + columns)]
    lines += [",".join([f"t{i}"] + [str(v) for v in row]) for i, row in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ett_borders_are_the_published_ones():
    # Informer's Dataset_ETT_hour: border1s = [0, 12*30*24 - seq_len, 12*30*24 + 4*30*24
    # - seq_len], border2s = [12*30*24, 12*30*24 + 4*30*24, 12*30*24 + 8*30*24].
    borders = ts.split_borders(17420, seq_len=336, horizon=96)
    assert borders == {"train": (0, 8640), "valid": (8304, 11520), "test": (11184, 14400)}


def test_first_and_last_windows_of_each_split():
    rows, seq_len, horizon = 40, 6, 3
    values = np.arange(rows * 2, dtype="float32").reshape(rows, 2)  # row r = [2r, 2r+1]
    borders = ts.split_borders(rows, seq_len, horizon, splits=(0.5, 0.25))
    assert borders == {"train": (0, 20), "valid": (14, 30), "test": (24, 40)}
    for start, stop in borders.values():
        x, y = ts.window_arrays(values[start:stop], seq_len, horizon, [0, 1], [1])
        batches = list(
            ts.window_dataset(values[start:stop], seq_len, horizon, [0, 1], [1], batch_size=4)
        )
        dx = np.concatenate([b[0] for b in batches])
        dy = np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(dx, x)
        np.testing.assert_array_equal(dy, y)
        rows_in = dx[:, :, 0] / 2
        first_target = start + seq_len  # the first forecast row of the split
        assert rows_in[0].tolist() == list(range(start, start + seq_len))
        assert ((dy[0, :, 0] - 1) / 2).tolist() == list(range(first_target, first_target + 3))
        assert ((dy[-1, :, 0] - 1) / 2).tolist() == [stop - 3, stop - 2, stop - 1]
        assert len(dx) == stop - start - seq_len - horizon + 1
    # No test row (a row the test split forecasts) inside any training window.
    x_train, y_train = ts.window_arrays(
        values[slice(*borders["train"])], seq_len, horizon, [0], [0]
    )
    _, y_test = ts.window_arrays(values[slice(*borders["test"])], seq_len, horizon, [0], [0])
    assert max(x_train.max(), y_train.max()) / 2 < y_test.min() / 2 == 30


def test_scaler_sees_training_rows_only():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(100, 3)).astype("float32")
    values[70:] += 50  # a shift after the training rows must not leak into the statistics
    borders = ts.split_borders(100, 10, 5, splits=(0.7, 0.2))
    scaler = ts.Scaler.fit(values[slice(*borders["train"])])
    np.testing.assert_allclose(scaler.mean, values[:70].mean(0), rtol=1e-5)
    np.testing.assert_allclose(scaler.std, values[:70].std(0), rtol=1e-5)
    np.testing.assert_allclose(scaler.transform(values)[:70].mean(0), 0, atol=1e-5)
    restored = ts.Scaler.from_config(scaler.get_config())
    np.testing.assert_allclose(restored.inverse(restored.transform(values)), values, atol=1e-4)


def test_features_m_s_ms():
    columns = ["a", "b", "OT"]
    assert ts.feature_columns(columns, "M") == ([0, 1, 2], [0, 1, 2])
    assert ts.feature_columns(columns, "S", "OT") == ([2], [2])
    assert ts.feature_columns(columns, "MS", "OT") == ([0, 1, 2], [2])


def test_read_csv(tmp_path):
    values = np.arange(12, dtype="float32").reshape(4, 3)
    series = ts.read_csv(write_csv(tmp_path / "s.csv", values))
    assert series.columns == ["c0", "c1", "OT"] and series.dates.tolist()[0] == "t0"
    np.testing.assert_array_equal(series.values, values)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace("t2,7.0", "t2,abc"), "'abc' is not a number"),
        (lambda text: text.replace("t2,7.0", "t2,"), "a missing value"),
        (lambda text: text.replace("t2,7.0", "t2,nan"), "a missing value"),
        (lambda text: text.replace("date,", "when,"), "no 'date' column"),
    ],
)
def test_bad_files(tmp_path, edit, message):
    path = write_csv(tmp_path / "s.csv", np.arange(12, dtype="float32").reshape(4, 3) + 1)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ts.TimeSeriesError, match=message):
        ts.read_csv(path)


def test_bad_protocol():
    with pytest.raises(ts.TimeSeriesError, match="do not fit in the valid split"):
        ts.split_borders(100, seq_len=20, horizon=15, splits=(0.7, 0.2))
    with pytest.raises(ts.TimeSeriesError, match="ETT borders need 14400 rows"):
        ts.split_borders(1000, 24, 1)
    with pytest.raises(ts.TimeSeriesError, match="'XX' is not in the data"):
        ts.feature_columns(["a", "OT"], "S", "XX")
