"""A one-minute demo: a small LSTM learns to continue generated waveforms.

Run with `python -m keras_deeprnn.demo` (or `deeprnn demo`). Each sequence is
a sum of two sinusoids with random frequencies and phases plus a little
noise; the model predicts x_{t+1} from x_1..x_t (many-to-many). The demo
prints Keras's progress bar per epoch and the loss going down.
"""

import argparse
import sys

import numpy as np


def make_waves(count, length, seed):
    """`count` sequences of shape (length + 1, 1): two random sinusoids."""
    rng = np.random.default_rng(seed)
    t = np.arange(length + 1)[None, :]
    freq = rng.uniform(0.02, 0.12, size=(count, 2, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(count, 2, 1))
    waves = np.sin(2 * np.pi * freq * t + phase).sum(axis=1) / 2
    waves += 0.02 * rng.standard_normal(waves.shape)
    return waves[..., None].astype("float32")


def build_model(cell_name, units):
    import keras

    from keras_deeprnn import cells

    model = keras.Sequential(
        [
            keras.Input((None, 1)),
            keras.layers.RNN(cells.get(cell_name, units), return_sequences=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="deeprnn demo",
        description="Train a small RNN on generated waveforms (offline).",
    )
    parser.add_argument(
        "--cell", default="lstm", help="a cell name, e.g. lstm, gru, rnn, mut1, lstm-cifg"
    )
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    keras.utils.set_random_seed(args.seed)
    data = make_waves(512, 50, args.seed)
    x, y = data[:, :-1], data[:, 1:]
    model = build_model(args.cell, args.units)
    print(
        f"Training {args.cell} ({model.count_params()} parameters) on "
        f"{len(x)} generated sequences of {x.shape[1]} steps."
    )
    history = model.fit(x, y, batch_size=32, epochs=args.epochs, validation_split=0.125, verbose=2)
    losses = history.history["loss"]
    print("loss per epoch: " + " -> ".join(f"{v:.4f}" for v in losses))
    print(
        f"loss went from {losses[0]:.4f} to {losses[-1]:.4f} "
        f"({100 * (1 - losses[-1] / losses[0]):.0f}% lower)."
    )
    return 0 if losses[-1] < losses[0] else 1


if __name__ == "__main__":
    sys.exit(main())
