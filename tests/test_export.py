"""Deployment export (`keras_deeprnn.export`): TFLite builtin-ops-only
exports against Keras, SavedModel without the library, manifest checks.

To keep CI fast, each test exports one model holding many branches (one
per cell, or one per architecture), each branch its own output, so that one
conversion checks every cell; `-m slow` adds one export per cell.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("ai_edge_litert")

from keras_deeprnn import cells  # noqa: E402
from keras_deeprnn.export import TOLERANCES  # noqa: E402
from keras_deeprnn.export import ExportError  # noqa: E402
from keras_deeprnn.export import check_manifest  # noqa: E402
from keras_deeprnn.export import export_saved_model  # noqa: E402
from keras_deeprnn.export import export_tflite  # noqa: E402
from keras_deeprnn.export import load_export  # noqa: E402
from keras_deeprnn.export import load_tflite  # noqa: E402
from keras_deeprnn.export import verify_tflite  # noqa: E402
from keras_deeprnn.export import write_export  # noqa: E402
from keras_deeprnn.models import KINDS  # noqa: E402
from keras_deeprnn.models import deep_rnn  # noqa: E402

FLOAT_PARITY = 1e-5
T, D, UNITS = 5, 3, 4


def _data(samples=2, steps=T, features=D, seed=0):
    return np.random.default_rng(seed).normal(size=(samples, steps, features)).astype("float32")


def _branches(layer_lists, name):
    """One input, one output per branch (a list of layers)."""
    keras.utils.set_random_seed(1)
    x = keras.Input((None, D), name="frames")
    outputs = []
    for layers in layer_lists:
        y = x
        for layer in layers:
            y = layer(y)
        outputs.append(y)
    return keras.Model(x, outputs, name=name)


def _cells_model(names=cells.CELL_NAMES, return_sequences=True):
    return _branches(
        [
            [
                keras.layers.RNN(
                    cells.get(n, UNITS), return_sequences=return_sequences, name=n.replace("-", "_")
                )
            ]
            for n in names
        ],
        "cells",
    )


def _arch_layers(kind, bidirectional=False):
    options = {"rnn": {}, "srnn": dict(depth=2, input_skip=True, output_skip=True)}
    options = options.get(kind, dict(depth=2))
    if kind in ("dot", "dots"):
        options["output_units"] = 2
    layers = deep_rnn(
        kind,
        units=UNITS,
        cell="lstm" if kind != "dts" else "gru",
        name=f"{kind}{'_bi' if bidirectional else ''}",
        **options,
    )
    if bidirectional:
        layers[0] = keras.layers.Bidirectional(layers[0])
    return layers


def _archs_model(bidirectional):
    branches = [_arch_layers(kind) for kind in KINDS]
    # DT-RNN with a skip connection across time (a history state).
    branches.append(deep_rnn("dt", units=UNITS, cell="rnn", depth=2, time_skip=2, name="skip"))
    if bidirectional:
        branches += [_arch_layers(kind, True) for kind in ("rnn", "dots", "srnn")]
    return _branches(branches, "archs")


@pytest.mark.parametrize("mode", ["sequence", "streaming"])
def test_every_cell_float_parity_and_builtin_ops(tmp_path, mode):
    model = _cells_model()
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        mode=mode,
        max_length=T,
        check_inputs=_data(),
        tolerance=FLOAT_PARITY,
    )
    assert len(report["output_diffs"]) == len(cells.CELL_NAMES)
    assert report["max_abs_diff"] <= FLOAT_PARITY
    ops = set(report["ops"])
    assert not {op for op in ops if op.startswith("Flex") or not op.isupper()}
    assert ("WHILE" in ops) == (mode == "sequence")


@pytest.mark.parametrize("mode", ["sequence", "streaming"])
def test_every_architecture_float_parity(tmp_path, mode):
    model = _archs_model(bidirectional=mode == "sequence")
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        mode=mode,
        max_length=T,
        check_inputs=_data(),
        tolerance=FLOAT_PARITY,
    )
    assert report["max_abs_diff"] <= FLOAT_PARITY


@pytest.mark.parametrize("mode", ["sequence", "streaming"])
def test_dynamic_range_quantization_within_documented_tolerance(tmp_path, mode):
    # Wide enough that the converter quantizes the weights (>= 1024 values).
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((None, 16)),
            keras.layers.RNN(cells.get("lstm", 32), return_sequences=True),
            keras.layers.Dense(8),
        ]
    )
    x = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    floating = export_tflite(model, tmp_path / "f.tflite", mode=mode, check_inputs=x, max_length=6)
    dynamic = export_tflite(
        model, tmp_path / "d.tflite", mode=mode, quantize="dynamic", check_inputs=x, max_length=6
    )
    print(f"{mode}: dynamic-range max |TFLite - Keras| = {dynamic['max_abs_diff']:.4g}")
    assert dynamic["max_abs_diff"] <= TOLERANCES["dynamic"]
    assert dynamic["max_abs_diff"] > floating["max_abs_diff"]  # it did quantize
    assert (tmp_path / "d.tflite").stat().st_size < 0.6 * (tmp_path / "f.tflite").stat().st_size


@pytest.mark.parametrize("unroll,batch", [(False, 1), (False, 2), (True, 1)])
def test_lengths_mask_padding_like_keras_on_the_unpadded_sequences(tmp_path, unroll, batch):
    """The sequence export with `lengths` against Keras run on each
    sequence cut to its length (no padding at all): forward and backward
    layers, sequences and last outputs, a layer on top of another (the
    `lengths` mask carried between them), WHILE and unrolled loops, one
    sequence or a batch of different lengths per invoke."""
    keras.utils.set_random_seed(3)
    x = keras.Input((None, D), name="frames")
    gru = keras.layers.RNN(cells.get("gru", UNITS), return_sequences=True)(x)
    outputs = [
        gru,
        keras.layers.RNN(cells.get("lstm-cifg", UNITS))(x),
        keras.layers.RNN(cells.get("rnn", UNITS), go_backwards=True)(x),
        keras.layers.RNN(cells.get("lstm", UNITS), go_backwards=True, return_sequences=True)(x),
        keras.layers.RNN(cells.get("rnn", UNITS))(keras.layers.Dense(UNITS)(gru)),
    ]
    model = keras.Model(x, outputs)
    # Non-zero biases: with zero biases a cell fed zeros stays at zero, and
    # reading the padding would go unseen.
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    path = tmp_path / "m.tflite"
    export_tflite(
        model,
        path,
        mode="sequence",
        max_length=8,
        batch_size=batch,
        unroll=unroll,
        check_inputs=_data(samples=batch, steps=8),
    )
    runner = load_tflite(path).get_signature_runner()
    data = _data(samples=4, steps=8, seed=4)
    cases = list(zip((3, 8, 1, 0), data))
    for group in range(0, len(cases), batch):
        rows = cases[group : group + batch]
        padded = np.zeros((batch, 8, D), "float32")
        for k, (length, sequence) in enumerate(rows):
            padded[k, :length] = sequence[:length]
        got = runner(frames=padded, lengths=np.array([n for n, _ in rows], np.int32))
        for k, (length, sequence) in enumerate(rows):
            if length == 0:
                # Nothing read: every output is zero, as under a full mask.
                for value in got.values():
                    np.testing.assert_array_equal(value[k], 0)
                continue
            want = [np.asarray(w)[0] for w in model(sequence[None, :length])]
            got_k = [got[f"output_{i}"][k] for i in range(len(outputs))]
            np.testing.assert_allclose(got_k[0][:length], want[0], atol=FLOAT_PARITY)
            # Padded steps repeat the last output, as Keras does under a mask.
            np.testing.assert_allclose(
                got_k[0][length:], np.repeat(want[0][-1:], 8 - length, 0), atol=FLOAT_PARITY
            )
            for i in (1, 2, 4):
                np.testing.assert_allclose(got_k[i], want[i], atol=FLOAT_PARITY)
            # A backward layer reads the padding first (outputs still zero),
            # and returns its outputs in the order it read them.
            np.testing.assert_allclose(got_k[3][8 - length :], want[3], atol=FLOAT_PARITY)
            np.testing.assert_array_equal(got_k[3][: 8 - length], 0)


def test_lengths_outside_zero_to_max_length_are_clipped(tmp_path):
    """A length above max_length reads the whole sequence; a negative one
    reads nothing (zero output), as a length of 0 does."""
    keras.utils.set_random_seed(13)
    model = keras.Sequential(
        [keras.Input((None, D), name="frames"), keras.layers.RNN(cells.get("lstm", UNITS))]
    )
    rng = np.random.default_rng(14)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    export_tflite(
        model, tmp_path / "m.tflite", max_length=6, check_inputs=_data(samples=1, steps=6)
    )
    runner = load_tflite(tmp_path / "m.tflite").get_signature_runner()
    x = _data(samples=1, steps=6, seed=15)
    whole = np.asarray(model(x))
    for length, want in ((100, whole), (6, whole), (-3, np.zeros_like(whole))):
        got = runner(frames=x, lengths=np.array([length], np.int32))["output_0"]
        np.testing.assert_allclose(got, want, atol=FLOAT_PARITY)


@pytest.mark.parametrize("quantize", [None, "dynamic"])
def test_fuse_lstm_emits_the_fused_op_for_the_lstms_tflite_has(tmp_path, quantize):
    """`fuse_lstm=True`: our plain LSTM (forward, backward, in a
    Bidirectional, stacked) and Keras's `LSTM` become one
    UNIDIRECTIONAL_SEQUENCE_LSTM each, and with float weights the peephole
    (vanilla) and CIFG LSTMs too; the nig LSTM and the GRU stay loops, with
    the reason in the report; the results match Keras on three sequences
    in a row (peepholes and gates non-zero)."""
    keras.utils.set_random_seed(11)
    x = keras.Input((None, D), name="frames")
    plain = keras.layers.RNN(cells.get("lstm", UNITS), return_sequences=True, name="plain")(x)
    outputs = [
        keras.layers.RNN(cells.get("lstm", UNITS), name="stacked")(plain),
        keras.layers.RNN(
            cells.get("lstm", UNITS), go_backwards=True, return_sequences=True, name="backward"
        )(x),
        keras.layers.Bidirectional(
            keras.layers.RNN(cells.get("lstm", UNITS), return_sequences=True), name="bi"
        )(x),
        keras.layers.LSTM(UNITS, name="keras_lstm")(x),
        keras.layers.RNN(cells.get("lstm-vanilla", UNITS), return_sequences=True, name="vanilla")(
            x
        ),
        keras.layers.RNN(cells.get("lstm-cifg", UNITS), go_backwards=True, name="cifg")(x),
        keras.layers.RNN(cells.get("lstm-nig", UNITS), name="nig")(x),
        keras.layers.RNN(cells.get("gru", UNITS), name="gru")(x),
    ]
    model = keras.Model(x, outputs)
    rng = np.random.default_rng(12)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        max_length=6,
        lengths=False,
        fuse_lstm=True,
        quantize=quantize,
        check_inputs=_data(samples=3, steps=6),
        tolerance=FLOAT_PARITY if quantize is None else None,
    )
    plain_names = ["plain", "stacked", "backward", "forward_rnn", "backward_rnn", "keras_lstm"]
    variants = ["vanilla", "cifg"] if quantize is None else []
    assert sorted(report["fused_lstm"]) == sorted(plain_names + variants)
    assert report["ops"].count("UNIDIRECTIONAL_SEQUENCE_LSTM") == len(plain_names + variants)
    assert report["ops"].count("WHILE") == 4 - len(variants)
    assert "variant 'nig'" in report["unfused_lstm"]["nig"]
    assert "GRUCell" in report["unfused_lstm"]["gru"]
    if quantize is not None:
        assert "float32 weights only" in report["unfused_lstm"]["cifg"]


def test_fuse_lstm_leaves_masked_lstms_as_loops(tmp_path):
    model = keras.Sequential([keras.Input((None, D)), keras.layers.RNN(cells.get("lstm", UNITS))])
    report = export_tflite(model, tmp_path / "m.tflite", max_length=6, fuse_lstm=True)
    assert report["fused_lstm"] == [] and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in report["ops"]
    assert "masked" in next(iter(report["unfused_lstm"].values()))
    with pytest.raises(ValueError, match="sequence"):
        export_tflite(model, tmp_path / "s.tflite", mode="streaming", fuse_lstm=True)


def test_embedding_mask_bidirectional_pooling_sequence(tmp_path):
    keras.utils.set_random_seed(5)
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    h = keras.layers.Embedding(20, 6, mask_zero=True)(ids)
    h = keras.layers.Bidirectional(
        keras.layers.RNN(cells.get("mut1", UNITS), return_sequences=True)
    )(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(ids, keras.layers.Dense(3, activation="softmax")(h))
    tokens = np.array([[4, 7, 2, 0, 0, 0], [1, 5, 9, 3, 8, 2]], "int32")
    report = export_tflite(
        model, tmp_path / "m.tflite", max_length=6, check_inputs=tokens, tolerance=FLOAT_PARITY
    )
    assert {i["name"] for i in report["inputs"]} == {"lengths", "token_ids"}


def test_rnn_inside_a_custom_layer_after_other_shapes_ran(tmp_path, monkeypatch):
    """A library RNN nested in a layer runs as itself in an export; the loop
    shared by all calls (relaxed to unknown shapes by earlier ones, as in a
    long session) must not reach the converter, whose TensorList lowering
    needs known shapes."""
    from keras_deeprnn.layers import RNN
    from keras_deeprnn.layers.forecasting import SegmentSeq2Seq

    monkeypatch.setenv("KERAS_DEEPRNN_NATIVE", "0")
    for batch, steps, units in [(2, 3, 4), (3, 5, 6), (4, 7, 8), (5, 9, 10), (6, 2, 3)]:
        RNN(cells.get("gru", units))(np.zeros((batch, steps, 3), "float32"))
    x = keras.Input((12, 2))
    model = keras.Model(x, SegmentSeq2Seq(6, seg_len=3, units=8)(x))
    report = export_tflite(model, tmp_path / "m.tflite", tolerance=FLOAT_PARITY)
    assert report["builtin_only"] and "WHILE" in report["ops"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_int8_streaming(tmp_path, cell):
    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [
            keras.Input((None, D)),
            keras.layers.RNN(cells.get(cell, 8), return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    data = _data(samples=16, steps=T, seed=7)
    path = tmp_path / "m.tflite"
    export_tflite(model, path, mode="streaming", quantize="int8", representative_data=data)
    ops = verify_tflite(model, path, _data(samples=4, seed=8))
    scale = float(np.max(np.abs(model(_data(samples=4, seed=8)))))
    print(
        f"int8 streaming {cell}: max |TFLite - Keras| = {ops['max_abs_diff']:.4f} "
        f"(outputs up to {scale:.3f})"
    )
    assert ops["max_abs_diff"] <= TOLERANCES["int8"]
    assert "FULLY_CONNECTED" in ops["ops"] and "QUANTIZE" in ops["ops"]
    # Full integer: every FULLY_CONNECTED runs on int8 tensors.
    interpreter = load_tflite(path, delegates=False)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            assert tensors[op["inputs"][1]]["dtype"] == np.int8


def test_saved_model_runs_without_the_library(tmp_path):
    model = _branches(
        [deep_rnn("dots", units=UNITS, cell="lstm-vanilla", output_units=2, name="dots")], "dots"
    )
    export_saved_model(model, tmp_path / "sm")
    x = _data(samples=3, steps=7)
    np.save(tmp_path / "x.npy", x)
    code = (
        # The package is installed (editable) in this environment: hide it, and
        # the apps and tuning packages, from every import of the child.
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('keras_deeprnn', 'apps', 'tuning'):\n"
        "            raise ImportError('hidden: ' + name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "try:\n"
        "    import keras_deeprnn\n"
        "    raise SystemExit('keras_deeprnn is still importable')\n"
        "except ImportError:\n"
        "    pass\n"
        "import numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(tmp_path / 'sm')!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "y = m.signatures['serve'](frames=tf.constant(x))['output_0'].numpy()\n"
        "s = [np.zeros((3, 4), 'float32')] * 2\n"
        "steps = []\n"
        "for t in range(x.shape[1]):\n"
        "    r = m.signatures['step'](frames=x[:, t], dots_rnn_state_0=s[0],\n"
        "                             dots_rnn_state_1=s[1])\n"
        "    s = [r['dots_rnn_state_0'], r['dots_rnn_state_1']]\n"
        "    steps.append(r['output_0'].numpy())\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y)\n"
        f"np.save({str(tmp_path / 'steps.npy')!r}, np.stack(steps, 1))\n"
        "print('keras_deeprnn' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("False")
    want = np.asarray(model(x))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=FLOAT_PARITY)
    np.testing.assert_allclose(np.load(tmp_path / "steps.npy"), want, atol=FLOAT_PARITY)


def test_manifest_written_checked_and_tampering_refused(tmp_path):
    model = keras.Sequential(
        [keras.Input((None, D)), keras.layers.RNN(cells.get("gru", UNITS)), keras.layers.Dense(2)],
        name="tiny",
    )
    folder = tmp_path / "export"
    manifest = write_export(
        model,
        folder,
        "tiny",
        tflite=[("streaming", None)],
        saved_model=False,
        metrics={"test_nll": 1.5},
    )
    assert manifest["model"] == "tiny" and manifest["metrics"] == {"test_nll": 1.5}
    assert set(manifest["files"]) == {"model-streaming.tflite"}
    assert manifest["tensorflow_version"] == tf.__version__
    interpreter, entry = load_export(folder)
    assert entry["mode"] == "streaming" and entry["max_abs_diff"] <= TOLERANCES[None]
    assert {d["name"] for d in entry["inputs"]} == set(
        interpreter.get_signature_runner().get_input_details()
    )

    tflite = folder / "model-streaming.tflite"
    data = tflite.read_bytes()
    tflite.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ExportError, match="sha256 mismatch"):
        load_export(folder)
    tflite.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="sha256 mismatch"):
        check_manifest(folder)
    with pytest.raises(ExportError, match="truncated"):
        load_tflite(tflite)
    tflite.write_bytes(data)
    (folder / "extra.bin").write_bytes(b"x")
    with pytest.raises(ExportError, match="not in manifest.json: extra.bin"):
        check_manifest(folder)


def test_layers_that_cannot_be_exported_are_named(tmp_path):
    bi = keras.Sequential(
        [
            keras.Input((None, D)),
            keras.layers.Bidirectional(keras.layers.RNN(cells.get("gru", UNITS)), name="both_ways"),
        ]
    )
    with pytest.raises(ExportError, match="'both_ways' .*whole sequence"):
        export_tflite(bi, tmp_path / "m.tflite", mode="streaming")
    pooled = keras.Sequential(
        [
            keras.Input((None, D)),
            keras.layers.RNN(cells.get("gru", UNITS), return_sequences=True),
            keras.layers.GlobalAveragePooling1D(name="pool"),
        ]
    )
    with pytest.raises(ExportError, match="'pool' \\(GlobalAveragePooling1D\\) is not known"):
        export_tflite(pooled, tmp_path / "m.tflite", mode="streaming")
    text = keras.Sequential(
        [
            keras.Input((), dtype="string"),
            keras.layers.StringLookup(vocabulary=["a"], name="lookup"),
        ]
    )
    with pytest.raises(ExportError, match="'lookup' \\(StringLookup\\) processes strings"):
        export_tflite(text, tmp_path / "m.tflite")

    class Erf(keras.layers.Layer):  # tf.math.igamma has no TFLite builtin kernel
        def call(self, x):
            return tf.math.igamma(tf.abs(x) + 1.0, tf.abs(x) + 1.0)

    odd = keras.Sequential(
        [
            keras.Input((None, D)),
            keras.layers.RNN(cells.get("rnn", UNITS), return_sequences=True),
            Erf(name="odd_one"),
        ]
    )
    with pytest.raises(ExportError, match="layer 'odd_one' \\(Erf\\) cannot be converted"):
        export_tflite(odd, tmp_path / "m.tflite", max_length=T)
    assert not (tmp_path / "m.tflite").exists()


def test_cli_export_streaming_int8(tmp_path):
    import keras_deeprnn_cli as cli

    keras.utils.set_random_seed(9)
    model = keras.Sequential(
        [
            keras.Input((None, D)),
            keras.layers.RNN(cells.get("lstm", 8), return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    folder = tmp_path / "music-tiny"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps({"metrics": {"test_nll": 2.0}}))
    np.save(tmp_path / "rep.npy", _data(samples=8, seed=10))
    code = cli.main(
        [
            "export",
            str(folder / "model.keras"),
            "--format",
            "tflite",
            "--mode",
            "streaming",
            "--quantize",
            "int8",
            "--representative",
            str(tmp_path / "rep.npy"),
        ]
    )
    assert code == 0
    manifest = check_manifest(folder / "export")
    (entry,) = manifest["exports"]
    assert entry["file"] == "model-streaming-int8.tflite" and entry["quantize"] == "int8"
    assert manifest["metrics"] == {"test_nll": 2.0}
    assert cli.main(["export", str(folder), "--quantize", "int8"]) == 2
    assert cli.main(["export", str(folder), "--mode", "streaming", "--fuse-lstm"]) == 2
    assert (
        cli.main(
            [
                "export",
                str(folder),
                "--max-length",
                "6",
                "--fuse-lstm",
                "--out",
                str(tmp_path / "fused"),
            ]
        )
        == 0
    )
    (entry,) = check_manifest(tmp_path / "fused")["exports"]
    assert entry["file"] == "model-sequence-fused.tflite"
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in entry["ops"] and "WHILE" not in entry["ops"]


@pytest.mark.slow
@pytest.mark.parametrize("cell", cells.CELL_NAMES)
@pytest.mark.parametrize("mode", ["sequence", "streaming"])
@pytest.mark.parametrize("quantize", [None, "dynamic"])
def test_each_cell_separately(tmp_path, cell, mode, quantize):
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((None, 16)),
            keras.layers.RNN(cells.get(cell, 32), return_sequences=True),
            keras.layers.Dense(4),
        ]
    )
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        mode=mode,
        quantize=quantize,
        max_length=T,
        check_inputs=_data(features=16),
    )
    assert report["max_abs_diff"] <= (FLOAT_PARITY if quantize is None else TOLERANCES[quantize])


@pytest.mark.slow
@pytest.mark.parametrize("cell", cells.CELL_NAMES)
def test_int8_streaming_every_cell(tmp_path, cell):
    keras.utils.set_random_seed(12)
    model = keras.Sequential(
        [
            keras.Input((None, D)),
            keras.layers.RNN(cells.get(cell, 8), return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    report = export_tflite(
        model,
        tmp_path / "m.tflite",
        mode="streaming",
        quantize="int8",
        representative_data=_data(samples=16, seed=13),
    )
    print(f"int8 streaming {cell}: max |TFLite - Keras| = {report['max_abs_diff']:.4f}")
