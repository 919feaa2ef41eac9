"""`python -m apps.text` end to end on tiny texts: train, evaluate, sample,
export, and the bad inputs."""

import json

import numpy as np
import pytest

from apps.common.runner import load
from apps.text.cli import main

# A learnable toy: verses of a small, repetitive vocabulary.
VERSE = "to be or not to be\nthat is the question\nwhether tis nobler\n"


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.fixture()
def toy(tmp_path):
    path = tmp_path / "toy.txt"
    path.write_text(VERSE * 12)
    return path


def _train(toy, tmp_path, *extra, name="t"):
    argv = ["train", "--data", str(toy), "--units", "16", "--embedding-dim", "8",
            "--batch-size", "2", "--bptt", "16", "--epochs", "2", "--lr", "0.02",
            "--name", name, "--out", str(tmp_path / "saved"),
            "--run-dir", str(tmp_path / "run" / name), *extra]  # fmt: skip
    assert main(argv) == 0
    return tmp_path / "saved" / f"text-{name}"


def test_train_evaluate_sample(toy, tmp_path, capsys):
    folder = _train(toy, tmp_path, "--arch", "srnn", "--tie-embeddings", "--dropout", "0.1")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["epochs_run"] == 2 and meta["text"]["level"] == "char"
    assert "".join(meta["text"]["vocabulary"]) == "".join(sorted(set(VERSE)))
    n = len(VERSE * 12)
    assert meta["tokens"] == {"train": int(n * 0.9), "valid": n - int(n * 0.9)}
    # A uniform guess over the 20 characters costs log 20 = 3.0 nats.
    assert meta["metrics"]["valid_nats"] < 2.8

    # `evaluate` prints the mean cross-entropy of the last 10%, which NumPy
    # computes from the saved model's logits over the whole split.
    capsys.readouterr()
    assert main(["evaluate", str(folder), "--data", str(toy)]) == 0
    lines = capsys.readouterr().out.splitlines()
    nats = float(lines[0].removeprefix("nats/char "))
    bpc = float(lines[1].removeprefix("bpc "))
    model = load(folder, "text")
    vocab = {c: i for i, c in enumerate(meta["text"]["vocabulary"])}
    valid = np.array([vocab[c] for c in (VERSE * 12)[int(n * 0.9) :]], "int32")
    lp = _log_softmax(model(valid[None, :-1]))[0]
    expected = -lp[np.arange(len(valid) - 1), valid[1:]].mean()
    assert nats == pytest.approx(expected, abs=1e-4)
    assert bpc == pytest.approx(expected / np.log(2), abs=1e-4)
    assert nats == pytest.approx(meta["metrics"]["valid_nats"], abs=1e-4)

    # Greedy sampling (temperature 0) continues the primer with the most
    # likely character each step, which the whole model re-run agrees with.
    assert main(["sample", str(folder), "--prime", "to be", "--length", "15",
                 "--temperature", "0"]) == 0  # fmt: skip
    text = capsys.readouterr().out.removesuffix("\n")
    assert text.startswith("to be") and len(text) == 20
    seq = [vocab[c] for c in "to be"]
    for _ in range(15):
        seq.append(int(np.argmax(np.asarray(model(np.array([seq], "int32")))[0, -1])))
    assert text == "".join(meta["text"]["vocabulary"][i] for i in seq)
    for extra in (["--beam", "3"], ["--temperature", "0.8", "--top-k", "5"]):
        assert main(["sample", str(folder), "--length", "10", *extra]) == 0
        assert len(capsys.readouterr().out) == 1 + 10 + 1  # primer "\n", 10, print's "\n"


def test_primer_outside_the_vocabulary(toy, tmp_path, capsys):
    folder = _train(toy, tmp_path, "--epochs", "1")
    capsys.readouterr()
    assert main(["sample", str(folder), "--prime", "Zoë to", "--length", "3"]) == 2
    err = capsys.readouterr().err
    assert "2 character(s) outside the model's vocabulary" in err and "'Z', 'ë'" in err
    assert main(["sample", str(folder), "--prime", "Zoë to", "--length", "3",
                 "--unknown", "skip"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("o to")
    assert main(["sample", str(folder), "--prime", "Z", "--length", "3", "--unknown", "skip"]) == 2
    assert "no character of the model's vocabulary" in capsys.readouterr().err
    # A text to score with characters the model never saw is refused too.
    other = tmp_path / "other.txt"
    other.write_text("QQQ " * 50)
    assert main(["evaluate", str(folder), "--data", str(other)]) == 2
    assert "outside the model's vocabulary" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary\x00" * 20, "a binary file"),
        (b"na\xefve text\n" * 20, "not UTF-8 text: byte 0xef at offset 2"),
        (b"abcdefghij", "the valid part holds 1 char token(s)"),  # nothing to predict
    ],
)
def test_bad_text_files(tmp_path, capsys, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    argv = ["train", "--data", str(path), "--units", "4", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_word_level_with_a_vocabulary_limit(tmp_path, capsys):
    ptb = tmp_path / "ptb.txt"
    ptb.write_text(" the <unk> said N shares \n the company said \n" * 30)
    folder = _train(ptb, tmp_path, "--level", "word", "--vocab-size", "3", "--cell", "gru")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["text"]["vocabulary"] == ["<unk>", "<eos>", "said", "the", "N"]
    capsys.readouterr()
    assert main(["evaluate", str(folder), "--data", str(ptb), "--split", "all"]) == 0
    out = capsys.readouterr().out.splitlines()
    nats = float(out[0].removeprefix("nats/word "))
    assert float(out[1].removeprefix("perplexity ")) == pytest.approx(np.exp(nats), rel=1e-3)
    assert main(["sample", str(folder), "--prime", "the cat", "--length", "5"]) == 0
    assert capsys.readouterr().out.startswith("the <unk>")


def test_export_streaming_float_and_int8(toy, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    folder = _train(toy, tmp_path, "--cell", "gru")
    capsys.readouterr()
    argv = ["export", str(folder), "--quantize", "int8", "--data", str(toy),
            "--check-length", "40"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "model-streaming.tflite (float32): greedy chars equal to Keras's: 40 of 40" in out
    assert "model-streaming-int8.tflite (int8)" in out
    # Each file scores the validation part one invoke per character: the
    # float file as Keras does, the int8 one close to it.
    lines = out.splitlines()
    keras_nats = float(next(x for x in lines if x.startswith("Keras: ")).split()[1])
    scored = [float(x.split()[0]) for x in lines if x.endswith("nats per char on the same")]
    assert len(scored) == 2
    assert scored[0] == pytest.approx(keras_nats, abs=1e-4)
    assert scored[1] == pytest.approx(keras_nats, abs=0.1)
    manifest = json.loads((folder / "export" / "manifest.json").read_text())
    files = {e["file"]: e for e in manifest["exports"]}
    assert set(files) == {"model-streaming.tflite", "model-streaming-int8.tflite"}
    inputs = {i["name"]: i for i in files["model-streaming.tflite"]["inputs"]}
    assert inputs["ids"]["shape"] == [1] and inputs["ids"]["dtype"] == "int32"
