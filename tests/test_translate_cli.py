"""`python -m apps.translate` end to end on a tiny corpus written here:
train -> evaluate -> translate -> attention -> export -> verify, and the
errors on bad input."""

import io
import json
import logging
import sys

import keras
import numpy as np
import pytest

from apps.translate.cli import main

WORDS = {
    "a": "ein",
    "man": "mann",
    "dog": "hund",
    "sees": "sieht",
    "the": "der",
    "big": "grosse",
    "red": "rote",
    "house": "haus",
    "runs": "rennt",
    "tree": "baum",
}
MAX_LENGTH = 24


def corpus(n, seed):
    """Word-by-word 'translations' of random sentences of 2-5 words."""
    rng = np.random.default_rng(seed)
    vocab = sorted(WORDS)
    en = [" ".join(rng.choice(vocab, rng.integers(2, 6))) for _ in range(n)]
    return en, [" ".join(WORDS[w] for w in s.split()) for s in en]


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained one epoch on a folder of train/val/test files
    (a GRU: it traces faster than an LSTM; the library tests every cell)."""
    folder = tmp_path_factory.mktemp("corpus")
    for split, n, seed in (("train", 96, 0), ("val", 16, 1), ("test", 12, 2)):
        en, de = corpus(n, seed)
        write(folder / f"{split}.en", en)
        write(folder / f"{split}.de", de)
    out = tmp_path_factory.mktemp("saved")
    options = (
        f"--src en --tgt de --vocab-size 300 --cell gru --units 8 --embedding-dim 8 --epochs 1 "
        f"--batch-size 32 --lr 0.01 --lr-schedule cosine --max-length {MAX_LENGTH} --name t"
    )
    code = main(
        ["train", "--data", str(folder), *options.split(), "--out", str(out)]
        + ["--run-dir", str(out / "run")]
    )
    assert code == 0
    return folder, out / "translate-t"


def test_train_saves_model_vocabulary_and_setup(trained):
    folder, model = trained
    meta = json.loads((model / "metadata.json").read_text())
    assert (model / "tokenizer.model").is_file() and (model / "model.keras").is_file()
    assert meta["translate"]["max_length"] == MAX_LENGTH and meta["translate"]["src"] == "en"
    assert meta["pairs"] == {"train": 96, "valid": 16, "test": 12}
    assert meta["epochs_run"] == 1 and meta["best_epoch"] == 1
    assert {"valid_bleu", "valid_chrf", "test_bleu", "test_chrf"} <= set(meta["metrics"])
    # --lr-schedule cosine without a budget: down to a tenth over the epochs' steps.
    optimizer = keras.saving.load_model(model / "model.keras", safe_mode=True).optimizer
    schedule = optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["decay_steps"] == 3  # 96 pairs in batches of 32, one epoch
    assert schedule["config"]["alpha"] == pytest.approx(0.1)
    assert schedule["config"]["initial_learning_rate"] == pytest.approx(0.01)


def _bleu(printed):
    lines = printed.splitlines()
    bleu = next(float(line.split()[1]) for line in lines if line.startswith("BLEU "))
    chrf = next(float(line.split()[1]) for line in lines if line.startswith("chrF "))
    return bleu, chrf


def test_evaluate_is_sacrebleu_of_translate(trained, tmp_path, capsys):
    import sacrebleu

    folder, model = trained
    capsys.readouterr()
    for beam in ("0", "3"):
        # evaluate's default: the test split of the training data.
        assert main(["evaluate", str(model), "--beam", beam]) == 0
        bleu, chrf = _bleu(capsys.readouterr().out)
        hyp = tmp_path / f"hyp{beam}.de"
        args = ["translate", str(model), "--input", str(folder / "test.en"), "--output", str(hyp)]
        assert main([*args, "--beam", beam]) == 0
        hypotheses = hyp.read_text(encoding="utf-8").split("\n")[:-1]
        references = (folder / "test.de").read_text().split("\n")[:-1]
        assert len(hypotheses) == 12
        want = sacrebleu.corpus_bleu(hypotheses, [references]).score
        assert bleu == pytest.approx(want, abs=0.006)
        assert chrf == pytest.approx(
            sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=0.006
        )
    # The same with explicit files.
    args = ["--src-file", str(folder / "test.en"), "--ref-file", str(folder / "test.de")]
    assert main(["evaluate", str(model), *args]) == 0
    assert _bleu(capsys.readouterr().out) == _bleu_of(tmp_path / "hyp0.de", folder / "test.de")


def _bleu_of(hyp, ref):
    import sacrebleu

    h, r = (p.read_text().split("\n")[:-1] for p in (hyp, ref))
    return (
        round(sacrebleu.corpus_bleu(h, [r]).score, 2),
        round(sacrebleu.corpus_chrf(h, [r]).score, 2),
    )


def test_translate_stdin_keeps_lines_and_cuts_long_sentences(trained, monkeypatch, capsys, caplog):
    folder, model = trained
    long = " ".join(["the big red house"] * 10)  # far more than MAX_LENGTH pieces
    lines = ["a man sees the dog", "", long, "the tree"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(x + "\n" for x in lines)))
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["translate", str(model)]) == 0
    out = capsys.readouterr().out.split("\n")[:-1]
    assert len(out) == 4 and out[1] == ""
    assert f"line(s) 3 are longer than the model's limit of {MAX_LENGTH} source tokens" in (
        caplog.text
    )
    # The long sentence is translated from its first MAX_LENGTH pieces.
    from apps.translate import translation
    from apps.translate.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(model)
    ids = translation.source_ids(tokenizer, [long], MAX_LENGTH)[0]
    assert ids == tokenizer.encode_source([long])[0][:MAX_LENGTH]


def test_attention_png(trained, tmp_path, capsys):
    _, model = trained
    png = tmp_path / "att.png"
    assert (
        main(["attention", str(model), "--sentence", "a man sees the dog", "--output", str(png)])
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000


def test_export_and_verify(trained, tmp_path, capsys, monkeypatch):
    folder, model = trained
    assert main(["export", str(model)]) == 0
    export = model / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    files = {e["file"]: e for e in manifest["exports"]}
    assert files["encoder.tflite"]["mode"] == "sequence"
    assert files["decoder_step.tflite"]["mode"] == "streaming"
    assert (export / "tokenizer.model").is_file()
    # Builtin ops only: no Flex (TensorFlow) or custom ops in either file.
    from keras_deeprnn.export import load_tflite

    for file in files:
        ops = {
            op["op_name"] for op in load_tflite(export / file, delegates=False)._get_ops_details()
        }
        assert ops and not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    capsys.readouterr()
    assert main(["verify", str(model), "--beam", "2"]) == 0
    printed = capsys.readouterr().out
    assert "greedy: 12/12 LiteRT translations equal Keras's" in printed
    assert "beam 2: 12/12" in printed
    # The export alone translates raw text, as the Keras model does.
    for engine in ([], ["--litert"]):
        out = tmp_path / f"out{len(engine)}.de"
        args = ["--input", str(folder / "test.en"), "--output", str(out)]
        assert main(["translate", str(model), *args, *engine]) == 0
    assert (tmp_path / "out1.de").read_text() == (tmp_path / "out0.de").read_text()
    # A LiteRT translation that differs (a token changed here) fails verify.
    from apps.translate import litert

    real = litert.Translator.generate_ids

    def one_token_off(self, sources, **kwargs):
        ids = real(self, sources, **kwargs)
        ids[1] = ids[1] + [4]
        return ids

    monkeypatch.setattr(litert.Translator, "generate_ids", one_token_off)
    assert main(["verify", str(model), "--limit", "3"]) == 1
    printed = capsys.readouterr()
    assert "greedy: 2/3 LiteRT translations" in printed.out
    assert "first difference, line 2" in printed.out and "differ" in printed.err
    monkeypatch.undo()
    # A changed file is refused (the manifest's sha256).
    (export / "tokenizer.model").write_bytes(b"changed")
    assert main(["verify", str(model), "--limit", "2"]) == 2


# -- bad input ---------------------------------------------------------------------


def test_bad_input_is_one_clear_line(trained, tmp_path, capsys):
    folder, model = trained
    common = ["--name", "x", "--out", str(tmp_path / "s"), "--run-dir", str(tmp_path / "r")]
    en, de = corpus(10, 3)
    write(tmp_path / "c.en", en)
    write(tmp_path / "c.de", de[:7])
    capsys.readouterr()
    assert main(["train", "--data", str(tmp_path / "c"), *common]) == 2
    err = capsys.readouterr().err
    assert "line 8 of" in err and "c.en has no partner in" in err and "Traceback" not in err
    assert main(["train", "--data", "multi30k", "--src", "en", "--tgt", "es", *common]) == 2
    assert "unknown language code 'es'; choose among en, de, fr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["train", "--data", "multi30k", "--src", "english", *common])
    assert exit.value.code == 2 and "not a language code" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", "multi30k", "--time-budget", "0", *common])
    assert "--time-budget: must be a number > 0" in capsys.readouterr().err
    write(tmp_path / "refs.de", de[:3])
    args = ["--src-file", str(folder / "test.en"), "--ref-file", str(tmp_path / "refs.de")]
    assert main(["evaluate", str(model), *args]) == 2
    assert "has 12 lines but" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a saved model" in capsys.readouterr().err
