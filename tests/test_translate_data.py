"""The translation app's data and vocabulary: reading pairs from every
source form, the errors on bad input, sentencepiece round trips, batches."""

import argparse
import gzip
import logging

import numpy as np
import pytest

from apps.translate import data
from apps.translate.tokenizer import Tokenizer

EN = [
    "A man rides a horse.",
    "Two dogs play in the snow.",
    "A woman is reading a book in the park.",
    "Children are playing football on the beach.",
    "An old man sits on a bench.",
    "A girl in a red dress is dancing.",
]
DE = [
    "Ein Mann reitet ein Pferd.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau liest ein Buch im Park.",
    "Kinder spielen Fußball am Strand.",
    "Ein alter Mann sitzt auf einer Bank.",
    "Ein Mädchen in einem roten Kleid tanzt.",
]


def write(path, lines, gz=False):
    text = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train(EN * 4, DE * 4, vocab_size=400)


# -- vocabulary -----------------------------------------------------------------


def test_tokenizer_round_trips_and_saves(tokenizer, tmp_path):
    assert tokenizer.shared and tokenizer.source_vocab_size == tokenizer.target_vocab_size
    # Sentences of the training text, and characters it never had (bytes).
    for text in [*DE, "Ωmega: ein Café 🙂 für 12€!"]:
        ids = tokenizer.encode_target([text])[0]
        assert 3 not in ids  # never the unknown id: byte fallback
        assert tokenizer.decode_target([[1, *ids, 2, 0, 0]]) == [text]
    # Everything after the first EOS is cut.
    ids = tokenizer.encode_target(["Zwei Hunde"])[0]
    assert tokenizer.decode_target([[*ids, 2, *ids]]) == ["Zwei Hunde"]
    for name, blob in tokenizer.files().items():
        (tmp_path / name).write_bytes(blob)
    loaded = Tokenizer.load(tmp_path)
    assert loaded.encode_source(EN) == tokenizer.encode_source(EN)


def test_separate_vocabularies(tmp_path):
    tok = Tokenizer.train(EN * 4, DE * 4, vocab_size=350, shared=False)
    assert not tok.shared and sorted(tok.files()) == ["source.model", "target.model"]
    # "ß" is a German character: a piece of the German vocabulary only.
    assert "ß" in "".join(tok.target_pieces(range(tok.target_vocab_size)))
    assert "ß" not in "".join(tok.source_pieces(range(tok.source_vocab_size)))
    assert tok.decode_target(np.array([tok.encode_target(DE)[3] + [2]])) == [DE[3]]
    for name, blob in tok.files().items():
        (tmp_path / name).write_bytes(blob)
    assert Tokenizer.load(tmp_path / "model.keras").encode_target(DE) == tok.encode_target(DE)


def test_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no vocabulary"):
        Tokenizer.load(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a sentencepiece model"):
        Tokenizer.load(tmp_path)
    with pytest.raises(ValueError, match="--vocab-size must be >= 300"):
        Tokenizer.train(EN, DE, vocab_size=100)


# -- reading pairs ---------------------------------------------------------------


def test_parallel_files_plain_and_gzip(tmp_path):
    write(tmp_path / "c.en", EN)
    write(tmp_path / "c.de.gz", DE, gz=True)
    pairs = data.load_pairs(tmp_path / "c", "en", "de", valid_size=2, seed=0)
    assert len(pairs["train"]) == 4 and len(pairs["valid"]) == 2 and "test" not in pairs
    # The held-out pairs are a seeded, disjoint share; partners stay together.
    everything = sorted(zip(pairs["train"].source + pairs["valid"].source,
                            pairs["train"].target + pairs["valid"].target))  # fmt: skip
    assert everything == sorted(zip(EN, DE))
    again = data.load_pairs(tmp_path / "c", "en", "de", valid_size=2, seed=0)
    assert again["valid"].source == pairs["valid"].source
    # The other direction.
    back = data.load_pairs(tmp_path / "c", "de", "en", valid_size=0)
    assert back["train"].source == DE and back["train"].target == EN


def test_different_line_counts_name_the_first_line_without_partner(tmp_path):
    write(tmp_path / "c.en", EN)
    write(tmp_path / "c.de", DE[:4])
    with pytest.raises(data.PairDataError, match=r"line 5 of \S*c\.en has no partner in \S*c\.de"):
        data.load_pairs(tmp_path / "c", "en", "de")
    with pytest.raises(data.PairDataError, match=r"6 lines but \S+ has 4"):
        data.read_parallel(tmp_path / "c.en", tmp_path / "c.de")


def test_empty_lines_are_skipped_with_their_line_numbers(tmp_path, caplog):
    write(tmp_path / "c.en", [EN[0], "", EN[2], "   "])
    write(tmp_path / "c.de", [DE[0], DE[1], "", DE[3]])
    with caplog.at_level(logging.WARNING):
        pairs = data.read_parallel(tmp_path / "c.en", tmp_path / "c.de")
    assert pairs.source == [EN[0]] and pairs.where == ["c.en:1"]
    assert "3 pair(s) with an empty side skipped (line 2, 3, 4)" in caplog.text
    write(tmp_path / "e.en", ["", ""])
    write(tmp_path / "e.de", ["x", ""])
    with pytest.raises(data.PairDataError, match="no sentence pair found"):
        data.read_parallel(tmp_path / "e.en", tmp_path / "e.de")


def test_tsv_pairs(tmp_path):
    lines = [f"{e}\t{d}\tCC-BY 2.0 (France) Attribution" for e, d in zip(EN, DE)]
    path = write(tmp_path / "pairs.tsv", lines)
    pairs = data.load_pairs(path, "en", "de", valid_size=1)
    assert sorted(pairs["train"].source + pairs["valid"].source) == sorted(EN)
    write(tmp_path / "bad.tsv", [lines[0], "no tab here", lines[1]])
    with pytest.raises(data.PairDataError, match="line 2 has no tab"):
        data.read_tsv(tmp_path / "bad.tsv")


def test_folder_of_split_files(tmp_path):
    for split, n in (("train", 4), ("dev", 1), ("test_2017", 1)):
        write(tmp_path / f"{split}.en", EN[:n])
        write(tmp_path / f"{split}.de.gz", DE[:n], gz=True)
    pairs = data.load_pairs(tmp_path, "en", "de")
    assert {k: len(v) for k, v in pairs.items()} == {"train": 4, "valid": 1, "test": 1}


def test_unknown_language_codes(tmp_path):
    with pytest.raises(
        data.PairDataError, match="unknown language code 'es'; choose among en, de, fr"
    ):
        data.load_pairs("multi30k", "en", "es")
    write(tmp_path / "c.en", EN)
    write(tmp_path / "c.de", DE)
    with pytest.raises(data.PairDataError, match="unknown language code 'fr' here; found de, en"):
        data.load_pairs(tmp_path / "c", "en", "fr")
    with pytest.raises(data.PairDataError, match="both 'en'"):
        data.load_pairs(tmp_path / "c", "en", "en")
    with pytest.raises(argparse.ArgumentTypeError, match="not a language code"):
        data.language("english")
    with pytest.raises(data.PairDataError, match="no such file, folder or file prefix"):
        data.load_pairs(tmp_path / "nothing", "en", "de")


def test_multi30k_shared_files(shared_data):
    """The real files, found and checked by the registry: the split sizes the
    data README states."""
    pairs = data.load_pairs("multi30k", "de", "fr", download=False)
    assert {k: len(v) for k, v in pairs.items()} == {"train": 29000, "valid": 1014, "test": 1000}
    assert pairs["train"].target[0].startswith("Deux jeunes hommes blancs")


def test_tfds_translation_through_tfds(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    splits = {"train": (EN[:4], DE[:4]), "validation": (EN[4:5], DE[4:5]), "test": (EN[5:], DE[5:])}

    def as_dataset(self, split, *args, **kwargs):
        en, pt = splits[str(split)]
        return tf.data.Dataset.from_tensor_slices({"en": tf.constant(en), "pt": tf.constant(pt)})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        pairs = data.load_pairs("tfds:ted_hrlr_translate/pt_to_en", "pt", "en", data_dir=tmp_path)
    assert pairs["train"].source == DE[:4] and pairs["train"].target == EN[:4]
    assert pairs["valid"].source == DE[4:5] and pairs["test"].target == EN[5:]
    # The builder's own languages are checked (from its metadata, offline).
    with pytest.raises(data.PairDataError, match="unknown language code 'de'; choose among en, pt"):
        data.load_pairs("tfds:ted_hrlr_translate/pt_to_en", "de", "en", data_dir=tmp_path)


def test_tfds_offline_is_a_clear_error(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(data.PairDataError, match="TFDS could not load it .*needs the network"):
        data.load_pairs("tfds:ted_hrlr_translate/pt_to_en", "pt", "en", data_dir=tmp_path)
    with pytest.raises(data.PairDataError, match="not a TFDS data set"):
        data.load_pairs("tfds:no_such_set", "pt", "en", data_dir=tmp_path)


# -- batches ---------------------------------------------------------------------


def test_encode_and_batches(tokenizer, caplog):
    # A seventh pair whose target is three sentences long.
    pairs = data.Pairs([*EN, EN[0]], [*DE, " ".join(DE[:3])], [str(i) for i in range(7)])
    limit = max(len(ids) + 1 for ids in tokenizer.encode_target(DE) + tokenizer.encode_source(EN))
    assert len(tokenizer.encode_target([pairs.target[-1]])[0]) >= limit
    with caplog.at_level(logging.WARNING):
        source, target = data.encode_pairs(pairs, tokenizer, limit)
    assert len(source) == 6
    assert f"1 of 7 pairs are longer than --max-length {limit}" in caplog.text
    assert target.shape[1] == limit + 1 and (target[:, 0] == 1).all()
    # Each row: the source ids, 0-padded; BOS, the target ids, EOS.
    assert (
        source[1][: len(tokenizer.encode_source([EN[1]])[0])].tolist()
        == (tokenizer.encode_source([EN[1]])[0])
    )
    ids = tokenizer.encode_target([DE[1]])[0]
    assert target[1].tolist() == [1, *ids, 2] + [0] * (limit - 1 - len(ids))
    dataset = data.batches(source, target, batch_size=2, shuffle=True, seed=0)
    seen = 0
    for (src, tgt_in), tgt_out in dataset:
        src, tgt_in, tgt_out = (np.asarray(a) for a in (src, tgt_in, tgt_out))
        # Teacher forcing: the input is the output shifted right behind BOS.
        np.testing.assert_array_equal(tgt_in[:, 1:], tgt_out[:, :-1])
        assert (tgt_in[:, 0] == 1).all() and (tgt_out == 2).any(axis=1).all()
        # Cut to the batch's longest sentence.
        assert (src[:, -1] != 0).any() and (tgt_out[:, -1] != 0).any()
        seen += len(src)
    assert seen == len(source)
