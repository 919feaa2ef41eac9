"""The tagging model and app: its layers, a tiny training run through the CLI
that beats the most-frequent-tag baseline, save/reload, export, `evaluate`
and `tag`, and bad input."""

import json

import numpy as np
import pytest
import tensorflow as tf
from test_tagging_data import CONLLU
from test_tagging_data import toy_language

from apps.common import runner
from apps.tagging import baselines
from apps.tagging import cli
from apps.tagging import evaluation
from apps.tagging.model import CharSplit
from apps.tagging.model import NormalizeWords
from apps.tagging.model import TokenAccuracy
from apps.tagging.model import WordDropout
from apps.tagging.model import build_model
from apps.tagging.model import model_tags
from apps.tagging.model import model_vocabulary
from apps.tagging.model import pad_tokens
from apps.tagging.model import predict_tags
from apps.tagging.text import normalize_word
from keras_deeprnn.data import conll


def to_conllu(sentences):
    blocks = []
    for tokens, tags in sentences:
        blocks.append(
            "\n".join(
                f"{i}\t{t}\t_\t{g}\t_\t_\t0\t_\t_\t_"
                for i, (t, g) in enumerate(zip(tokens, tags), 1)
            )
        )
    return "\n\n".join(blocks) + "\n\n"


def test_char_split_keeps_first_and_last_characters():
    chars = CharSplit(max_chars=6)(tf.constant([["Hello", "abcdefghij", ""], ["é", "", ""]]))
    got = [["".join(c.decode() for c in word) for word in row] for row in chars.numpy()]
    assert chars.shape == (2, 3, 6)
    assert got == [["Hello", "abchij", ""], ["é", "", ""]]
    assert chars.numpy()[0, 0, 5] == b""  # padding
    assert CharSplit(4)(tf.constant([["", ""]])).shape == (1, 2, 1)
    with pytest.raises(ValueError, match="max_chars"):
        CharSplit(1)


def test_normalize_layer_matches_python_and_word_dropout():
    words = ["The", "ÉLAN", "1984", "x-2", "Straße", "ǅ"]
    out = NormalizeWords()(tf.constant([words])).numpy()[0]
    assert [w.decode() for w in out] == [normalize_word(w) for w in words]
    layer = WordDropout(6, seed=1)
    layer.set_counts([0, 0, 1, 3, 1000, 1], alpha=1.0)  # p = 0, 0, 1/2, 1/4, ~0, 1/2
    np.testing.assert_allclose(layer.probability.numpy(), [0, 0, 0.5, 0.25, 1 / 1001, 0.5])
    ids = tf.constant(np.tile(np.arange(6), 400).reshape(8, 300), tf.int64)
    dropped = layer(ids, training=True).numpy()
    share = [(dropped[ids.numpy() == i] == 1).mean() for i in range(6)]
    assert share[0] == 0 and share[1] == 1  # padding and the unknown word stay
    assert 0.4 < share[2] < 0.6 and 0.15 < share[3] < 0.35 and share[4] < 0.02
    assert set(np.unique(dropped)) <= set(range(6))
    np.testing.assert_array_equal(layer(ids, training=False), ids)


def test_token_accuracy_counts_tokens_across_batches_of_different_lengths():
    metric = TokenAccuracy()
    # a batch of one 2-token sentence, all right; a batch of one 4-token sentence
    # (and 2 padding steps), all wrong: 2 of 6 tokens, whatever the padding
    metric.update_state([[0, 0]], np.eye(2)[[[0, 0]]], sample_weight=[[1.0, 1.0]])
    metric.update_state(
        [[0, 0, 0, 0, 0, 0]], np.eye(2)[[[1, 1, 1, 1, 0, 0]]], sample_weight=[[1, 1, 1, 1, 0, 0]]
    )
    assert float(metric.result()) == pytest.approx(2 / 6)


def test_other_cells_and_architectures_save_and_reload(tmp_path):
    model = build_model(
        ["the", "cat"],
        sorted(set("thecat")),
        ["DET", "NOUN"],
        cell="mut1",
        arch="srnn",
        depth=2,
        bi_layers=2,
        units=4,
        word_dim=4,
        char_cell="gru",
        char_units=3,
        char_dim=3,
    )
    x = pad_tokens([["The", "cat"], ["A", "dog", "barks"]])
    before = np.asarray(model.predict_on_batch(x))
    out = runner.save(model, tmp_path / "m", {"tags": ["DET", "NOUN"]})
    loaded = runner.load(out)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(x)), before, atol=1e-6)
    assert model_tags(loaded) == ["DET", "NOUN"] and model_vocabulary(loaded) == {"the", "cat"}
    # words only, characters only
    for kwargs in ({"char_units": 0}, {"word_dim": 0}):
        m = build_model(["a"], ["a"], ["X"], units=2, **kwargs)
        assert m.predict_on_batch(pad_tokens([["a", "b"]])).shape == (1, 2, 1)
    with pytest.raises(ValueError, match="needs word embeddings, a character RNN or both"):
        build_model(["a"], ["a"], ["X"], word_dim=0, char_units=0)
    with pytest.raises(ValueError, match="Unknown --arch"):
        build_model(["a"], ["a"], ["X"], arch="tcn")
    with pytest.raises(ValueError, match="empty: nothing to tag"):
        predict_tags(model, [["a"], []])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small GRU tagger trained through the CLI on the toy language."""
    folder = tmp_path_factory.mktemp("tagging")
    train, test = toy_language(240, 0), toy_language(80, 1)
    (folder / "train.conllu").write_text(to_conllu(train))
    (folder / "test.conllu").write_text(to_conllu(test))
    code = cli.main(
        [
            "train",
            "--train",
            str(folder / "train.conllu"),
            "--test",
            str(folder / "test.conllu"),
            "--valid-fraction",
            "0.2",
            "--cell",
            "gru",
            "--units",
            "16",
            "--word-dim",
            "16",
            "--char-units",
            "8",
            "--char-dim",
            "8",
            "--dropout",
            "0.1",
            "--epochs",
            "8",
            "--patience",
            "8",
            "--batch-size",
            "16",
            "--lr",
            "0.01",
            "--name",
            "toy",
            "--out",
            str(folder / "saved"),
            "--run-dir",
            str(folder / "run"),
        ]
    )
    assert code == 0
    return folder, train, test


def test_tiny_train_beats_the_most_frequent_tag(trained):
    folder, train, test = trained
    meta = json.loads((folder / "saved" / "tagging-toy" / "metadata.json").read_text())
    most = baselines.MostFrequentTagger().fit(train)
    baseline = evaluation.score(test, [most.tag(s.tokens) for s in test])["accuracy"]
    assert baseline < 0.95
    assert meta["metrics"]["test_accuracy"] > baseline + 0.03
    assert sorted(meta["tags"]) == ["ADV", "DET", "NOUN", "PRON", "PUNCT", "VERB"]
    assert meta["sentences"] == {"train": 192, "valid": 48}


def test_time_budget_ends_the_training_between_epochs(trained, tmp_path):
    folder = trained[0]
    args = ["--train", str(folder / "train.conllu"), "--valid-fraction", "0.2", "--units", "8"]
    args += ["--name", "budget", "--out", str(tmp_path), "--run-dir", str(tmp_path / "run")]
    options = ["--epochs", "5", "--patience", "5", "--time-budget", "0.001"]  # 0.06 s
    assert cli.main(["train", *args, *options]) == 0
    metadata = json.loads((tmp_path / "tagging-budget" / "metadata.json").read_text())
    assert metadata["epochs_run"] == 1  # no second epoch fits after the first


def test_reload_predicts_the_same_and_exports(trained, tmp_path):
    folder, _, test = trained
    model = runner.load(folder / "saved" / "tagging-toy")
    x = pad_tokens([s.tokens for s in test[:5]])
    again = runner.load(folder / "saved" / "tagging-toy" / "model.keras")
    np.testing.assert_array_equal(model.predict_on_batch(x), again.predict_on_batch(x))
    assert (
        cli.main(["export", str(folder / "saved" / "tagging-toy"), "--out", str(tmp_path / "sm")])
        == 0
    )
    exported = tf.saved_model.load(str(tmp_path / "sm" / "saved_model"))
    served = exported.serve(tf.constant(x.astype(str)))
    np.testing.assert_allclose(served.numpy(), model.predict_on_batch(x), atol=1e-5)


def test_evaluate_and_tag_commands(trained, tmp_path, capsys):
    folder, _, test = trained
    model_dir = folder / "saved" / "tagging-toy"
    # an unknown gold tag ("INTJ") and an unseen word ("swim" is in; "jog" is not)
    extra = test + [conll.Sentence(("wow", "we", "jog", "."), ("INTJ", "PRON", "VERB", "PUNCT"))]
    (tmp_path / "eval.conllu").write_text(to_conllu(extra))
    assert (
        cli.main(
            [
                "evaluate",
                str(model_dir),
                "--data",
                str(tmp_path / "eval.conllu"),
                "--confusion",
                str(tmp_path / "c.png"),
                "--json",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "token accuracy:" in out and "unseen-word accuracy:" in out
    assert "gold tags the model was not trained on, counted as errors: INTJ (1)" in out
    assert "precision" in out and "NOUN" in out
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["unseen_tokens"] == 2 and scores["tokens"] == conll.token_count(extra)

    assert cli.main(["tag", str(model_dir), "the walk .", "I walk today."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["the/DET walk/NOUN ./PUNCT", "I/PRON walk/VERB today/ADV ./PUNCT"]
    assert cli.main(["tag", str(model_dir), "--tokenized", "we play", "--probabilities"]) == 0
    pairs = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[0] for p in pairs] == ["we/PRON", "play/VERB"]
    assert all(0.0 < float(p.rsplit("/", 1)[1]) <= 1.0 for p in pairs)


def test_cli_reports_bad_input_cleanly(trained, tmp_path, capsys):
    folder, _, _ = trained
    model_dir = str(folder / "saved" / "tagging-toy")
    bad = tmp_path / "bad.conllu"
    bad.write_text(CONLLU.replace("1\tSue\tSue", "x\tSue\tSue"))
    assert cli.main(["evaluate", model_dir, "--data", str(bad)]) == 2
    assert f"{bad}:13: ID 'x' is not an integer" in capsys.readouterr().err
    assert cli.main(["tag", model_dir, "  "]) == 2
    assert "nothing to tag" in capsys.readouterr().err
    assert cli.main(["tag", str(tmp_path / "no-model"), "a"]) == 2
    assert "No model at" in capsys.readouterr().err
    assert cli.main(["train", "--train", str(bad)]) == 2
    assert "bad.conllu:13" in capsys.readouterr().err


def test_crf_marginals_match_enumeration():
    import itertools

    from apps.tagging.model import _crf_marginals

    rng = np.random.default_rng(0)
    potentials = rng.normal(size=(4, 3, 3))
    potentials[0] = potentials[0, :1]  # the first step's rows are equal
    weight = {}
    for y in itertools.product(range(3), repeat=4):
        weight[y] = np.exp(
            potentials[0, 0, y[0]] + sum(potentials[t, y[t - 1], y[t]] for t in range(1, 4))
        )
    z = sum(weight.values())
    want = np.array(
        [[sum(w for y, w in weight.items() if y[t] == k) / z for k in range(3)] for t in range(4)]
    )
    np.testing.assert_allclose(_crf_marginals(potentials), want, rtol=1e-10)


def test_crf_tagger_trains_saves_and_tags(tmp_path, capsys):
    train, test = toy_language(240, 0), toy_language(80, 1)
    (tmp_path / "train.conllu").write_text(to_conllu(train))
    (tmp_path / "test.conllu").write_text(to_conllu(test))
    assert (
        cli.main(
            [
                "train",
                "--train",
                str(tmp_path / "train.conllu"),
                "--test",
                str(tmp_path / "test.conllu"),
                "--valid-fraction",
                "0.2",
                "--cell",
                "gru",
                "--units",
                "16",
                "--word-dim",
                "16",
                "--char-units",
                "0",
                "--dropout",
                "0.1",
                "--epochs",
                "8",
                "--patience",
                "8",
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--crf",
                "--name",
                "crf",
                "--out",
                str(tmp_path / "saved"),
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    saved = tmp_path / "saved" / "tagging-crf"
    meta = json.loads((saved / "metadata.json").read_text())
    most = baselines.MostFrequentTagger().fit(train)
    baseline = evaluation.score(test, [most.tag(s.tokens) for s in test])["accuracy"]
    assert meta["metrics"]["test_accuracy"] > baseline + 0.03
    model = runner.load(saved)
    assert model.get_layer("crf") is not None
    tokens = [s.tokens for s in test[:6]]
    tags, probs = predict_tags(model, tokens, return_probabilities=True)
    assert [len(t) for t in tags] == [len(t) for t in tokens]
    assert all(0 < p <= 1 for row in probs for p in row)
    capsys.readouterr()
    assert cli.main(["tag", str(saved), " ".join(tokens[0])]) == 0
    assert tags[0][0] in capsys.readouterr().out
