"""Polyphonic-music data: loaders, piano-roll helpers and a `tf.data` pipeline.

A *piano roll* here is a NumPy array of shape ``(frames, 88)`` holding 0/1
(``uint8``); column ``k`` is MIDI note ``21 + k`` (A0 .. C8). Every loader
returns ``uint8`` rolls. A *data set* is a dict
``{"train": [rolls], "valid": [rolls], "test": [rolls]}``.

Sources:

* :func:`load_mat` -- the ``.mat`` files of the Boulanger-Lewandowski et al.
  (2012) benchmark as redistributed with the TCN code (``JSB_Chorales.mat``,
  ``Nottingham.mat``, ``MuseData.mat``, ``Piano_midi.mat``).
* :func:`load_pickle` -- the original Boulanger-Lewandowski ``.pickle`` files,
  read with a restricted unpickler that cannot run code.
* :func:`load_midi_dir` -- a folder of MIDI files (needs ``pretty_midi``).
* :func:`load_bach_chorales` -- the Bach chorales bundled with ``music21``
  (works offline), cached as an ``.npz``.
* :func:`load_music` -- one string (``"bach"``, ``"jsb"``, ``"nottingham"``, a
  path) to a data set; what an application's ``--data`` option calls.

:func:`piano_roll_dataset` turns a list of rolls into a ``tf.data.Dataset`` of
``(inputs, targets, sample_weight)`` for next-frame prediction, and
:func:`rolls_to_midi` / :func:`midi_to_roll` write and read MIDI files.

Every problem with a data file raises :class:`MusicDataError` (a
``ValueError``) whose message starts with the file's path. Bad *arguments*
(a negative batch size, say) raise ``ValueError``/``TypeError``; a missing
optional dependency raises ``ImportError`` naming the package to install.
Skipped material (empty pieces, out-of-range MIDI notes, unreadable MIDI
files) is reported through the ``logging`` module, logger
``keras_deeprnn.data.music``.

Optional dependencies: ``scipy`` (``.mat``), ``pretty_midi`` (MIDI),
``music21`` (Bach chorales), ``tensorflow`` (:func:`piano_roll_dataset`).
Each is imported only by the functions that need it.

Example:

>>> from keras_deeprnn.data import load_music, piano_roll_dataset
>>> data = load_music("jsb")                      # doctest: +SKIP
>>> [len(data[s]) for s in ("train", "valid", "test")]  # doctest: +SKIP
[229, 76, 77]
>>> ds = piano_roll_dataset(data["train"], batch_size=16, shuffle=True)  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import logging
import math
import os
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "MusicDataError",
    "NUM_KEYS",
    "LOWEST_NOTE",
    "HIGHEST_NOTE",
    "SPLITS",
    "load_mat",
    "load_pickle",
    "load_midi_dir",
    "load_bach_chorales",
    "load_music",
    "piano_roll_dataset",
    "rolls_to_midi",
    "midi_to_roll",
    "frame_count",
]

logger = logging.getLogger(__name__)

#: Number of piano keys, i.e. columns of a piano roll.
NUM_KEYS = 88
#: MIDI note number of column 0 (A0).
LOWEST_NOTE = 21
#: MIDI note number of column 87 (C8).
HIGHEST_NOTE = LOWEST_NOTE + NUM_KEYS - 1
#: The keys of a data set dict, in order.
SPLITS = ("train", "valid", "test")
#: Default train/valid/test fractions of the loaders that make their own split
#: (about the 229/76/77 proportions of the JSB Chorales benchmark).
DEFAULT_SPLIT = (0.6, 0.2, 0.2)

_MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}

#: The names of :func:`load_music` for the registered benchmarks
#: (:mod:`keras_deeprnn.data.registry`), and their aliases.
_DATASET_ALIASES = {
    "jsb": "jsb",
    "jsb_chorales": "jsb",
    "jsb-chorales": "jsb",
    "nottingham": "nottingham",
    "nott": "nottingham",
    "musedata": "musedata",
    "muse": "musedata",
    "piano-midi": "piano-midi",
    "piano_midi": "piano-midi",
    "pianomidi": "piano-midi",
    "piano-midi.de": "piano-midi",
}

_MIDI_SUFFIXES = (".mid", ".midi")

#: Bump when the processing of :func:`load_bach_chorales` changes: older
#: cache files are then ignored and rebuilt.
BACH_CACHE_VERSION = 1


class MusicDataError(ValueError):
    """A music data file is missing, unreadable or not in the expected layout.

    The message starts with the path of the file and says what is wrong with
    it (and, where it applies, which piece, frame or note).
    """


# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------


def _require(module, extra="music"):
    """Import an optional dependency or raise ImportError saying how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - depends on the environment
        package = {"scipy.io": "scipy"}.get(module, module)
        raise ImportError(
            f"keras_deeprnn.data.music needs the `{package}` package for this; "
            f"install it with `pip install {package}` or "
            f"`pip install keras-deeprnn[{extra}]`"
        ) from err


def _check_split(split):
    if len(split) != 3:
        raise ValueError(f"split must be three fractions (train, valid, test); got {split!r}")
    split = tuple(float(f) for f in split)
    if any(f < 0 for f in split) or not math.isclose(sum(split), 1.0, abs_tol=1e-6):
        raise ValueError(f"split fractions must be >= 0 and sum to 1; got {split!r}")
    return split


def _split_indices(names, split, seed):
    """Deterministic split of ``range(len(names))`` into train/valid/test lists.

    The items are ranked by the SHA-256 digest of ``f"{seed}:{name}"`` (the
    same on every machine and with every NumPy version); the first
    ``round(n * valid)`` go to valid, the next ``round(n * test)`` to test and
    the rest to train; when ``n >= 3`` each split with a non-zero fraction
    gets at least one item. Each list is in increasing order (the caller's
    order, e.g. sorted file names).
    """
    split = _check_split(split)
    n = len(names)
    n_valid = int(round(n * split[1]))
    n_test = int(round(n * split[2]))
    if n >= 3:
        n_valid = max(n_valid, 1 if split[1] > 0 else 0)
        n_test = max(n_test, 1 if split[2] > 0 else 0)
    while n_valid + n_test > n:  # only for tiny n
        if n_test >= n_valid and n_test > 0:
            n_test -= 1
        else:
            n_valid -= 1
    perm = sorted(
        range(n), key=lambda i: (hashlib.sha256(f"{seed}:{names[i]}".encode()).digest(), i)
    )
    valid = sorted(perm[:n_valid])
    test = sorted(perm[n_valid : n_valid + n_test])
    train = sorted(perm[n_valid + n_test :])
    return {"train": train, "valid": valid, "test": test}


def _validate_roll(array, where):
    """Check one piece; return it as uint8, or None (with a warning) if empty.

    ``where`` names the file and piece in messages.
    """
    arr = np.asarray(array)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise MusicDataError(
            f"{where}: expected a numeric (frames, {NUM_KEYS}) "
            f"piano roll, got an array of dtype {arr.dtype}"
        )
    if arr.size == 0:
        logger.warning("%s: empty piece (0 frames), skipped", where)
        return None
    if arr.ndim != 2 or arr.shape[1] != NUM_KEYS:
        hint = " (transposed?)" if arr.ndim == 2 and arr.shape[0] == NUM_KEYS else ""
        raise MusicDataError(
            f"{where}: piano roll has shape {arr.shape}, expected (frames, {NUM_KEYS}){hint}"
        )
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        frame, col = (int(i) for i in np.argwhere(bad)[0])
        value = arr[frame, col].item()
        raise MusicDataError(
            f"{where}: piano roll is not binary: value {value!r} at frame {frame}, "
            f"column {col} ({int(bad.sum())} non-0/1 values in all)"
        )
    return arr.astype(np.uint8)


def _check_rolls_arg(rolls, name="rolls"):
    if isinstance(rolls, np.ndarray) and rolls.dtype != object:
        if rolls.ndim == 2:
            raise TypeError(
                f"{name} must be a list of piano rolls, got a single "
                f"array of shape {rolls.shape}; wrap it in a list"
            )
    out = []
    for i, roll in enumerate(rolls):
        arr = np.asarray(roll)
        if arr.ndim != 2 or arr.shape[1] != NUM_KEYS:
            raise ValueError(f"{name}[{i}] has shape {arr.shape}, expected (frames, {NUM_KEYS})")
        out.append(arr)
    return out


# ----------------------------------------------------------------------------
# .mat
# ----------------------------------------------------------------------------


def load_mat(path):
    """Load a piano-roll data set from a MATLAB v5 ``.mat`` file.

    The file holds the keys ``traindata``, ``validdata`` and ``testdata``, each
    a cell array (any shape, usually ``1 x N``) of ``(frames x 88)`` binary
    matrices -- the layout of ``JSB_Chorales.mat`` and ``Nottingham.mat``.
    Pieces with 0 frames are skipped with a logged warning.

    Args:
        path: path of the ``.mat`` file (str or path-like).

    Returns:
        dict ``{"train": [...], "valid": [...], "test": [...]}`` of ``uint8``
        arrays of shape ``(frames, 88)``, in the file's order.

    Raises:
        MusicDataError: the file is missing, corrupt or truncated, lacks one of
            the three keys, a key is not a cell array, or a piece is not
            ``(frames, 88)`` or holds values other than 0 and 1. The message
            names the file (and the key and piece).
        ImportError: scipy is not installed.

    Example:
        >>> data = load_mat("JSB_Chorales.mat")  # doctest: +SKIP
        >>> len(data["train"]), data["train"][0].shape  # doctest: +SKIP
        (229, (129, 88))
    """
    _require("scipy.io")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MusicDataError(f"{path}: no such file")
    return _read_mat_in_child(path)


def _read_mat_in_child(path):
    """`_read_mat` in a child process: scipy's MAT reader crashes the
    process (a segmentation fault) on some damaged files, which must end in
    a `MusicDataError` instead. The child loads this module alone (NumPy and
    scipy, no TensorFlow) and hands the pieces back in an ``.npz`` file,
    read without pickle; its warnings are logged here."""
    import signal
    import subprocess
    import sys

    child = (
        "import importlib.util, sys; "
        "spec = importlib.util.spec_from_file_location('_mat_reader', sys.argv[1]); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "module._read_mat_to(sys.argv[2], sys.argv[3])"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "pieces")
        try:
            proc = subprocess.run(
                [sys.executable, "-c", child, __file__, path, out],
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            raise MusicDataError(
                f"{path}: not a readable MATLAB .mat file: reading it took over 10 minutes"
            ) from None
        if proc.returncode < 0:
            raise MusicDataError(
                f"{path}: not a readable MATLAB .mat file (corrupt or truncated?): scipy's "
                f"reader crashed on it ({signal.Signals(-proc.returncode).name})"
            )
        if proc.returncode:
            raise MusicDataError(
                f"{path}: reading the .mat file failed: {proc.stderr.strip().splitlines()[-1:]}"
            )
        with open(out + ".json", encoding="utf-8") as f:
            report = json.load(f)
        for message in report["warnings"]:
            logger.warning("%s", message)
        if report["error"]:
            raise MusicDataError(report["error"])
        data = {split: [None] * count for split, count in report["counts"].items()}
        with np.load(out + ".npz", allow_pickle=False) as pieces:
            for key in pieces.files:
                split, i = key.split("/")
                data[split][int(i)] = pieces[key]
        return data


def _read_mat_to(path, out):
    """The child's side of `_read_mat_in_child`: `_read_mat(path)` into
    ``out.npz`` (one array per piece) and ``out.json`` (counts, warnings,
    error)."""
    warnings = []

    class Collect(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    logger.addHandler(Collect(logging.WARNING))
    logger.propagate = False
    report = {"warnings": warnings, "error": None, "counts": {}}
    try:
        data = _read_mat(path)
        report["counts"] = {split: len(rolls) for split, rolls in data.items()}
        np.savez(
            out + ".npz",
            **{
                f"{split}/{i}": roll
                for split, rolls in data.items()
                for i, roll in enumerate(rolls)
            },
        )
    except MusicDataError as error:
        report["error"] = str(error)
    with open(out + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f)


def _read_mat(path):
    """The pieces of a ``.mat`` file, checked (see `load_mat`)."""
    sio = _require("scipy.io")
    try:
        mat = sio.loadmat(path)
    except Exception as err:  # scipy raises many types on bad input
        raise MusicDataError(
            f"{path}: not a readable MATLAB .mat file (corrupt or "
            f"truncated?): {type(err).__name__}: {err}"
        ) from err
    data = {}
    for split, key in _MAT_KEYS.items():
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise MusicDataError(
                f"{path}: missing key {key!r} (keys found: {found}); "
                f"expected {sorted(_MAT_KEYS.values())}"
            )
        cell = mat[key]
        if not isinstance(cell, np.ndarray) or cell.dtype != object:
            raise MusicDataError(
                f"{path}: {key!r} is not a cell array of piano rolls (got "
                f"{type(cell).__name__} of dtype {getattr(cell, 'dtype', '?')}, shape "
                f"{getattr(cell, 'shape', '?')})"
            )
        rolls = []
        for i, piece in enumerate(cell.ravel(order="F")):
            roll = _validate_roll(piece, f"{path}: {key} piece {i}")
            if roll is not None:
                rolls.append(roll)
        data[split] = rolls
    return data


# ----------------------------------------------------------------------------
# .pickle
# ----------------------------------------------------------------------------

_PICKLE_ALLOWED = frozenset(
    (module, name)
    for module in ("builtins", "__builtin__")
    for name in ("set", "frozenset", "list", "tuple", "dict", "int", "float")
)


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can build builtin containers and numbers, nothing else.

    Any other global (a function, a class, a NumPy type) is refused before it
    is looked up, so a malicious pickle cannot call anything.
    """

    def __init__(self, file, source):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        if (module, name) in _PICKLE_ALLOWED:
            return getattr(builtins, name)
        raise MusicDataError(
            f"{self._source}: refusing to load {module}.{name}: a music pickle may "
            f"hold only builtin containers and numbers"
        )

    def persistent_load(self, pid):
        raise MusicDataError(f"{self._source}: refusing a persistent id in the pickle")


def _note_number(note, where):
    if isinstance(note, bool) or not isinstance(note, (int, float)):
        raise MusicDataError(f"{where}: note {note!r} is not a MIDI note number")
    if isinstance(note, float) and not note.is_integer():
        raise MusicDataError(f"{where}: note {note!r} is not a whole MIDI note number")
    note = int(note)
    if not LOWEST_NOTE <= note <= HIGHEST_NOTE:
        raise MusicDataError(
            f"{where}: note {note} outside the piano range {LOWEST_NOTE}..{HIGHEST_NOTE}"
        )
    return note


def load_pickle(path):
    """Load a data set from an original Boulanger-Lewandowski ``.pickle`` file.

    The pickle holds a dict with keys ``"train"``, ``"valid"``, ``"test"``; each
    value is a list of pieces, each piece a list of frames, each frame a list,
    tuple or set of the MIDI note numbers sounding (21..108; whole floats such
    as ``60.0`` are accepted). These are Python 2 pickles: they are read with
    ``encoding="latin1"``.

    A pickle is a program. This loader uses a restricted unpickler that admits
    only the builtin types ``set``, ``frozenset``, ``list``, ``tuple``,
    ``dict``, ``int`` and ``float`` (module ``builtins`` or ``__builtin__``) and
    refuses any other global before importing it, so nothing in the file is
    executed. NumPy scalars or arrays inside the pickle are refused too.

    Notes outside 21..108 are an error (not skipped), like non-binary values
    in :func:`load_mat`. Pieces with 0 frames are skipped with a logged warning;
    frames with no note (silence) are kept.

    Args:
        path: path of the pickle file.

    Returns:
        dict ``{"train", "valid", "test"}`` of lists of ``uint8`` arrays of shape
        ``(frames, 88)``, in the file's order.

    Raises:
        MusicDataError: missing, truncated or corrupt file; a refused global
            (the message names ``module.name`` and the file); not a dict with
            the three keys; a piece or frame of the wrong type; a note that is
            not a whole number in 21..108 (message names file, split, piece,
            frame and note).

    Example:
        >>> data = load_pickle("JSB Chorales.pickle")  # doctest: +SKIP
        >>> data["train"][0].shape  # doctest: +SKIP
        (129, 88)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MusicDataError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            raw = _RestrictedUnpickler(f, path).load()
    except MusicDataError:
        raise
    except Exception as err:  # UnpicklingError, EOFError, ValueError, ...
        raise MusicDataError(
            f"{path}: not a readable pickle (corrupt or truncated?): {type(err).__name__}: {err}"
        ) from err
    if not isinstance(raw, dict):
        raise MusicDataError(
            f"{path}: expected a dict with keys {list(SPLITS)}, got {type(raw).__name__}"
        )
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        raise MusicDataError(f"{path}: missing key(s) {missing}; found {sorted(map(repr, raw))}")
    data = {}
    for split in SPLITS:
        pieces = raw[split]
        if not isinstance(pieces, (list, tuple)):
            raise MusicDataError(
                f"{path}: {split!r} is a {type(pieces).__name__}, expected a list of pieces"
            )
        rolls = []
        for i, piece in enumerate(pieces):
            where = f"{path}: {split} piece {i}"
            if not isinstance(piece, (list, tuple)):
                raise MusicDataError(
                    f"{where}: is a {type(piece).__name__}, expected a list of frames"
                )
            if len(piece) == 0:
                logger.warning("%s: empty piece (0 frames), skipped", where)
                continue
            roll = np.zeros((len(piece), NUM_KEYS), np.uint8)
            for t, frame in enumerate(piece):
                if not isinstance(frame, (list, tuple, set, frozenset)):
                    raise MusicDataError(
                        f"{where}, frame {t}: is a "
                        f"{type(frame).__name__}, expected a list "
                        f"of MIDI note numbers"
                    )
                for note in frame:
                    roll[t, _note_number(note, f"{where}, frame {t}") - LOWEST_NOTE] = 1
            rolls.append(roll)
        data[split] = rolls
    return data


# ----------------------------------------------------------------------------
# MIDI
# ----------------------------------------------------------------------------


def _grid_args(steps_per_quarter, fs):
    if fs is not None and steps_per_quarter is not None:
        raise ValueError("give either steps_per_quarter or fs, not both")
    if fs is not None:
        if not fs > 0:
            raise ValueError(f"fs must be > 0, got {fs!r}")
        return None, float(fs)
    steps_per_quarter = 1 if steps_per_quarter is None else steps_per_quarter
    if not steps_per_quarter > 0:
        raise ValueError(f"steps_per_quarter must be > 0, got {steps_per_quarter!r}")
    return float(steps_per_quarter), None


def _to_grid(pm, times, steps_per_quarter, fs):
    """Seconds -> (fractional) frame positions on the chosen grid."""
    times = np.asarray(times, dtype=np.float64)
    if fs is not None:
        return times * fs
    # Quarter-note grid: ticks / resolution = quarter notes, following every
    # tempo change of the file.
    ticks = np.array([pm.time_to_tick(t) for t in times.ravel()], dtype=np.float64)
    return (ticks / pm.resolution * steps_per_quarter).reshape(times.shape)


def _pretty_midi_to_roll(pm, source, steps_per_quarter, fs, include_drums):
    """Quantise a PrettyMIDI object; return (roll, number of notes dropped)."""
    starts, ends, pitches = [], [], []
    for inst in pm.instruments:
        if inst.is_drum and not include_drums:
            continue
        for note in inst.notes:
            starts.append(note.start)
            ends.append(note.end)
            pitches.append(note.pitch)
    pitches = np.asarray(pitches, dtype=np.int64)
    end_frame = int(np.floor(_to_grid(pm, [pm.get_end_time()], steps_per_quarter, fs)[0] + 0.5))
    if len(pitches) == 0:
        return np.zeros((max(end_frame, 0), NUM_KEYS), np.uint8), 0
    # Onsets and offsets are rounded to the nearest grid point; a note shorter
    # than half a step still gets one frame.
    on = np.floor(_to_grid(pm, starts, steps_per_quarter, fs) + 0.5).astype(np.int64)
    off = np.floor(_to_grid(pm, ends, steps_per_quarter, fs) + 0.5).astype(np.int64)
    on = np.maximum(on, 0)
    off = np.maximum(off, on + 1)
    in_range = (pitches >= LOWEST_NOTE) & (pitches <= HIGHEST_NOTE)
    dropped = int((~in_range).sum())
    if dropped:
        outside = sorted(set(pitches[~in_range].tolist()))
        logger.warning(
            "%s: %d note(s) outside the piano range %d..%d dropped (pitches %s)",
            source,
            dropped,
            LOWEST_NOTE,
            HIGHEST_NOTE,
            outside,
        )
    n_frames = max(end_frame, int(off.max()))
    roll = np.zeros((n_frames, NUM_KEYS), np.uint8)
    for a, b, p in zip(on[in_range], off[in_range], pitches[in_range]):
        roll[a:b, p - LOWEST_NOTE] = 1
    return roll, dropped


def midi_to_roll(path, steps_per_quarter=None, fs=None, include_drums=False):
    """Read one MIDI file into a piano roll.

    The grid is either ``steps_per_quarter`` frames per quarter note (default
    1; follows the file's tempo changes) or ``fs`` frames per second. Note
    onsets and offsets are rounded to the nearest grid point; a note shorter
    than that still gets one frame. Consecutive frames of the same key merge,
    so a repeated note cannot be told from a held one. The roll ends at the
    file's last event (notes, or meta events such as the end marker written by
    :func:`rolls_to_midi`), so trailing silence survives a round trip.
    Notes outside 21..108 are dropped with a logged warning; drum tracks are
    ignored unless ``include_drums``.

    Args:
        path: a ``.mid``/``.midi`` file.
        steps_per_quarter: frames per quarter note (default 1 when ``fs`` is
            not given).
        fs: frames per second (instead of ``steps_per_quarter``).
        include_drums: also read drum (channel 10) tracks.

    Returns:
        ``uint8`` array of shape ``(frames, 88)`` (possibly all zeros).

    Raises:
        MusicDataError: missing or unreadable MIDI file (message names it).
        ValueError: both or invalid grid arguments.
        ImportError: pretty_midi is not installed.

    Example:
        >>> roll = midi_to_roll("song.mid", steps_per_quarter=4)  # doctest: +SKIP
    """
    steps_per_quarter, fs = _grid_args(steps_per_quarter, fs)
    pm = _read_midi(path)
    return _pretty_midi_to_roll(pm, os.fspath(path), steps_per_quarter, fs, include_drums)[0]


def _read_midi(path):
    pretty_midi = _require("pretty_midi")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MusicDataError(f"{path}: no such file")
    try:
        return pretty_midi.PrettyMIDI(path)
    except Exception as err:  # mido/pretty_midi raise many types
        raise MusicDataError(
            f"{path}: not a readable MIDI file: {type(err).__name__}: {err}"
        ) from err


def load_midi_dir(
    path,
    steps_per_quarter=None,
    fs=None,
    split=DEFAULT_SPLIT,
    seed=0,
    recursive=False,
    include_drums=False,
):
    """Load every MIDI file of a folder as a train/valid/test data set.

    Files ending in ``.mid`` or ``.midi`` (any case) are taken, in the folder
    only or, with ``recursive``, in its subfolders too. Each is read with
    :func:`midi_to_roll` on the chosen grid (``steps_per_quarter`` frames per
    quarter note, default 1, or ``fs`` frames per second).

    The split is deterministic: the files, named by their path relative to
    ``path``, are ranked by the SHA-256 digest of ``f"{seed}:{name}"``; the
    first ``round(n * split[1])`` go to valid, the next ``round(n * split[2])``
    to test and the rest to train (with at least one each in valid and test
    when there are 3 or more files), and each split is in sorted name order.
    It does not depend on the machine or the NumPy version. The split is
    made on the file list *before* reading, so an unreadable file does not
    move the others from one split to another.

    Unreadable (corrupt) files are skipped with a logged warning naming them;
    so are files with no note in the piano range. Notes outside 21..108 are
    dropped with a warning.

    Args:
        path: the folder.
        steps_per_quarter: frames per quarter note (default 1 unless ``fs``).
        fs: frames per second, instead of ``steps_per_quarter``.
        split: (train, valid, test) fractions summing to 1.
        seed: seed of the split permutation.
        recursive: also look in subfolders.
        include_drums: also read drum tracks.

    Returns:
        dict ``{"train", "valid", "test"}`` of lists of ``uint8`` ``(frames, 88)``
        arrays.

    Raises:
        MusicDataError: ``path`` is not a folder, holds no MIDI file, or none of
            its MIDI files could be read.
        ValueError: invalid grid or split arguments.
        ImportError: pretty_midi is not installed.

    Example:
        >>> data = load_midi_dir("my_midi/", steps_per_quarter=2)  # doctest: +SKIP
    """
    steps_per_quarter, fs = _grid_args(steps_per_quarter, fs)
    _check_split(split)
    folder = Path(path)
    if not folder.is_dir():
        raise MusicDataError(f"{folder}: not a folder")
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(
        (p for p in pattern if p.is_file() and p.suffix.lower() in _MIDI_SUFFIXES),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise MusicDataError(
            f"{folder}: no MIDI file (*.mid, *.midi) in the folder"
            + (" or its subfolders" if recursive else "")
        )
    _require("pretty_midi")
    indices = _split_indices([f.relative_to(folder).as_posix() for f in files], split, seed)
    data = {s: [] for s in SPLITS}
    n_read = 0
    for s in SPLITS:
        for i in indices[s]:
            try:
                pm = _read_midi(files[i])
            except MusicDataError as err:
                logger.warning("%s; skipped", err)
                continue
            roll, _ = _pretty_midi_to_roll(pm, str(files[i]), steps_per_quarter, fs, include_drums)
            n_read += 1
            if not roll.any():
                logger.warning("%s: no note in the piano range, skipped", files[i])
                continue
            data[s].append(roll)
    if not any(data.values()):
        raise MusicDataError(
            f"{folder}: none of its {len(files)} MIDI file(s) "
            f"gave a usable piece ({n_read} readable)"
        )
    return data


def rolls_to_midi(
    roll, path, steps_per_second=None, *, tempo=120.0, steps_per_quarter=1, velocity=100, program=0
):
    """Write one piano roll as a single-instrument MIDI file.

    Each run of consecutive 1s in a column becomes one note. A frame lasts
    ``1 / steps_per_second`` seconds if ``steps_per_second`` is given, else
    ``60 / (tempo * steps_per_quarter)`` seconds (``steps_per_quarter`` frames
    per quarter note at ``tempo`` quarter notes per minute). The file's tempo is
    ``tempo`` either way, and a text event ``"end"`` marks the end of the last
    frame so that trailing silence is kept: :func:`midi_to_roll` with the same
    grid (``fs=steps_per_second`` or the same ``steps_per_quarter``) gives the
    roll back, frame count included.

    Args:
        roll: array ``(frames, 88)`` of 0/1 (bool, int or float).
        path: output ``.mid`` path (folders are created).
        steps_per_second: frames per second; overrides tempo/steps_per_quarter
            for the frame duration.
        tempo: quarter notes per minute written to the file.
        steps_per_quarter: frames per quarter note (when no steps_per_second).
        velocity: MIDI velocity of every note (1..127).
        program: General MIDI program (0 = acoustic grand piano).

    Returns:
        the ``pretty_midi.PrettyMIDI`` object written.

    Raises:
        ValueError: the roll is not ``(frames, 88)`` of 0/1, or a bad argument.
        ImportError: pretty_midi is not installed.

    Example:
        >>> import numpy as np
        >>> roll = np.zeros((8, 88), np.uint8); roll[:4, 39] = 1   # middle C
        >>> rolls_to_midi(roll, "/tmp/c.mid", steps_per_second=4)  # doctest: +SKIP
    """
    pretty_midi = _require("pretty_midi")
    arr = np.asarray(roll)
    if arr.ndim != 2 or arr.shape[1] != NUM_KEYS:
        raise ValueError(f"roll has shape {arr.shape}, expected (frames, {NUM_KEYS})")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ValueError("roll must hold only 0 and 1 (threshold or sample probabilities first)")
    if not tempo > 0 or not steps_per_quarter > 0:
        raise ValueError("tempo and steps_per_quarter must be > 0")
    if steps_per_second is not None and not steps_per_second > 0:
        raise ValueError(f"steps_per_second must be > 0, got {steps_per_second!r}")
    if not 1 <= int(velocity) <= 127:
        raise ValueError(f"velocity must be in 1..127, got {velocity!r}")
    step = (
        1.0 / steps_per_second
        if steps_per_second is not None
        else 60.0 / (tempo * steps_per_quarter)
    )
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    inst = pretty_midi.Instrument(program=int(program))
    on = arr.astype(bool)
    padded = np.zeros((on.shape[0] + 2, NUM_KEYS), bool)
    padded[1:-1] = on
    diff = np.diff(padded.astype(np.int8), axis=0)
    for key in range(NUM_KEYS):
        starts = np.flatnonzero(diff[:, key] == 1)
        ends = np.flatnonzero(diff[:, key] == -1)
        for a, b in zip(starts, ends):
            inst.notes.append(
                pretty_midi.Note(
                    velocity=int(velocity), pitch=LOWEST_NOTE + key, start=a * step, end=b * step
                )
            )
    inst.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(inst)
    pm.text_events.append(pretty_midi.Text("end", arr.shape[0] * step))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return pm


# ----------------------------------------------------------------------------
# Bach chorales from the music21 corpus
# ----------------------------------------------------------------------------

_BACH_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")


def _default_cache_dir():
    return Path(os.path.expanduser("~")) / ".cache" / "keras_deeprnn"


def _parse_progress(files, cache_file):
    """A progress bar over the chorale files, after a line saying what it is."""
    from keras.utils import Progbar

    kept = f"; kept in {cache_file.parent} for the next runs" if cache_file else ""
    print(f"Parsing music21's {files} Bach chorale files into piano rolls (once{kept})")
    # Without a terminal, one line at the end instead of a redrawn bar.
    return Progbar(files, unit_name="file", verbose=1 if sys.stdout.isatty() else 2)


def _bach_paths(corpus):
    """Score files of music21's Bach corpus, sorted by name.

    The roman-numeral analyses (``.rntxt``) are left out, and a score that is
    also there as ``.mxl`` is taken in that format only.
    """
    paths = [Path(p) for p in corpus.getComposer("bach")]
    paths = [p for p in paths if p.suffix.lower() in _BACH_SUFFIXES]
    # A few chorales exist both as .mxl and in another format: keep the .mxl.
    mxl_stems = {p.stem for p in paths if p.suffix.lower() == ".mxl"}
    paths = [p for p in paths if p.suffix.lower() == ".mxl" or p.stem not in mxl_stems]
    return sorted(paths, key=lambda p: p.name)


def _chorale_roll(score, transpose):
    """Sample a four-part score at every quarter note; optionally move it to C.

    A key sounds in frame k if a note of that pitch sounds at time
    ``phase + k`` quarter notes, where ``phase`` (0 unless the piece starts
    with an upbeat of a fraction of a quarter) aligns the frames with the
    beats of the bar: shorter notes between beats (passing tones) are not
    sampled, as in the JSB Chorales benchmark.
    """
    phase = 0.0
    first_part = score.parts[0]
    for measure in first_part.getElementsByClass("Measure"):
        if measure.number == 1:
            phase = float(measure.getOffsetBySite(first_part)) % 1.0
            break
    total = float(score.highestTime)
    n_frames = int(math.ceil(total - phase - 1e-9))
    if n_frames <= 0:
        return None
    roll = np.zeros((n_frames, 128), np.uint8)
    for element in score.flatten().notes:
        start = float(element.offset)
        end = start + float(element.quarterLength)
        if end <= start:  # grace notes
            continue
        first = max(int(math.ceil(start - phase - 1e-9)), 0)
        last = min(int(math.ceil(end - phase - 1e-9)), n_frames)  # exclusive
        if last <= first:
            continue
        for pitch in element.pitches:
            roll[first:last, pitch.midi] = 1
    shift = 0
    if transpose:
        key = score.analyze("key")
        shift = (-key.tonic.pitchClass) % 12
        if shift > 6:
            shift -= 12
        # Pitches are 0..127 and |shift| <= 6, so a pitch that wraps around
        # lands in 0..5 or 122..127, outside the piano: the caller rejects it.
        roll = np.roll(roll, shift, axis=1) if shift else roll
    return roll, shift


def _bach_meta(limit, split, seed, transpose):
    try:
        from importlib.metadata import version

        m21 = version("music21")
    except Exception:  # pragma: no cover
        m21 = "unknown"
    return {
        "version": BACH_CACHE_VERSION,
        "music21": m21,
        "limit": limit,
        "split": list(_check_split(split)),
        "seed": int(seed),
        "transpose": bool(transpose),
    }


def _read_bach_cache(file, meta):
    """Return the data set stored in ``file`` if it is valid for ``meta``, else None."""
    try:
        with np.load(file, allow_pickle=False) as z:
            stored = json.loads(str(z["meta"]))
            if stored != meta:
                logger.info("%s: cache made with other settings %s, rebuilding", file, stored)
                return None
            values = z["values"]
            lengths = z["lengths"].astype(np.int64)
            splits = z["splits"].astype(np.int64)
        if (
            values.ndim != 2
            or values.shape[1] != NUM_KEYS
            or values.dtype != np.uint8
            or lengths.ndim != 1
            or splits.shape != lengths.shape
            or lengths.sum() != values.shape[0]
            or (lengths <= 0).any()
            or not np.isin(splits, (0, 1, 2)).all()
            or values.max(initial=0) > 1
        ):
            raise ValueError("inconsistent arrays")
    except Exception as err:  # truncated zip, missing member, bad JSON, ...
        logger.warning(
            "%s: unusable cache file (%s: %s), rebuilding", file, type(err).__name__, err
        )
        return None
    pieces = np.split(values, np.cumsum(lengths)[:-1])
    data = {s: [] for s in SPLITS}
    for piece, s in zip(pieces, splits):
        data[SPLITS[s]].append(piece)
    return data


def _write_bach_cache(file, meta, data):
    rolls = [r for s in SPLITS for r in data[s]]
    splits = np.array([i for i, s in enumerate(SPLITS) for _ in data[s]], np.int8)
    lengths = np.array([len(r) for r in rolls], np.int64)
    values = np.concatenate(rolls) if rolls else np.zeros((0, NUM_KEYS), np.uint8)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=file.name + ".", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                values=values,
                lengths=lengths,
                splits=splits,
                meta=np.array(json.dumps(meta, sort_keys=True)),
            )
        os.replace(tmp, file)  # atomic: readers never see half a file
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_bach_chorales(
    cache_dir=None,
    *,
    limit=None,
    split=DEFAULT_SPLIT,
    seed=0,
    transpose=True,
    use_cache=True,
    verbose=0,
):
    """The Bach chorales bundled with music21, as a piano-roll data set (offline).

    Reads the score files of ``music21.corpus.getComposer("bach")`` in sorted
    file-name order (MusicXML and Humdrum; the roman-numeral analyses are
    left out), keeps the *four-part* chorales (scores of exactly four parts
    with notes; those with extra instrumental parts are skipped), and makes one
    frame per quarter note: a key is on in a frame when a note of that pitch
    sounds on the beat, so passing notes between beats are not kept -- the
    convention of the JSB Chorales benchmark. With ``transpose`` each chorale is
    moved to C major or C minor, as Boulanger-Lewandowski et al. (2012) did:
    music21's key analysis (``score.analyze("key")``) gives the tonic, and
    the chorale is shifted by the smallest interval (-5..+6 semitones) that
    takes it to C. Chorales whose piano roll is identical to an earlier one
    (the corpus holds a few duplicates) are kept once, so none leaks from
    train into test.

    The split is deterministic: the kept chorales are ranked by the SHA-256
    digest of ``f"{seed}:{file name}"``; the first ``round(n * split[1])`` go to
    valid, the next ``round(n * split[2])`` to test and the rest to train, each
    split in file-name order. With ``limit`` only the first ``limit`` kept
    chorales (in file-name order) are used, for tests and quick runs.

    Parsing all chorales takes about a minute, so the result is cached in
    ``cache_dir`` (default ``~/.cache/keras_deeprnn/``) as an ``.npz`` file
    whose name and contents record the cache version, the music21 version and
    every argument; a later call with the same arguments reads it (well under a
    second). A cache file that is corrupt, truncated or made by other settings
    is rebuilt, with a logged warning, not an error. The file is written
    atomically.

    Args:
        cache_dir: folder for the cache file (default ``~/.cache/keras_deeprnn``).
        limit: use only the first ``limit`` four-part chorales (``None``: all).
        split: (train, valid, test) fractions summing to 1.
        seed: seed of the split permutation.
        transpose: transpose every chorale to C major / C minor.
        use_cache: read and write the cache (``False``: always parse, write
            nothing).
        verbose: 1 says what it does and shows a progress bar (Keras's
            ``Progbar``) while the files are parsed; 0 is silent.

    Returns:
        dict ``{"train", "valid", "test"}`` of lists of ``uint8`` arrays of shape
        ``(frames, 88)``.

    Raises:
        MusicDataError: music21's corpus holds no Bach chorale (or none is a
            four-part chorale).
        ValueError: ``limit`` < 1 or bad split fractions.
        ImportError: music21 is not installed.

    Example:
        >>> data = load_bach_chorales(limit=10)   # doctest: +SKIP
        >>> sum(len(v) for v in data.values())    # doctest: +SKIP
        10
    """
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    meta = _bach_meta(limit, split, seed, transpose)
    cache_file = None
    if use_cache:
        cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
        cache_file = cache_dir / f"bach_chorales_v{BACH_CACHE_VERSION}_{digest[:12]}.npz"
        if cache_file.exists():
            data = _read_bach_cache(cache_file, meta)
            if data is not None:
                return data

    music21 = _require("music21")
    paths = _bach_paths(music21.corpus)
    if not paths:
        raise MusicDataError(
            "music21 corpus: no Bach chorale file found "
            "(music21.corpus.getComposer('bach') is empty)"
        )
    bar = _parse_progress(len(paths), cache_file) if verbose else None
    rolls, names, seen = [], [], set()
    for done, p in enumerate(paths):
        if bar is not None:
            bar.update(done)
        if limit is not None and len(rolls) >= limit:
            break
        try:
            score = music21.converter.parse(p)
        except Exception as err:  # a bad corpus file should not stop the rest
            logger.warning("%s: music21 could not parse it (%s), skipped", p, err)
            continue
        parts = getattr(score, "parts", None)
        if (
            parts is None
            or len(parts) != 4
            or any(len(part.flatten().notes) == 0 for part in parts)
        ):
            logger.debug("%s: not a four-part chorale, skipped", p)
            continue
        result = _chorale_roll(score, transpose)
        if result is None:
            continue
        full, shift = result
        if full[:, :LOWEST_NOTE].any() or full[:, HIGHEST_NOTE + 1 :].any():
            logger.warning(
                "%s: notes outside the piano range after transposing by %d semitones, skipped",
                p,
                shift,
            )
            continue
        roll = np.ascontiguousarray(full[:, LOWEST_NOTE : HIGHEST_NOTE + 1])
        fingerprint = hashlib.sha1(roll.tobytes() + str(roll.shape).encode()).digest()
        if fingerprint in seen:
            logger.debug("%s: same piano roll as an earlier chorale, skipped", p)
            continue
        seen.add(fingerprint)
        rolls.append(roll)
        names.append(p.name)
    if bar is not None:
        bar.update(bar.target if limit is None else done, finalize=True)
    if not rolls:
        raise MusicDataError("music21 corpus: no four-part Bach chorale found")
    indices = _split_indices(names, split, seed)
    data = {s: [rolls[i] for i in indices[s]] for s in SPLITS}
    if cache_file is not None:
        try:
            _write_bach_cache(cache_file, meta, data)
        except OSError as err:  # a read-only home must not stop training
            logger.warning("%s: could not write the cache (%s)", cache_file, err)
    return data


# ----------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------


def _load_file(path):
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return load_mat(path)
    return load_pickle(path)


def load_music(spec, data_dir=None, verbose=0, **kwargs):
    """Load a data set from a short specification (an app's ``--data`` value).

    Accepted forms, tried in this order:

    * ``"bach"`` -- :func:`load_bach_chorales` (music21's corpus, offline).
    * ``"jsb"``, ``"nottingham"``, ``"musedata"``, ``"piano-midi"`` (any case;
      also ``"jsb_chorales"``, ``"nott"``, ``"piano_midi"``, ...) -- the
      registered ``.mat`` file of that benchmark (:mod:`keras_deeprnn.data.registry`:
      looked up in ``data_dir``, then ``$DEEPRNN_DATA_DIR``, then Keras's
      cache, else downloaded; its SHA-256 checked).
    * a path ending in ``.mat`` -- :func:`load_mat`; ``.pickle`` or ``.pkl`` --
      :func:`load_pickle`.
    * a path to a folder -- :func:`load_midi_dir`.

    A name wins over a folder of the same name: write ``./bach`` for the folder.

    Args:
        spec: the specification (str or path-like).
        data_dir: a folder searched first for the benchmark files, for the names.
        verbose: for ``"bach"``, 1 shows a progress bar while the chorales
            are parsed (the first time; later runs read the cache).
        **kwargs: passed on to the loader chosen (e.g. ``limit=`` for
            ``"bach"``, ``steps_per_quarter=`` for a MIDI folder); the file
            loaders take none.

    Returns:
        dict ``{"train", "valid", "test"}`` of lists of ``uint8`` ``(frames, 88)``
        arrays.

    Raises:
        MusicDataError: the file or folder is missing or unreadable, or
            ``spec`` is none of the accepted forms (message lists them).
        keras_deeprnn.data.registry.DataError: a named benchmark file is not
            here and cannot be downloaded, or differs from the registered one.
        TypeError: ``kwargs`` given to a loader that takes none.

    Example:
        >>> data = load_music("nottingham")                     # doctest: +SKIP
        >>> data = load_music("bach", limit=20)                 # doctest: +SKIP
    """
    text = os.fspath(spec)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    key = text.strip().lower()
    if key == "bach":
        return load_bach_chorales(verbose=verbose, **kwargs)
    if key in _DATASET_ALIASES:
        if kwargs:
            raise TypeError(f"load_music({spec!r}) takes no loader arguments, got {sorted(kwargs)}")
        # Imported here: the .mat reader's child process loads this module alone.
        from keras_deeprnn.data import registry

        return _load_file(registry.fetch_file(_DATASET_ALIASES[key], data_dir=data_dir))
    path = Path(text).expanduser()
    if path.suffix.lower() in (".mat", ".pickle", ".pkl"):
        if kwargs:
            raise TypeError(f"load_music({spec!r}) takes no loader arguments, got {sorted(kwargs)}")
        if not path.is_file():
            raise MusicDataError(f"{path}: no such file")
        return _load_file(path)
    if path.is_dir():
        return load_midi_dir(path, **kwargs)
    names = ", ".join(repr(n) for n in ("bach", *dict.fromkeys(_DATASET_ALIASES.values())))
    raise MusicDataError(
        f"{text}: not a data set specification; accepted: {names}; a path to a "
        f".mat, .pickle or .pkl file; or a folder of MIDI files"
    )


# ----------------------------------------------------------------------------
# tf.data pipeline
# ----------------------------------------------------------------------------


def _windows(roll, max_length, long_pieces):
    """Cut a piece so that each part has at most ``max_length`` transitions."""
    if max_length is None or len(roll) <= max_length + 1:
        return [roll]
    if long_pieces == "crop":
        return [roll[: max_length + 1]]
    # Consecutive windows overlapping by one frame: every transition
    # (frame t -> t+1) of the piece is in exactly one window.
    out = []
    for start in range(0, len(roll) - 1, max_length):
        out.append(roll[start : start + max_length + 1])
    return out


def _transposed(piece, draw, most):
    """``piece`` (frames, 88) shifted by ``draw`` mapped into the semitones in
    ``[-most, most]`` that keep all its notes on the keyboard."""
    import tensorflow as tf

    keys = tf.reduce_any(piece > 0, axis=0)
    # Lowest and highest key in use (0 and 87 for a silent piece: no shift).
    lowest = tf.argmax(keys, output_type=tf.int64)
    highest = NUM_KEYS - 1 - tf.argmax(keys[::-1], output_type=tf.int64)
    down = tf.minimum(tf.constant(most, tf.int64), lowest)
    up = tf.minimum(tf.constant(most, tf.int64), NUM_KEYS - 1 - highest)
    shift = tf.math.floormod(draw, down + up + 1) - down
    # Only silent keys wrap around the roll's ends.
    return tf.roll(piece, tf.cast(shift, tf.int32), axis=1)


def piano_roll_dataset(
    rolls,
    batch_size,
    shuffle=False,
    seed=0,
    max_length=None,
    drop_remainder=False,
    long_pieces="split",
    transpose=0,
):
    """A ``tf.data.Dataset`` for next-frame prediction on piano rolls.

    Each piece of ``T`` frames gives ``inputs`` = frames ``0 .. T-2`` and
    ``targets`` = frames ``1 .. T-1`` (the targets are the inputs shifted one
    frame ahead), both ``(T-1, 88)`` float32, and ``sample_weight`` = ones of
    length ``T-1``. Batches are padded with zeros to the longest piece in the
    batch; the sample weight is 0 on padding, so with Keras's per-timestep
    sample weights (``model.fit(dataset)``, loss reduced over the last axis)
    padding adds nothing to the loss, and ``sample_weight.sum()`` is the
    number of real target frames. Keras's default loss reduction
    (``"sum_over_batch_size"``) still divides by the padded size; use
    ``reduction="mean_with_sample_weight"`` for a mean over real frames, or
    ``reduction="sum"`` and divide by :func:`frame_count` with
    ``transitions=True`` (and multiply ``binary_crossentropy``, a mean over the
    88 keys, by 88 for the usual NLL summed over keys, in nats per frame).

    With ``max_length``, pieces longer than ``max_length + 1`` frames are
    either split into consecutive windows of ``max_length + 1`` frames that
    overlap by one frame, so every transition is kept exactly once
    (``long_pieces="split"``), or cropped to their first window
    (``"crop"``). Pieces (or trailing windows) of fewer than 2 frames have no
    transition and are dropped, with a logged warning for whole pieces.

    With ``transpose`` = ``K``, each sequence is shifted by a random number of
    semitones in ``[-K, K]`` each time it is drawn (a new draw every epoch,
    the same draws for the same ``seed``), narrowed so that none of its notes
    leaves the 88 keys: data augmentation for training sets, which rarely
    hold every piece in every key. Inputs and targets move together.

    Args:
        rolls: list of ``(frames, 88)`` arrays of 0/1.
        batch_size: pieces per batch.
        shuffle: shuffle the pieces (windows) every epoch.
        seed: shuffle seed; with the same seed, the same order each run.
        max_length: most transitions (time steps) per sequence, or ``None``.
        drop_remainder: drop the last, smaller batch.
        long_pieces: ``"split"`` or ``"crop"`` (only with ``max_length``).
        transpose: most semitones of a random transposition, up or down
            (0: none).

    Returns:
        a prefetched ``tf.data.Dataset`` of ``(inputs, targets, sample_weight)``
        with shapes ``(batch, T, 88)``, ``(batch, T, 88)``, ``(batch, T)``, all
        float32 (``T`` = longest sequence in the batch).

    Raises:
        MusicDataError: no piece has 2 frames or more.
        ValueError: a roll is not ``(frames, 88)``, or a bad argument.
        TypeError: ``rolls`` is a single array instead of a list.

    Example:
        >>> ds = piano_roll_dataset(data["train"], batch_size=32, shuffle=True,
        ...                         max_length=200)          # doctest: +SKIP
        >>> model.fit(ds, epochs=10)                          # doctest: +SKIP
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if max_length is not None and (int(max_length) != max_length or max_length < 1):
        raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
    if long_pieces not in ("split", "crop"):
        raise ValueError(f"long_pieces must be 'split' or 'crop', got {long_pieces!r}")
    if int(transpose) != transpose or not 0 <= transpose < NUM_KEYS:
        raise ValueError(f"transpose must be an integer in [0, {NUM_KEYS}), got {transpose!r}")
    rolls = _check_rolls_arg(rolls)
    pieces = []
    for i, roll in enumerate(rolls):
        if len(roll) < 2:
            logger.warning("piece %d has %d frame(s), fewer than 2: dropped", i, len(roll))
            continue
        pieces.extend(w for w in _windows(roll, max_length, long_pieces) if len(w) >= 2)
    if not pieces:
        raise MusicDataError("piano_roll_dataset: no piece with 2 frames or more")

    import tensorflow as tf

    lengths = np.array([len(p) for p in pieces], np.int64)
    values = np.concatenate([np.asarray(p, np.uint8) for p in pieces])
    ragged = tf.RaggedTensor.from_row_lengths(values, lengths)
    ds = tf.data.Dataset.from_tensor_slices(ragged)
    if shuffle:
        ds = ds.shuffle(len(pieces), seed=seed, reshuffle_each_iteration=True)
    if transpose:
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, draws).map(
            functools.partial(_transposed, most=int(transpose)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def to_example(piece):
        piece = tf.cast(piece, tf.float32)
        return piece[:-1], piece[1:], tf.ones([tf.shape(piece)[0] - 1], tf.float32)

    ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.padded_batch(
        int(batch_size),
        padded_shapes=([None, NUM_KEYS], [None, NUM_KEYS], [None]),
        drop_remainder=drop_remainder,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def frame_count(rolls, transitions=False):
    """Number of frames in a list of piano rolls.

    Args:
        rolls: list of ``(frames, 88)`` arrays (or a data-set dict, whose
            splits are all counted).
        transitions: count ``frames - 1`` per piece (0 for pieces of fewer than
            2 frames): the number of targets of :func:`piano_roll_dataset`
            without ``max_length``, i.e. the sum of its sample weights, and the
            divisor of a per-frame negative log-likelihood.

    Returns:
        int.

    Example:
        >>> import numpy as np
        >>> frame_count([np.zeros((5, 88)), np.zeros((3, 88))])
        8
        >>> frame_count([np.zeros((5, 88)), np.zeros((1, 88))], transitions=True)
        4
    """
    if isinstance(rolls, dict):
        return sum(frame_count(rolls[s], transitions) for s in rolls)
    total = 0
    for roll in rolls:
        n = int(np.shape(roll)[0])
        total += max(n - 1, 0) if transitions else n
    return total
