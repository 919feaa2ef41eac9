"""The `deeprnn` command: the apps and the library's tools under one name.

    deeprnn music train                 # the same as python -m apps.music train
    deeprnn data fetch jsb              # a registered data set, checked
    deeprnn --verbose tagging --help    # with TensorFlow's start-up log

This module sits beside the `keras_deeprnn` package, not inside it: importing
that package loads TensorFlow (it registers the layers with Keras), and
`deeprnn --help` should answer at once. A command starts TensorFlow first,
with its C++ start-up lines hidden unless `--verbose` is given, then imports
what it needs.
"""

import argparse
import importlib
import os
import sys

#: `deeprnn NAME ARGS` runs `apps/NAME/cli.py`'s `main(ARGS)`: one line per app.
APPS = {
    "music": "polyphonic music: train, evaluate, generate (MIDI, WAV, PNG), export",
    "sentiment": "sentence classification (MR, IMDB, SST-2): train, evaluate, predict, export",
    "tagging": "part-of-speech tagging (UD treebanks): train, evaluate, tag, export, baseline",
    "forecast": "time-series forecasting (ETT): train, evaluate, predict, export",
    "text": "character and word language models: train, evaluate, sample, export",
    "translate": "translation (Multi30k): train, evaluate, translate, attention, export, verify",
}
#: The other commands: name -> (module with `main(argv)`, help).
TOOLS = {
    "tune": ("tuning.search", "KerasTuner search over an app's models (python -m tuning.search)"),
    "data": ("keras_deeprnn.data.command", "list and fetch the benchmark data sets, checked"),
    "demo": ("keras_deeprnn.demo", "train a small RNN on generated waveforms (a minute)"),
    "export": ("keras_deeprnn.export.command", "export a .keras model to TFLite / SavedModel"),
    "version": (None, "print the library, Keras and TensorFlow versions"),
}


def parser():
    p = argparse.ArgumentParser(
        prog="deeprnn",
        description="keras-deeprnn: recurrent cells and deep RNNs for Keras 3. "
        "`deeprnn COMMAND --help` explains a command.",
        allow_abbrev=False,
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="show TensorFlow's C++ start-up log lines"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in APPS.items():
        sub.add_parser(name, help=text, add_help=False)
    for name, (_, text) in TOOLS.items():
        sub.add_parser(name, help=text, add_help=False)
    return p


def start_tensorflow(verbose=False):
    """Imports TensorFlow; unless `verbose`, with the lines its C++ runtime
    writes to stderr while it starts (before its log level applies) sent
    to /dev/null, and its later INFO and WARNING lines off
    (`TF_CPP_MIN_LOG_LEVEL=2`, unless already set)."""
    if verbose:
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device probe logs too
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_module(name):
    """`apps.X` / `tuning.X` under the name they were installed with
    (`keras_deeprnn.apps.X`), or the checkout's top-level folders when
    the package is not installed; other modules as named."""
    if name.split(".")[0] in ("apps", "tuning"):
        try:
            return importlib.import_module(f"keras_deeprnn.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"keras_deeprnn.{name.split('.')[0]}":
                raise
    return importlib.import_module(name)


def run_app(name, argv):
    common = import_module("apps.common.cli")
    common.PROG = "deeprnn {app}"
    common.exit(import_module(f"apps.{name}.cli").main(argv))


def version():
    import keras
    import tensorflow as tf

    import keras_deeprnn

    print(
        f"keras-deeprnn {keras_deeprnn.__version__}, keras {keras.__version__}, "
        f"tensorflow {tf.__version__}"
    )
    return 0


def main(argv=None):
    args, rest = parser().parse_known_args(argv)
    start_tensorflow(args.verbose)
    if args.command in APPS:
        return run_app(args.command, rest)
    module, _ = TOOLS[args.command]
    if module is None:
        if rest:
            parser().error(f"unrecognized arguments: {' '.join(rest)}")
        return version()
    if args.command == "tune":
        return import_module(module).main(rest, prog="deeprnn tune")
    if args.command == "export":
        from keras_deeprnn.export import ExportError

        try:
            return import_module(module).main(rest)
        except (ExportError, ValueError, FileNotFoundError, ImportError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return import_module(module).main(rest)


if __name__ == "__main__":
    sys.exit(main())
