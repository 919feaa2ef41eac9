"""`python -m apps.sentiment` end to end on a tiny learnable data set:
train, predict on raw text, evaluate, export, cross-validation, bad input."""

import json

import numpy as np
import pytest
import tensorflow as tf

from apps.common import runner
from apps.sentiment.cli import main
from apps.sentiment.model import parts
from keras_deeprnn.export import check_manifest


def _toy_rows(n, seed):
    """A learnable toy: the one sentiment word among neutral fillers decides."""
    rng = np.random.default_rng(seed)
    good = "good great excellent wonderful superb lovely".split()
    bad = "bad awful terrible boring dull poor".split()
    filler = "the movie film plot actors was is a an and story".split()
    rows = []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(filler, 4)) + [str(rng.choice(good if label else bad))]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)}\t{'positive' if label else 'negative'}")
    return rows


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentiment")
    path = folder / "toy.tsv"
    path.write_text("text\tlabel\n" + "\n".join(_toy_rows(160, 0)) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(toy):
    out = toy.parent / "saved"
    code = main(
        [
            "train",
            "--data",
            str(toy),
            "--epochs",
            "4",
            "--units",
            "8",
            "--embedding-dim",
            "8",
            "--batch-size",
            "16",
            "--lr",
            "0.02",
            "--test-fraction",
            "0.25",
            "--name",
            "toy",
            "--out",
            str(out),
            "--run-dir",
            str(toy.parent / "run"),
        ]
    )
    assert code == 0
    return out / "sentiment-toy"


def test_train_beats_chance_and_writes_metadata(trained):
    meta = json.loads((trained / "metadata.json").read_text())
    assert meta["labels"] == ["negative", "positive"]
    assert meta["texts"] == {"train": 120, "test": 40}
    assert meta["max_length"] == 60 and meta["command"]
    assert meta["metrics"]["test_accuracy"] >= 0.8  # chance is 0.5


def test_predict_raw_text_arguments(trained, capsys):
    code = main(
        ["predict", str(trained), "a truly wonderful film", "", "the plot was awful and boring"]
    )
    assert code == 0
    out, err = capsys.readouterr()
    lines = [line.split("\t") for line in out.strip().split("\n")]
    assert [line[0] for line in lines] == ["positive", "negative"]
    assert all(0.5 <= float(line[1]) <= 1.0 for line in lines)
    assert lines[0][2] == "a truly wonderful film"
    assert "text 2 is empty: skipped" in err


def test_predict_stdin_with_bad_bytes_and_long_text(trained, capsys, monkeypatch):
    import io
    import sys

    data = b"great film\n\nbad \xff\xfe plot\n" + b"superb " * 3000 + b"\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["predict", str(trained)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().split("\n")
    assert len(lines) == 3 and lines[1].startswith("negative\t")
    assert "\ufffd" in lines[1]
    assert "cut to their first 60 tokens" in err


def test_predict_only_empty_text_is_an_error(trained, capsys):
    assert main(["predict", str(trained), "   "]) == 2
    assert "no text to classify" in capsys.readouterr().err


def test_reloaded_model_predicts_identically(trained):
    texts = tf.constant(["great great", "a dull plot", "", "unseen words here"])
    first = runner.load(trained).predict(texts, verbose=0)
    second = runner.load(trained / "model.keras").predict(texts, verbose=0)
    np.testing.assert_array_equal(first, second)


def test_evaluate(trained, toy, capsys):
    assert main(["evaluate", str(trained), "--data", str(toy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("all accuracy: ") and "on 160 texts" in out
    assert float(out.split()[2]) >= 0.8


def test_evaluate_skips_labels_outside_the_model(trained, tmp_path, capsys):
    path = tmp_path / "other.tsv"
    path.write_text("great film\tpositive\nmeh\tneutral\nawful\tnegative\n")
    assert main(["evaluate", str(trained), "--data", str(path)]) == 0
    assert "on 2 texts" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_export_savedmodel_tflite_and_vocab(trained, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(trained), "--out", str(out), "--fuse-lstm"]) == 0
    manifest = check_manifest(out)  # the checksums of every file
    assert manifest["metrics"] == runner.read_metadata(trained)["metrics"]
    assert [e["file"] for e in manifest["exports"]] == [
        "model.tflite",
        "model-fused.tflite",
        "saved_model",
    ]
    # The classifier masks padding, which TFLite's fused LSTM op cannot.
    assert sorted(manifest["exports"][1]["unfused_lstm"]) == [
        "backward_recurrent_rnn",
        "forward_recurrent_rnn",
    ]
    assert "not fused" in capsys.readouterr().out
    vocab = (out / "vocab.txt").read_text().split("\n")[:-1]
    assert vocab[:2] == ["[PAD]", "[UNK]"] and "wonderful" in vocab
    spec = json.loads((out / "tokenizer.json").read_text())
    assert spec["max_length"] == 60 and spec["labels"] == ["negative", "positive"]
    assert (out / "labels.txt").read_text() == "negative\npositive\n"

    model = runner.load(trained)
    texts = ["a wonderful film", "awful awful plot"]
    expected = model.predict(tf.constant(texts), verbose=0)
    served = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(served.serve(tf.constant(texts)).numpy(), expected, atol=1e-6)

    # A mobile app tokenises with vocab.txt (here: with the model's own
    # vectorizer, which the test of the vocabulary above ties to the file).
    vectorizer, _ = parts(model)
    index = {token: i for i, token in enumerate(vocab)}
    ids = vectorizer(tf.constant(texts)).numpy().astype(np.int32)
    assert ids[0, 1] == index["wonderful"]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(out / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int32 and list(inp["shape"]) == [1, 60]
    for row, want in zip(ids, expected):
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(outp["index"])[0], want, atol=1e-5)
    fused = Interpreter(model_path=str(out / "model-fused.tflite"))
    for row, want in zip(ids, expected):
        # The fused op keeps its states across invokes (docs/export.md).
        fused.reset_all_variables()
        fused.allocate_tensors()
        fused.set_tensor(fused.get_input_details()[0]["index"], row[None])
        fused.invoke()
        got = fused.get_tensor(fused.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_cross_validation_with_baseline_and_resume(toy, tmp_path, capsys):
    pytest.importorskip("sklearn")
    run_dir = tmp_path / "cv"
    args = [
        "train",
        "--data",
        str(toy),
        "--cv",
        "2",
        "--epochs",
        "1",
        "--units",
        "4",
        "--embedding-dim",
        "4",
        "--batch-size",
        "32",
        "--cell",
        "rnn",
        "--baseline",
        "--wide",
        "--wide-buckets",
        "64",
        "--run-dir",
        str(run_dir),
    ]
    assert main(args) == 0
    summary = json.loads((run_dir / "cv.json").read_text())
    assert [r["fold"] for r in summary["results"]] == [0, 1]
    assert sum(r["test_texts"] for r in summary["results"]) == 160
    assert summary["baseline_mean_accuracy"] >= 0.9  # the toy is linear in the words
    # Each branch alone on the test folds, beside the combination.
    assert summary["wide_mean_accuracy"] >= 0.9
    assert 0 <= summary["rnn_mean_accuracy"] <= 1
    capsys.readouterr()
    assert main(args) == 0  # a re-run skips the finished folds
    assert capsys.readouterr().out.count("done before") == 2


def test_bad_arguments_are_reported_cleanly(toy, tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing.tsv")]) == 2
    assert "missing.tsv" in capsys.readouterr().err
    assert main(["train", "--data", str(toy), "--folds", "1"]) == 2
    assert "--folds and --baseline go with --cv" in capsys.readouterr().err
    assert main(["train", "--data", str(toy), "--labels", "yes,no"]) == 2
    assert "no example with a label" in capsys.readouterr().err
    assert main(["train", "--data", str(toy), "--cv", "3", "--folds", "5"]) == 2
    assert "--folds must be in 0..2" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "no-model"), "text"]) == 2
    assert "No model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--pooling", "mean"])
