"""LiteRT latency and file size of LSTM exports (batch 1, one thread).

Compares, at T steps, input D and U units (default 100, 64, 128):

- Keras 3 `LSTM` converted the stock way (`from_keras_model`, static batch,
  builtin ops: a `WHILE` loop);
- the old fused tf.keras LSTM (`tf_keras`, if installed:
  `UNIDIRECTIONAL_SEQUENCE_LSTM`), float, dynamic-range and int8;
- `keras_deeprnn.export.export_tflite` of `RNN(LSTMCell)` with the same
  weights: sequence mode (`WHILE` loop and unrolled, with the `lengths`
  input) in float, dynamic-range and int8; sequence mode with
  `fuse_lstm=True` (`UNIDIRECTIONAL_SEQUENCE_LSTM`, no `lengths`); and
  streaming mode (one step per invoke; the table gives T invokes).

Run: `python -m benchmarks.tflite_latency [--steps 100 --features 64
--units 128 --repeats 200] [--table docs/export-latency.md]`.
"""

import argparse
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.export import export_tflite
from keras_deeprnn.export import load_tflite
from keras_deeprnn.export.tflite import tflite_ops


def _latencies(files, repeats, block=10):
    """Median ms of each file's `len(feeds)` invokes in a row (a sequence),
    for `files` [(path, feeds)], over `repeats` timed runs. The files take
    turns, `block` timed runs each after two untimed ones (warm caches, as
    an app that runs one model over and over has them), so that a change in
    the machine's load falls on all of them alike."""
    runners = [(load_tflite(path).get_signature_runner(), feeds) for path, feeds in files]
    times = [[] for _ in runners]

    def sequence(runner, feeds):
        for feed in feeds:
            runner(**feed)

    for _ in range(max(1, repeats // block)):
        for (runner, feeds), kept in zip(runners, times):
            for _ in range(2):
                sequence(runner, feeds)
            for _ in range(block):
                start = time.perf_counter()
                sequence(runner, feeds)
                kept.append(time.perf_counter() - start)
    return [1e3 * float(np.median(t)) for t in times]


def _stock(model, path, quantize=None, representative=None):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    Path(path).write_bytes(converter.convert())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--table", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)
    steps, features, units = args.steps, args.features, args.units
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, steps, features)).astype("float32")
    calibration = rng.normal(size=(16, steps, features)).astype("float32")
    representative = lambda: ([c[None]] for c in calibration)  # noqa: E731

    keras.utils.set_random_seed(0)
    stock = keras.Sequential(
        [keras.Input((steps, features), batch_size=1), keras.layers.LSTM(units)]
    )
    ours = keras.Sequential([keras.Input((None, features)), keras.layers.RNN(LSTMCell(units))])
    ours.set_weights(stock.get_weights())
    np.testing.assert_allclose(ours(x), stock(x), atol=1e-5)

    rows = []
    folder = Path(tempfile.mkdtemp())

    files = []

    def add(name, path, feeds, note=""):
        ops = sorted(set(tflite_ops(load_tflite(path, delegates=False))))
        loop = next(
            (o for o in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "WHILE") if o in ops),
            "one step" if "streaming" in name else "unrolled",
        )
        files.append((path, feeds))
        rows.append([name, loop, None, Path(path).stat().st_size / 1024, note])

    path = folder / "stock.tflite"
    _stock(stock, path)
    runner_inputs = load_tflite(path).get_signature_runner().get_input_details()
    sequence_feed = [{next(iter(runner_inputs)): x}]
    add("Keras 3 LSTM, from_keras_model (stock)", path, sequence_feed)

    try:
        import tf_keras
    except ImportError:
        tf_keras = None
    if tf_keras is not None:
        old = tf_keras.Sequential(
            [tf_keras.Input((steps, features), batch_size=1), tf_keras.layers.LSTM(units)]
        )
        old.set_weights(stock.get_weights())
        for quantize in (None, "dynamic", "int8"):
            path = folder / f"tfkeras-{quantize}.tflite"
            _stock(old, path, quantize, representative)
            name = load_tflite(path).get_signature_runner().get_input_details()
            add(f"tf.keras LSTM (fused), {quantize or 'float'}", path, [{next(iter(name)): x}])

    for quantize in (None, "dynamic", "int8"):
        for unroll in (False, True):
            if quantize == "int8" and not unroll:
                continue  # the calibrator cannot run WHILE loops
            path = folder / f"ours-seq-{quantize}-{unroll}.tflite"
            report = export_tflite(
                ours,
                path,
                mode="sequence",
                quantize=quantize,
                max_length=steps,
                unroll=unroll,
                representative_data=calibration,
                check_inputs=x,
            )
            lengths = np.array([steps], np.int32)
            feed = {i["name"]: lengths if i["name"] == "lengths" else x for i in report["inputs"]}
            add(
                f"keras_deeprnn sequence, {quantize or 'float'}",
                path,
                [feed],
                f"max diff {report['max_abs_diff']:.2g}",
            )

    for quantize in (None, "dynamic"):
        path = folder / f"ours-fused-{quantize}.tflite"
        report = export_tflite(
            ours,
            path,
            mode="sequence",
            quantize=quantize,
            max_length=steps,
            lengths=False,
            fuse_lstm=True,
            check_inputs=x,
        )
        add(
            f"keras_deeprnn sequence, fuse_lstm=True, {quantize or 'float'}",
            path,
            [{report["inputs"][0]["name"]: x}],
            f"max diff {report['max_abs_diff']:.2g}",
        )

    for quantize in (None, "dynamic", "int8"):
        path = folder / f"ours-stream-{quantize}.tflite"
        report = export_tflite(
            ours,
            path,
            mode="streaming",
            quantize=quantize,
            representative_data=calibration,
            check_inputs=x,
        )
        names = [i["name"] for i in report["inputs"]]
        feeds = [
            {
                n: (x[:, t] if "_state_" not in n else np.zeros((1, units), np.float32))
                for n in names
            }
            for t in range(steps)
        ]
        add(
            f"keras_deeprnn streaming, {quantize or 'float'} ({steps} invokes)",
            path,
            feeds,
            f"max diff {report['max_abs_diff']:.2g}",
        )

    for row, ms in zip(rows, _latencies(files, args.repeats)):
        row[2] = ms
    # Ratios to the old fused tf.keras LSTM in float, measured in this run.
    reference = next((ms for n, _, ms, _, _ in rows if n == "tf.keras LSTM (fused), float"), None)
    lines = [
        f"| export (T={steps}, input {features}, {units} units, batch 1, 1 thread) "
        "| loop | latency ms (median) | vs tf.keras fused float | size KiB | note |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {loop} | {ms:.3f} | {'' if reference is None else f'{ms / reference:.2f}x'} "
        f"| {kib:.0f} | {note} |"
        for n, loop, ms, kib, note in rows
    ]
    table = "\n".join(lines)
    print(table)
    if args.table:
        args.table.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
