"""`python -m apps.music train|evaluate|generate|export`.

Polyphonic music modelling: a recurrent network predicts each piano-roll
frame from the frames before it (88 independent Bernoulli keys, or their
joint distribution under an RNN-NADE, --output nade) and is measured by the
literature's frame-level negative log-likelihood.
"""

import time
from pathlib import Path

import numpy as np

from keras_deeprnn.cells import FORGET_GATE_CELLS
from keras_deeprnn.training import WeightNoise

from ..common import cli
from ..common import runner
from . import data
from .model import ARCHS
from .model import OUTPUTS

APP = "music"


def parser():
    top, sub = cli.app_parser(APP, __doc__)

    train = sub.add_parser("train", help="train a model and save it under saved_models/")
    data.add_arguments(train, training=True)
    cli.add_model_options(train, ARCHS)
    train.add_argument(
        "--input-dropout", type=cli.rate, default=0.0, help="dropout on the input frames"
    )
    train.add_argument(
        "--forget-bias",
        type=float,
        default=None,
        help="initial forget-gate bias of an LSTM cell with a forget gate (default 1; the "
        "searches of tuning.search draw it from 0 .. 3)",
    )
    train.add_argument(
        "--output",
        default="bernoulli",
        choices=OUTPUTS,
        help="bernoulli: 88 independent keys; nade: their joint distribution given the "
        "recurrent state, a NADE (RNN-NADE, Boulanger-Lewandowski et al. 2012)",
    )
    train.add_argument(
        "--nade-units",
        type=cli.positive_int,
        default=150,
        help="hidden units of the NADE (with --output nade)",
    )
    cli.add_fit_options(
        train,
        epochs=50,
        patience=8,
        lr=2e-3,
        clipnorm=1.0,
        time_budget=True,
        lr_schedule=True,
        ema=True,
    )
    train.add_argument(
        "--weight-noise",
        type=cli.non_negative_float,
        default=0.0,
        metavar="STD",
        help="Gaussian noise of this std on the weight matrices, one sample per "
        "training batch (Graves 2011; Pascanu et al. used 0.075); 0: off",
    )
    train.add_argument(
        "--gradient-noise",
        type=cli.non_negative_float,
        default=0.0,
        metavar="ETA",
        help="annealed Gaussian gradient noise of variance ETA / (1 + step)^0.55 "
        "(Neelakantan et al. 2015; e.g. 0.01); 0: off",
    )
    train.add_argument(
        "--generate",
        type=cli.non_negative_int,
        default=0,
        metavar="FRAMES",
        help="after training, sample FRAMES frames from the model, after the opening chord "
        "of the first test piece, and write them into its folder as sample.mid, sample.wav "
        "and sample.png (0: none)",
    )
    cli.add_run_options(train, APP, "DATA-CELL-ARCH-UNITS, -nade with --output nade")

    evaluate = sub.add_parser("evaluate", help="frame NLL of a saved model on a split")
    cli.add_model_argument(evaluate, APP)
    data.add_arguments(evaluate)
    evaluate.add_argument("--split", default="test", choices=data.SPLITS)

    exp = cli.add_export_command(
        sub,
        APP,
        ("tflite", "saved_model", "all"),
        "tflite",
        help="TFLite (builtin ops) / SavedModel export into MODEL/export, with a manifest; "
        "reports the test frame NLL of the TFLite model beside Keras's",
    )
    data.add_arguments(exp)
    exp.add_argument(
        "--mode",
        default="streaming",
        choices=("sequence", "streaming"),
        help="streaming: one frame per invoke, states in/out (for generation)",
    )
    exp.add_argument(
        "--max-length",
        type=cli.positive_int,
        default=256,
        help="frames per invoke of the sequence mode",
    )
    exp.add_argument(
        "--calibration-pieces",
        type=cli.positive_int,
        default=32,
        help="training pieces that calibrate int8 (first 64 frames of each)",
    )

    gen = sub.add_parser("generate", help="generate music; writes MIDI, WAV and PNG files")
    cli.add_model_argument(gen, APP)
    gen.add_argument("--frames", type=cli.positive_int, default=64, help="frames to generate")
    gen.add_argument(
        "--temperature",
        type=cli.positive_float,
        default=1.0,
        help="sampling temperature (lower: more conservative)",
    )
    gen.add_argument(
        "--beam",
        type=cli.non_negative_int,
        default=0,
        help="beam width; 0 samples frame by frame instead",
    )
    gen.add_argument(
        "--primer",
        default=None,
        help="start from the first --primer-frames frames of the first test piece of "
        "this data set (same forms as --data); default: from silence",
    )
    gen.add_argument("--primer-frames", type=cli.positive_int, default=8)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--out",
        type=Path,
        default=Path("generated"),
        help="output path without extension: OUT.mid, OUT.wav and OUT.png",
    )
    gen.add_argument(
        "--seconds-per-frame",
        type=cli.positive_float,
        default=0.5,
        help="MIDI duration of one frame",
    )
    return top


def train(args):
    from .model import build_model
    from .model import compile_model
    from .model import feed

    started = time.monotonic()
    name = f"{Path(args.data).stem}-{args.cell}-{args.arch}-{args.units}"
    run = cli.Run(APP, args, name + ("-nade" if args.output == "nade" else ""))
    runner.set_seed(args.seed)
    ds = data.datasets(args)
    lr, cosine_from = cli.learning_rate_plan(args, ds.train)
    if cosine_from and args.gradient_noise:
        raise ValueError(
            "--lr-schedule cosine over a --time-budget sets the learning rate as it goes, "
            "which --gradient-noise's wrapped optimizer does not pass on: drop one of the three"
        )
    if args.forget_bias is not None and args.cell not in FORGET_GATE_CELLS:
        raise ValueError(
            f"--forget-bias: cell {args.cell!r} has no forget gate; the LSTMs that have one "
            f"are {', '.join(FORGET_GATE_CELLS)}"
        )
    if args.ema and args.gradient_noise:
        raise ValueError(
            "--ema averages Adam's weights, not --gradient-noise's wrapper's: drop one"
        )
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        model = build_model(
            args.cell,
            args.arch,
            args.units,
            args.depth,
            args.dropout,
            args.unit_type,
            input_dropout=args.input_dropout,
            recurrent_dropout=args.recurrent_dropout,
            output=args.output,
            nade_units=args.nade_units,
            cell_kwargs=None if args.forget_bias is None else {"forget_bias": args.forget_bias},
        )
        compile_model(
            model,
            lr,
            args.clipnorm,
            gradient_noise=args.gradient_noise,
            seed=args.seed,
            ema=args.ema,
        )
    model.summary()
    noise = [WeightNoise(args.weight_noise, seed=args.seed)] if args.weight_noise else []
    train_data = feed(ds.train, model)
    with runner.Timer() as timer:
        history = runner.fit(
            model,
            train_data,
            feed(ds.valid, model),
            run.run_dir,
            args.epochs,
            monitor="val_nll",
            patience=args.patience,
            grad_batch=next(iter(train_data)),
            callbacks=noise,
            time_budget=cli.seconds(args.time_budget),
            cosine_from=cosine_from,
        )
    metrics = {
        f"{split}_nll": float(
            model.evaluate(feed(getattr(ds, split), model), verbose=0, return_dict=True)["nll"]
        )
        for split in ("valid", "test")
    }
    print(
        f"frame NLL (nats): valid {metrics['valid_nll']:.3f}, test {metrics['test_nll']:.3f} "
        f"[{model.count_params()} parameters, {timer.seconds:.0f} s]"
    )
    saved = run.save(
        model,
        metrics,
        history,
        timer.seconds,
        data=args.data,
        pieces={k: len(v) for k, v in ds.info["pieces"].items()},
        metric="frame NLL, nats, padding excluded"
        + (" (joint, RNN-NADE)" if args.output == "nade" else ""),
        # Epoch numbers count from the start even after a resume.
        best_epoch=history.epoch[int(np.argmin(history.history["val_nll"]))] + 1,
    )
    if args.generate and saved is not None:
        from . import generate as gen

        # The model never saw silence as an input: it starts from a real chord.
        opening = ds.info["pieces"]["test"][0][:1]
        roll = gen.sample(model, args.generate, opening, seed=args.seed)
        paths = gen.write_music(roll, saved / "sample", 0.5, f"{saved.name}: {len(roll)} frames")
        print(
            f"{args.generate} frames sampled from the model after the opening chord of a test "
            f"piece ({int(roll.sum())} notes on):"
        )
        for path in paths:
            print(f"  {path}")
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    print(f"total time {minutes} min {seconds} s")
    return 0


def evaluate(args):
    from .model import feed

    model = runner.load(args.model, APP)
    ds = data.datasets(args)
    nll = model.evaluate(feed(getattr(ds, args.split), model), verbose=0, return_dict=True)["nll"]
    print(f"{args.split} frame NLL: {nll:.4f} nats")
    return 0


def generate(args):
    from keras_deeprnn.data import music

    from . import generate as gen

    model = runner.load(args.model, APP)
    primer = None
    if args.primer:
        primer = music.load_music(args.primer)["test"][0][: args.primer_frames]
    if args.beam:
        roll = gen.beam_search(
            model,
            args.frames,
            primer,
            beam_width=args.beam,
            temperature=args.temperature,
            seed=args.seed,
        )
    else:
        roll = gen.sample(model, args.frames, primer, temperature=args.temperature, seed=args.seed)
    paths = gen.write_music(
        roll, args.out, args.seconds_per_frame, f"{args.model.name}: {len(roll)} frames"
    )
    print(f"wrote {', '.join(map(str, paths))} ({len(roll)} frames, {int(roll.sum())} notes on)")
    return 0


def export(args):
    from keras_deeprnn.export import load_export
    from keras_deeprnn.export import write_export
    from keras_deeprnn.export.manifest import tflite_name
    from keras_deeprnn.metrics import frame_nll

    from .model import uses_targets

    model = runner.load(args.model, APP)
    if uses_targets(model):
        raise ValueError(
            f"{args.model} is an RNN-NADE (--output nade): its frames are drawn key by key "
            "from a NADE, which the export (a per-frame logits model) does not cover; "
            "generate with `python -m apps.music generate` instead."
        )
    pieces = data.datasets(args).info["pieces"]
    quantize = None if args.quantize == "none" else args.quantize
    windows = [roll[:64] for roll in pieces["train"][: args.calibration_pieces]]
    length = min(len(w) for w in windows)
    calibration = np.stack([w[: length - 1] for w in windows]).astype("float32")
    folder = cli.export_folder(args)
    tflite = [(args.mode, quantize)] if args.format != "saved_model" else []
    write_export(
        model,
        folder,
        args.model.name,
        tflite=tflite,
        saved_model=args.format != "tflite",
        representative_data=calibration,
        max_length=args.max_length,
        fuse_lstm=args.fuse_lstm,
        metrics=runner.read_metadata(args.model).get("metrics"),
    )
    if not tflite:
        print(f"wrote {folder}")
        return 0
    interpreter, entry = load_export(folder, tflite_name(args.mode, quantize))
    run = interpreter.get_signature_runner()
    states = [d["name"] for d in entry["inputs"] if "_state_" in d["name"]]
    frames = next(d["name"] for d in entry["inputs"] if d["name"] not in states + ["lengths"])
    total = {"keras": 0.0, "tflite": 0.0}
    count = 0
    for roll in pieces["test"]:
        roll = roll.astype("float32")
        if args.mode == "sequence":
            roll = roll[: args.max_length + 1]
            padded = np.zeros((1, args.max_length, roll.shape[1]), "float32")
            padded[0, : len(roll) - 1] = roll[:-1]
            logits = run(**{frames: padded, "lengths": np.array([len(roll) - 1], np.int32)})
            logits = logits["output_0"][0, : len(roll) - 1]
        else:
            carried = {
                n: np.zeros(d["shape"], "float32")
                for d in entry["inputs"]
                for n in [d["name"]]
                if n in states
            }
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
    print(
        f"{folder / entry['file']}: test frame NLL {tflite_nll:.4f} nats (Keras {keras_nll:.4f}; "
        f"relative difference {(tflite_nll - keras_nll) / keras_nll:+.3%}; {count} frames)"
    )
    return 0


def main(argv=None):
    commands = {"train": train, "evaluate": evaluate, "generate": generate, "export": export}
    return cli.main(parser(), commands, argv)


if __name__ == "__main__":
    cli.exit(main())
