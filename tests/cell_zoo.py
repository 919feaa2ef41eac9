"""Every cell configuration the tests sweep over, with the ids used by every
test module, and what each module checks it against.

`CONFIGS[id](units, **cell_kwargs)` makes the cell. Each entry also names
its independent NumPy reference (`tests/reference.py`), its documented
weight shapes, and the fused kernel `keras_deeprnn.layers.RNN` must pick
for it (None: the hoisted loop) and, on a GPU, Keras's cuDNN loop.
`raw_input` marks the MUT cells' raw x term: such an entry is meant to
see inputs as wide as its units (no learned projection); sweeps that fix
the input width run it as the projected cell.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import reference as ref  # tests/reference.py (pytest puts tests/ on sys.path)

from keras_deeprnn import cells


@dataclass(frozen=True)
class Cell:
    id: str
    make: Callable  # make(units, **cell_kwargs) -> cell
    reference: Callable  # reference(x, weights) -> (outputs, final states)
    shapes: Callable  # shapes(input_dim, units) -> {weight name: shape}
    fused: str | None  # the kernel kind of `fused_spec()`, or None
    raw_input: bool = False
    cudnn: str | None = None  # `fused_spec().cudnn`: Keras's cuDNN loop on a GPU

    def __call__(self, units, **cell_kwargs):
        return self.make(units, **cell_kwargs)

    def input_dim(self, units, default):
        """The input width to test with: `units` for a raw x term."""
        return units if self.raw_input else default

    def __repr__(self):
        return self.id


def _shapes(d, u, kernel_blocks, recurrent_blocks, bias_shape, **extra):
    """The documented weight shapes: column blocks of `units` each."""
    return {
        "kernel": (d, kernel_blocks * u),
        "recurrent_kernel": (u, recurrent_blocks * u),
        "bias": bias_shape,
        **extra,
    }


def _rnn(fused="rnn", **cell_kwargs):
    trainable = cell_kwargs.get("trainable_leak", False)
    return dict(
        make=lambda u, **kw: cells.SimpleRNNCell(u, **cell_kwargs, **kw),
        # With a trainable leak the reference reads weights["leak"].
        reference=functools.partial(ref.simple_rnn, leak=cell_kwargs.get("leak", 0.0)),
        shapes=lambda d, u: _shapes(d, u, 1, 1, (u,), **({"leak": (u,)} if trainable else {})),
        fused=fused,
    )


def _lstm(variant, make=None):
    def shapes(d, u):
        k = len(ref.lstm_gate_slices(variant))
        extra = {name: (u,) for name in ref.lstm_peepholes(variant)}
        if variant == "fgr":
            extra["gate_recurrent_kernel"] = (3 * u, 3 * u)
        return _shapes(d, u, k, k, (k * u,), **extra)

    return dict(
        make=make or (lambda u, **kw: cells.LSTMCell(u, variant=variant, **kw)),
        reference=functools.partial(ref.lstm, variant=variant),
        shapes=shapes,
        fused="lstm" if variant == "np" else f"lstm-{variant}",
        cudnn="lstm" if variant == "np" else None,
    )


def _gru(reset_after):
    return dict(
        make=lambda u, **kw: cells.GRUCell(u, reset_after=reset_after, **kw),
        reference=functools.partial(ref.gru, reset_after=reset_after),
        shapes=lambda d, u: _shapes(d, u, 3, 3, (2, 3 * u) if reset_after else (3 * u,)),
        fused="gru" if reset_after else None,
        cudnn="gru" if reset_after else None,
    )


def _mut(number, recurrent_blocks, raw=False):
    """MUT1 and MUT2 have a raw x block: 2 kernel blocks when input_dim ==
    units, else 3 (a learned projection); MUT3 always has 3."""
    reference = getattr(ref, f"mut{number}")
    if number != 3:
        reference = functools.partial(reference, project=not raw)
    return dict(
        make=getattr(cells, f"MUT{number}Cell"),
        reference=reference,
        shapes=lambda d, u: _shapes(
            d, u, 2 if number != 3 and d == u else 3, recurrent_blocks, (3 * u,)
        ),
        fused=f"mut{number}",
        raw_input=raw,
    )


_ENTRIES = {
    "rnn": _rnn(),
    "rnn-leak": _rnn(leak=0.3),
    "rnn-trainable-leak": _rnn(fused=None, leak=0.3, trainable_leak=True),
    **{f"lstm-{v}": _lstm(v) for v in ref.LSTM_VARIANTS},
    "peephole-lstm": _lstm("vanilla", lambda u, **kw: cells.PeepholeLSTMCell(u, **kw)),
    "gru": _gru(True),
    "gru-reset-before": _gru(False),
    "mut1": _mut(1, 2),
    "mut1-raw": _mut(1, 2, raw=True),
    "mut2": _mut(2, 3),
    "mut2-raw": _mut(2, 3, raw=True),
    "mut3": _mut(3, 3),
}
CONFIGS = {name: Cell(name, **entry) for name, entry in _ENTRIES.items()}
IDS = sorted(CONFIGS)
