"""Tagging data: the CoNLL-U and CoNLL column readers on small hand-written
files, the TFDS path (offline, through tfds.testing.mock_data), the tf.data
pipeline, the tokenizer, the scores and the classic baselines."""

import logging

import numpy as np
import pytest

from apps.tagging import baselines
from apps.tagging import evaluation
from apps.tagging.text import normalize_word
from apps.tagging.text import tokenize
from keras_deeprnn.data import conll

CONLLU = """\
# newdoc id = test
# sent_id = 1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = 2
# text = Sue likes tea and Bob coffee
1\tSue\tSue\tPROPN\tNNP\t_\t2\tnsubj\t_\t_
2\tlikes\tlike\tVERB\tVBZ\t_\t0\troot\t_\t_
3\ttea\ttea\tNOUN\tNN\t_\t2\tobj\t_\t_
4\tand\tand\tCCONJ\tCC\t_\t5\tcc\t_\t_
5\tBob\tBob\tPROPN\tNNP\t_\t2\tconj\t_\t_
5.1\tlikes\tlike\tVERB\tVBZ\t_\t_\t_\t2:conj\tCopyOf=2
6\tcoffee\tcoffee\tNOUN\tNN\t_\t5\torphan\t_\t_
"""

CONLL2003 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- CoNLL-U ---------------------------------------------------------------------------


def test_conllu_tags_syntactic_words_and_skips_ranges_empty_nodes_and_comments(tmp_path):
    sentences = conll.read_conllu(write(tmp_path, "a.conllu", CONLLU))
    assert sentences == [
        (("I", "do", "n't", "know", "."), ("PRON", "AUX", "PART", "VERB", "PUNCT")),
        (
            ("Sue", "likes", "tea", "and", "Bob", "coffee"),
            ("PROPN", "VERB", "NOUN", "CCONJ", "PROPN", "NOUN"),
        ),
    ]
    xpos = conll.read_conllu(tmp_path / "a.conllu", tag="xpos")
    assert xpos[0].tags == ("PRP", "VBP", "RB", "VB", ".")
    assert isinstance(sentences[0], conll.Sentence) and sentences[0].tokens[1] == "do"


def test_conllu_without_final_blank_line_bom_and_crlf():
    lines = ("\ufeff" + CONLLU.rstrip("\n")).replace("\n", "\r\n").splitlines(keepends=True)
    lines[0] = lines[0].lstrip("\ufeff")
    assert len(conll.parse_conllu(lines)) == 2


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_", "expected 10 tab-separated columns, found 9"),
        ("1 I I PRON PRP _ 4 nsubj _ _", "found 1 (spaces instead of tabs?)"),
        ("one\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_", "ID 'one' is not an integer"),
        ("1.x\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_", "ID '1.x' is not an integer"),
        ("0\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_", "word id must be 1 or more"),
        ("2\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_", "word id 2 out of sequence, expected 1"),
        ("1\tI\tI\t\tPRP\t_\t4\tnsubj\t_\t_", "empty UPOS column"),
        ("3-2\tI\t_\t_\t_\t_\t_\t_\t_\t_", "range '3-2' must be N-M"),
    ],
)
def test_conllu_errors_name_file_and_line(tmp_path, bad_line, message):
    lines = CONLLU.splitlines()
    lines[3] = bad_line  # word 1 of the first sentence, line 4 of the file
    path = write(tmp_path, "bad.conllu", "\n".join(lines))
    with pytest.raises(conll.ConllError, match=r"bad\.conllu:4: ") as info:
        conll.read_conllu(path)
    assert message in str(info.value)


def test_conllu_range_must_cover_the_following_words(tmp_path):
    text = "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\tVBP\t_\t0\troot\t_\t_\n\n"
    with pytest.raises(conll.ConllError, match=r"r\.conllu:3: sentence ends inside a multi-word"):
        conll.read_conllu(write(tmp_path, "r.conllu", text))


def test_conllu_sentence_without_words_is_skipped_with_a_warning(tmp_path, caplog):
    text = "# sent_id = empty\n# text =\n\n" + CONLLU
    with caplog.at_level(logging.WARNING, logger="keras_deeprnn.data.conll"):
        sentences = conll.read_conllu(write(tmp_path, "e.conllu", text))
    assert len(sentences) == 2
    assert "e.conllu:1: sentence without words, skipped" in caplog.text


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(conll.ConllError, match="no such file"):
        conll.read_conllu(tmp_path / "nothing.conllu")
    (tmp_path / "latin1.conllu").write_bytes("1\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(conll.ConllError, match="not UTF-8"):
        conll.read_conllu(tmp_path / "latin1.conllu")
    with pytest.raises(ValueError, match="upos, xpos"):
        conll.parse_conllu([], tag="deprel")


# -- CoNLL column files -----------------------------------------------------------------


def test_conll_column_files_choose_the_column_and_skip_docstart(tmp_path):
    path = write(tmp_path, "train.txt", CONLL2003)
    ner = conll.read_conll(path)
    assert ner == [
        (("EU", "rejects", "German"), ("B-ORG", "O", "B-MISC")),
        (("Peter", "Blackburn"), ("B-PER", "I-PER")),
    ]
    assert conll.read_conll(path, column=1)[1].tags == ("NNP", "NNP")
    assert conll.read_tagged(path, column=2)[0].tags == ("B-NP", "B-VP", "B-NP")
    tabs = conll.parse_conll(["a\tDT", "b c\tNN", ""], separator="\t")
    assert tabs == [(("a", "b c"), ("DT", "NN"))]


def test_conll_column_errors(tmp_path):
    path = write(tmp_path, "bad.txt", CONLL2003.replace("rejects VBZ B-VP O", "rejects VBZ O"))
    with pytest.raises(conll.ConllError, match=r"bad\.txt:4: expected 4 columns .* found 3"):
        conll.read_conll(path)
    with pytest.raises(conll.ConllError, match=r"train\.txt:3: column 4 does not exist"):
        conll.read_conll(write(tmp_path, "train.txt", CONLL2003), column=4)


def test_load_tagging_joins_files_and_parses_tfds_specs(tmp_path):
    a = write(tmp_path, "a.conllu", CONLLU)
    b = write(tmp_path, "b.txt", CONLL2003)
    both = conll.load_tagging(f"{a},{b}")
    assert [len(s.tokens) for s in both] == [5, 6, 3, 2]
    assert conll.token_count(both) == 16
    assert conll.tag_set(both)[:2] == ["NOUN", "PROPN"]  # most frequent first, ties by name
    for bad in ("tfds:conll2003", "tfds::test"):
        with pytest.raises(ValueError, match="tfds:NAME:SPLIT"):
            conll.load_tagging(bad)
    with pytest.raises(ValueError, match="unsupported TFDS data set"):
        conll.load_tfds("mnist", "test")
    with pytest.raises(ValueError, match="has no tag 'upos'"):
        conll.load_tfds("conll2003", "test", tag="upos")


# -- TFDS ----------------------------------------------------------------------------


UPOS = (
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
    "_",
)


def test_tfds_examples_drop_multiword_ranges_and_empty_nodes():
    u = {t: i for i, t in enumerate(UPOS)}
    example = {  # what TFDS stores for "I don't ." plus an empty node (HEAD "_" -> "None")
        "tokens": [b"I", b"don't", b"do", b"n't", b"go", b"."],
        "upos": [u["PRON"], u["_"], u["AUX"], u["PART"], u["VERB"], u["PUNCT"]],
        "head": [b"2", b"None", b"0", b"2", b"None", b"2"],
    }
    sentences = conll.tfds_sentences([example], "universal_dependencies/en_ewt", "upos", UPOS)
    assert sentences == [(("I", "do", "n't", "."), ("PRON", "AUX", "PART", "PUNCT"))]
    bad = dict(example, upos=example["upos"][:-1])
    with pytest.raises(conll.ConllError, match="example 1 has 6 tokens but 5 upos tags"):
        conll.tfds_sentences([bad], "universal_dependencies/en_ewt", "upos", UPOS)


def test_load_tfds_offline_with_mocked_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    def as_dataset(self, split, **kwargs):
        upos = self.info.features["upos"].feature.str2int
        examples = {
            "tokens": [["I", "don't", "do", "n't", "."]],
            "upos": [[upos("PRON"), upos("_"), upos("AUX"), upos("PART"), upos("PUNCT")]],
            "xpos": [["PRP", "None", "VBP", "RB", "."]],
            "head": [["3", "None", "0", "3", "3"]],
        }
        return tf.data.Dataset.from_tensor_slices(
            {k: tf.ragged.constant(v) for k, v in examples.items()}
        ).map(lambda ex: {k: v for k, v in ex.items()})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset, policy=tfds.testing.MockPolicy.USE_CODE):
        sentences = conll.load_tagging("tfds:universal_dependencies/en_ewt:test")
        xpos = conll.load_tfds("universal_dependencies/en_ewt", "test", tag="xpos")
    assert sentences == [(("I", "do", "n't", "."), ("PRON", "AUX", "PART", "PUNCT"))]
    assert xpos[0].tags == ("PRP", "VBP", "RB", ".")


def test_load_tfds_reports_tfds_failures(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'data.deepai.org'")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(
        conll.ConllError,
        match=r"tfds:conll2003:test: could not load .*"
        r"ConnectionError: Failed to resolve",
    ):
        conll.load_tagging("tfds:conll2003:test")


# -- tf.data --------------------------------------------------------------------------


def test_tagging_dataset_pads_weights_and_keeps_every_sentence():
    sentences = [(("a",) * n, ("X",) * (n - 1) + ("Y",)) for n in (1, 3, 12, 2, 25)]
    ds = conll.tagging_dataset(sentences, ["X", "Y"], batch_size=2, shuffle=True, seed=1)
    seen, batches = [], 0
    for tokens, ids, weights in ds:
        batches += 1
        tokens, ids, weights = tokens.numpy(), ids.numpy(), weights.numpy()
        assert tokens.shape == ids.shape == weights.shape and tokens.shape[0] <= 2
        lengths = (tokens != b"").sum(1)
        np.testing.assert_array_equal(weights.sum(1), lengths)
        for row, n in enumerate(lengths):
            assert ids[row, n - 1] == 1 and not ids[row, n:].any()
        seen.extend(lengths.tolist())
    assert sorted(seen) == [1, 2, 3, 12, 25]
    assert batches == ds.cardinality() == 4  # buckets <10: 3 sentences, 10-19: 1, 20-29: 1
    plain = conll.tagging_dataset(sentences, ["X", "Y"], batch_size=2, bucket_boundaries=None)
    assert plain.cardinality() == len(list(plain)) == 3


def test_tagging_dataset_unknown_tags_and_bad_arguments(caplog):
    sentences = [(("a", "b"), ("X", "Z"))]
    with pytest.raises(ValueError, match=r"tags not in the tag set: Z \(1\)"):
        conll.tagging_dataset(sentences, ["X"])
    with caplog.at_level(logging.WARNING, logger="keras_deeprnn.data.conll"):
        ds = conll.tagging_dataset(sentences, ["X"], unknown_tags="ignore", bucket_boundaries=None)
    assert "1 tokens with tags not in the tag set are not scored: Z (1)" in caplog.text
    _, ids, weights = next(iter(ds))
    np.testing.assert_array_equal(weights.numpy(), [[1.0, 0.0]])
    with pytest.raises(ValueError, match="no token"):
        conll.tagging_dataset([((), ())], ["X"])
    with pytest.raises(ValueError, match="batch_size"):
        conll.tagging_dataset(sentences, ["X", "Z"], batch_size=0)


# -- text, scores, baselines ---------------------------------------------------------


def test_tokenize_and_normalize():
    assert tokenize("I don't know, Dr. Smith said...") == [
        "I",
        "do",
        "n't",
        "know",
        ",",
        "Dr.",
        "Smith",
        "said",
        "...",
    ]
    assert tokenize('"We\'re (in) the U.S."') == [
        '"',
        "We",
        "'re",
        "(",
        "in",
        ")",
        "the",
        "U.S.",
        '"',
    ]
    assert tokenize("   ") == []
    assert normalize_word("Élan-1984") == "élan-0000"


def test_score_accuracy_unseen_words_per_tag_and_unknown_tags(tmp_path):
    gold = [
        conll.Sentence(("The", "cat", "zorps"), ("DET", "NOUN", "VERB")),
        conll.Sentence(("A", "dog", "!"), ("DET", "NOUN", "SYM")),
    ]
    predicted = [["DET", "NOUN", "NOUN"], ["DET", "VERB", "PUNCT"]]
    report = evaluation.score(
        gold,
        predicted,
        known_words={"the", "a", "cat", "dog", "!"},
        known_tags={"DET", "NOUN", "VERB", "PUNCT"},
    )
    assert (report["tokens"], report["correct"]) == (6, 3)
    assert report["accuracy"] == pytest.approx(0.5)
    assert (report["unseen_tokens"], report["unseen_correct"]) == (1, 0)  # "zorps"
    assert report["per_tag"]["NOUN"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    )
    assert report["per_tag"]["DET"]["f1"] == 1.0 and report["per_tag"]["PUNCT"]["support"] == 0
    assert report["unknown_tags"] == {"SYM": 1}
    assert report["labels"] == ["DET", "NOUN", "SYM", "VERB", "PUNCT"]
    assert np.asarray(report["confusion"]).sum() == 6
    text = evaluation.format_report(report)
    assert "token accuracy:        50.00% (3 of 6 tokens)" in text
    assert "1 tokens have gold tags the model was not trained on" in text
    png = evaluation.save_confusion_png(report, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="sentence 2: 3 gold tags but 2 predicted"):
        evaluation.score(gold, [["DET"] * 3, ["DET"] * 2])


def toy_language(n, seed, words=("run", "walk", "play", "talk", "swim")):
    """Sentences where an ambiguous word is a NOUN after a determiner and a VERB
    after a pronoun: the most frequent tag of each word gets only about half
    of them right."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n):
        word = str(rng.choice(words))
        if rng.random() < 0.5:
            tokens, tags = [str(rng.choice(["I", "we", "they"])), word], ["PRON", "VERB"]
        else:
            tokens, tags = [str(rng.choice(["the", "a"])), word], ["DET", "NOUN"]
        if rng.random() < 0.5:
            tokens, tags = tokens + ["today"], tags + ["ADV"]
        sentences.append(conll.Sentence(tuple(tokens + ["."]), tuple(tags + ["PUNCT"])))
    return sentences


def test_baselines_most_frequent_and_perceptron():
    train, test = toy_language(300, 0), toy_language(100, 1)
    most = baselines.make("most-frequent").fit(train)
    assert most.tag(["the", "Unknown"]) == ["DET", "PUNCT"]  # unknown: the most frequent tag
    perceptron = baselines.make("perceptron", iterations=3).fit(train)
    mf = evaluation.score(test, [most.tag(s.tokens) for s in test])["accuracy"]
    ap = evaluation.score(test, [perceptron.tag(s.tokens) for s in test])["accuracy"]
    assert mf < 0.95 and ap == 1.0
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.make("hmm")
    with pytest.raises(ValueError, match="no training tokens"):
        baselines.MostFrequentTagger().fit([])
