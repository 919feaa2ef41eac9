"""Text data for language models: corpus files, vocabularies, stream batching."""

import numpy as np
import pytest

from keras_deeprnn.data import corpus
from keras_deeprnn.data.streams import stream_dataset
from keras_deeprnn.data.streams import stream_length
from keras_deeprnn.data.streams import stream_windows

# -- stream batching -----------------------------------------------------------


@pytest.mark.parametrize(
    "n, batch_size, k",
    [(11, 2, 3), (1000, 7, 16), (64, 8, 8), (65, 8, 8), (5, 8, 3), (2, 1, 1), (300, 3, 1000)],
)
def test_every_prediction_once_per_epoch(n, batch_size, k):
    ids = np.random.default_rng(n).integers(0, 50, n)
    w = stream_windows(ids, batch_size, k)
    assert w["x"].shape == w["y"].shape == w["weight"].shape
    assert w["x"].shape[1:] == (batch_size, k)
    # Each real slot is one prediction x_t -> x_{t+1}; mark which t it is.
    positions = stream_windows(np.arange(n), batch_size, k)
    real = w["weight"] == 1
    assert set(np.unique(w["weight"])) <= {0.0, 1.0}
    t = positions["x"][real]
    assert sorted(t.tolist()) == list(range(n - 1))  # every t once, none twice
    assert np.array_equal(positions["y"][real], t + 1)
    assert np.array_equal(w["x"][real], ids[t]) and np.array_equal(w["y"][real], ids[t + 1])
    assert not np.any(w["x"][~real]) and not np.any(w["y"][~real])


def test_streams_are_contiguous_across_batches():
    n, batch_size, k = 1000, 4, 16
    pos = stream_windows(np.arange(n), batch_size, k)
    length = stream_length(n, batch_size)
    assert length == 250
    for b in range(batch_size):
        row = pos["x"][:, b].reshape(-1)[pos["weight"][:, b].reshape(-1) == 1]
        # Stream b reads a contiguous stretch of the text, batch after batch.
        assert np.array_equal(row, np.arange(b * length, min((b + 1) * length, n - 1)))
    # Row b of batch j + 1 starts where row b of batch j stopped.
    full = pos["weight"].all(axis=2)
    for j in range(len(pos["x"]) - 1):
        for b in range(batch_size):
            if full[j, b] and pos["weight"][j + 1, b, 0]:
                assert pos["x"][j + 1, b, 0] == pos["x"][j, b, -1] + 1


def test_padding_only_at_stream_ends():
    w = stream_windows(np.arange(11), batch_size=2, k=3)
    assert w["x"][:, 0].tolist() == [[0, 1, 2], [3, 4, 0]]
    assert w["weight"][:, 0].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert w["y"][:, 1].tolist() == [[6, 7, 8], [9, 10, 0]]


def test_stream_dataset_keeps_the_order():
    ds = stream_dataset(np.arange(101), batch_size=4, k=5)
    batches = list(ds.as_numpy_iterator())
    w = stream_windows(np.arange(101), 4, 5)
    assert len(batches) == len(w["x"]) == int(ds.cardinality())
    for j, (x, y, weight) in enumerate(batches):
        assert np.array_equal(x, w["x"][j]) and np.array_equal(y, w["y"][j])
        assert np.array_equal(weight, w["weight"][j])


@pytest.mark.parametrize(
    "ids, batch_size, k, match",
    [
        (np.arange(1), 2, 3, "at least 2"),
        (np.zeros((3, 3), int), 2, 3, "1D array"),
        (np.linspace(0, 1, 5), 2, 3, "integer ids"),
        (np.arange(5), 0, 3, "batch_size"),
        (np.arange(5), 2, 0, "`k`"),
        (np.arange(5), 2, True, "`k`"),
    ],
)
def test_stream_windows_refuses_bad_arguments(ids, batch_size, k, match):
    with pytest.raises(ValueError, match=match):
        stream_windows(ids, batch_size, k)


# -- corpus files ----------------------------------------------------------------


def test_read_corpus(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffHello, wörld\nline two\n".encode())
    assert corpus.read_corpus(path) == "Hello, wörld\nline two\n"


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (b"  \n\n ", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file.*NUL byte at offset 8"),
        (b"caf\xe9 au lait\nline\xff", r"not UTF-8 text: byte 0xe9 at offset 3 \(line 1\)"),
    ],
)
def test_read_corpus_refuses_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(corpus.CorpusError, match=match) as error:
        corpus.read_corpus(path)
    assert str(error.value).startswith(str(path))


def test_read_corpus_missing(tmp_path):
    with pytest.raises(corpus.CorpusError, match="no such file"):
        corpus.read_corpus(tmp_path / "nope.txt")
    with pytest.raises(corpus.CorpusError, match="a folder"):
        corpus.read_corpus(tmp_path)


def test_split_is_nanogpts():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, valid = corpus.split_corpus(text)
    assert train == text[:900] and valid == text[900:]  # int(n * 0.9), as nanoGPT
    words = "aaa bbb ccc ddd eee"  # 70% of 19 characters falls inside "ddd"
    train, valid = corpus.split_corpus(words, 0.3, level="word")
    assert (train, valid) == ("aaa bbb ccc ddd", " eee")
    assert corpus.split_corpus(words, 0.3, level="char") == (words[:13], words[13:])
    with pytest.raises(ValueError, match="valid_fraction"):
        corpus.split_corpus(text, 1.0)


def test_tinyshakespeare_split_sizes(shared_text):
    text = corpus.read_corpus(shared_text)
    train, valid = corpus.split_corpus(text)
    assert (len(text), len(train), len(valid)) == (1115394, 1003854, 111540)
    assert len(corpus.Vocabulary.characters(text)) == 65


@pytest.fixture()
def shared_text():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "text"
    path = path / "tinyshakespeare.txt"
    if not path.is_file():
        pytest.skip(f"{path} is not here (the shared benchmark data)")
    return path


# -- vocabularies ----------------------------------------------------------------


def test_character_vocabulary():
    vocab = corpus.Vocabulary.characters("hello world\n")
    assert vocab.tokens == ["\n", " ", "d", "e", "h", "l", "o", "r", "w"]
    ids = vocab.encode("hold")
    assert ids.dtype == np.int32 and ids.tolist() == [4, 6, 5, 2]
    assert vocab.decode(ids) == "hold"
    with pytest.raises(ValueError, match=r"2 character\(s\) outside.*'X', 'é'"):
        vocab.encode("heXlé")
    assert vocab.decode(vocab.encode("heXlé", unknown="skip")) == "hel"
    assert vocab.unknown("aXa") == ["a", "X"]
    assert corpus.Vocabulary.from_config(vocab.get_config()).tokens == vocab.tokens


def test_word_vocabulary_with_limit_and_unk():
    text = "the cat sat\nthe dog sat\nthe end\n"
    vocab = corpus.Vocabulary.words(text, max_size=2)
    assert vocab.tokens == ["<unk>", "<eos>", "the", "sat"]
    assert vocab.encode("the cow sat\n").tolist() == [2, 0, 3, 1]
    assert vocab.decode([2, 0, 3, 1, 2]) == "the <unk> sat\nthe"
    assert len(corpus.Vocabulary.words(text)) == 2 + 5  # the, sat, cat, dog, end


def test_penn_treebank_form_reads_as_it_is():
    ptb = " the <unk> rose N % \n the company said \n"
    vocab = corpus.Vocabulary.words(ptb)
    assert vocab.tokens[:2] == ["<unk>", "<eos>"] and vocab.tokens.count("<unk>") == 1
    ids = vocab.encode(ptb)
    assert corpus.tokenize(ptb, "word") == [
        "the", "<unk>", "rose", "N", "%", "<eos>", "the", "company", "said", "<eos>"
    ]  # fmt: skip
    assert vocab.decode(ids) == "the <unk> rose N %\nthe company said\n"


def test_vocabulary_refuses_bad_tokens():
    with pytest.raises(ValueError, match="distinct"):
        corpus.Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="single characters"):
        corpus.Vocabulary(["ab"])
    with pytest.raises(ValueError, match="starts with"):
        corpus.Vocabulary(["a", "b"], "word")
    with pytest.raises(ValueError, match="level"):
        corpus.Vocabulary(["a"], "byte")
