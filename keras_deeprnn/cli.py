"""The `deeprnn` command."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="deeprnn", description="keras-deeprnn command-line tools."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="train a small RNN on generated sequences", add_help=False)
    sub.add_parser("export", help="export a .keras model to TFLite / SavedModel", add_help=False)
    sub.add_parser("version", help="print the library, Keras and TensorFlow versions")
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from keras_deeprnn import demo

        return demo.main(rest)
    if args.command == "export":
        from keras_deeprnn.export import ExportError
        from keras_deeprnn.export import command

        try:
            return command.main(rest)
        except (ExportError, ValueError, FileNotFoundError, ImportError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    import keras
    import tensorflow as tf

    import keras_deeprnn

    print(
        f"keras-deeprnn {keras_deeprnn.__version__}, keras {keras.__version__}, "
        f"tensorflow {tf.__version__}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
