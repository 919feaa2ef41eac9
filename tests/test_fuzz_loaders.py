"""Damaged files: seeded random mutations of valid files of every format the
apps read, fed to their loaders. Each must load (the mutation left a valid
file) or end in the project's own error, never in another exception, a
crash or a hang. The counts are printed (`pytest -s`)."""

import signal
import zipfile

import numpy as np
import pytest

from apps.common import runner
from keras_deeprnn.data import conll
from keras_deeprnn.data import music
from keras_deeprnn.data import text
from keras_deeprnn.export import ExportError

SECONDS_PER_FILE = 20


def mutate(data, rng):
    """One random mutation of `data` (bytes)."""
    data = bytearray(data)
    kind = rng.integers(7)
    if not data or kind == 0:  # truncate
        return bytes(data[: rng.integers(len(data) + 1)])
    i = int(rng.integers(len(data)))
    n = int(rng.integers(1, 9))
    if kind == 1:  # flip bytes
        for j in rng.integers(len(data), size=n):
            data[j] ^= int(rng.integers(1, 256))
    elif kind == 2:  # insert random bytes
        data[i:i] = rng.integers(256, size=n, dtype=np.uint8).tobytes()
    elif kind == 3:  # delete a span
        del data[i : i + int(rng.integers(1, 64))]
    elif kind == 4:  # duplicate a span
        data[i:i] = data[i : i + int(rng.integers(1, 64))]
    elif kind == 5:  # replace a span by text that parsers trip on
        data[i : i + n] = rng.choice(
            [b"\t", b"\n", b"\xff\xfe", b"-1", b"nan", b"\x00", b"1e999", b'"', b",", b"_"]
        )
    else:  # swap two lines
        lines = bytes(data).split(b"\n")
        a, b = rng.integers(len(lines), size=2)
        lines[a], lines[b] = lines[b], lines[a]
        return b"\n".join(lines)
    return bytes(data)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def fuzz(tmp_path, name, valid, load, errors, count, seed):
    """Feeds `count` mutations of `valid` (bytes), written to `tmp_path/name`,
    to `load(path)`; returns {"loaded": n, "refused": n}."""
    rng = np.random.default_rng(seed)
    counts = {"loaded": 0, "refused": 0}
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for k in range(count):
            path = tmp_path / f"{k}" / name
            path.parent.mkdir(parents=True)
            path.write_bytes(mutate(valid, rng))
            signal.alarm(SECONDS_PER_FILE)
            try:
                load(path)
                counts["loaded"] += 1
            except errors:
                counts["refused"] += 1
            except _Timeout:
                pytest.fail(f"{name}: mutation {k} hung for {SECONDS_PER_FILE} s")
            except Exception as error:  # the point: anything else fails the test
                pytest.fail(f"{name}: mutation {k} raised {type(error).__name__}: {error}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    print(
        f"\n{name}: {count} mutations, {counts['loaded']} still valid, "
        f"{counts['refused']} refused with the project's error"
    )
    return counts


def _check(counts, count):
    assert counts["loaded"] + counts["refused"] == count
    assert counts["refused"] > count // 4  # the mutations did damage files


def test_mat_files(tmp_path):
    from test_music_data import write_mat

    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 2, (n, 88)).astype(np.uint8) for n in (9, 12, 7, 10)]
    valid = write_mat(tmp_path / "valid.mat", pieces[:2], pieces[2:3], pieces[3:]).read_bytes()
    # Each load is a child process (scipy's reader segfaulted on mutation 3).
    counts = fuzz(tmp_path / "f", "data.mat", valid, music.load_mat, music.MusicDataError, 40, 1)
    _check(counts, 40)


def test_midi_folders(tmp_path):
    from test_music_data import write_midi

    notes = [(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 2.0), (48, 0.0, 2.0)]
    valid = write_midi(tmp_path / "valid.mid", notes).read_bytes()
    # A folder of one piece per split, as load_music reads a MIDI folder.
    counts = fuzz(
        tmp_path / "f",
        "piece.mid",
        valid,
        lambda path: music.load_music(str(path.parent)),
        music.MusicDataError,
        50,
        2,
    )
    _check(counts, 50)


CONLLU = """# sent_id = 1
# text = The dog barks.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\tSpaceAfter=No
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = 2
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
3.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t_\t_

"""


def test_conllu_files(tmp_path):
    counts = fuzz(
        tmp_path,
        "data.conllu",
        CONLLU.encode(),
        lambda path: conll.load_tagging(str(path)),
        conll.ConllError,
        80,
        3,
    )
    _check(counts, 80)


def test_csv_files(tmp_path):
    rows = ["text,label"] + [
        f'"a {"good" if i % 2 else "bad"} film, number {i}",{i % 2}' for i in range(12)
    ]
    counts = fuzz(
        tmp_path,
        "data.csv",
        ("\n".join(rows) + "\n").encode(),
        lambda path: text.load_text(str(path)),
        text.TextDataError,
        80,
        4,
    )
    # The CSV reader skips a malformed row with a warning, and most mutations
    # spoil one row: what counts is that nothing else escapes.
    assert counts["loaded"] + counts["refused"] == 80


@pytest.fixture(scope="module")
def music_model_folder(tmp_path_factory):
    from apps.music.model import build_model

    folder = tmp_path_factory.mktemp("model")
    return runner.save(build_model("gru", units=4, keys=88), folder / "music-m", {"app": "music"})


def test_keras_files(tmp_path, music_model_folder):
    valid = (music_model_folder / "model.keras").read_bytes()
    # Mutations inside the archive's members too, not only of the zip bytes.
    rng = np.random.default_rng(5)
    members = {}
    with zipfile.ZipFile(music_model_folder / "model.keras") as archive:
        for info in archive.infolist():
            members[info.filename] = archive.read(info)
    counts = fuzz(
        tmp_path / "bytes",
        "model.keras",
        valid,
        lambda p: runner.load(p, "music"),
        (ValueError, FileNotFoundError),
        40,
        5,
    )
    _check(counts, 40)
    refused = 0
    for k in range(20):
        path = tmp_path / f"member-{k}.keras"
        target = rng.choice(sorted(members))
        with zipfile.ZipFile(path, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, mutate(data, rng) if member == target else data)
        try:
            runner.load(path)
        except ValueError:
            refused += 1
    print(f"model.keras members: 20 mutations, {refused} refused with the project's error")


def test_tflite_exports(tmp_path, music_model_folder):
    from keras_deeprnn.export import load_export
    from keras_deeprnn.export import write_export

    model = runner.load(music_model_folder)
    folder = tmp_path / "export"
    write_export(model, folder, "m", tflite=[("streaming", None)], saved_model=False)
    tflite = next(folder.glob("*.tflite"))
    valid = tflite.read_bytes()
    manifest = (folder / "manifest.json").read_bytes()

    def load(path):
        export = path.parent / "export"
        export.mkdir()
        (export / "manifest.json").write_bytes(manifest)
        (export / tflite.name).write_bytes(path.read_bytes())
        load_export(export)

    counts = fuzz(tmp_path / "f", "model.tflite", valid, load, ExportError, 40, 6)
    assert counts["refused"] >= 39  # only a no-op mutation keeps the checksum

    def load_manifest(path):
        export = path.parent / "export"
        export.mkdir()
        (export / "manifest.json").write_bytes(path.read_bytes())
        (export / tflite.name).write_bytes(valid)
        load_export(export)

    _check(fuzz(tmp_path / "m", "manifest.json", manifest, load_manifest, ExportError, 40, 7), 40)
