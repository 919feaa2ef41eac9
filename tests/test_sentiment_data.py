"""Tests of keras_deeprnn.data.text: the sentiment loaders, labels and folds.

Expected values come from hand-made files, never from the loaders' own
output. The shared MR files (tests/conftest.py) are used only where present.
"""

import logging

import numpy as np
import pytest

from keras_deeprnn.data import registry
from keras_deeprnn.data import text as T

LOGGER = "keras_deeprnn.data.text"


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# ----------------------------------------------------------------------------
# MR format
# ----------------------------------------------------------------------------


@pytest.fixture()
def mr_dir(tmp_path):
    # Latin-1: 0xe9 is "é"; 0x85 is NEL, which str.splitlines would take for a
    # line break (the real MR files hold it). One empty line among the negatives.
    write(tmp_path / "rt-polarity.pos", b"a caf\xe9 of a film\ngreat\x85 really great\n")
    write(tmp_path / "rt-polarity.neg", b"dull , dull , dull\n\nnot good\n")
    return tmp_path


def test_mr_latin1_and_nel(mr_dir, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = T.load_mr(mr_dir)
    assert data.texts == [
        "a caf\u00e9 of a film",
        "great\x85 really great",
        "dull , dull , dull",
        "not good",
    ]
    assert data.labels.tolist() == [1, 1, 0, 0]
    assert data.label_names == ("negative", "positive")
    assert "empty text" in caplog.text and "rt-polarity.neg:2" in caplog.text


def test_mr_path_forms(mr_dir):
    for form in (
        mr_dir,
        mr_dir / "rt-polarity.pos",
        mr_dir / "rt-polarity.neg",
        mr_dir / "rt-polarity",
    ):
        assert len(T.load_mr(form)) == 4
    assert len(T.load_text(str(mr_dir / "rt-polarity.pos"))["train"]) == 4
    assert len(T.load_text(str(mr_dir))["train"]) == 4
    # "mr" names the registered files: these are not they.
    with pytest.raises(registry.ChecksumError, match=r"rt-polarity\.pos: SHA-256 .* refused"):
        T.load_text("mr", data_dir=mr_dir)


def test_mr_missing_file_names_the_path(tmp_path, monkeypatch):
    write(tmp_path / "x.pos", "good\n")
    with pytest.raises(T.TextDataError, match=r"x\.neg: no such file"):
        T.load_mr(tmp_path / "x.pos")
    monkeypatch.delenv("DEEPRNN_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(registry.DataUnavailable, match=r"mr: sentiment/rt-polarity\.pos is not"):
        T.load_text("mr", data_dir=tmp_path / "nowhere", download=False)


def test_shared_mr_counts(shared_data, monkeypatch):
    monkeypatch.setenv("DEEPRNN_DATA_DIR", str(shared_data))
    data = T.load_text("mr", download=False)["train"]
    assert data.counts() == {"negative": 5331, "positive": 5331}  # Pang & Lee 2005
    assert all("\n" not in t for t in data.texts)


# ----------------------------------------------------------------------------
# Delimited files
# ----------------------------------------------------------------------------


def test_tsv_with_header_bare_quotes_and_malformed_rows(tmp_path, caplog):
    path = write(
        tmp_path / "sst.tsv",
        "sentence\tlabel\n"
        'a "quoted" gem\t1\n'
        "no label here\n"  # malformed: one field
        "empty label\t\n"  # malformed: empty label
        "awful\t0\n"
        "odd one\t7\n",
    )  # label outside the set
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = T.load_delimited(path, label_names=("negative", "positive"))
    assert data.texts == ['a "quoted" gem', "awful"]
    assert data.labels.tolist() == [1, 0]
    assert "2 malformed row(s)" in caplog.text and "line 3, 4" in caplog.text
    assert "'7' (line 6)" in caplog.text


def test_csv_quoting_commas_and_inferred_labels(tmp_path):
    path = write(
        tmp_path / "reviews.csv",
        '"good, really good",pos\n'
        "bad, bad film,neg\n"  # unquoted commas: last field is the label
        '"line one\nline two",pos\n',
    )  # quoted line break
    data = T.load_delimited(path)
    assert data.label_names == ("neg", "pos")
    assert data.texts == ["good, really good", "bad, bad film", "line one\nline two"]
    assert data.labels.tolist() == [1, 0, 1]


def test_named_columns_in_any_order(tmp_path):
    path = write(tmp_path / "x.csv", "id,label,text\n1,positive,nice\n2,negative,meh\n")
    data = T.load_delimited(path)
    assert data.texts == ["nice", "meh"] and data.labels.tolist() == [1, 0]


def test_undecodable_bytes_are_replaced_and_reported(tmp_path, caplog):
    path = write(tmp_path / "bad.tsv", b"fine text\tpos\nbroken \xff\xfe text\tneg\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = T.load_delimited(path)
    assert data.texts[1] == "broken \ufffd\ufffd text"
    assert "line(s) 2" in caplog.text and "utf-8" in caplog.text
    latin = T.load_delimited(path, encoding="latin-1")
    assert latin.texts[1] == "broken \u00ff\u00fe text"


def test_file_with_no_valid_row_raises(tmp_path):
    with pytest.raises(T.TextDataError, match="no row of the form"):
        T.load_delimited(write(tmp_path / "a.tsv", "just text\nmore text\n"))
    with pytest.raises(T.TextDataError, match="empty"):
        T.load_delimited(write(tmp_path / "b.tsv", ""))
    with pytest.raises(T.TextDataError, match="no example with a label"):
        T.load_delimited(write(tmp_path / "c.tsv", "x\tmaybe\n"), label_names=("no", "yes"))


def test_very_long_field_is_read(tmp_path):
    long_text = "word " * 60000  # beyond the csv module's default field limit
    data = T.load_delimited(write(tmp_path / "long.csv", f"{long_text},pos\nshort,neg\n"))
    assert len(data.texts[0]) == len(long_text.strip())


def test_encode_labels_names_case_and_indices():
    idx, names, keep = T.encode_labels(
        ["Positive", "0", " negative ", "x"], ("negative", "positive")
    )
    assert idx.tolist() == [1, 0, 0] and keep.tolist() == [True, True, True, False]
    _, inferred, _ = T.encode_labels(["10", "9", "2"])
    assert inferred == ("2", "9", "10")


# ----------------------------------------------------------------------------
# Folder per class
# ----------------------------------------------------------------------------


def test_class_folders(tmp_path, caplog):
    for label, docs in {"neg": ["bad.", "worse."], "pos": ["good."], "unsup": ["?"]}.items():
        (tmp_path / label).mkdir()
        for i, doc in enumerate(docs):
            write(tmp_path / label / f"{i}.txt", doc)
    write(tmp_path / "pos" / "empty.txt", "   ")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = T.load_class_folders(tmp_path, label_names=("neg", "pos"))
    assert data.texts == ["bad.", "worse.", "good."] and data.labels.tolist() == [0, 0, 1]
    assert "unsup" in caplog.text and "empty text" in caplog.text
    assert T.load_text(str(tmp_path))["train"].label_names == ("neg", "pos", "unsup")
    with pytest.raises(T.TextDataError, match="no subfolder"):
        T.load_class_folders(tmp_path, label_names=("neg", "neutral"))


def test_unknown_spec_lists_the_forms(tmp_path):
    with pytest.raises(T.TextDataError, match="accepted: 'mr', 'imdb'"):
        T.load_text(str(tmp_path / "nothing-here"))


# ----------------------------------------------------------------------------
# TFDS (offline: the download boundary is mocked)
# ----------------------------------------------------------------------------


def test_tfds_texts_skips_unlabelled():
    examples = [
        {"sentence": b"nice", "label": 1},
        {"sentence": b"meh", "label": 0},
        {"sentence": b"hidden", "label": -1},
    ]
    data = T.tfds_texts(examples, "sentence", ("negative", "positive"))
    assert data.texts == ["nice", "meh"] and data.labels.tolist() == [1, 0]


def test_load_tfds_reads_through_tfds(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    reviews = {"train": (["a fine film", "dreadful"], [1, 0]), "test": (["ok"], [1])}

    def as_dataset(self, split, *args, **kwargs):
        texts, labels = reviews[str(split)]
        return tf.data.Dataset.from_tensor_slices(
            {"text": tf.constant(texts), "label": tf.constant(labels, tf.int64)}
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        data = T.load_text("imdb", data_dir=str(tmp_path))
    assert data["train"].texts == ["a fine film", "dreadful"]
    assert data["train"].labels.tolist() == [1, 0]
    assert data["train"].label_names == ("neg", "pos")  # from the real builder's info
    assert data["test"].texts == ["ok"]


def test_load_tfds_failure_is_a_clear_error(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'ai.stanford.edu'")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(T.TextDataError, match="tfds:glue/sst2:train: TFDS could not load"):
        T.load_text("tfds:sst2:train")
    with pytest.raises(ValueError, match="unsupported TFDS data set"):
        T.load_text("tfds:mnist")


# ----------------------------------------------------------------------------
# Folds
# ----------------------------------------------------------------------------


def test_kfold_is_a_stratified_partition():
    labels = np.array([0] * 23 + [1] * 17)
    folds = T.kfold_indices(labels, k=10, seed=3)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(40))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 40
        assert np.bincount(labels[test], minlength=2).tolist() in ([2, 2], [3, 2], [2, 1], [3, 1])
    again = T.kfold_indices(labels, k=10, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    with pytest.raises(ValueError, match="k must be"):
        T.kfold_indices(labels, k=1)


def test_split_indices():
    labels = np.array([0] * 10 + [1] * 30)
    rest, held = T.split_indices(labels, 0.1)
    assert np.bincount(labels[held]).tolist() == [1, 3]
    assert sorted(np.concatenate([rest, held]).tolist()) == list(range(40))
