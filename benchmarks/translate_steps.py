"""Training-step time of `python -m apps.translate train`, to size a timed run.

Builds the data, vocabulary and model exactly as `train` does from the same
options, trains for `--seconds` (of the first epoch, on Multi30k), and prints the wall and
process CPU seconds a step (the first 3 steps, which trace the graph, left
out), with what one epoch costs. The vocabulary is cached in `--cache` (by
its options), so repeated runs skip learning it.

    python -m benchmarks.translate_steps --seconds 150 -- \\
        --data multi30k --src en --tgt de --units 256 --vocab-size 4000

Results: docs/translation.md ("Speed on this machine").
"""

import argparse
import hashlib
import os
import time
from pathlib import Path

import keras
import numpy as np

from apps.translate import cli
from apps.translate import data
from apps.translate.model import build_model
from apps.translate.tokenizer import Tokenizer

WARM_UP = 3


class StepTimes(keras.callbacks.Callback):
    """Wall and CPU time at every batch end; stops after `seconds`."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.times = [(time.perf_counter(), time.process_time())]

    def on_train_batch_end(self, batch, logs=None):
        self.times.append((time.perf_counter(), time.process_time()))
        spent = self.times[-1][0] - self.times[0][0]
        if spent > self.seconds and len(self.times) > WARM_UP + 10:
            self.model.stop_training = True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=150.0, help="training time to measure")
    p.add_argument("--cache", type=Path, default=Path("runs/translate-steps-vocab"))
    p.add_argument("train_options", nargs=argparse.REMAINDER, help="-- then `train` options")
    own = p.parse_args(argv)
    options = [o for o in own.train_options if o != "--"]
    args = cli.parser().parse_args(["train", *options])
    keras.utils.set_random_seed(args.seed)
    pairs = data.load_pairs(args.data, args.src, args.tgt, args.data_dir, args.valid_size)
    key = "|".join(
        map(
            str,
            (args.data, args.src, args.tgt, args.vocab_size, args.separate_vocab, args.tokenizer),
        )
    )
    cache = own.cache / hashlib.sha256(key.encode()).hexdigest()[:16]
    if cache.is_dir():
        tokenizer = Tokenizer.load(cache)
    else:
        tokenizer = Tokenizer.train(
            pairs["train"].source,
            pairs["train"].target,
            args.vocab_size,
            shared=not args.separate_vocab,
            model_type=args.tokenizer,
        )
        cache.mkdir(parents=True)
        for name, blob in tokenizer.files().items():
            (cache / name).write_bytes(blob)
    ds = data.datasets(pairs, tokenizer, args.max_length, args.batch_size, seed=args.seed)
    model = build_model(args, tokenizer)
    timer = StepTimes(own.seconds)
    # Epochs go on (a small data set) until the time and the steps are measured.
    model.fit(ds.train, epochs=10**6, verbose=0, callbacks=[timer])
    steps = np.diff(np.array(timer.times), axis=0)
    wall, cpu = steps[WARM_UP:].mean(axis=0)
    per_epoch = int(ds.train.cardinality())
    print(
        f"{' '.join(options)}: {model.count_params():,} parameters; {len(steps)} steps, the "
        f"first {steps[0, 0]:.0f} s; then {wall:.2f} s wall and {cpu:.2f} s CPU a step "
        f"(load average {os.getloadavg()[0]:.1f}); an epoch of {per_epoch} steps: "
        f"{wall * per_epoch / 60:.0f} min wall at this load, {cpu * per_epoch / 60:.0f} CPU-min"
    )


if __name__ == "__main__":
    main()
