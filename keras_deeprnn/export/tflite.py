"""TFLite export of the library's models: builtin ops only, verified."""

import os
import re
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import tree

from keras_deeprnn import _compat
from keras_deeprnn._compat import tflite_ops
from keras_deeprnn.export import _tflite_lstm
from keras_deeprnn.export._graph import ExportError
from keras_deeprnn.export._graph import Program
from keras_deeprnn.export._graph import check_model
from keras_deeprnn.layers import _native
from keras_deeprnn.utils import sublayers

MODES = ("sequence", "streaming")
QUANTIZATIONS = (None, "dynamic", "float16", "int8")
# Default largest |TFLite - Keras| accepted by `export_tflite`, per
# quantization, in units of max(1, max |Keras output|) (docs/export.md gives
# the measured errors).
TOLERANCES = {None: 1e-4, "float16": 1e-2, "dynamic": 0.1, "int8": 0.2}
_BUILTIN_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError as error:
        raise ImportError(
            "Running TFLite models needs the LiteRT interpreter: "
            "pip install ai-edge-litert (or keras-deeprnn[deploy])."
        ) from error
    return Interpreter, OpResolverType


def _input_name(tensor, index):
    """The name of the model input's `InputLayer` (e.g. "frames")."""
    name = getattr(_compat.input_layer(tensor), "name", None) or ""
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or f"input_{index}"


class _Exporter:
    """The tf.function of one export of `model` and its input names."""

    def __init__(
        self,
        model,
        mode,
        max_length,
        batch_size,
        unroll,
        lengths=True,
        fuse_lstm=False,
        float_weights=True,
    ):
        self.program = Program(
            model, mode, unroll=unroll, fuse_lstm=fuse_lstm, float_weights=float_weights
        )
        self.model = model
        self.mode = mode
        self.names = [_input_name(t, i) for i, t in enumerate(model.inputs)]
        if len(set(self.names)) != len(self.names):
            self.names = [f"input_{i}" for i in range(len(self.names))]
        specs = []
        for name, tensor in zip(self.names, model.inputs):
            shape = tuple(tensor.shape)
            if len(shape) < 2:
                raise ExportError(
                    f"Input '{tensor.name}' of shape {shape} has no time "
                    "axis; exported models take (batch, time, ...) inputs."
                )
            features = shape[2:]
            if any(d is None for d in features):
                raise ExportError(
                    f"Input '{tensor.name}' has unknown feature dimensions "
                    f"{shape}; every dimension but batch and time must be known."
                )
            if mode == "sequence":
                length = shape[1] if max_length is None else max_length
                if length is None:
                    raise ExportError(
                        f"Model '{model.name}' takes sequences of any length: "
                        "pass max_length, the longest sequence the sequence "
                        "export will take."
                    )
                shape = (batch_size, int(length)) + features
            else:
                shape = (batch_size,) + features
            specs.append(tf.TensorSpec(shape, tensor.dtype, name=name))
        self.lengths = mode == "sequence" and lengths
        if self.lengths:
            specs.append(tf.TensorSpec((batch_size,), tf.int32, name="lengths"))
            self.names.append("lengths")
        if mode == "sequence":
            self.state_names = []
        else:
            # A first eager run on zeros finds the recurrent layers and
            # their state sizes.
            zeros = [tf.zeros([d or 1 for d in s.shape], s.dtype) for s in specs]
            self.program.run(zeros)
            self.state_names = []
            for layer, sizes in self.program.recurrent:
                for k, size in enumerate(sizes):
                    name = f"{layer.name}_state_{k}"
                    self.state_names.append(name)
                    specs.append(tf.TensorSpec((batch_size, size), tf.float32, name=name))
            if not self.state_names:
                raise ExportError(
                    f"Model '{model.name}' has no recurrent layer; export it with mode='sequence'."
                )
            self.names += self.state_names
        self.specs = specs
        self.function = tf.function(self._call, input_signature=specs, autograph=False)

    def _call(self, *args):
        model_inputs = list(args[: len(self.model.inputs)])
        if self.mode == "sequence":
            outputs = self.program.run(model_inputs, lengths=args[-1] if self.lengths else None)
            states = []
        else:
            outputs, states = self.program.run(
                model_inputs, states=list(args[len(self.model.inputs) :])
            )
        result = {f"output_{i}": tf.identity(y) for i, y in enumerate(tree.flatten(outputs))}
        for name, state in zip(self.state_names, states):
            result[name] = tf.identity(state)
        return result

    # -- data for calibration and checks ------------------------------------
    def feeds(self, inputs):
        """Converter/interpreter feeds (dicts by input name), one per
        sample (sequence) or per sample and time step (streaming)."""
        arrays = _arrays(inputs)
        count = len(self.model.inputs)
        if len(arrays) != count:
            raise ExportError(
                f"Model '{self.model.name}' has {count} inputs, got {len(arrays)} arrays."
            )
        for chunk in self.chunks(arrays):
            if self.mode == "sequence":
                yield self._sequence_feed(chunk)
            else:
                yield from self._stream_feeds(chunk)

    def _sequence_feed(self, chunk):
        length = self.specs[0].shape[1]
        steps = chunk[0].shape[1]
        if steps > length:
            raise ExportError(
                f"A sequence of {steps} steps is longer than the export's max_length={length}."
            )
        feed = {}
        for name, spec, array in zip(self.names, self.specs, chunk):
            padding = [(0, 0), (0, length - steps)] + [(0, 0)] * (array.ndim - 2)
            feed[name] = np.pad(array, padding).astype(spec.dtype.as_numpy_dtype)
        if self.lengths:
            feed["lengths"] = np.full((len(chunk[0]),), steps, np.int32)
        elif steps < length:
            raise ExportError(
                f"This export has no `lengths` input: sequences must have "
                f"max_length={length} steps (padded as the model masks), got {steps}."
            )
        return feed

    def _stream_feeds(self, chunk):
        for _, feed in self.stream(chunk, self._run_step):
            yield feed

    def _run_step(self, feed):
        result = self.function(*[feed[n] for n in self.names])
        return {name: value.numpy() for name, value in result.items()}

    def stream(self, chunk, run):
        """Steps `run` (feed dict -> result dict) through the sequences of
        `chunk`, carrying the states; yields (result, feed) per step."""
        states = {
            n: np.zeros(s.shape, np.float32)
            for n, s in zip(self.names, self.specs)
            if n in self.state_names
        }
        for t in range(chunk[0].shape[1]):
            feed = {
                name: array[:, t].astype(spec.dtype.as_numpy_dtype)
                for name, spec, array in zip(self.names, self.specs, chunk)
            }
            feed.update(states)
            result = run(feed)
            states = {n: result[n] for n in self.state_names}
            yield result, feed

    def chunks(self, arrays):
        batch = self.specs[0].shape[0]
        for start in range(0, arrays[0].shape[0] - batch + 1, batch):
            yield [a[start : start + batch] for a in arrays]


def _default_inputs(model, mode, max_length, samples=2):
    """Random inputs for the check of `export_tflite`: normal floats, ids
    drawn from the vocabulary of the first (tied) embedding."""
    rng = np.random.default_rng(0)
    vocabulary = 2
    for layer in sublayers(model):
        if hasattr(layer, "input_dim") and type(layer).__name__ in ("Embedding", "TiedEmbedding"):
            vocabulary = int(layer.input_dim)
            break
    arrays = []
    for tensor in model.inputs:
        shape = list(tensor.shape)
        steps = shape[1] or max_length or 8
        shape = [samples, steps] + shape[2:]
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(1, max(vocabulary, 2), shape).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.normal(size=shape).astype(str(tensor.dtype)))
    return arrays


def _layer_function(layer):
    def run(*args):
        return tree.flatten(layer(*args))

    return run


def _name_failing_layer(exporter, quantize):
    """The first layer that alone does not convert with builtin ops."""
    for layer, specs in exporter.program.visited:
        function = tf.function(_layer_function(layer), input_signature=specs, autograph=False)
        try:
            _convert(function, layer, None, None)
        except Exception as error:  # The converter raises several types.
            return layer, str(error).strip().splitlines()[-1][:300]
    return None, None


def _convert(function, trackable, quantize, representative):
    """TFLite bytes of a `tf.function` with an input signature, through a
    SavedModel (which freezes the weights into constants)."""
    archive = keras.export.ExportArchive()
    archive.track(trackable)
    archive.add_endpoint("serve", function)
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serve"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


# Traced without the CPU kernels: the file must run without this package.
@_native.off()
def export_tflite(
    model,
    path,
    mode="sequence",
    quantize=None,
    representative_data=None,
    max_length=None,
    batch_size=1,
    unroll=None,
    tolerance=None,
    check_inputs=None,
    lengths=True,
    fuse_lstm=False,
):
    """Writes a TFLite model of `model` that uses builtin ops only, checked.

    Modes:

    - `"sequence"`: one invoke runs a whole sequence of `max_length` steps.
      Inputs: the model's inputs `(batch_size, max_length, ...)` and
      `lengths` int32 `(batch_size,)`; steps t >= length are masked (states
      carried, outputs repeated, as Keras does with a mask), on top of the
      model's own masking (e.g. `Embedding(mask_zero=True)`). The recurrent
      layers compute their input projection for all steps in one matrix
      product, then loop over the steps.
    - `"streaming"`: one invoke runs one time step. Inputs: the model's
      inputs without the time axis `(batch_size, ...)` and every recurrent
      layer's states `<layer>_state_<k>` `(batch_size, size)` (zeros at the
      start of a sequence); outputs: `output_<i>` and the new states under
      the same names. Only models whose layers act step by step (no
      `Bidirectional`, no pooling over time) stream.

    Quantization: `None` (float32), `"dynamic"` (int8 weights),
    `"float16"` (float16 weights), `"int8"` (full-integer post-training
    quantization: int8 weights and activations calibrated on
    `representative_data`, float32 inputs and outputs; the sequence mode is
    then unrolled, as TFLite's calibrator cannot run `WHILE` loops).

    After converting, the file runs in the LiteRT interpreter against Keras
    on `check_inputs` (default: the first samples of `representative_data`
    or random inputs); the export fails if an op is not a builtin or the
    largest absolute difference exceeds `tolerance`.

    Args:
        model: A built Keras model of sequences (batch, time, ...).
        path: The `.tflite` file to write.
        mode: "sequence" or "streaming".
        quantize: None, "dynamic", "float16" or "int8".
        representative_data: Model inputs (an array, or a list of arrays
            for several inputs) of shape (samples, time, ...); needed for
            "int8".
        max_length: Time steps of the sequence mode (default: the model's
            static time dimension).
        batch_size: The static batch size of the file (default 1).
        unroll: Sequence mode: unroll the time loop (default: only for
            int8) instead of a `WHILE` loop.
        tolerance: Largest accepted |TFLite - Keras|, relative to
            max(1, max |Keras output|) (default `TOLERANCES[quantize]`).
        check_inputs: Model inputs for the check.
        lengths: Sequence mode: add the `lengths` input (leave it out for
            models that mask padding themselves, e.g. token id 0).
        fuse_lstm: Sequence mode: export each LSTM layer that TFLite's
            fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op computes (an `LSTMCell`
            of variant "np", or "vanilla" and "cifg" without quantization,
            or Keras's `LSTMCell`; tanh/sigmoid, not returning its states,
            on unmasked input: pass `lengths=False`) as that op instead of
            a `WHILE` loop, for runtimes and delegates that
            run that op but no control flow. On LiteRT's CPU kernels the
            loop is faster (docs/export.md). The other recurrent layers
            export as loops; the report says why.

    Returns:
        A dict: `path`, `mode`, `quantize`, `ops` (the op names), `inputs`
        and `outputs` (name, shape, dtype), `max_abs_diff`, `tolerance`;
        with `fuse_lstm`, `fused_lstm` (the layers fused) and `unfused_lstm`
        (layer name: why not).

    Raises:
        ExportError: For a layer that cannot be exported (the message names
            it and says why), a non-builtin op, or a difference above the
            tolerance.

    Example:

    >>> import os, tempfile
    >>> from keras_deeprnn.cells import LSTMCell
    >>> model = keras.Sequential([
    ...     keras.Input((None, 3)),
    ...     keras.layers.RNN(LSTMCell(4), return_sequences=True)])
    >>> x = np.random.default_rng(0).normal(size=(16, 10, 3)).astype("float32")
    >>> path = os.path.join(tempfile.mkdtemp(), "model.tflite")
    >>> report = export_tflite(model, path, mode="streaming",
    ...                        quantize="int8", representative_data=x)
    >>> [i["name"] for i in report["inputs"]]
    [...]
    >>> report["max_abs_diff"] <= report["tolerance"]
    True
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode={mode!r}; choose one of {MODES}.")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantize={quantize!r}; choose one of {QUANTIZATIONS}.")
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "quantize='int8' needs representative_data: model inputs "
            "(samples, time, ...) to calibrate the activation ranges on."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    check_model(model)
    if unroll is None:
        unroll = quantize == "int8"
    if fuse_lstm and mode != "sequence":
        raise ValueError("fuse_lstm applies to mode='sequence' only (streaming runs one step).")
    exporter = _Exporter(
        model,
        mode,
        max_length,
        batch_size,
        unroll,
        lengths=lengths,
        fuse_lstm=fuse_lstm,
        float_weights=quantize is None,
    )
    representative = None
    if quantize == "int8":
        representative = lambda: exporter.feeds(representative_data)  # noqa: E731
    try:
        flatbuffer = _convert(exporter.function, model, quantize, representative)
    except Exception as error:  # The converter raises several types.
        layer, reason = _name_failing_layer(exporter, quantize)
        if layer is not None:
            raise ExportError(
                f"Model '{model.name}': layer '{layer.name}' "
                f"({type(layer).__name__}) cannot be converted to TFLite "
                f"builtin ops: {reason}"
            ) from error
        raise ExportError(
            f"Model '{model.name}' could not be converted to TFLite "
            f"(mode={mode!r}, quantize={quantize!r}): {error}"
        ) from error
    if exporter.program.fused:
        flatbuffer = _tflite_lstm.finish(flatbuffer, list(exporter.program.fused.values()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(flatbuffer)
    if check_inputs is None:
        if representative_data is not None:
            check_inputs = [a[: 2 * batch_size] for a in _arrays(representative_data)]
        else:
            check_inputs = _default_inputs(
                model, mode, exporter.specs[0].shape[1] if mode == "sequence" else None
            )
    tolerance = TOLERANCES[quantize] if tolerance is None else tolerance
    try:
        report = verify_tflite(model, temporary, check_inputs, tolerance=tolerance)
    except ExportError:
        temporary.unlink()
        raise
    if fuse_lstm:
        fused = list(exporter.program.fused)
        found = report["ops"].count("UNIDIRECTIONAL_SEQUENCE_LSTM")
        if found != len(fused):
            temporary.unlink()
            raise ExportError(
                f"Model '{model.name}': {len(fused)} LSTM layer(s) {fused} should have "
                f"become UNIDIRECTIONAL_SEQUENCE_LSTM ops, but the converter made {found}."
            )
        report.update(fused_lstm=list(fused), unfused_lstm=dict(exporter.program.unfused))
    os.replace(temporary, path)
    report.update(path=str(path), mode=mode, quantize=quantize, unroll=bool(unroll))
    return report


def load_tflite(path, delegates=True):
    """A LiteRT interpreter (one thread) of a `.tflite` file, after checking
    that the file is a whole TFLite flatbuffer (a truncated or foreign file
    is refused with an `ExportError`).

    Args:
        path: The `.tflite` file.
        delegates: Apply LiteRT's default delegate (XNNPACK on CPU); without
            it the interpreter's op list is the file's own.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No TFLite model at {path}.")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportError(f"{path} is not a TFLite model (no 'TFL3' identifier).")
    try:
        interpreter_class, OpResolverType = _interpreter_class()
        resolver = (
            OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        interpreter = interpreter_class(
            model_content=data, num_threads=1, experimental_op_resolver_type=resolver
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        # LiteRT verifies the flatbuffer: a cut file fails here.
        raise ExportError(f"{path} is damaged or truncated; LiteRT refuses it: {error}") from error
    return interpreter


def verify_tflite(model, tflite_path, inputs, tolerance=None):
    """Runs a TFLite export of `model` in LiteRT and compares it to Keras.

    Args:
        model: The Keras model that was exported.
        tflite_path: The `.tflite` file (from `export_tflite`; its mode is
            read from its inputs).
        inputs: Model inputs (an array, or a list of arrays), (samples,
            time, ...); samples in multiples of the file's batch size.
        tolerance: If given, raise `ExportError` when the largest absolute
            difference exceeds `tolerance * max(1, max |Keras output|)`
            (absolute for outputs within [-1, 1], relative to the largest
            output beyond).

    Returns:
        A dict: `ops` (op names, without delegates), `builtin_only`,
        `max_abs_diff` (over all outputs), `output_diffs` (per output),
        `output_scale` (max(1, max |Keras output|)),
        `tolerance`, `inputs` and `outputs` (name, shape, dtype).

    Raises:
        ExportError: For a non-builtin op, or a difference above
            `tolerance`.
    """
    ops = tflite_ops(load_tflite(tflite_path, delegates=False))
    interpreter = load_tflite(tflite_path)
    foreign = sorted({op for op in ops if not _BUILTIN_NAME.fullmatch(op)})
    if foreign:
        raise ExportError(f"{tflite_path} holds non-builtin ops: {', '.join(foreign)}.")
    signature = interpreter.get_signature_list()
    key = next(iter(signature))
    runner = interpreter.get_signature_runner(key)
    input_details = runner.get_input_details()
    output_details = runner.get_output_details()
    streaming = any("_state_" in name for name in input_details)
    arrays = _arrays(inputs)
    expected = model(arrays if len(arrays) > 1 else arrays[0], training=False)
    expected = [np.asarray(y) for y in tree.flatten(expected)]
    batch = int(next(iter(input_details.values()))["shape"][0])
    if streaming:
        exporter = _Exporter(model, "streaming", None, batch, unroll=False)
    else:
        exporter = _Exporter(
            model,
            "sequence",
            _length(input_details),
            batch,
            unroll=False,
            lengths="lengths" in input_details,
        )
    outputs = sorted(
        (name for name in output_details if name.startswith("output_")),
        key=lambda name: int(name.split("_")[1]),
    )
    if streaming:
        per_chunk = [
            [result for result, _ in exporter.stream(chunk, lambda feed: runner(**feed))]
            for chunk in exporter.chunks(arrays)
        ]
        got = [
            np.concatenate([np.stack([r[n] for r in steps], axis=1) for steps in per_chunk])
            for n in outputs
        ]
    else:
        stateful = "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops
        results = []
        for feed in exporter.feeds(arrays):
            if stateful:
                # The fused LSTM starts from the states the last invoke left.
                interpreter.reset_all_variables()
            results.append(runner(**feed))
        got = [np.concatenate([r[n] for r in results]) for n in outputs]
    steps = arrays[0].shape[1]
    diffs = []
    for want, have in zip(expected, got):
        if streaming:
            # (samples, steps, ...) per step: compare every step of a
            # sequence output, the last step of a per-sequence output.
            have = have if want.ndim == have.ndim else have[:, -1]
        elif want.ndim >= 3 and have.shape[1] != want.shape[1]:
            have = have[:, :steps]
        want = want[: len(have)]
        diffs.append(float(np.max(np.abs(have.astype(np.float64) - want))))
    scale = max(1.0, max(float(np.max(np.abs(y))) for y in expected))
    report = {
        "ops": ops,
        "builtin_only": True,
        "max_abs_diff": max(diffs),
        "output_diffs": diffs,
        "output_scale": scale,
        "tolerance": tolerance,
        "inputs": _describe(input_details),
        "outputs": _describe(output_details),
    }
    if tolerance is not None and report["max_abs_diff"] > tolerance * scale:
        raise ExportError(
            f"{tflite_path} differs from the Keras model by up to "
            f"{report['max_abs_diff']:.3g}, more than the tolerance "
            f"{tolerance:g} x max(1, max |Keras output|) = {tolerance * scale:.3g}."
        )
    return report


def _length(input_details):
    for name, detail in input_details.items():
        if name != "lengths":
            return int(detail["shape"][1])
    raise ExportError("The TFLite model has no sequence input.")


def _arrays(inputs):
    return [np.asarray(a) for a in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]


def _describe(details):
    return [
        {
            "name": name,
            "shape": [int(d) for d in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name,
        }
        for name, detail in details.items()
    ]
