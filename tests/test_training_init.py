"""Sparse initialisation and recurrent matrix normalisation."""

import keras
import numpy as np
import pytest

from keras_deeprnn.cells import GRUCell
from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.training import ScaledInit
from keras_deeprnn.training import SparseInit
from keras_deeprnn.training import normalize_recurrent


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------------------
# SparseInit
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, k, expected",
    [((100, 40), 15, 15), ((88, 512), 20, 20), ((7, 5), 15, 7), ((30, 1), 1, 1)],
)
def test_sparse_init_has_exactly_k_nonzeros_per_unit(shape, k, expected):
    w = _np(SparseInit(k, seed=3)(shape))
    assert w.shape == shape
    np.testing.assert_array_equal((w != 0).sum(axis=0), expected)


def test_sparse_init_draws_rows_uniformly_and_values_from_a_scaled_normal():
    rows, units, k, scale = 50, 4000, 10, 0.3
    w = _np(SparseInit(k, scale=scale, seed=0)((rows, units)))
    # Each row is picked by a column with probability k / rows.
    picked = (w != 0).mean(axis=1)
    p = k / rows
    assert np.abs(picked - p).max() < 5 * np.sqrt(p * (1 - p) / units)
    values = w[w != 0]
    assert values.std() == pytest.approx(scale, rel=0.02)
    assert abs(values.mean()) < 0.01
    # The fraction within one standard deviation is that of a normal.
    assert np.mean(np.abs(values) < scale) == pytest.approx(0.6827, abs=0.01)


def test_sparse_init_is_reproducible_and_serializable():
    init = SparseInit(5, scale=0.5, seed=11)
    again = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert isinstance(again, SparseInit) and again.get_config() == init.get_config()
    np.testing.assert_array_equal(_np(init((20, 8))), _np(again((20, 8))))
    assert not np.array_equal(_np(init((20, 8))), _np(SparseInit(5, 0.5, seed=12)((20, 8))))


def test_sparse_init_in_a_saved_cell(tmp_path):
    model = keras.Sequential(
        [keras.Input((3, 30)), keras.layers.RNN(GRUCell(20, kernel_initializer=SparseInit(15)))]
    )
    kernel = model.layers[0].cell.kernel.numpy()
    np.testing.assert_array_equal((kernel != 0).sum(axis=0), 15)  # every gate's unit
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    init = loaded.layers[0].cell.kernel_initializer
    assert isinstance(init, SparseInit) and init.k == 15


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), "`k` must be a positive integer"),
        (dict(k=2.5), "`k` must be a positive"),
        (dict(scale=0.0), "`scale` must be a positive"),
        (dict(seed="a"), "`seed` must be"),
    ],
)
def test_sparse_init_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseInit(**kwargs)


def test_sparse_init_needs_a_matrix():
    with pytest.raises(ValueError, match=r"initialises matrices \(inputs, units\)"):
        SparseInit(3)((10,))


# ---------------------------------------------------------------------------
# normalize_recurrent and ScaledInit
# ---------------------------------------------------------------------------
def _blocks(u, units):
    return np.split(u, u.shape[1] // units, axis=1)


@pytest.mark.parametrize("gates", [1, 3, 4])
def test_each_gate_block_gets_the_spectral_radius(gates):
    rng = np.random.default_rng(gates)
    u = rng.normal(size=(12, 12 * gates)).astype("float32")
    scaled = _np(normalize_recurrent(u, spectral_radius=0.95))
    for before, after in zip(_blocks(u, 12), _blocks(scaled, 12)):
        assert np.abs(np.linalg.eigvals(after)).max() == pytest.approx(0.95, rel=1e-5)
        # A rescaling: the same direction in matrix space.
        ratio = after / before
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)


def test_each_gate_block_gets_the_largest_entry():
    u = np.random.default_rng(0).normal(size=(5, 15))
    scaled = _np(normalize_recurrent(u, max_abs=0.1))
    for before, after in zip(_blocks(u, 5), _blocks(scaled, 5)):
        assert np.abs(after).max() == pytest.approx(0.1)
        np.testing.assert_allclose(after, before * 0.1 / np.abs(before).max())


def test_spectral_radius_of_a_rotation_like_matrix():
    # Complex eigenvalues: a scaled rotation has rho = its scale, 2.0.
    c, s = np.cos(0.3), np.sin(0.3)
    u = 2.0 * np.array([[c, -s], [s, c]])
    np.testing.assert_allclose(_np(normalize_recurrent(u, spectral_radius=1.0)), u / 2.0)


def test_scaled_init_in_an_lstm_and_its_round_trip(tmp_path):
    init = ScaledInit(SparseInit(4, seed=1), spectral_radius=1.1)
    model = keras.Sequential(
        [keras.Input((3, 2)), keras.layers.RNN(LSTMCell(8, recurrent_initializer=init))]
    )
    u = model.layers[0].cell.recurrent_kernel.numpy()
    for block in _blocks(u, 8):
        assert np.abs(np.linalg.eigvals(block)).max() == pytest.approx(1.1, rel=1e-5)
        np.testing.assert_array_equal((block != 0).sum(axis=0), 4)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    again = loaded.layers[0].cell.recurrent_initializer
    assert isinstance(again, ScaledInit) and again.spectral_radius == 1.1
    assert isinstance(again.initializer, SparseInit) and again.initializer.k == 4
    np.testing.assert_allclose(_np(again((8, 32))), _np(init((8, 32))))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "exactly one of"),
        (dict(spectral_radius=1.0, max_abs=1.0), "exactly one of"),
        (dict(spectral_radius=0.0), "`spectral_radius` must be a positive"),
        (dict(max_abs=-1.0), "`max_abs` must be a positive"),
    ],
)
def test_bad_targets_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScaledInit("orthogonal", **kwargs)
    with pytest.raises(ValueError, match=message):
        normalize_recurrent(np.eye(2), **kwargs)


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError, match="one square block per gate"):
        normalize_recurrent(np.ones((3, 4)), spectral_radius=1.0)
    with pytest.raises(ValueError, match="Expected a matrix"):
        normalize_recurrent(np.ones(3), max_abs=1.0)
    with pytest.raises(ValueError, match="spectral radius is 0"):
        normalize_recurrent(np.triu(np.ones((3, 3)), 1), spectral_radius=1.0)
