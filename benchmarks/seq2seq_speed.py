"""Training speed (target tokens per second) of sequence-to-sequence models.

Times one training step (forward + backward + Adam, `train_on_batch`, the
masked cross-entropy of `keras_deeprnn.seq2seq.MaskedCrossEntropy`) of

- "keras": a plain Keras encoder-decoder as in the keras.io / TensorFlow
  examples: `Embedding(mask_zero=True)`, a `Bidirectional(keras.layers.LSTM)`
  encoder, a dense+tanh bridge of its final states, a `keras.layers.LSTM`
  decoder, `keras.layers.AdditiveAttention` over the encoder's outputs for
  all decoder steps at once, Luong's attentional layer tanh([c; h] W_c) and
  the output `Dense`;
- `keras_deeprnn.seq2seq.Seq2Seq` of the same sizes (LSTM, bidirectional
  encoder of units / 2 per direction, embeddings, dropout, vocabularies):
  the fast decoder (fused whole-sequence layers, attention of all steps at
  once) with the additive ("bahdanau") and the "luong-dot" scores, and the
  cell decoder (`AttentionCell` in stock `keras.layers.RNN`: Bahdanau's
  order, and Luong's input feeding with the "general" score).

on random batches of `--batch` sentence pairs whose source and target
lengths are uniform in [length / 2, length] (padding with id 0). Tokens/s
counts the real (non-padding) target tokens. The models run in rounds,
every model `--steps` steps per round after a warm-up, so that they share
the machine's noise; the table gives medians over rounds of the wall-clock
and of the process CPU time per step.

    python -m benchmarks.seq2seq_speed --out runs/seq2seq-speed
    python -m benchmarks.seq2seq_speed --rounds 3 --steps 3 --vocabulary 8000

Writes OUT/seq2seq_speed.json and OUT/seq2seq_speed.md.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

MODELS = ("keras", "fast-bahdanau", "fast-luong-dot", "cell-bahdanau", "cell-luong-general")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--batch", type=int, default=64, help="sentence pairs per step")
    parser.add_argument("--length", type=int, default=24, help="longest source / target")
    parser.add_argument("--vocabulary", type=int, default=8000, help="source and target ids")
    parser.add_argument("--embedding", type=int, default=256, help="embedding width")
    parser.add_argument("--units", type=int, default=256, help="decoder units")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/seq2seq-speed", help="output folder")
    return parser.parse_args(argv)


def batch_data(args):
    """((source, target_in), target_out) with random lengths, 0 = padding."""
    rng = np.random.default_rng(args.seed)

    def ids(lengths):
        x = rng.integers(3, args.vocabulary, (args.batch, args.length)).astype("int32")
        x[np.arange(args.length)[None, :] >= lengths[:, None]] = 0
        return x

    low = max(1, args.length // 2)
    source = ids(rng.integers(low, args.length + 1, args.batch))
    lengths = rng.integers(low, args.length, args.batch)
    target_out = ids(lengths)
    target_out[np.arange(args.batch), lengths] = 2  # eos
    target_in = np.concatenate([np.ones((args.batch, 1), "int32"), target_out[:, :-1]], 1)
    target_in[target_in == 2] = 0
    return (source, target_in), target_out


def keras_model(args):
    """The plain Keras encoder-decoder (keras.io style) of the same sizes."""
    import keras

    half = args.units // 2
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target_in")
    x = keras.layers.Embedding(args.vocabulary, args.embedding, mask_zero=True)(source)
    x = keras.layers.Dropout(args.dropout)(x)
    memory, fh, fc, bh, bc = keras.layers.Bidirectional(
        keras.layers.LSTM(half, return_sequences=True, return_state=True)
    )(x)
    h0 = keras.layers.Dense(args.units, activation="tanh")(keras.layers.Concatenate()([fh, bh]))
    c0 = keras.layers.Dense(args.units, activation="tanh")(keras.layers.Concatenate()([fc, bc]))
    y = keras.layers.Embedding(args.vocabulary, args.embedding, mask_zero=True)(target)
    y = keras.layers.Dropout(args.dropout)(y)
    h = keras.layers.LSTM(args.units, return_sequences=True)(y, initial_state=[h0, c0])
    context = keras.layers.AdditiveAttention()([h, memory])
    h = keras.layers.Dense(args.units, activation="tanh", use_bias=False)(
        keras.layers.Concatenate()([context, h])
    )
    h = keras.layers.Dropout(args.dropout)(h)
    logits = keras.layers.Dense(args.vocabulary)(h)
    return keras.Model([source, target], logits, name="keras_seq2seq")


def build(name, args):
    import keras

    from keras_deeprnn.seq2seq import MaskedCrossEntropy
    from keras_deeprnn.seq2seq import Seq2Seq

    if name == "keras":
        model = keras_model(args)
    else:
        decoder, attention = name.split("-", 1)
        model = Seq2Seq(
            args.vocabulary,
            args.vocabulary,
            embedding_dim=args.embedding,
            units=args.units,
            attention=attention,
            decoder=decoder,
            dropout=args.dropout,
        )
    model.compile(keras.optimizers.Adam(1e-3), loss=MaskedCrossEntropy(), jit_compile=False)
    return model


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    args = parse_args(argv)
    names = args.models.split(",")
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if args.units % 2:
        raise SystemExit("--units must be even (the encoder has units / 2 per direction)")
    x, y = batch_data(args)
    tokens = int(np.sum(y != 0))
    models = {}
    for name in names:
        start = time.perf_counter()
        models[name] = build(name, args)
        models[name].train_on_batch(x, y)  # trace and warm up
        models[name].train_on_batch(x, y)
        print(f"{name}: ready in {time.perf_counter() - start:.1f} s", flush=True)
    times = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, model in models.items():
            model.train_on_batch(x, y)  # untimed: caches
            runs = [timed(lambda m=model: m.train_on_batch(x, y)) for _ in range(args.steps)]
            times[name].append(np.mean(runs, axis=0))
    rows = []
    for name in names:
        wall, cpu = np.median(np.array(times[name]), axis=0)
        rows.append(
            {
                "model": name,
                "params": int(models[name].count_params()),
                "step_ms": 1e3 * wall,
                "step_cpu_ms": 1e3 * cpu,
                "tokens_per_s": tokens / wall,
                "tokens_per_cpu_s": tokens / cpu,
            }
        )
    base = next((r for r in rows if r["model"] == "keras"), None)
    for row in rows:
        if base is not None:
            row["vs_keras"] = row["tokens_per_s"] / base["tokens_per_s"]
            row["vs_keras_cpu"] = row["tokens_per_cpu_s"] / base["tokens_per_cpu_s"]
    report = {
        "command": "python -m benchmarks.seq2seq_speed "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "shape": {
            "batch": args.batch,
            "length": args.length,
            "vocabulary": args.vocabulary,
            "embedding": args.embedding,
            "units": args.units,
            "target_tokens_per_batch": tokens,
        },
        "rows": rows,
    }
    table = markdown(rows)
    print(table, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seq2seq_speed.json").write_text(json.dumps(report, indent=1))
    (out / "seq2seq_speed.md").write_text(f"Command: `{report['command']}`\n\n{table}\n")
    print(f"wrote {out / 'seq2seq_speed.json'} and {out / 'seq2seq_speed.md'}")
    return report


def markdown(rows):
    lines = [
        "| model | parameters | step ms | step CPU ms | target tokens/s | tokens per CPU-s "
        "| vs keras (CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['vs_keras']:.2f} ({r['vs_keras_cpu']:.2f})" if "vs_keras" in r else ""
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['step_ms']:.1f} | {r['step_cpu_ms']:.1f} "
            f"| {r['tokens_per_s']:.0f} | {r['tokens_per_cpu_s']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
