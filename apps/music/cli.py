"""`python -m apps.music train|evaluate|generate|export`.

Polyphonic music modelling: a recurrent network predicts each piano-roll
frame from the frames before it (88 independent Bernoulli keys) and is
measured by the literature's frame-level negative log-likelihood.
"""

import argparse
import logging
import sys
from pathlib import Path

from apps.common import runner
from apps.music.model import ARCHS
from apps.music.model import build_model
from apps.music.model import compile_model
from keras_deeprnn.cells import CELL_NAMES
from keras_deeprnn.layers import UNIT_TYPES
from keras_deeprnn.training import WeightNoise

DEFAULT_SAVED = Path("saved_models")


def _add_data(p, default="bach"):
    p.add_argument(
        "--data",
        default=default,
        help="bach (music21's chorales, offline; the default), jsb, nottingham "
        "(the .mat files in ../shared/data/music or $DEEPRNN_DATA_DIR), "
        "PATH.mat, PATH.pickle, or a folder of MIDI files",
    )
    p.add_argument("--batch-size", type=int, default=16, help="pieces per batch")


def parser():
    top = argparse.ArgumentParser(prog="python -m apps.music", description=__doc__.split("\n\n")[1])
    sub = top.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and save it under saved_models/")
    _add_data(train)
    train.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="cut training pieces into windows of at most this many frames (default: "
        "whole pieces); validation and test always score whole pieces",
    )
    train.add_argument("--cell", default="lstm", choices=CELL_NAMES, help="recurrent cell")
    train.add_argument("--arch", default="rnn", choices=ARCHS,
                       help="rnn: one recurrent layer; dt/dts: deep transition without/with "
                       "shortcuts; dot/dots: the same plus a deep output; srnn: stacked layers "
                       "(Pascanu et al. 2014)")
    train.add_argument("--units", type=int, default=128, help="units per recurrent layer")
    train.add_argument("--layers", type=int, default=2,
                       help="depth: transition layers (dt, dts, dot, dots) or stacked layers "
                       "(srnn); ignored by rnn")
    train.add_argument("--unit-type", default="tanh", choices=UNIT_TYPES,
                       help="units of the intermediate layers of deep architectures")
    train.add_argument("--epochs", type=int, default=50, help="maximum number of epochs")
    train.add_argument("--patience", type=int, default=8,
                       help="stop after this many epochs without a better validation NLL")
    train.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    train.add_argument("--clipnorm", type=float, default=1.0,
                       help="clip each gradient to this norm (0: off)")
    train.add_argument("--dropout", type=float, default=0.0,
                       help="dropout on the recurrent layers' outputs")
    train.add_argument("--input-dropout", type=float, default=0.0,
                       help="dropout on the input frames")
    train.add_argument("--recurrent-dropout", type=float, default=0.0,
                       help="dropout on the recurrent state inside the cells, one mask "
                       "per sequence")
    train.add_argument("--weight-noise", type=float, default=0.0, metavar="STD",
                       help="Gaussian noise of this std on the weight matrices, one sample per "
                       "training batch (Graves 2011; Pascanu et al. used 0.075); 0: off")
    train.add_argument("--gradient-noise", type=float, default=0.0, metavar="ETA",
                       help="annealed Gaussian gradient noise of variance ETA / (1 + step)^0.55 "
                       "(Neelakantan et al. 2015; e.g. 0.01); 0: off")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--strategy", default="default", choices=runner.STRATEGIES,
                       help="tf.distribute strategy (multi-worker reads TF_CONFIG)")
    train.add_argument("--name", default=None,
                       help="model name (default: DATA-CELL-ARCH-UNITS)")
    train.add_argument("--out", type=Path, default=DEFAULT_SAVED,
                       help="folder that receives music-NAME/ (default saved_models)")
    train.add_argument("--run-dir", type=Path, default=None,
                       help="checkpoints and TensorBoard logs (default runs/music-NAME); "
                       "re-running with the same folder resumes an interrupted run")

    evaluate = sub.add_parser("evaluate", help="frame NLL of a saved model on a split")
    evaluate.add_argument("model", type=Path, help="saved_models/music-NAME or a .keras file")
    _add_data(evaluate)
    evaluate.add_argument("--split", default="test", choices=("train", "valid", "test"))

    exp = sub.add_parser(
        "export", help="TFLite (builtin ops) / SavedModel export into MODEL/export, with a "
        "manifest; reports the test frame NLL of the TFLite model beside Keras's")
    exp.add_argument("model", type=Path, help="saved_models/music-NAME")
    _add_data(exp)
    exp.add_argument("--format", default="tflite", choices=("tflite", "saved_model", "all"))
    exp.add_argument("--mode", default="streaming", choices=("sequence", "streaming"),
                     help="streaming: one frame per invoke, states in/out (for generation)")
    exp.add_argument("--quantize", default="none", choices=("none", "dynamic", "float16", "int8"))
    exp.add_argument("--max-length", type=int, default=256,
                     help="frames per invoke of the sequence mode")
    exp.add_argument("--calibration-pieces", type=int, default=32,
                     help="training pieces that calibrate int8 (first 64 frames of each)")

    gen = sub.add_parser("generate", help="generate music; writes a MIDI file and a PNG")
    gen.add_argument("model", type=Path, help="saved_models/music-NAME or a .keras file")
    gen.add_argument("--frames", type=int, default=64, help="frames to generate")
    gen.add_argument("--temperature", type=float, default=1.0,
                     help="sampling temperature (lower: more conservative)")
    gen.add_argument("--beam", type=int, default=0,
                     help="beam width; 0 samples frame by frame instead")
    gen.add_argument("--primer", default=None,
                     help="start from the first --primer-frames frames of the first test piece of "
                     "this data set (same forms as --data); default: from silence")
    gen.add_argument("--primer-frames", type=int, default=8)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", type=Path, default=Path("generated"),
                     help="output path without extension: OUT.mid and OUT.png")
    gen.add_argument("--seconds-per-frame", type=float, default=0.5,
                     help="MIDI duration of one frame")
    return top


def _datasets(args, splits):
    from keras_deeprnn.data import music

    data = music.load_music(args.data)
    return data, {
        split: music.piano_roll_dataset(
            data[split],
            args.batch_size,
            shuffle=split == "train",
            seed=getattr(args, "seed", 0),
            # Windows speed training up; scores are of whole pieces, as published.
            max_length=getattr(args, "max_length", None) if split == "train" else None,
        )
        for split in splits
    }


def train(args):
    name = args.name or f"{Path(args.data).stem}-{args.cell}-{args.arch}-{args.units}"
    run_dir = args.run_dir or Path("runs") / f"music-{name}"
    for option, value in (("--weight-noise", args.weight_noise),
                          ("--gradient-noise", args.gradient_noise)):
        if value < 0:
            raise ValueError(f"{option} must be >= 0, got {value}.")
    runner.set_seed(args.seed)
    data, ds = _datasets(args, ("train", "valid", "test"))
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        model = build_model(args.cell, args.arch, args.units, args.layers, args.dropout,
                            args.unit_type, input_dropout=args.input_dropout,
                            recurrent_dropout=args.recurrent_dropout)
        compile_model(model, args.lr, args.clipnorm, gradient_noise=args.gradient_noise,
                      seed=args.seed)
    model.summary()
    grad_batch = next(iter(ds["train"]))
    noise = [WeightNoise(args.weight_noise, seed=args.seed)] if args.weight_noise else []
    with runner.Timer() as timer:
        history = runner.fit(
            model, ds["train"], ds["valid"], run_dir, args.epochs,
            monitor="val_nll", patience=args.patience, grad_batch=grad_batch,
            callbacks=noise,
        )
    metrics = {
        split: float(model.evaluate(ds[split], verbose=0, return_dict=True)["nll"])
        for split in ("valid", "test")
    }
    print(f"frame NLL (nats): valid {metrics['valid']:.3f}, test {metrics['test']:.3f} "
          f"[{model.count_params()} parameters, {timer.seconds:.0f} s]")
    if runner.is_chief():
        out = runner.save(model, args.out / f"music-{name}", {
            "app": "music",
            "name": name,
            "data": args.data,
            "pieces": {k: len(v) for k, v in data.items()},
            "metric": "frame NLL, nats, padding excluded",
            "metrics": {"valid_nll": metrics["valid"], "test_nll": metrics["test"]},
            "epochs_run": len(history.history["loss"]),
            # Epoch numbers count from the start even after a resume.
            "best_epoch": history.epoch[min(
                range(len(history.epoch)), key=history.history["val_nll"].__getitem__)] + 1,
            "train_seconds": round(timer.seconds, 1),
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "command": runner.command_line(),
        })
        print(f"saved {out}")
    return 0


def evaluate(args):
    model = runner.load(args.model)
    _, ds = _datasets(args, (args.split,))
    nll = model.evaluate(ds[args.split], verbose=0, return_dict=True)["nll"]
    print(f"{args.split} frame NLL: {nll:.4f} nats")
    return 0


def generate(args):
    from apps.music import generate as gen
    from keras_deeprnn.data import music

    model = runner.load(args.model)
    primer = None
    if args.primer:
        primer = music.load_music(args.primer)["test"][0][: args.primer_frames]
    if args.beam:
        roll = gen.beam_search(model, args.frames, primer, beam_width=args.beam,
                               temperature=args.temperature, seed=args.seed)
    else:
        roll = gen.sample(model, args.frames, primer, temperature=args.temperature, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    midi_path = args.out.with_suffix(".mid")
    png_path = args.out.with_suffix(".png")
    music.rolls_to_midi(roll, midi_path, steps_per_second=1.0 / args.seconds_per_frame)
    gen.save_piano_roll_png(roll, png_path, title=f"{args.model.name}: {len(roll)} frames")
    print(f"wrote {midi_path} and {png_path} ({len(roll)} frames, "
          f"{int(roll.sum())} notes on)")
    return 0


def export(args):
    import numpy as np

    from keras_deeprnn.export import load_export
    from keras_deeprnn.export import write_export
    from keras_deeprnn.export.manifest import tflite_name
    from keras_deeprnn.metrics import frame_nll

    model = runner.load(args.model)
    data = _datasets(args, ())[0]
    quantize = None if args.quantize == "none" else args.quantize
    windows = [roll[:64] for roll in data["train"][: args.calibration_pieces]]
    length = min(len(w) for w in windows)
    calibration = np.stack([w[: length - 1] for w in windows]).astype("float32")
    folder = args.model / "export"
    tflite = [(args.mode, quantize)] if args.format != "saved_model" else []
    write_export(model, folder, args.model.name, tflite=tflite,
                 saved_model=args.format != "tflite", representative_data=calibration,
                 max_length=args.max_length, metrics=runner.read_metadata(args.model).get("metrics"))
    if not tflite:
        print(f"wrote {folder}")
        return 0
    interpreter, entry = load_export(folder, tflite_name(args.mode, quantize))
    run = interpreter.get_signature_runner()
    states = [d["name"] for d in entry["inputs"] if "_state_" in d["name"]]
    frames = next(d["name"] for d in entry["inputs"] if d["name"] not in states + ["lengths"])
    total = {"keras": 0.0, "tflite": 0.0}
    count = 0
    for roll in data["test"]:
        roll = roll.astype("float32")
        if args.mode == "sequence":
            roll = roll[: args.max_length + 1]
            padded = np.zeros((1, args.max_length, roll.shape[1]), "float32")
            padded[0, : len(roll) - 1] = roll[:-1]
            logits = run(**{frames: padded, "lengths": np.array([len(roll) - 1], np.int32)})
            logits = logits["output_0"][0, : len(roll) - 1]
        else:
            carried = {n: np.zeros(d["shape"], "float32") for d in entry["inputs"]
                        for n in [d["name"]] if n in states}
            steps = []
            for frame in roll[:-1]:
                out = run(**{frames: frame[None]}, **carried)
                carried = {n: out[n] for n in states}
                steps.append(out["output_0"][0])
            logits = np.stack(steps)
        reference = np.asarray(model(roll[None, :-1]))[0]
        total["tflite"] += float(np.sum(frame_nll(roll[1:], logits)))
        total["keras"] += float(np.sum(frame_nll(roll[1:], reference)))
        count += len(roll) - 1
    keras_nll, tflite_nll = total["keras"] / count, total["tflite"] / count
    print(f"{folder / entry['file']}: test frame NLL {tflite_nll:.4f} nats (Keras {keras_nll:.4f}; "
          f"relative difference {(tflite_nll - keras_nll) / keras_nll:+.3%}; {count} frames)")
    return 0


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return {"train": train, "evaluate": evaluate, "generate": generate,
                "export": export}[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
