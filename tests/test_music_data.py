"""Tests of keras_deeprnn.data.music: loaders, tf.data pipeline, MIDI helpers.

Expected values come from hand-made data (or, for the shared benchmark files,
from their published piece counts), never from the loaders' own output.
Tests that need music21 or pretty_midi skip when the package is missing
(``pip install keras-deeprnn[music]``); tests that read the shared benchmark
files skip when ``<repo>/../shared/data/music`` is absent (tests/conftest.py).
"""

import logging
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from keras_deeprnn.data import MusicDataError
from keras_deeprnn.data import frame_count
from keras_deeprnn.data import load_mat
from keras_deeprnn.data import load_music
from keras_deeprnn.data import load_pickle
from keras_deeprnn.data import music as M
from keras_deeprnn.data import piano_roll_dataset
from keras_deeprnn.data import registry

REPO = Path(__file__).resolve().parents[1]
SHARED_MUSIC = REPO.parent / "shared" / "data" / "music"
LOGGER = "keras_deeprnn.data.music"


def shared_file(name):
    path = SHARED_MUSIC / name
    if not path.is_file():
        pytest.skip(
            f"shared benchmark file {path} is absent (expected at <repo>/../shared/data/music)"
        )
    return path


def roll_from(frames, notes):
    """A (frames, 88) uint8 roll with ``notes`` = {frame: [midi numbers]}."""
    roll = np.zeros((frames, 88), np.uint8)
    for t, midis in notes.items():
        for m in midis:
            roll[t, m - 21] = 1
    return roll


def cell(*arrays):
    """A 1 x N MATLAB cell array, the layout of JSB_Chorales.mat."""
    out = np.empty((1, len(arrays)), dtype=object)
    for i, a in enumerate(arrays):
        out[0, i] = a
    return out


def write_mat(path, train, valid, test, **extra):
    sio = pytest.importorskip("scipy.io")
    contents = {"traindata": cell(*train), "validdata": cell(*valid), "testdata": cell(*test)}
    contents.update(extra)
    sio.savemat(str(path), contents)
    return path


# Three small hand-made pieces.
P0 = roll_from(3, {0: [60, 64, 67], 1: [62], 2: []})  # C E G, D, rest
P1 = roll_from(2, {0: [21], 1: [108]})  # A0, C8
P2 = roll_from(4, {0: [48], 1: [48, 55], 2: [55], 3: [72]})


# ---------------------------------------------------------------------------
# load_mat
# ---------------------------------------------------------------------------


def test_load_mat_reads_cell_arrays(tmp_path):
    # MATLAB stores doubles; the loader must give back uint8 0/1 in file order.
    path = write_mat(
        tmp_path / "toy.mat",
        [P0.astype(float), P1.astype(bool)],
        [P2.astype(float)],
        [P1.astype(np.uint8)],
    )
    data = load_mat(path)
    assert set(data) == {"train", "valid", "test"}
    assert [len(data[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    for got, want in zip(data["train"] + data["valid"] + data["test"], [P0, P1, P2, P1]):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    # Column k is MIDI note 21 + k: A0 -> column 0, C8 -> column 87.
    assert data["train"][1][0, 0] == 1 and data["train"][1][1, 87] == 1


def test_load_mat_skips_empty_pieces_with_warning(tmp_path, caplog):
    path = write_mat(tmp_path / "empty.mat", [P0, np.zeros((0, 88)), P2], [P1], [P1])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = load_mat(path)
    assert len(data["train"]) == 2
    np.testing.assert_array_equal(data["train"][1], P2)
    messages = [r.getMessage() for r in caplog.records]
    assert any("empty.mat" in m and "traindata piece 1" in m for m in messages), messages


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_key", r"missing key 'testdata'"),
        ("wrong_width", r"traindata piece 1: piano roll has shape \(2, 87\)"),
        ("transposed", r"shape \(88, 3\).*transposed"),
        ("non_binary", r"not binary: value 2"),
        ("nan", r"not binary: value nan"),
        ("not_cell", r"'validdata' is not a cell array"),
    ],
)
def test_load_mat_bad_contents(tmp_path, case, match):
    sio = pytest.importorskip("scipy.io")
    path = tmp_path / f"{case}.mat"
    bad2 = P0.astype(float)
    bad2[1, 5] = 2
    nan = P0.astype(float)
    nan[0, 0] = np.nan
    if case == "missing_key":
        sio.savemat(str(path), {"traindata": cell(P0), "validdata": cell(P1)})
    elif case == "wrong_width":
        write_mat(path, [P0, np.zeros((2, 87))], [P1], [P1])
    elif case == "transposed":
        write_mat(path, [P0.T], [P1], [P1])
    elif case == "non_binary":
        write_mat(path, [bad2], [P1], [P1])
    elif case == "nan":
        write_mat(path, [nan], [P1], [P1])
    elif case == "not_cell":
        sio.savemat(
            str(path), {"traindata": cell(P0), "validdata": P0.astype(float), "testdata": cell(P1)}
        )
    with pytest.raises(MusicDataError, match=match) as err:
        load_mat(path)
    assert str(path) in str(err.value)


def test_load_mat_corrupt_truncated_and_missing(tmp_path):
    good = write_mat(tmp_path / "good.mat", [P0, P2], [P1], [P1])
    raw = good.read_bytes()
    for name, content in [
        ("garbage.mat", os.urandom(3000)),
        ("truncated.mat", raw[: len(raw) // 2]),
        ("header_only.mat", raw[:60]),
        ("zero.mat", b""),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(MusicDataError, match="not a readable MATLAB") as err:
            load_mat(path)
        assert str(path) in str(err.value)
    with pytest.raises(MusicDataError, match="no such file"):
        load_mat(tmp_path / "absent.mat")
    assert issubclass(MusicDataError, ValueError)


@pytest.mark.parametrize(
    "name, counts, frames",
    [
        # Piece counts from the data README / the benchmark papers; frame totals
        # counted once with scipy alone.
        ("JSB_Chorales.mat", (229, 76, 77), (13807, 4602, 4725)),
        ("Nottingham.mat", (694, 173, 170), (176561, 45513, 44463)),
    ],
)
def test_load_mat_shared_benchmarks(name, counts, frames):
    data = load_mat(shared_file(name))
    assert tuple(len(data[s]) for s in ("train", "valid", "test")) == counts
    assert tuple(frame_count(data[s]) for s in ("train", "valid", "test")) == frames
    for roll in data["train"][:50]:
        assert roll.dtype == np.uint8 and roll.shape[1] == 88
        assert set(np.unique(roll)) <= {0, 1}
    # JSB: four voices, so at most 4 keys down in any frame.
    if name.startswith("JSB"):
        assert max(int(r.sum(1).max()) for r in data["train"]) == 4
        # First chord of the first training chorale: MIDI 60, 72, 79, 88
        # (columns 39, 51, 58, 67 of the file).
        np.testing.assert_array_equal(np.flatnonzero(data["train"][0][0]) + 21, [60, 72, 79, 88])


# ---------------------------------------------------------------------------
# load_pickle
# ---------------------------------------------------------------------------

# A Python 2 style protocol-2 pickle, assembled opcode by opcode: byte strings
# (SHORT_BINSTRING) for the keys and a set built from __builtin__.set, i.e.
# {'train': [[(60, 64), (), set([67])]], 'valid': [], 'test': []}.
PY2_PICKLE = (
    b"\x80\x02}(U\x05train](]((K<K@t)c__builtin__\nset\n](KCe\x85ReeU\x05valid]U\x04test]u."
)


def test_load_pickle_python2_file(tmp_path):
    path = tmp_path / "py2.pickle"
    path.write_bytes(PY2_PICKLE)
    data = load_pickle(path)
    assert [len(data[s]) for s in ("train", "valid", "test")] == [1, 0, 0]
    np.testing.assert_array_equal(data["train"][0], roll_from(3, {0: [60, 64], 2: [67]}))
    assert data["train"][0].dtype == np.uint8


def test_load_pickle_lists_tuples_floats(tmp_path, caplog):
    raw = {
        "train": [[[60, 64, 67], [62]], [], [(21,), (108.0,), ()]],
        "valid": [[frozenset({48}), {48, 55}]],
        "test": [[[72]]],
    }
    path = tmp_path / "toy.pkl"
    path.write_bytes(pickle.dumps(raw, protocol=2))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = load_pickle(path)
    assert [len(data[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    np.testing.assert_array_equal(data["train"][0], roll_from(2, {0: [60, 64, 67], 1: [62]}))
    np.testing.assert_array_equal(data["train"][1], roll_from(3, {0: [21], 1: [108]}))
    np.testing.assert_array_equal(data["valid"][0], roll_from(2, {0: [48], 1: [48, 55]}))
    assert any(
        "train piece 1" in r.getMessage() and "toy.pkl" in r.getMessage() for r in caplog.records
    )


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("kind", ["os.system", "eval", "numpy"])
def test_load_pickle_refuses_other_globals(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload = _Evil(os.system, f"touch {marker}")
        refused = f"{os.system.__module__}.system"  # posix.system on Linux
    elif kind == "eval":
        payload = _Evil(eval, f"open({str(marker)!r}, 'w').close()")
        refused = "builtin__.eval"  # protocol 2 names builtins __builtin__
    else:
        payload = np.zeros((2, 88))
        refused = "numpy"
    path = tmp_path / f"{kind}.pickle"
    path.write_bytes(pickle.dumps({"train": [payload], "valid": [], "test": []}, protocol=2))
    with pytest.raises(MusicDataError, match="refusing to load") as err:
        load_pickle(path)
    assert refused in str(err.value) and str(path) in str(err.value)
    assert not marker.exists(), "the pickle's payload ran"


@pytest.mark.parametrize(
    "note, match",
    [
        (20, "note 20 outside the piano range 21..108"),
        (109, "note 109 outside the piano range 21..108"),
        (60.5, "not a whole MIDI note number"),
        ("C4", "is not a MIDI note number"),
    ],
)
def test_load_pickle_bad_notes(tmp_path, note, match):
    raw = {"train": [[[60]], [[62], [64, note]]], "valid": [], "test": []}
    path = tmp_path / "bad.pickle"
    path.write_bytes(pickle.dumps(raw, protocol=2))
    with pytest.raises(MusicDataError, match=match) as err:
        load_pickle(path)
    assert "train piece 1, frame 1" in str(err.value)
    assert str(path) in str(err.value)


def test_load_pickle_bad_files(tmp_path):
    good = pickle.dumps({"train": [[[60]]], "valid": [], "test": []}, protocol=2)
    cases = {
        "truncated.pickle": (good[: len(good) // 2], "not a readable pickle"),
        "garbage.pickle": (b"this is not a pickle", "not a readable pickle"),
        "list.pickle": (pickle.dumps([[[60]]], protocol=2), "expected a dict"),
        "keys.pickle": (
            pickle.dumps({"train": []}, protocol=2),
            r"missing key\(s\) \['valid', 'test'\]",
        ),
        "frame.pickle": (
            pickle.dumps({"train": [[60, 62]], "valid": [], "test": []}, protocol=2),
            "frame 0: is a int",
        ),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(MusicDataError, match=match) as err:
            load_pickle(path)
        assert str(path) in str(err.value)
    with pytest.raises(MusicDataError, match="no such file"):
        load_pickle(tmp_path / "absent.pickle")


# ---------------------------------------------------------------------------
# MIDI
# ---------------------------------------------------------------------------


def write_midi(path, notes, tempo=120.0, drums=(), program=0):
    """notes: (pitch, start_s, end_s) for one piano track."""
    pretty_midi = pytest.importorskip("pretty_midi")
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program)
    inst.notes = [pretty_midi.Note(80, p, s, e) for p, s, e in notes]
    pm.instruments.append(inst)
    if drums:
        drum = pretty_midi.Instrument(program=0, is_drum=True)
        drum.notes = [pretty_midi.Note(80, p, s, e) for p, s, e in drums]
        pm.instruments.append(drum)
    pm.write(str(path))
    return path


def test_midi_to_roll_quarter_and_fs_grids(tmp_path, caplog):
    pytest.importorskip("pretty_midi")
    # 120 quarter notes per minute: a quarter lasts 0.5 s.
    path = write_midi(
        tmp_path / "a.mid",
        [
            (60, 0.0, 1.0),
            (64, 0.5, 1.0),
            (67, 1.0, 2.0),
            (10, 0.0, 0.5),
            (120, 0.5, 1.0),
        ],  # out of range
        drums=[(36, 0.0, 0.5)],
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        roll = M.midi_to_roll(path)  # 1 step per quarter
    np.testing.assert_array_equal(roll, roll_from(4, {0: [60], 1: [60, 64], 2: [67], 3: [67]}))
    assert any(
        "a.mid" in r.getMessage() and "2 note(s) outside" in r.getMessage() for r in caplog.records
    )
    roll = M.midi_to_roll(path, fs=4)  # 4 frames per second
    assert roll.shape == (8, 88)
    np.testing.assert_array_equal(np.flatnonzero(roll[:, 60 - 21]), [0, 1, 2, 3])
    np.testing.assert_array_equal(np.flatnonzero(roll[:, 64 - 21]), [2, 3])
    roll = M.midi_to_roll(path, include_drums=True)
    assert roll[0, 36 - 21] == 1
    # At 60 quarter notes per minute a quarter lasts 1 s.
    slow = write_midi(tmp_path / "slow.mid", [(60, 0.0, 1.0), (62, 1.0, 1.5)], tempo=60)
    np.testing.assert_array_equal(
        M.midi_to_roll(slow, steps_per_quarter=2), roll_from(3, {0: [60], 1: [60], 2: [62]})
    )
    with pytest.raises(ValueError, match="not both"):
        M.midi_to_roll(path, steps_per_quarter=2, fs=4)


def test_midi_to_roll_rounds_to_the_nearest_frame(tmp_path):
    pytest.importorskip("pretty_midi")
    # Played, not quantised (quarter = 0.5 s): 62 from 0.4 to 1.6 quarters
    # -> frames 0..1; 64 from 1.8 to 2.1 quarters, shorter than a frame -> still
    # one frame (2); 67 from 2.7 to 3.2 quarters -> frame 3 (nearest beat).
    path = write_midi(tmp_path / "played.mid", [(62, 0.2, 0.8), (64, 0.9, 1.05), (67, 1.35, 1.6)])
    np.testing.assert_array_equal(
        M.midi_to_roll(path), roll_from(4, {0: [62], 1: [62], 2: [64], 3: [67]})
    )


def test_load_midi_dir_split_and_bad_files(tmp_path, caplog):
    pytest.importorskip("pretty_midi")
    folder = tmp_path / "midi"
    folder.mkdir()
    # File i holds one note lasting i + 2 quarter notes: its length names it.
    for i in range(10):
        write_midi(folder / f"piece{i:02d}.mid", [(60 + i, 0.0, 0.5 * (i + 2))])
    (folder / "broken.mid").write_bytes(b"MThd garbage, not a MIDI file")
    (folder / "notes.txt").write_text("not music")
    write_midi(folder / "UPPER.MIDI", [(72, 0.0, 0.5 * 20)])
    (folder / "sub").mkdir()
    write_midi(folder / "sub" / "deep.mid", [(50, 0.0, 0.5 * 30)])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = M.load_midi_dir(folder)
    assert any("broken.mid" in r.getMessage() for r in caplog.records)
    lengths = {s: sorted(len(r) for r in data[s]) for s in data}
    # 12 MIDI files found (the broken one included), split 0.6/0.2/0.2:
    # round(12 * 0.2) = 2 valid, 2 test, 8 train; the broken one is skipped.
    assert sorted(lengths["train"] + lengths["valid"] + lengths["test"]) == list(range(2, 12)) + [
        20
    ]
    assert len(lengths["valid"]) + len(lengths["test"]) + len(lengths["train"]) == 11
    assert {len(data["valid"]), len(data["test"])} <= {1, 2}
    # Deterministic: same call, same split; the seed changes it.
    again = M.load_midi_dir(folder)
    assert {s: sorted(len(r) for r in again[s]) for s in again} == lengths
    others = [M.load_midi_dir(folder, seed=s) for s in (1, 2, 3)]
    assert any({s: sorted(len(r) for r in o[s]) for s in o} != lengths for o in others)
    deep = M.load_midi_dir(folder, recursive=True)
    assert 30 in [len(r) for s in deep for r in deep[s]]


def test_load_midi_dir_errors(tmp_path):
    pytest.importorskip("pretty_midi")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MusicDataError, match="no MIDI file") as err:
        M.load_midi_dir(empty)
    assert str(empty) in str(err.value)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(MusicDataError, match="no MIDI file"):
        M.load_midi_dir(empty)
    (empty / "bad.mid").write_bytes(b"\x00" * 40)
    with pytest.raises(MusicDataError, match="none of its 1 MIDI file"):
        M.load_midi_dir(empty)
    with pytest.raises(MusicDataError, match="not a folder"):
        M.load_midi_dir(tmp_path / "nowhere")


def test_midi_round_trip(tmp_path):
    pretty_midi = pytest.importorskip("pretty_midi")
    roll = roll_from(
        10, {0: [60, 64], 1: [60, 64], 2: [67], 4: [21, 108], 5: [21], 6: [60]}
    )  # frames 7-9 silent
    pm = M.rolls_to_midi(roll, tmp_path / "out" / "a.mid", steps_per_second=4)
    # The file itself, read independently: 6 notes (runs of 1s), timed in 0.25 s.
    back = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "a.mid"))
    notes = sorted((n.pitch, round(n.start, 3), round(n.end, 3)) for n in back.instruments[0].notes)
    assert notes == [
        (21, 1.0, 1.5),
        (60, 0.0, 0.5),
        (60, 1.5, 1.75),
        (64, 0.0, 0.5),
        (67, 0.5, 0.75),
        (108, 1.0, 1.25),
    ]
    assert back.get_end_time() == pytest.approx(2.5)  # 10 frames of 0.25 s
    assert pm.get_end_time() == pytest.approx(2.5)
    got = M.midi_to_roll(tmp_path / "out" / "a.mid", fs=4)
    assert got.shape[0] == 10  # trailing silence kept
    np.testing.assert_array_equal(got, roll)
    # Quarter-note grid: 2 frames per quarter at 90 quarters per minute.
    M.rolls_to_midi(roll.astype(np.float32), tmp_path / "b.mid", tempo=90, steps_per_quarter=2)
    assert pretty_midi.PrettyMIDI(str(tmp_path / "b.mid")).get_end_time() == pytest.approx(
        10 * 60 / 90 / 2, abs=1e-3
    )  # ticks
    np.testing.assert_array_equal(M.midi_to_roll(tmp_path / "b.mid", steps_per_quarter=2), roll)
    with pytest.raises(ValueError, match="only 0 and 1"):
        M.rolls_to_midi(roll * 0.7, tmp_path / "c.mid")
    with pytest.raises(ValueError, match="expected \\(frames, 88\\)"):
        M.rolls_to_midi(np.zeros((4, 12)), tmp_path / "c.mid")


# ---------------------------------------------------------------------------
# piano_roll_dataset and frame_count
# ---------------------------------------------------------------------------


def numbered_roll(frames, piece):
    """Frame t of piece p has keys t and 40 + p down: every frame is distinct."""
    roll = np.zeros((frames, 88), np.uint8)
    roll[np.arange(frames), np.arange(frames)] = 1
    roll[:, 40 + piece] = 1
    return roll


def test_piano_roll_dataset_shift_padding_weights(caplog):
    r0, r1, r2 = numbered_roll(5, 0), numbered_roll(3, 1), numbered_roll(1, 2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = piano_roll_dataset([r0, r1, r2], batch_size=2)
    assert any("piece 2 has 1 frame" in r.getMessage() for r in caplog.records)
    batches = [tuple(t.numpy() for t in b) for b in ds]
    assert len(batches) == 1
    x, y, w = batches[0]
    assert x.shape == (2, 4, 88) and y.shape == (2, 4, 88) and w.shape == (2, 4)
    assert x.dtype == y.dtype == w.dtype == np.float32
    np.testing.assert_array_equal(x[0], r0[0:4])
    np.testing.assert_array_equal(y[0], r0[1:5])  # shifted one frame ahead
    np.testing.assert_array_equal(x[1, :2], r1[0:2])
    np.testing.assert_array_equal(y[1, :2], r1[1:3])
    assert not x[1, 2:].any() and not y[1, 2:].any()  # zero padding
    np.testing.assert_array_equal(w, [[1, 1, 1, 1], [1, 1, 0, 0]])
    assert w.sum() == (5 - 1) + (3 - 1) == frame_count([r0, r1, r2], transitions=True)


def test_piano_roll_dataset_windows_and_remainder():
    r0, r1 = numbered_roll(10, 0), numbered_roll(3, 1)
    # max_length=4: the 10-frame piece (9 transitions) -> windows of frames
    # 0-4, 4-8, 8-9, each transition once; the 3-frame piece stays whole.
    ds = piano_roll_dataset([r0, r1], batch_size=8, max_length=4)
    x, y, w = (t.numpy() for t in next(iter(ds)))
    assert x.shape == (4, 4, 88)
    np.testing.assert_array_equal(w.sum(1), [4, 4, 1, 2])
    assert w.sum() == 9 + 2
    np.testing.assert_array_equal(x[1], r0[4:8])
    np.testing.assert_array_equal(y[1], r0[5:9])
    np.testing.assert_array_equal(x[2, :1], r0[8:9])
    np.testing.assert_array_equal(y[2, :1], r0[9:10])
    crop = piano_roll_dataset([r0, r1], batch_size=8, max_length=4, long_pieces="crop")
    x, y, w = (t.numpy() for t in next(iter(crop)))
    np.testing.assert_array_equal(w.sum(1), [4, 2])
    np.testing.assert_array_equal(y[0], r0[1:5])
    # 3 pieces, batches of 2: the last batch has 1 piece unless dropped.
    three = [numbered_roll(4, i) for i in range(3)]
    assert [b[0].shape[0] for b in piano_roll_dataset(three, 2)] == [2, 1]
    assert [b[0].shape[0] for b in piano_roll_dataset(three, 2, drop_remainder=True)] == [2]


def test_piano_roll_dataset_shuffle_is_seeded():
    rolls = [numbered_roll(3, i) for i in range(12)]

    def order(ds):
        # Which piece each batch holds: the key 40 + p is down in every frame.
        return [int(np.flatnonzero(x[0, 0, 40:])[0]) for x, _, _ in ds.as_numpy_iterator()]

    plain = order(piano_roll_dataset(rolls, 1))
    assert plain == list(range(12))
    a = order(piano_roll_dataset(rolls, 1, shuffle=True, seed=7))
    b = order(piano_roll_dataset(rolls, 1, shuffle=True, seed=7))
    c = order(piano_roll_dataset(rolls, 1, shuffle=True, seed=8))
    assert a == b and sorted(a) == list(range(12)) and a != plain and a != c


def test_transpose_moves_inputs_and_targets_together_within_the_keyboard():
    # Keys in use: 40-44 (room both ways), 0-2 (none down), 85-87 (none up);
    # the silent piece cannot move. Piece p is told apart by its length.
    middle = roll_from(6, {t: [61 + t % 5] for t in range(6)})
    bottom = roll_from(5, {t: [21 + t % 3] for t in range(5)})
    top = roll_from(4, {t: [106 + t % 3] for t in range(4)})
    silent = np.zeros((3, 88), np.uint8)
    pieces = [middle, bottom, top, silent]
    allowed = {6: range(-3, 4), 5: range(0, 4), 4: range(-3, 1), 3: range(0, 1)}
    ds = piano_roll_dataset(pieces, 4, shuffle=True, seed=3, transpose=3)
    seen = {n: set() for n in allowed}
    epochs = []
    for _ in range(40):
        shifts = []
        for x, y, w in ds.as_numpy_iterator():
            for xi, yi, wi in zip(x, y, w):
                n = int(wi.sum()) + 1
                piece = next(p for p in pieces if len(p) == n)
                # The shift that maps the piece onto this example, found by trying all.
                fits = [
                    k
                    for k in range(-87, 88)
                    if np.array_equal(xi[: n - 1], np.roll(piece[:-1], k, axis=1))
                    and np.array_equal(yi[: n - 1], np.roll(piece[1:], k, axis=1))
                ]
                assert fits, f"piece of {n} frames is not a transposition of itself"
                k = min(fits, key=abs)  # the silent piece fits every k: 0
                assert k in allowed[n] and xi[: n - 1].sum() == piece[:-1].sum()
                seen[n].add(k)
                shifts.append((n, k))
        epochs.append(shifts)
    assert seen == {n: set(r) for n, r in allowed.items()}  # every allowed shift occurs
    assert len({tuple(e) for e in epochs}) > 1  # new draws every epoch

    def draws(seed):
        ds = piano_roll_dataset(pieces, 4, shuffle=True, seed=seed, transpose=3)
        return [x.tolist() for _ in range(3) for x, _, _ in ds.as_numpy_iterator()]

    assert draws(3) == draws(3) and draws(3) != draws(4)
    plain = next(iter(piano_roll_dataset(pieces, 4)))[0].numpy()
    np.testing.assert_array_equal(next(iter(piano_roll_dataset(pieces, 4, transpose=0)))[0], plain)


def test_the_music_app_transposes_training_batches_only(tmp_path):
    import argparse

    from apps.music import data

    pieces = [roll_from(8, {t: [50 + t % 4] for t in range(8)}) for _ in range(3)]
    path = write_mat(tmp_path / "t.mat", pieces, pieces, pieces)
    args = argparse.Namespace(data=str(path), batch_size=3, max_length=None, transpose=6, seed=0)
    ds = data.datasets(args)
    want = next(iter(piano_roll_dataset(pieces, 3)))[0].numpy()
    for split in ("valid", "test"):
        for _ in range(3):
            np.testing.assert_array_equal(next(iter(getattr(ds, split)))[0], want)
    moved = [not np.array_equal(next(iter(ds.train))[0], want) for _ in range(5)]
    assert any(moved)


def test_piano_roll_dataset_bad_input():
    with pytest.raises(MusicDataError, match="no piece with 2 frames"):
        piano_roll_dataset([np.zeros((1, 88)), np.zeros((0, 88))], 4)
    with pytest.raises(ValueError, match=r"rolls\[1\] has shape \(3, 87\)"):
        piano_roll_dataset([np.zeros((3, 88)), np.zeros((3, 87))], 4)
    with pytest.raises(TypeError, match="wrap it in a list"):
        piano_roll_dataset(np.zeros((3, 88)), 4)
    with pytest.raises(ValueError, match="batch_size"):
        piano_roll_dataset([np.zeros((3, 88))], 0)
    with pytest.raises(ValueError, match="long_pieces"):
        piano_roll_dataset([np.zeros((3, 88))], 1, max_length=2, long_pieces="wrap")
    for bad in (-1, 1.5, 88):
        with pytest.raises(ValueError, match="transpose must be an integer in"):
            piano_roll_dataset([np.zeros((3, 88))], 1, transpose=bad)


def test_padding_adds_nothing_to_a_summed_keras_loss():
    import keras

    rolls = [numbered_roll(6, 0), numbered_roll(2, 1)]
    model = keras.Sequential(
        [keras.Input((None, 88)), keras.layers.Dense(88, activation="sigmoid")]
    )
    model.compile(loss=keras.losses.BinaryCrossentropy(reduction="sum"))
    loss = model.evaluate(piano_roll_dataset(rolls, 2), verbose=0)
    # Reference: the same model on each piece alone, no padding at all.
    want = 0.0
    for r in rolls:
        p = np.clip(model.predict(r[None, :-1].astype("float32"), verbose=0)[0], 1e-7, 1 - 1e-7)
        t = r[1:]
        want += float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(-1).sum())
    assert loss == pytest.approx(want, rel=1e-4)


def test_frame_count():
    rolls = [np.zeros((5, 88)), np.zeros((3, 88)), np.zeros((1, 88)), np.zeros((0, 88))]
    assert frame_count(rolls) == 9
    assert frame_count(rolls, transitions=True) == 4 + 2
    assert frame_count({"train": rolls[:2], "valid": rolls[2:], "test": []}) == 9
    assert frame_count([]) == 0


# ---------------------------------------------------------------------------
# load_music
# ---------------------------------------------------------------------------


def register(monkeypatch, name, path, url=None):
    """Registers `path` (its checksum) as the data set `name`'s file."""
    file = registry.DATASETS[name].files[0]
    entry = registry.DataFile(file.path, url or file.url, registry.sha256(path))
    dataset = registry.Dataset(name, "test", (entry,), "test")
    monkeypatch.setitem(registry.DATASETS, name, dataset)
    return entry


def test_load_music_names_paths_and_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPRNN_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    d = tmp_path / "data"
    (d / "music").mkdir(parents=True)
    write_mat(d / "JSB_Chorales.mat", [P0], [P1], [P2])
    write_mat(d / "music" / "Nottingham.mat", [P2, P2], [P1], [P0])
    # A name reads the registered file: another JSB_Chorales.mat is refused.
    with pytest.raises(registry.ChecksumError, match="JSB_Chorales.mat: SHA-256 .* refused"):
        load_music("jsb", data_dir=d)
    # Registered with these files' sums, they are found flat and in music/.
    register(monkeypatch, "jsb", d / "JSB_Chorales.mat")
    register(monkeypatch, "nottingham", d / "music" / "Nottingham.mat")
    data = load_music("JSB", data_dir=d)
    np.testing.assert_array_equal(data["train"][0], P0)
    assert len(load_music("nottingham", data_dir=d)["train"]) == 2
    # $DEEPRNN_DATA_DIR when no data_dir.
    monkeypatch.setenv("DEEPRNN_DATA_DIR", str(d))
    np.testing.assert_array_equal(load_music("jsb_chorales")["test"][0], P2)
    monkeypatch.delenv("DEEPRNN_DATA_DIR")
    # ../shared/data beside the working directory is not looked at any more:
    # the file is downloaded instead, here from a URL that does not exist.
    project, shared = tmp_path / "project", tmp_path / "shared" / "data" / "music"
    project.mkdir()
    shared.mkdir(parents=True)
    write_mat(shared / "Piano_midi.mat", [P1], [P1], [P1])
    missing = (tmp_path / "offline" / "Piano_midi.mat").as_uri()
    register(monkeypatch, "piano-midi", shared / "Piano_midi.mat", url=missing)
    monkeypatch.chdir(project)
    with pytest.raises(registry.DataUnavailable, match="could not be downloaded from file:"):
        load_music("piano-midi")
    # Paths by suffix, and folders of MIDI files.
    np.testing.assert_array_equal(load_music(str(d / "JSB_Chorales.mat"))["valid"][0], P1)
    pkl = tmp_path / "x.pkl"
    pkl.write_bytes(PY2_PICKLE)
    assert len(load_music(pkl)["train"]) == 1
    with pytest.raises(MusicDataError, match="no such file"):
        load_music(str(tmp_path / "nope.mat"))
    with pytest.raises(MusicDataError, match="accepted: 'bach', 'jsb', 'nottingham'") as err:
        load_music("mozart")
    assert "folder of MIDI files" in str(err.value)
    # "bach" goes to load_bach_chorales with the keyword arguments.
    seen = {}
    monkeypatch.setattr(M, "load_bach_chorales", lambda **kw: seen.update(kw) or "B")
    assert load_music("Bach", limit=3) == "B" and seen == {"limit": 3, "verbose": 0}


def test_load_music_midi_folder(tmp_path):
    pytest.importorskip("pretty_midi")
    for i in range(3):
        write_midi(tmp_path / f"{i}.mid", [(60, 0.0, 1.0)])
    data = load_music(tmp_path, steps_per_quarter=2)
    assert sorted(len(data[s]) for s in data) == [1, 1, 1]
    assert all(r.shape == (4, 88) for s in data for r in data[s])


def test_load_music_reads_the_registered_benchmark(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPRNN_DATA_DIR", str(shared_data))
    monkeypatch.chdir(tmp_path)
    data = load_music("jsb")
    assert [len(data[s]) for s in ("train", "valid", "test")] == [229, 76, 77]


# ---------------------------------------------------------------------------
# load_bach_chorales (music21)
# ---------------------------------------------------------------------------

# Krumhansl-Kessler key profiles (Krumhansl 1990), pitch class C first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimated_key(roll):
    """(tonic pitch class, mode) best correlated with the frame pitch-class counts."""
    hist = np.zeros(12)
    for k in range(88):
        hist[(21 + k) % 12] += roll[:, k].sum()
    scores = {
        (t, mode): np.corrcoef(hist, np.roll(profile, t))[0, 1]
        for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR))
        for t in range(12)
    }
    return max(scores, key=scores.get)


def all_rolls(data):
    return [r for s in ("train", "valid", "test") for r in data[s]]


def test_load_bach_chorales_small_and_cached(tmp_path, monkeypatch, caplog, capsys):
    music21 = pytest.importorskip("music21")
    data = M.load_bach_chorales(cache_dir=tmp_path, limit=5)
    assert [len(data[s]) for s in ("train", "valid", "test")] == [3, 1, 1]
    rolls = all_rolls(data)
    for roll in rolls:
        assert roll.dtype == np.uint8 and roll.shape[1] == 88 and len(roll) >= 16
        assert set(np.unique(roll)) == {0, 1}
        # Four voices sampled on the beat: 1 to 4 keys per frame (rests aside).
        assert roll.sum(1).max() <= 4 and np.median(roll.sum(1)) >= 3
        assert estimated_key(roll)[0] == 0, estimated_key(roll)  # tonic C
    # The cache file is there, and the second call does not parse anything.
    files = list(tmp_path.glob("bach_chorales_v*.npz"))
    assert len(files) == 1

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(music21.converter, "parse", no_parse)
    again = M.load_bach_chorales(cache_dir=tmp_path, limit=5)
    for a, b in zip(all_rolls(again), rolls):
        np.testing.assert_array_equal(a, b)
    # A corrupt cache file is rebuilt (with a warning), not an error.
    monkeypatch.undo()
    files[0].write_bytes(files[0].read_bytes()[:100])
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rebuilt = M.load_bach_chorales(cache_dir=tmp_path, limit=5, verbose=1)
    assert any("unusable cache" in r.getMessage() for r in caplog.records)
    # verbose: what it does, then Keras's progress bar (one line without a terminal).
    said, bar = capsys.readouterr().out.splitlines()
    total = len(M._bach_paths(music21.corpus))
    assert said == (
        f"Parsing music21's {total} Bach chorale files into piano rolls "
        f"(once; kept in {tmp_path} for the next runs)"
    )
    assert re.fullmatch(rf" *[5-9]/{total} - \d+s - \d+m?s/file", bar), bar
    for a, b in zip(all_rolls(rebuilt), rolls):
        np.testing.assert_array_equal(a, b)
    with np.load(files[0]) as z:  # and the file is whole again
        assert int(z["lengths"].sum()) == sum(len(r) for r in rolls)


def test_load_bach_chorales_transposition(tmp_path, monkeypatch):
    pytest.importorskip("music21")
    monkeypatch.setenv("HOME", str(tmp_path))  # where the default cache would go
    raw = M.load_bach_chorales(limit=4, transpose=False, use_cache=False)
    moved = M.load_bach_chorales(limit=4, transpose=True, use_cache=False)
    assert list(tmp_path.iterdir()) == []
    keys = set()
    for r, m in zip(all_rolls(raw), all_rolls(moved)):
        keys.add(estimated_key(r))
        # Transposing shifts every note by the same interval, at most a tritone.
        shifts = [s for s in range(-6, 7) if np.array_equal(np.roll(r, s, axis=1), m)]
        assert len(shifts) == 1, "not a pure transposition"
        assert (estimated_key(r)[0] + shifts[0]) % 12 == 0
    assert any(k[0] != 0 for k in keys), "the untransposed chorales were all in C"


def test_load_bach_chorales_bad_arguments():
    with pytest.raises(ValueError, match="limit"):
        M.load_bach_chorales(limit=0)
    with pytest.raises(ValueError, match="sum to 1"):
        M.load_bach_chorales(split=(0.5, 0.2, 0.2))


@pytest.mark.slow
def test_load_bach_chorales_all(tmp_path):
    import time

    pytest.importorskip("music21")
    data = M.load_bach_chorales(cache_dir=tmp_path)
    counts = [len(data[s]) for s in ("train", "valid", "test")]
    # About 370 four-part chorales in music21's corpus, split 60/20/20.
    assert 330 <= sum(counts) <= 400
    assert counts[1] == counts[2] == round(sum(counts) * 0.2)
    rolls = all_rolls(data)
    in_c = sum(estimated_key(r)[0] == 0 for r in rolls)
    assert in_c >= 0.75 * len(rolls)
    t = time.perf_counter()
    M.load_bach_chorales(cache_dir=tmp_path)
    assert time.perf_counter() - t < 2.0
