"""`deeprnn export MODEL.keras`: TFLite and SavedModel exports with a manifest."""

import argparse
import json
from pathlib import Path

import numpy as np

from keras_deeprnn.export.tflite import MODES


def parser():
    p = argparse.ArgumentParser(
        prog="deeprnn export",
        description="Export a .keras model (or a saved_models/<name>/ folder) "
        "to TFLite (builtin ops only) and/or a SavedModel, into an export "
        "folder with a manifest.json.",
    )
    p.add_argument("model", type=Path, help="a .keras file or a folder holding model.keras")
    p.add_argument("--format", default="tflite", choices=("tflite", "saved_model", "all"))
    p.add_argument(
        "--mode",
        default="sequence",
        choices=MODES,
        help="sequence: a whole sequence per invoke; streaming: one step per invoke, "
        "states as inputs/outputs",
    )
    p.add_argument("--quantize", default="none", choices=("none", "dynamic", "float16", "int8"))
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="time steps of the sequence mode (needed if the model's is unknown)",
    )
    p.add_argument(
        "--representative",
        type=Path,
        default=None,
        help=".npy file of model inputs (samples, time, ...) for int8 calibration",
    )
    p.add_argument(
        "--fuse-lstm",
        action="store_true",
        help="sequence mode: the LSTM layers as TFLite's fused "
        "UNIDIRECTIONAL_SEQUENCE_LSTM op (for delegates without control flow; "
        "no lengths input)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="export folder (default: the model's folder /export)"
    )
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    import keras

    import keras_deeprnn  # noqa: F401  (registers the library's layers)
    from keras_deeprnn.export.manifest import write_export

    path = args.model / "model.keras" if args.model.is_dir() else args.model
    if not path.is_file():
        raise FileNotFoundError(f"No model at {path}.")
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    folder = path.parent
    quantize = None if args.quantize == "none" else args.quantize
    representative = None
    if args.representative is not None:
        representative = np.load(args.representative, allow_pickle=False)
    if quantize == "int8" and representative is None:
        raise ValueError("--quantize int8 needs --representative FILE.npy (model inputs).")
    if args.fuse_lstm and args.mode != "sequence":
        raise ValueError("--fuse-lstm goes with --mode sequence.")
    metrics = {}
    metadata = folder / "metadata.json"
    if metadata.is_file():
        metrics = json.loads(metadata.read_text()).get("metrics", {})
    manifest = write_export(
        model,
        args.out or folder / "export",
        name=folder.name if args.model.is_dir() else path.stem,
        tflite=[(args.mode, quantize)] if args.format in ("tflite", "all") else [],
        saved_model=args.format in ("saved_model", "all"),
        representative_data=representative,
        max_length=args.max_length,
        metrics=metrics,
        fuse_lstm=args.fuse_lstm,
    )
    out = args.out or folder / "export"
    for entry in manifest["exports"]:
        detail = (
            f"max |TFLite - Keras| {entry['max_abs_diff']:.3g}, ops {', '.join(entry['ops'])}"
            if entry["format"] == "tflite"
            else f"signatures {', '.join(entry['signatures'])}"
        )
        for layer, reason in entry.get("unfused_lstm", {}).items():
            detail += f"\n  not fused: layer '{layer}': {reason}"
        print(f"{out / entry['file']}: {detail}")
    print(f"wrote {out / 'manifest.json'}")
    return 0
