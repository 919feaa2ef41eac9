"""Training speed of character language models, in characters per second.

For each network (CELL:KIND:DEPTH:UNITS, e.g. `lstm:srnn:2:512`), builds
`keras_deeprnn.models.language_model` over 65 characters, makes its
stateful copy with batch B (`stateful_clone`), and times
`train_on_batch` on random windows of B x k characters (Adam, clipnorm 1,
the cross-entropy), after two untimed steps: characters per second of wall
time and per CPU-second of this process (the steadier number on a shared
machine), and the epochs of Tiny Shakespeare's training part (1,003,854
characters) that 45 minutes would hold at that speed. The load average is
printed with the table: on a shared machine it says how much of the CPU
the numbers had.

    python -m benchmarks.text_speed lstm:rnn:1:512 gru:srnn:2:512 --batch-size 32 --bptt 64
"""

import argparse
import os
import sys
import time

import numpy as np

TRAIN_CHARS = 1003854


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("networks", nargs="+", help="CELL:KIND:DEPTH:UNITS, e.g. lstm:rnn:1:512")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bptt", type=int, default=64)
    p.add_argument("--embedding-dim", type=int, default=64)
    p.add_argument("--chars", type=int, default=60000, help="characters timed per network")
    return p.parse_args(argv)


def measure(network, batch_size, bptt, embedding_dim, chars):
    import keras

    from keras_deeprnn.models import language_model
    from keras_deeprnn.training import stateful_clone

    cell, kind, depth, units = network.split(":")
    model = language_model(
        65,
        units=int(units),
        kind=kind,
        cell=cell,
        depth=None if kind == "rnn" else int(depth),
        embedding_dim=embedding_dim,
    )
    trainer = stateful_clone(model, batch_size=batch_size)
    trainer.compile(
        keras.optimizers.Adam(2e-3, clipnorm=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.integers(0, 65, (batch_size, bptt)).astype("int32")
    y = rng.integers(0, 65, (batch_size, bptt)).astype("int32")
    for _ in range(2):
        trainer.train_on_batch(x, y)
    steps = max(2, chars // (batch_size * bptt))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer.train_on_batch(x, y)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per_wall = steps * batch_size * bptt / wall
    return model.count_params(), per_wall, steps * batch_size * bptt / cpu


def main(argv=None):
    args = parse_args(argv)
    print(f"B = {args.batch_size}, k = {args.bptt}, embedding {args.embedding_dim}; "
          f"load average before: {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| network | parameters | chars/s (wall) | chars per CPU-second | 45 min: epochs |")
    print("|---|---|---|---|---|")
    for network in args.networks:
        params, wall, cpu = measure(
            network, args.batch_size, args.bptt, args.embedding_dim, args.chars
        )
        epochs = 45 * 60 * wall / TRAIN_CHARS
        print(f"| {network} | {params:,} | {wall:,.0f} | {cpu:,.0f} | {epochs:.1f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
