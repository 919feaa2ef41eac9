"""The command line every app shares.

Each app (`python -m apps.NAME COMMAND`) is a parser built here, its own
options added by its `data.py` (`add_arguments`) and `cli.py`, and a table of
commands run by `main`. Options that mean the same thing in every app are
declared once, with one name and one meaning:

| group | options |
|---|---|
| `add_run_options` | `--seed --strategy --name --out --run-dir --overwrite` |
| `add_model_options` | `--cell --arch --depth --units --unit-type --dropout --recurrent-dropout` |
| `add_fit_options` | `--epochs --patience --lr --clipnorm [--time-budget --lr-schedule --ema]` |
| `add_export_command` | `export MODEL [--out] [--format] [--quantize] [--fuse-lstm]` |

Numbers are checked when parsed (a NaN learning rate or a negative size is
refused with the option's name, before anything loads). Exit codes: 0 done,
2 bad input (options, data, model files) or a file that cannot be read or
written (a full disk, a read-only folder), 3 a training run diverged.
"""

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from . import runner

#: How an app is called, in its usage line (`deeprnn` sets "deeprnn {app}").
PROG = "python -m apps.{app}"
DEFAULT_SAVED = Path("saved_models")
DEFAULT_RUNS = Path("runs")
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


# -- argument types: checked at parse time, named by argparse in the error ---


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _checked(kind, test, what):
    def parse(text):
        value = _number(kind, text)
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _checked(int, lambda v: v > 0, "a positive integer")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: v > 0, "a number > 0")
non_negative_float = _checked(float, lambda v: v >= 0, "a number >= 0")
rate = _checked(float, lambda v: 0 <= v < 1, "a rate in [0, 1)")
fraction = _checked(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


# -- option groups -------------------------------------------------------------


def app_parser(app, doc):
    """The top parser of `python -m apps.APP` and its subcommand table.

    The description is the second paragraph of the app's docstring.
    """
    top = argparse.ArgumentParser(prog=PROG.format(app=app), description=doc.split("\n\n")[1])
    return top, top.add_subparsers(dest="command", required=True)


def add_run_options(p, app, name_default):
    """Seed, strategy, where the model and the run go."""
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--strategy",
        default="default",
        choices=runner.STRATEGIES,
        help="tf.distribute strategy (multi-worker reads TF_CONFIG)",
    )
    p.add_argument("--name", default=None, help=f"model name (default: {name_default})")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_SAVED,
        help=f"folder that receives {app}-NAME/ (default saved_models)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help=f"checkpoints and TensorBoard logs (default runs/{app}-NAME); re-running "
        "with the same folder resumes an interrupted run",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing {app}-NAME/ (default: a new run with the same name "
        "is saved as NAME-2, NAME-3, ...)",
    )


def add_model_options(
    p, archs, units=128, dropout=0.0, dropout_help="dropout on the recurrent layers' outputs"
):
    """The recurrent network: cell, architecture, sizes, dropout."""
    from keras_deeprnn.cells import CELL_NAMES
    from keras_deeprnn.layers import UNIT_TYPES

    p.add_argument("--cell", default="lstm", choices=CELL_NAMES, help="recurrent cell")
    p.add_argument(
        "--arch",
        default="rnn",
        choices=archs,
        help="rnn: one recurrent layer; dt/dts: deep transition without/with shortcuts; "
        "dot/dots: the same plus a deep output; srnn: stacked layers (Pascanu et al. "
        "2014, keras_deeprnn.models.deep_rnn)",
    )
    p.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        help="transition layers (dt, dts, dot, dots) or stacked layers (srnn); "
        "default 2 (1 for rnn, which takes no other)",
    )
    p.add_argument("--units", type=positive_int, default=units, help="units per recurrent layer")
    p.add_argument(
        "--unit-type",
        default="tanh",
        choices=UNIT_TYPES,
        help="units of the intermediate layers of deep architectures",
    )
    p.add_argument("--dropout", type=rate, default=dropout, help=dropout_help)
    p.add_argument(
        "--recurrent-dropout",
        type=rate,
        default=0.0,
        help="dropout on the recurrent state inside the cells, one mask per sequence",
    )


def add_fit_options(
    p, epochs, patience, lr, clipnorm, time_budget=False, lr_schedule=False, ema=False
):
    """Epochs, early stopping and the optimizer (the batch size is a data
    option: each app's `data.add_arguments`); with `time_budget`, the
    `--time-budget MINUTES` that the app passes to `runner.fit`
    (`seconds(args.time_budget)`); with `lr_schedule`, `--lr-schedule
    constant|cosine` (`runner.learning_rate` and `runner.fit`'s
    `cosine_from`); with `ema`, `--ema MOMENTUM` (Adam's `use_ema`, which
    `runner.fit` validates and keeps)."""
    p.add_argument("--epochs", type=positive_int, default=epochs, help="maximum number of epochs")
    p.add_argument(
        "--patience",
        type=non_negative_int,
        default=patience,
        help="stop after this many epochs without a better validation score",
    )
    p.add_argument("--lr", type=positive_float, default=lr, help="Adam learning rate")
    p.add_argument(
        "--clipnorm",
        type=non_negative_float,
        default=clipnorm,
        help="clip each gradient to this norm (0: off)",
    )
    if time_budget:
        p.add_argument(
            "--time-budget",
            type=positive_float,
            default=None,
            metavar="MINUTES",
            help="wall-clock limit of the training (validation included; not the data "
            "preparation nor the final scoring): it stops at the end of the last epoch "
            "that fits and saves the best epoch's weights (default: no limit)",
        )
    if lr_schedule:
        p.add_argument(
            "--lr-schedule",
            default="constant",
            choices=runner.LR_SCHEDULES,
            help="cosine: from --lr down to --lr/10 over --epochs, or over --time-budget by "
            "the wall clock when that is set (the run then uses the whole budget)",
        )
    if ema:
        p.add_argument(
            "--ema",
            type=fraction,
            default=None,
            metavar="MOMENTUM",
            help="validate, keep and save the moving average of the weights over the "
            "training steps (Polyak averaging, Adam's use_ema; e.g. 0.999) instead of the "
            "last weights",
        )


def learning_rate_plan(args, train_data):
    """`(lr, cosine_from)` for `--lr --lr-schedule --time-budget --epochs`:
    the optimizer's learning rate (a number, or with a cosine and no budget
    a `CosineDecay` over the epochs' batches of `train_data`) and
    `runner.fit`'s `cosine_from` (the clock's cosine over the budget)."""
    cosine = args.lr_schedule == "cosine"
    if cosine and args.time_budget is not None:
        return args.lr, args.lr
    steps = args.epochs * runner.steps_per_epoch(train_data) if cosine else None
    return runner.learning_rate(args.lr, args.lr_schedule, steps), None


def seconds(minutes):
    """`--time-budget` in seconds (None stays None)."""
    return None if minutes is None else 60.0 * minutes


def add_model_argument(p, app):
    p.add_argument("model", type=Path, help=f"saved_models/{app}-NAME or a .keras file")


def add_export_command(sub, app, formats, default, help, quantize=True, fuse_lstm=True):
    """`export MODEL`: the files go to MODEL/export (or --out), with a
    manifest (`keras_deeprnn.export`) that records the model's metrics."""
    p = sub.add_parser("export", help=help)
    add_model_argument(p, app)
    p.add_argument(
        "--out", type=Path, default=None, help="export folder (default: MODEL_FOLDER/export)"
    )
    p.add_argument("--format", default=default, choices=formats, help="what to write")
    if quantize:
        p.add_argument(
            "--quantize",
            default="none",
            choices=("none", "dynamic", "float16", "int8"),
            help="TFLite weights (and activations for int8)",
        )
    if fuse_lstm:
        p.add_argument(
            "--fuse-lstm",
            action="store_true",
            help="also write the sequence model with LSTM layers as TFLite's fused "
            "UNIDIRECTIONAL_SEQUENCE_LSTM op (for delegates without control flow)",
        )
    return p


def export_folder(args):
    """MODEL/export, or --out."""
    folder = args.model if args.model.is_dir() else args.model.parent
    return args.out or folder / "export"


# -- what a training run records --------------------------------------------


class Run:
    """A training run of an app: its name, the folder its model is saved
    to (`--out`/APP-NAME) and its run folder (`--run-dir`, default
    runs/APP-NAME) for checkpoints and logs."""

    def __init__(self, app, args, default_name):
        self.app, self.args = app, args
        self.name = args.name or default_name
        self.out = args.out / f"{app}-{self.name}"
        self.run_dir = args.run_dir or DEFAULT_RUNS / f"{app}-{self.name}"

    def save(self, model, metrics, history, seconds, files=None, **extra):
        """Saves the trained `model` with its metadata (what, how and how
        well; `runner.save` adds the versions, the time and the size) and
        says where; on a worker other than the chief, saves nothing.
        `history` is `fit`'s, or None for a model with nothing to fit;
        `files` (`{name: bytes}`) go into the folder beside the model.

        Returns:
            The folder, or None.
        """
        if not runner.is_chief():
            return None
        record = {
            "app": self.app,
            "name": self.name,
            "metrics": metrics,
            "epochs_run": len(history.epoch) if history else 0,
            "train_seconds": round(seconds, 1),
            "run_dir": str(self.run_dir),
            **extra,
            "arguments": {k: str(v) for k, v in sorted(vars(self.args).items())},
            "command": runner.command_line(),
        }
        saved = runner.save(model, self.out, record, overwrite=self.args.overwrite, files=files)
        if saved != self.out:
            print(
                f"{self.out} exists (another run's model, kept): this one is "
                f"{saved.name}; --overwrite replaces it instead"
            )
        print(f"saved {saved}")
        return saved


# -- running a command -------------------------------------------------------


def main(top, commands, argv=None, args=None):
    """Runs `commands[args.command](args)`; returns the exit code.

    Errors the user can act on (bad options or data, a missing or damaged
    model, a run that diverged) are one line on stderr, not a traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args is None:
        args = top.parse_args(argv)
    try:
        return commands[args.command](args) or 0
    except runner.TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    except (ValueError, OSError, ImportError, runner.RunLocked) as error:
        print(f"error: {error}", file=sys.stderr)
        global _failed_write
        _failed_write = isinstance(error, OSError)
        return EXIT_BAD_INPUT


_failed_write = False


def exit(code):
    """`sys.exit(code)`; after a write that failed (a full disk), the
    process ends without its exit handlers: the write leaves Keras's HDF5
    checkpoint half-open, and HDF5's own handler crashes the process
    (a segmentation fault) trying to close it."""
    if _failed_write:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
