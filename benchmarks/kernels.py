"""The recurrent loops alone: the C++ kernels against the TensorFlow loops.

    python -m benchmarks.kernels [--rounds 7] [--out runs/kernels]

For each cell and batch size, times the three loops of
`keras_deeprnn.layers._fused` (forward without keeping anything, forward
keeping the activations, backward: dP_t and the state gradients) as the
C++ kernels (`_native`) and as the TensorFlow loops they replace, plain
and XLA-compiled, on the same random inputs, in one process, taking turns
(medians). Only the loops: the hoisted products and the weight gradients
are the same TensorFlow ops on every path. T, input and units as in
`benchmarks.speed`.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru,rnn,lstm-fgr")
    parser.add_argument("--shapes", default="64,1", help="batch sizes")
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=None, help="folder for kernels.md/.json")
    return parser.parse_args(argv)


def inputs(kind, batch, args, rng):
    """P, states, R, b_rec, extra of a random recurrence of `kind`."""
    import tensorflow as tf

    T, U = args.time, args.units
    width = {"gru": 3, "rnn": 1}.get(kind, 4) * U

    def normal(*shape, scale=1.0):
        return tf.constant(rng.normal(size=shape, scale=scale).astype("float32"))

    states = [tf.zeros((batch, U))] * (1 if kind in ("gru", "rnn") else 2)
    extra = []
    if kind == "lstm-fgr":
        states.append(tf.zeros((batch, 3 * U)))
        extra = [normal(U, scale=0.1) for _ in range(3)] + [normal(3 * U, 3 * U, scale=0.03)]
    b_rec = normal(width, scale=0.1) if kind == "gru" else None
    return normal(T, batch, width), states, normal(U, width, scale=0.05), b_rec, extra


def loops(kind, batch, args, rng):
    """{path: {piece: callable}} for the three loops on each path."""
    import tensorflow as tf

    from keras_deeprnn.layers import _fused
    from keras_deeprnn.layers import _native

    P, states, R, b_rec, extra = inputs(kind, batch, args, rng)
    dY = tf.constant(rng.normal(size=(args.time, batch, args.units)).astype("float32"))
    spec = _fused._VARIANTS.get(kind)
    kernel = kind if spec is None else "lstm"
    paths = {}

    def native_forward(keep):
        return _native.forward(
            spec, kernel, 0.0, False, keep, P, states, R, b_rec, extra, None, None
        )

    final, (Y, saved, *prev) = tf.function(lambda: native_forward(True))()
    prev = [Y] + prev
    paths["C++ kernel"] = {
        "forward": tf.function(lambda: native_forward(False)),
        "forward, keeping": tf.function(lambda: native_forward(True)),
        "backward": tf.function(
            lambda: _native.backward(
                spec,
                kernel,
                0.0,
                False,
                dY,
                states,
                R,
                extra,
                None,
                None,
                prev,
                saved,
                states[0],
                kind in _fused._SEPARATE_DA,
            )[0]
        ),
    }
    for jit in (False, True):
        forward = _fused._COMPILED[jit][0]

        def tf_forward(keep, forward=forward, jit=jit):
            return forward(kind, 0.0, False, keep, jit, P, states, R, b_rec, extra, None, None)

        final, (Y, saved, *prev) = tf_forward(True)
        prev = [Y] + prev
        backward = tf.function(
            lambda prev=prev, saved=saved: _fused._backward_loop(
                kind, 0.0, False, dY, states, R, extra, None, None, prev, saved, states[0]
            )[0],
            jit_compile=jit,
        )
        paths["TF loop, XLA" if jit else "TF loop"] = {
            "forward": lambda f=tf_forward: f(False),
            "forward, keeping": lambda f=tf_forward: f(True),
            "backward": backward,
        }
    return paths


def timed(fn):
    import tensorflow as tf

    start = time.perf_counter()
    # Reading the results waits for them (TensorList handles cannot be read).
    tf.nest.map_structure(lambda x: x.dtype != tf.variant and x.numpy(), fn())
    return time.perf_counter() - start


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for batch in (int(b) for b in args.shapes.split(",")):
        for kind in args.cells.split(","):
            paths = loops(kind, batch, args, rng)
            times = {(p, piece): [] for p, pieces in paths.items() for piece in pieces}
            for p, piece in times:  # trace, compile, warm up
                timed(paths[p][piece]), timed(paths[p][piece])
            for _ in range(args.rounds):
                for (p, piece), ts in times.items():
                    timed(paths[p][piece])  # untimed: the caches hold this one's data
                    ts.append(timed(paths[p][piece]))
            for piece in ("forward", "forward, keeping", "backward"):
                ms = {p: 1e3 * float(np.median(times[p, piece])) for p in paths}
                rows.append({"cell": kind, "batch": batch, "loop": piece, **ms})
    names = ["C++ kernel", "TF loop", "TF loop, XLA"]
    lines = [
        "| cell | batch | loop | "
        + " | ".join(f"{n} ms" for n in names)
        + " | TF loop / C++ | XLA / C++ |",
        "|---" * (5 + len(names)) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['batch']} | {r['loop']} | "
            + " | ".join(f"{r[n]:.1f}" for n in names)
            + f" | {r['TF loop'] / r['C++ kernel']:.2f}"
            + f" | {r['TF loop, XLA'] / r['C++ kernel']:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python -m benchmarks.kernels", *argv])
        (out / "kernels.md").write_text(f"Command: `{command}`\n\n{table}\n")
        (out / "kernels.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
