"""Intermediate layers shared by the deep RNN layers: unit types, argument
checks, and stacks of hidden layers.

A hidden layer of width `w` with unit type `g` computes `g(z W + b)`. For
tanh and ReLU, `W` has `w` columns. Maxout and Lp units pool several linear
filters per unit, so `W` and `b` have `m * w` columns (m = `maxout_pieces`
or `lp_group`), laid out in blocks: filter j of unit i is column
`j * w + i`.

* maxout (Goodfellow et al. 2013): y_i = max_j a_ji.
* Lp (Gulcehre et al. 2014, learned-norm pooling):

      y_i = (sum_j s_ji ** p_i) ** (1 / p_i),
      s_ji = sqrt(a_ji ** 2 + eps ** 2),   p_i = 1 + softplus(rho_i)

  with one trainable `rho_i` per unit (weight `lp_rho_*`, initialised so that
  p_i = `lp_p_init`). s replaces |a| by a smooth function that differs from it
  by at most eps (default 1e-6): every term is then strictly positive, so the
  gradients through |a| at a = 0, through log s (the gradient in p) and
  through the root stay finite. It is evaluated as
  m (sum_j (s_ji / m) ** p_i) ** (1 / p_i) with m = max_j s_ji (the same
  value, without overflow for large p), in at least float32.

These are plain helpers, not layers: the weights belong to the layer or cell
that uses them, so they serialize with it.
"""

import functools
import math

from keras import activations
from keras import backend
from keras import initializers
from keras import ops

from keras_deeprnn.cells.base import check_choice
from keras_deeprnn.cells.base import slices

UNIT_TYPES = ("tanh", "relu", "maxout", "lp")


def check_int(name, value, minimum, what=""):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Argument `{name}` must be an integer >= {minimum}{what}, got {value!r}.")
    return value


def check_positive_float(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or not math.isfinite(value)
    ):
        raise ValueError(f"Argument `{name}` must be a positive float, got {value!r}.")
    return float(value)


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"Argument `{name}` must be True or False, got {value!r}.")
    return value


def check_widths(name, widths, count, default):
    """`count` intermediate widths: None (all `default`), an int, or a list."""
    if widths is None:
        return [default] * count
    if isinstance(widths, int) and not isinstance(widths, bool):
        widths = [widths] * count
    if not isinstance(widths, (list, tuple)):
        raise ValueError(
            f"Argument `{name}` must be None, a positive integer or a list of "
            f"{count} positive integers, got {widths!r}."
        )
    if len(widths) != count:
        raise ValueError(
            f"Argument `{name}` must list {count} width(s), one per "
            f"intermediate layer (depth - 1), got {list(widths)!r}."
        )
    for width in widths:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(
                f"Argument `{name}` must hold positive integers, got {list(widths)!r}."
            )
    return list(widths)


class HiddenUnits:
    """The unit type of intermediate layers: its arguments and its math.

    Args:
        unit_type: One of "tanh", "relu", "maxout", "lp".
        maxout_pieces: Linear pieces per maxout unit (integer >= 2).
        lp_group: Filters pooled per Lp unit (integer >= 1).
        lp_epsilon: eps of the smoothed |a| of Lp units (positive float).
        lp_p_init: Initial p of Lp units (float > 1).
        type_argument: The argument name that error messages give for
            `unit_type`.
    """

    def __init__(
        self,
        unit_type="tanh",
        maxout_pieces=2,
        lp_group=2,
        lp_epsilon=1e-6,
        lp_p_init=2.0,
        type_argument="unit_type",
    ):
        self.unit_type = check_choice(type_argument, unit_type, UNIT_TYPES)
        self.maxout_pieces = check_int("maxout_pieces", maxout_pieces, 2)
        self.lp_group = check_int("lp_group", lp_group, 1)
        self.lp_epsilon = check_positive_float("lp_epsilon", lp_epsilon)
        self.lp_p_init = check_positive_float("lp_p_init", lp_p_init)
        if not self.lp_p_init > 1.0:
            raise ValueError(f"Argument `lp_p_init` must be > 1, got {lp_p_init!r}.")

    @property
    def multiplier(self):
        """Linear filters per unit: pre-activation width / layer width."""
        if self.unit_type == "maxout":
            return self.maxout_pieces
        if self.unit_type == "lp":
            return self.lp_group
        return 1

    def get_config(self):
        return {
            "unit_type": self.unit_type,
            "maxout_pieces": self.maxout_pieces,
            "lp_group": self.lp_group,
            "lp_epsilon": self.lp_epsilon,
            "lp_p_init": self.lp_p_init,
        }

    def add_rho(self, layer, width, name):
        """The trainable `rho` (width,) of an Lp layer; None otherwise."""
        if self.unit_type != "lp":
            return None
        # softplus^-1(p - 1), so that p starts at lp_p_init.
        rho = math.log(math.expm1(self.lp_p_init - 1.0))
        return layer.add_weight(shape=(width,), name=name, initializer=initializers.Constant(rho))

    def __call__(self, pre, rho=None):
        """The layer output from its pre-activation (`multiplier` blocks)."""
        if self.unit_type in ("tanh", "relu"):
            return activations.get(self.unit_type)(pre)
        width = pre.shape[-1] // self.multiplier
        pieces = slices(pre, self.multiplier, width)
        if self.unit_type == "maxout":
            return functools.reduce(ops.maximum, pieces)
        return self._lp(pieces, rho)

    def _lp(self, pieces, rho):
        dtype = backend.standardize_dtype(pieces[0].dtype)
        work = "float32" if dtype in ("float16", "bfloat16") else dtype
        p = 1.0 + ops.softplus(ops.cast(rho, work))
        eps2 = self.lp_epsilon**2
        s = [ops.sqrt(ops.square(ops.cast(a, work)) + eps2) for a in pieces]
        m = functools.reduce(ops.maximum, s)
        total = functools.reduce(ops.add, [ops.power(v / m, p) for v in s])
        return ops.cast(m * ops.power(total, 1.0 / p), dtype)


class HiddenStack:
    """Weights and forward pass of consecutive hidden layers.

    Layer k (numbered from `first_index`) maps width `w_{k-1}` to `w_k`:
    `z_k = g(z_{k-1} W_k + b_k)`, with weights `{prefix}kernel_{k}`
    (w_{k-1}, m w_k), `{prefix}bias_{k}` (m w_k,) and, for Lp units,
    `lp_rho_{k}` (w_k,).

    Args:
        units: A `HiddenUnits`.
        add_matrix: `add_matrix(name, rows, columns)` -> weight.
        add_vector: `add_vector(name, size)` -> weight or None (no bias).
        layer: The owner, for the Lp `rho` weights.
    """

    def __init__(
        self, units, input_width, widths, add_matrix, add_vector, layer, prefix, first_index=1
    ):
        self.units = units
        self.layers = []
        rows = input_width
        m = units.multiplier
        for k, width in enumerate(widths, start=first_index):
            self.layers.append(
                (
                    add_matrix(f"{prefix}kernel_{k}", rows, m * width),
                    add_vector(f"{prefix}bias_{k}", m * width),
                    units.add_rho(layer, width, f"lp_rho_{k}"),
                )
            )
            rows = width

    def __call__(self, z):
        for kernel, bias, rho in self.layers:
            pre = ops.matmul(z, kernel)
            if bias is not None:
                pre = pre + bias
            z = self.units(pre, rho)
        return z
