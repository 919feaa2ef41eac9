"""Deep RNNs of Pascanu et al. (2014) on polyphonic music at equal parameter counts.

Trains each model of `--models` (the tanh RNN, DT(S)-RNN, DOT(S)-RNN and
sRNN, LSTM and GRU, ...) with `python -m apps.music train`, its units chosen
by `keras_deeprnn.models.size_to_budget` so that every model has about
`--budget` parameters, and writes the frame NLL (nats per frame, summed over
the 88 keys, padding excluded), parameters, epochs and wall time of each to
`OUT/results.json` and a Markdown table to `OUT/results.md` (or `--table`).

Runs resume: a model whose saved metadata already matches its settings is
read back instead of trained, and an interrupted training continues from its
last finished epoch (the app's checkpoints under `OUT/runs/`).

    DEEPRNN_DATA_DIR=../shared/data python -m benchmarks.pascanu_music --data jsb --budget 100000 \\
        --models rnn,dts,dots,srnn,lstm,gru --epochs 80 --patience 10 --dropout 0.3

`--data jsb` is read from the folder named by `$DEEPRNN_DATA_DIR` (the shared
copy), else from Keras's cache, else downloaded (`keras_deeprnn.data.registry`).
Arguments after `--` go to `python -m apps.music train` unchanged.
"""

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import keras
import tensorflow as tf

from apps.common import runner
from apps.music import cli as music_cli
from apps.music.model import KEYS
from keras_deeprnn.models import count_params
from keras_deeprnn.models import size_to_budget

# name -> (cell, architecture, unit type of the intermediate layers)
MODELS = {
    "rnn": ("rnn", "rnn", "tanh"),
    "dt": ("rnn", "dt", "tanh"),
    "dts": ("rnn", "dts", "tanh"),
    "dot": ("rnn", "dot", "tanh"),
    "dots": ("rnn", "dots", "tanh"),
    "dots-relu": ("rnn", "dots", "relu"),
    "dots-maxout": ("rnn", "dots", "maxout"),
    "dots-lp": ("rnn", "dots", "lp"),
    "srnn": ("rnn", "srnn", "tanh"),
    "lstm": ("lstm", "rnn", "tanh"),
    "gru": ("gru", "rnn", "tanh"),
    "dts-gru": ("gru", "dts", "tanh"),
    "dots-gru": ("gru", "dots", "tanh"),
}
DEFAULT_MODELS = "rnn,dts,dots,srnn,lstm,gru"
LABELS = {
    "dt": "DT-RNN",
    "dts": "DT(S)-RNN",
    "dot": "DOT-RNN",
    "dots": "DOT(S)-RNN",
    "srnn": "sRNN",
}


def parser():
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.pascanu_music", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--data",
        default="jsb",
        help="data set, as the music app's --data (jsb, nottingham, PATH.mat)",
    )
    p.add_argument("--budget", type=int, default=100_000, help="parameters per model")
    p.add_argument(
        "--models", default=DEFAULT_MODELS, help=f"comma-separated, from {', '.join(MODELS)}"
    )
    p.add_argument(
        "--depth",
        type=int,
        default=2,
        help="depth of the deep transition (dt kinds) or of the stack (srnn)",
    )
    p.add_argument("--epochs", type=int, default=80, help="maximum epochs per model")
    p.add_argument("--patience", type=int, default=10, help="early stopping on the validation NLL")
    p.add_argument("--dropout", type=float, default=0.3, help="dropout on the recurrent outputs")
    p.add_argument("--input-dropout", type=float, default=0.0, help="dropout on the input frames")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="train on windows of at most this many frames (scores: whole pieces)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for models, checkpoints and results (default runs/pascanu-music-DATA-BUDGET)",
    )
    p.add_argument(
        "--table", type=Path, default=None, help="Markdown table to write (default OUT/results.md)"
    )
    return p


def model_settings(model, args):
    """The `apps.music train` settings of one model, sized to the budget."""
    if model not in MODELS:
        raise ValueError(f"Unknown model {model!r}; choose from {', '.join(MODELS)}.")
    cell, arch, unit_type = MODELS[model]
    structure = {
        "cell": cell,
        "unit_type": unit_type,
        "depth": None if arch == "rnn" else args.depth,
    }
    units = size_to_budget(arch, args.budget, input_dim=KEYS, output_dim=KEYS, **structure)
    return {
        "cell": cell,
        "arch": arch,
        "unit_type": unit_type,
        "units": units,
        "layers": None if arch == "rnn" else args.depth,
        "expected_parameters": count_params(
            arch, input_dim=KEYS, units=units, output_dim=KEYS, **structure
        ),
    }


def train_argv(name, settings, args, extra):
    return [
        "train",
        "--data",
        str(args.data),
        "--cell",
        settings["cell"],
        "--arch",
        settings["arch"],
        "--unit-type",
        settings["unit_type"],
        "--units",
        str(settings["units"]),
        *(["--depth", str(settings["layers"])] if settings["layers"] else []),
        "--epochs",
        str(args.epochs),
        "--patience",
        str(args.patience),
        "--dropout",
        str(args.dropout),
        "--lr",
        str(args.lr),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
        *(["--input-dropout", str(args.input_dropout)] if args.input_dropout else []),
        *(["--max-length", str(args.max_length)] if args.max_length else []),
        "--name",
        name,
        "--out",
        str(args.out / "models"),
        "--run-dir",
        str(args.out / "runs" / name),
        "--overwrite",
        *extra,
    ]


def run_model(model, args, extra):
    """Trains one model (or reads back its finished run); returns its row."""
    settings = model_settings(model, args)
    name = f"{Path(str(args.data)).stem}-{model}"
    argv = train_argv(name, settings, args, extra)
    meta_path = args.out / "models" / f"music-{name}" / runner.METADATA_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is None or meta.get("benchmark_argv") != argv:
        keras.backend.clear_session()
        code = music_cli.main(argv)
        if code:
            raise RuntimeError(f"{model}: `apps.music train` exited with status {code}")
        meta = json.loads(meta_path.read_text())
        meta["benchmark_argv"] = argv
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    epochs = meta["epochs_run"]
    return {
        "model": model,
        **settings,
        "parameters": meta["parameters"],
        "valid_nll": meta["metrics"]["valid_nll"],
        "test_nll": meta["metrics"]["test_nll"],
        "epochs_run": epochs,
        # Older metadata lacks best_epoch; EarlyStopping stops `patience`
        # epochs after the best one.
        "best_epoch": meta.get(
            "best_epoch", epochs - args.patience if epochs < args.epochs else None
        ),
        "train_seconds": meta["train_seconds"],
        "command": "python -m apps.music " + " ".join(shlex.quote(a) for a in argv),
    }


def describe(row):
    """The table's name of a model: "GRU", "DT(S)-RNN, 2 layers, tanh units", ..."""
    arch, cell = row["arch"], row["cell"]
    if arch == "rnn":
        return "tanh RNN" if cell == "rnn" else cell.upper()
    label = LABELS[arch] + ("" if cell == "rnn" else f" ({cell.upper()})")
    label += f", {row['layers']} layers"
    return label if arch == "srnn" else f"{label}, {row['unit_type']} units"


def markdown(rows, command):
    lines = [
        f"Command: `{command}`",
        "",
        "| model | units | parameters | valid NLL | test NLL | epochs (best) | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: r["test_nll"]):
        best = row["best_epoch"] if row["best_epoch"] is not None else "cap"
        lines.append(
            f"| {describe(row)} | {row['units']} | {row['parameters']:,} | "
            f"{row['valid_nll']:.3f} | {row['test_nll']:.3f} | {row['epochs_run']} ({best}) | "
            f"{row['train_seconds']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = parser().parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        print(
            f"error: unknown model(s) {unknown or models}; choose from {', '.join(MODELS)}",
            file=sys.stderr,
        )
        return 2
    args.out = args.out or Path("runs") / f"pascanu-music-{Path(str(args.data)).stem}-{args.budget}"
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.pascanu_music " + " ".join(
        shlex.quote(a) for a in (argv + (["--", *extra] if extra else []))
    )
    results_path = args.out / "results.json"
    rows = []
    for model in models:
        rows.append(run_model(model, args, extra))
        results_path.write_text(
            json.dumps(
                {
                    "command": command,
                    "data": str(args.data),
                    "budget": args.budget,
                    "machine": f"{os.cpu_count()} CPUs ({platform.machine()}), TensorFlow "
                    f"{tf.__version__}, Keras {keras.__version__}",
                    "models": rows,
                },
                indent=2,
            )
            + "\n"
        )
    table = args.table or args.out / "results.md"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(markdown(rows, command))
    print(markdown(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
