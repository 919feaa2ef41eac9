"""Tests of keras_deeprnn.data.registry and `deeprnn data`: lookups, checksums, downloads.

Nothing here reaches the network: downloads go through `keras.utils.get_file`
from `file://` URLs into a Keras cache under tmp_path. Sums are computed here
with hashlib, and the registered ones are checked against the shared data
folder's README (an independent record of them) and its files.
"""

import hashlib
import io
import re
import tarfile
import zipfile

import pytest

from keras_deeprnn.data import command
from keras_deeprnn.data import conll
from keras_deeprnn.data import registry as R
from keras_deeprnn.data import timeseries


def digest(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """No local data folders; an empty Keras cache under tmp_path (its
    registry folder is returned)."""
    monkeypatch.delenv("DEEPRNN_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "datasets" / "deeprnn"


def register(monkeypatch, name, *files):
    monkeypatch.setitem(R.DATASETS, name, R.Dataset(name, "a test set", files, "tests"))
    return R.DATASETS[name]


def source(tmp_path, name, data):
    """A file to download, and its file:// URL."""
    path = tmp_path / "origin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, path.as_uri()


# -- the registry's contents ---------------------------------------------------


def test_registry_entries_are_well_formed():
    folders = {"music", "sentiment", "tagging", "forecast", "text", "translation"}
    unsummed = []
    for name, dataset in R.DATASETS.items():
        assert name == dataset.name == name.lower() and dataset.files and dataset.source
        keys = [f.key or f.name for f in dataset.files]
        assert len(set(keys)) == len(keys), name
        for f in dataset.files:
            assert f.path.split("/")[0] in folders and f.path.count("/") == 1, f.path
            assert re.fullmatch(r"https?://[^ ]+", f.url), f.url
            if f.sha256 is None:
                unsummed.append(name)
            else:
                assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), (name, f.path)
    # Only the original .pickle files lack a recorded sum.
    assert sorted(unsummed) == [
        f"{n}-pickle" for n in ("jsb", "musedata", "nottingham", "piano-midi")
    ]
    for name in ("jsb", "nottingham", "musedata", "piano-midi", "mr", "multi30k", "etth1"):
        assert name in R.DATASETS
    assert {"tinyshakespeare", "ud-en-ewt", "ud-en-gum"} <= set(R.DATASETS)


def test_registered_sums_are_the_shared_readme_s(shared_data):
    rows = re.findall(
        r"^\| ([^|]+?) \| ([0-9a-f]{64}) \|$", (shared_data / "README.md").read_text(), re.M
    )
    by_path = {f.path: f.sha256 for d in R.DATASETS.values() for f in d.files}
    by_name = {f.name: f.sha256 for d in R.DATASETS.values() for f in d.files}
    checked = 0
    for file, recorded in rows:
        name = file.replace(" (not here)", "")
        assert by_path.get(name, by_name.get(name)) == recorded, name
        checked += 1
    assert checked >= 11


def test_the_shared_files_are_the_registered_ones(shared_data, monkeypatch):
    monkeypatch.setenv("DEEPRNN_DATA_DIR", str(shared_data))
    found = 0
    for dataset in R.DATASETS.values():
        for f in dataset.files:
            path = shared_data / f.path
            if path.is_file():
                assert digest(path.read_bytes()) == f.sha256, f.path
                assert R.locate(dataset, f, download=False) == path
                found += 1
    assert found == 18  # music 2, MR 2, tagging 3, forecast 1, text 1, translation 9


def test_loaders_take_registered_names(shared_data, monkeypatch):
    monkeypatch.setenv("DEEPRNN_DATA_DIR", str(shared_data))
    # Sentence and row counts from the shared README and the UD release notes.
    assert len(conll.load_tagging("ud-en-gum:test")) == 1464
    assert len(timeseries.read_csv(R.resolve("etth1")).values) == 17420


# -- where files are found -----------------------------------------------------


def test_download_by_url_into_the_keras_cache(cache, tmp_path, monkeypatch, capsys):
    data = b"to be or not to be\n"
    origin, url = source(tmp_path, "input.txt", data)
    register(monkeypatch, "play", R.DataFile("text/play.txt", url, digest(data)))
    path = R.fetch_file("play")
    assert path == cache / "text" / "play.txt" and path.read_bytes() == data
    assert f"Downloading data from {url}" in capsys.readouterr().out
    origin.unlink()  # the cached copy is used from now on, checked again
    assert R.fetch("play") == {"text/play.txt": path}
    assert "Downloading" not in capsys.readouterr().out


def test_local_folders_come_first_in_order(cache, tmp_path, monkeypatch):
    data = b"0,1\n"
    a, b, given = tmp_path / "a", tmp_path / "b", tmp_path / "given"
    for folder in (a / "forecast", b, given):
        folder.mkdir(parents=True)
    missing = (tmp_path / "nowhere.csv").as_uri()
    dataset = register(monkeypatch, "series", R.DataFile("forecast/s.csv", missing, digest(data)))
    (b / "s.csv").write_bytes(data)  # flat
    monkeypatch.setenv("DEEPRNN_DATA_DIR", f"{a}:{b}")
    assert R.fetch_file("series") == b / "s.csv"
    (a / "forecast" / "s.csv").write_bytes(data)  # as laid out, in the first folder
    assert R.fetch_file("series") == a / "forecast" / "s.csv"
    (given / "s.csv").write_bytes(data)
    assert R.fetch_file("series", data_dir=given) == given / "s.csv"
    assert R.data_dirs(given) == [given, a, b]
    # A mirror may hold the file under the name its URL gives it.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "input.txt").write_bytes(data)
    file = R.DataFile("text/play.txt", "https://example.org/x/input.txt", digest(data))
    assert R.locate(dataset, file, data_dir=mirror, download=False) == mirror / "input.txt"


def test_a_changed_file_is_refused_wherever_it_is(cache, tmp_path, monkeypatch):
    good, bad = b"the registered bytes\n", b"the registered bytes, edited\n"
    _, url = source(tmp_path, "f.txt", bad)
    register(monkeypatch, "f", R.DataFile("text/f.txt", url, digest(good)))
    # In a local folder: refused, named, kept.
    local = tmp_path / "local"
    local.mkdir()
    (local / "f.txt").write_bytes(bad)
    with pytest.raises(R.ChecksumError) as error:
        R.fetch("f", data_dir=local)
    message = str(error.value)
    assert message.startswith(str(local / "f.txt")) and digest(bad) in message
    assert digest(good) in message and "changed" in message and "refused" in message
    assert (local / "f.txt").exists()
    # Downloaded: refused and deleted.
    with pytest.raises(R.ChecksumError, match=r"refused \(deleted\)"):
        R.fetch("f")
    assert not (cache / "text" / "f.txt").exists()
    # In the cache: refused.
    (cache / "text" / "f.txt").write_bytes(bad)
    with pytest.raises(R.ChecksumError, match="delete or replace it"):
        R.fetch("f")
    # The registered bytes pass.
    (cache / "text" / "f.txt").write_bytes(good)
    assert R.fetch_file("f") == cache / "text" / "f.txt"


def test_offline_the_error_names_the_url_and_where_to_put_the_file(cache, tmp_path, monkeypatch):
    url = (tmp_path / "offline" / "ETTh9.csv").as_uri()
    register(monkeypatch, "etth9", R.DataFile("forecast/ETTh9.csv", url, "ab" * 32))
    with pytest.raises(R.DataUnavailable) as error:
        R.fetch("etth9")
    message = str(error.value)
    assert f"could not be downloaded from {url}" in message
    assert str(cache / "forecast" / "ETTh9.csv") in message and "ab" * 32 in message
    assert "$DEEPRNN_DATA_DIR (as FOLDER/forecast/ETTh9.csv)" in message
    with pytest.raises(R.DataUnavailable, match="is not here .* `deeprnn data fetch etth9`"):
        R.fetch("etth9", download=False)


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_archive_members_are_extracted_and_checked(cache, tmp_path, monkeypatch):
    pos, neg = b"good film\n", b"bad film\n"
    members = {"pack/a.pos": pos, "pack/a.neg": neg, "pack/README": b"x"}
    archive, url = source(tmp_path, "pack.tar.gz", tar_gz(members))
    files = (
        R.DataFile("sentiment/a.pos", url, digest(pos), member="pack/a.pos", key="pos"),
        R.DataFile("sentiment/a.neg", url, digest(neg), member="pack/a.neg", key="neg"),
    )
    register(monkeypatch, "pack", *files)
    paths = R.fetch("pack")
    assert paths == {
        "sentiment/a.pos": cache / "sentiment/a.pos",
        "sentiment/a.neg": cache / "sentiment/a.neg",
    }
    assert (
        paths["sentiment/a.pos"].read_bytes() == pos
        and paths["sentiment/a.neg"].read_bytes() == neg
    )
    assert sorted(p.name for p in (cache / "sentiment").iterdir()) == [
        "a.neg",
        "a.pos",
        "pack.tar.gz",
    ]
    # The archive in a local mirror, nothing cached, no network: extracted from there.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive.rename(mirror / "pack.tar.gz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras2"))
    assert R.fetch_file("pack", "neg", data_dir=mirror, download=False).read_bytes() == neg
    # A zip works the same; a member it lacks is named.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("pack/a.pos", pos)
    (mirror / "pack.zip").write_bytes(buffer.getvalue())
    zipped = R.DataFile(
        "sentiment/z.pos", "https://example.org/pack.zip", digest(pos), member="pack/a.pos"
    )
    assert R.locate(R.DATASETS["pack"], zipped, data_dir=mirror, download=False).read_bytes() == pos
    lacking = R.DataFile(
        "sentiment/z.neg", "https://example.org/pack.zip", digest(neg), member="pack/a.neg"
    )
    with pytest.raises(R.DataError, match=r"pack\.zip: the archive holds no pack/a\.neg"):
        R.locate(R.DATASETS["pack"], lacking, data_dir=mirror, download=False)


def test_a_file_without_a_recorded_sum_is_never_used(cache):
    with pytest.raises(R.DataError, match="no SHA-256 for JSB Chorales.pickle"):
        R.fetch("jsb-pickle")


def test_names_keys_and_paths():
    assert R.resolve("data/ETTh1.csv") is None and R.resolve("train.conllu") is None
    with pytest.raises(R.DataError, match="not a registered data set; known: etth1"):
        R.get("nope")
    with pytest.raises(R.DataError, match="ud-en-gum has no file 'train'; its files: dev, test"):
        R.resolve("ud-en-gum:train")
    with pytest.raises(
        R.DataError, match="mr has 2 files; name one as mr:KEY, KEY one of pos, neg"
    ):
        R.fetch_file("mr")
    assert R.get("UD-EN-GUM").file("test").name == "en_gum-ud-test.conllu"
    assert R.DATASETS["jsb"].files[0].download_name == "JSB_Chorales.mat"
    assert R.DATASETS["jsb-pickle"].files[0].download_name == "JSB Chorales.pickle"


# -- `deeprnn data` ------------------------------------------------------------


def test_data_command_lists_and_fetches(cache, tmp_path, monkeypatch, capsys):
    data = b"x\n"
    mirror = tmp_path / "mirror"
    (mirror / "text").mkdir(parents=True)
    (mirror / "text" / "here.txt").write_bytes(data)
    register(
        monkeypatch,
        "here",
        R.DataFile("text/here.txt", "https://example.org/here.txt", digest(data)),
    )
    assert command.main(["list", "--data-dir", str(mirror)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^here +1 file\(s\)  a test set\n +here: {mirror / 'text'}$", out, re.M)
    assert re.search(r"^jsb +1 file\(s\)  JSB Chorales.*\n +not here$", out, re.M)
    assert re.search(r"^jsb-pickle .*\n +no SHA-256 recorded$", out, re.M)
    assert command.main(["fetch", "here", "--data-dir", str(mirror)]) == 0
    assert capsys.readouterr().out == f"{mirror / 'text' / 'here.txt'}\n"
    assert command.main(["fetch", "nope"]) == 2
    assert "'nope' is not a registered data set" in capsys.readouterr().err
    assert command.main(["fetch"]) == 2
