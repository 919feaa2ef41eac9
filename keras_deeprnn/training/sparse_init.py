"""Sparse initialisation (Martens 2010)."""

import random

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SparseInit(keras.initializers.Initializer):
    """Each unit gets exactly `k` non-zero incoming weights.

    A unit is an output column of a Keras kernel of shape `(inputs, units)`:
    in every column, `k` rows chosen uniformly at random get weights drawn
    from `N(0, scale^2)` and all others are zero,

        W[:, j] = scale * z_j * m_j,  z_j ~ N(0, I),  m_j in {0, 1}^inputs,
        sum(m_j) = min(k, inputs).

    Martens (2010, "Deep learning via Hessian-free optimization") uses
    k = 15; Pascanu et al. (2013, 2014) use k = 15 or 20 for the recurrent
    and input matrices. Unlike dense scaled initialisations, the size of the
    incoming signal does not depend on the layer's width. In a gated cell's
    kernel `(inputs, 4 units)` every gate's column is a unit of its own. A
    column with fewer than `k` rows gets all its rows.

    For a recurrent matrix, combine it with `ScaledInit` to fix the spectral
    radius: `ScaledInit(SparseInit(15), spectral_radius=1.1)`.

    Args:
        k: Non-zero weights per unit (positive integer).
        scale: Standard deviation of the non-zero weights (> 0).
        seed: Integer seed (None: a random one, drawn once, so calls of the
            same instance give the same matrix, as Keras initializers do).

    Example:

    >>> init = SparseInit(k=2, seed=0)
    >>> w = init((5, 3))
    >>> [int(c) for c in (keras.ops.convert_to_numpy(w) != 0).sum(axis=0)]
    [2, 2, 2]
    """

    def __init__(self, k=15, scale=1.0, seed=None):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Argument `k` must be a positive integer, got {k!r}.")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
            raise ValueError(f"Argument `scale` must be a positive number, got {scale!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"Argument `seed` must be an integer or None, got {seed!r}.")
        self.k = k
        self.scale = float(scale)
        self.seed = seed
        self._seed = seed if seed is not None else random.randint(0, 2**30)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2:
            raise ValueError(
                f"SparseInit initialises matrices (inputs, units); got the shape {shape}."
            )
        values = keras.random.normal(shape, stddev=self.scale, dtype=dtype, seed=self._seed)
        # The rank of each entry in its column under a random order: the k
        # smallest ranks are k rows drawn without replacement.
        order = keras.random.uniform(shape, seed=self._seed + 1)
        rank = ops.argsort(ops.argsort(order, axis=0), axis=0)
        return ops.where(rank < self.k, values, ops.zeros_like(values))

    def get_config(self):
        return {"k": self.k, "scale": self.scale, "seed": self.seed}
