"""Recurrent matrices scaled to a spectral radius or a largest entry."""

import keras
from keras import ops


def _check_target(spectral_radius, max_abs):
    if (spectral_radius is None) == (max_abs is None):
        raise ValueError(
            "Give exactly one of `spectral_radius` and `max_abs`; got "
            f"spectral_radius={spectral_radius!r}, max_abs={max_abs!r}."
        )
    name, value = ("spectral_radius", spectral_radius) if max_abs is None else ("max_abs", max_abs)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"Argument `{name}` must be a positive number, got {value!r}.")


def normalize_recurrent(matrix, spectral_radius=None, max_abs=None):
    """Scales a recurrent matrix to a spectral radius or a largest entry.

    A recurrent kernel `(units, g * units)` holds `g` square blocks, one per
    gate (g = 1 for a simple RNN, 3 for a GRU, 4 for an LSTM); each block
    `U_b` is scaled on its own:

        U_b <- U_b * spectral_radius / rho(U_b),  rho = max |eigenvalue|, or
        U_b <- U_b * max_abs / max |U_b[i, j]|.

    The spectral radius decides whether the linearised recurrence
    h_t = U h_{t-1} shrinks (rho < 1) or can explode (rho > 1) (Pascanu et
    al. 2013); Jaeger's echo state networks and Pascanu's experiments fix
    it at initialisation.

    Args:
        matrix: A `(units, g * units)` array or tensor.
        spectral_radius: Target largest absolute eigenvalue of each block.
        max_abs: Target largest absolute entry of each block (give one of
            the two).

    Returns:
        The scaled matrix, a tensor of the input's dtype.

    Example:

    >>> u = normalize_recurrent(np.array([[0.0, 2.0], [0.5, 0.0]]), spectral_radius=0.5)
    >>> [round(float(x), 6) for x in np.abs(np.linalg.eigvals(keras.ops.convert_to_numpy(u)))]
    [0.5, 0.5]
    """
    _check_target(spectral_radius, max_abs)
    matrix = ops.convert_to_tensor(matrix)
    if len(matrix.shape) != 2:
        raise ValueError(f"Expected a matrix (units, g * units), got shape {tuple(matrix.shape)}.")
    units, columns = matrix.shape
    if columns % units:
        raise ValueError(
            "A recurrent matrix has shape (units, g * units), one square block "
            f"per gate; got shape {(units, columns)}."
        )
    blocks = []
    for block in ops.split(matrix, columns // units, axis=1):
        if spectral_radius is not None:
            eigenvalues, _ = ops.eig(ops.cast(block, "float64"))
            size, target, what = ops.max(ops.abs(eigenvalues)), spectral_radius, "spectral radius"
        else:
            size, target, what = ops.max(ops.abs(block)), max_abs, "largest entry"
        if float(size) == 0.0:
            raise ValueError(f"Cannot scale a recurrent block whose {what} is 0.")
        blocks.append(block * ops.cast(target / size, block.dtype))
    return ops.concatenate(blocks, axis=1)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class ScaledInit(keras.initializers.Initializer):
    """An initializer whose recurrent matrices are rescaled after drawing.

    Draws with `initializer`, then applies `normalize_recurrent`: each
    `(units, units)` gate block gets the given spectral radius or largest
    absolute entry.

    Args:
        initializer: The initializer that draws the matrix (any Keras
            initializer, its name or config, e.g. `SparseInit(15)`).
        spectral_radius: Target largest absolute eigenvalue of each block.
        max_abs: Target largest absolute entry of each block (give one of
            the two).

    Example:

    >>> init = ScaledInit(SparseInit(k=3, seed=0), spectral_radius=1.1)
    >>> u = keras.ops.convert_to_numpy(init((6, 6)))
    >>> round(float(np.abs(np.linalg.eigvals(u)).max()), 4)
    1.1
    >>> cell = LSTMCell(6, recurrent_initializer=init)
    """

    def __init__(self, initializer="orthogonal", spectral_radius=None, max_abs=None):
        _check_target(spectral_radius, max_abs)
        self.initializer = keras.initializers.get(initializer)
        self.spectral_radius = spectral_radius
        self.max_abs = max_abs

    def __call__(self, shape, dtype=None):
        return normalize_recurrent(
            self.initializer(shape, dtype=dtype),
            spectral_radius=self.spectral_radius,
            max_abs=self.max_abs,
        )

    def get_config(self):
        return {
            "initializer": keras.saving.serialize_keras_object(self.initializer),
            "spectral_radius": self.spectral_radius,
            "max_abs": self.max_abs,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["initializer"] = keras.saving.deserialize_keras_object(config["initializer"])
        return cls(**config)
