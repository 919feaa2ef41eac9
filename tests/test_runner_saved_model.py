"""`runner.save` leaves the optimizer's state out of `model.keras` (Keras 3
ignores `include_optimizer=False` for `.keras` files), and the model it
saved loads compiled, without warnings, with the same weights."""

import io
import warnings
import zipfile

import h5py
import keras
import numpy as np

from apps.common import runner


def _groups(path):
    with zipfile.ZipFile(path) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            return set(weights.keys())


def test_saved_model_has_no_optimizer_state(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    model.fit(x, y, epochs=2, verbose=0)
    optimizer, steps = model.optimizer, int(model.optimizer.iterations)
    # What Keras writes by itself: the optimizer's slots too.
    model.save(tmp_path / "plain.keras")
    assert "optimizer" in _groups(tmp_path / "plain.keras")

    folder = runner.save(model, tmp_path / "m", {"app": "test"}, files={"vocab.txt": b"a\nb\n"})
    saved = model.get_weights()
    assert "optimizer" not in _groups(folder / runner.MODEL_FILE)
    assert (folder / "vocab.txt").read_bytes() == b"a\nb\n"
    assert (folder / runner.MODEL_FILE).stat().st_size < (tmp_path / "plain.keras").stat().st_size
    # The model that was saved keeps its optimizer and goes on training.
    assert model.optimizer is optimizer
    model.fit(x, y, epochs=1, verbose=0)
    assert int(optimizer.iterations) == steps + 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = runner.load(folder)
    assert not [w for w in caught if "optimizer" in str(w.message)]
    assert loaded.compiled and isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert len(loaded.get_weights()) == len(saved)
    for a, b in zip(loaded.get_weights(), saved):
        np.testing.assert_array_equal(a, b)


def test_files_cannot_replace_the_model(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    for name in (runner.MODEL_FILE, runner.METADATA_FILE, "../x", "sub/x"):
        try:
            runner.save(model, tmp_path / "m", {}, files={name: b"x"}, overwrite=True)
        except ValueError as error:
            assert "cannot be saved beside the model" in str(error)
        else:
            raise AssertionError(f"{name!r} was accepted")
    assert not list(tmp_path.glob(".m.tmp-*"))  # the half-written folder is gone
