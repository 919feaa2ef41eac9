"""`python -m apps.forecast train|evaluate|predict|export`.

Long-horizon forecasting of a multivariate series: a model reads a window of
the last --seq-len rows and forecasts the next --horizon rows at once
(baselines, a many-to-one RNN, SegRNN), scored by MSE and MAE on the
standardized values as in the ETT benchmark.
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from ..common import cli
from ..common import runner
from . import data
from .model import MODELS

APP = "forecast"
SETUP = "forecast"  # the metadata key of the data protocol


def parser():
    from keras_deeprnn.models import KINDS

    top, sub = cli.app_parser(APP, __doc__)

    train = sub.add_parser("train", help="train a model and save it under saved_models/")
    data.add_arguments(train, training=True)
    train.add_argument(
        "--model",
        default="segrnn",
        type=model_names,
        metavar="{" + ",".join(MODELS) + "}[+...]",
        help="last: repeat the last value; seasonal: repeat the last --period "
        "rows; linear, dlinear (Zeng et al. 2023); rnn: many-to-one --cell "
        "--arch network; segrnn (Lin et al. 2023); seq2seq: an encoder-decoder over "
        "segments, decoding autoregressively, trained with teacher forcing. "
        "With --ensemble N, A+B mixes models: the members take them in turn (A, B, A, ...)",
    )
    cli.add_model_options(
        train,
        KINDS,
        units=None,
        dropout=0.0,
        dropout_help="dropout before the output map (rnn, segrnn, seq2seq)",
    )
    train.add_argument(
        "--normalization",
        default=None,
        choices=("none", "revin", "last"),
        help="per-window normalization (default: revin for rnn, last for "
        "segrnn, none for the linear models)",
    )
    train.add_argument(
        "--seg-len",
        type=cli.positive_int,
        default=48,
        help="segrnn, seq2seq: rows per segment (divides --seq-len and --horizon)",
    )
    train.add_argument(
        "--segment-cell",
        default="gru",
        help="segrnn, seq2seq: the recurrent cell over segments",
    )
    train.add_argument(
        "--period", type=cli.positive_int, default=24, help="seasonal: the season in rows"
    )
    train.add_argument(
        "--kernel-size",
        type=cli.positive_int,
        default=25,
        help="dlinear: the moving average's length (odd)",
    )
    train.add_argument(
        "--loss",
        default="mse",
        choices=("mse", "mae"),
        help="training loss (SegRNN's paper trains on mae)",
    )
    cli.add_fit_options(
        train,
        epochs=30,
        patience=5,
        lr=1e-3,
        clipnorm=0.0,
        time_budget=True,
        lr_schedule=True,
        ema=True,
    )
    train.add_argument(
        "--lr-decay",
        type=cli.positive_float,
        default=1.0,
        help="multiply the learning rate by this after each epoch (DLinear's "
        "code: 0.5); 1: constant (the only choice with --lr-schedule cosine)",
    )
    train.add_argument(
        "--ensemble",
        type=cli.positive_int,
        default=1,
        help="train this many models from seeds N*seed ... N*seed+N-1, sharing "
        "--time-budget, and save the mean of their forecasts as one model",
    )
    cli.add_run_options(train, APP, "DATA-MODEL-SEQ_LEN-HORIZON")

    evaluate = sub.add_parser("evaluate", help="MSE/MAE of a saved model on a split, and a PNG")
    cli.add_model_argument(evaluate, APP)
    data.add_arguments(evaluate)
    evaluate.add_argument("--split", default="test", choices=data.SPLITS)
    evaluate.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="PNG of forecasts against the truth (default: MODEL/forecast-SPLIT.png)",
    )

    predict = sub.add_parser("predict", help="forecasts of a split as y_true, y_pred (.npz)")
    cli.add_model_argument(predict, APP)
    data.add_arguments(predict)
    predict.add_argument("--split", default="test", choices=data.SPLITS)
    predict.add_argument("--output", type=Path, required=True, help="the .npz file to write")

    exp = cli.add_export_command(
        sub,
        APP,
        ("tflite",),
        "tflite",
        quantize=False,
        fuse_lstm=False,
        help="a builtin-only TFLite file (one window in, the forecast out) into "
        "MODEL/export, checked against Keras on test windows",
    )
    data.add_arguments(exp)
    return top


def model_names(text):
    """`--model`: one name of MODELS, or several joined by '+' (a mixed ensemble)."""
    unknown = [name for name in text.split("+") if name not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)} (A+B mixes them)"
        )
    return text


def member_models(model, ensemble):
    """The model of each of `ensemble` members: `model`'s '+'-joined names in turn."""
    names = model.split("+")
    if len(names) > ensemble:
        raise ValueError(
            f"--model {model} mixes {len(names)} models: --ensemble must be at least "
            f"{len(names)} (it is {ensemble})."
        )
    return [names[i % len(names)] for i in range(ensemble)]


def scores(y_true, y_pred):
    """MSE and MAE over every window, step and channel."""
    error = np.asarray(y_pred, "float64") - np.asarray(y_true, "float64")
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}


def forecast(model, ds, split):
    """`(x, y_true, y_pred)` of every window of `split`, standardized."""
    x, y = data.windows(ds, split)
    return x, y, model.predict(x, batch_size=256, verbose=0)


def train(args):
    from keras_deeprnn.models.forecasting import average_forecaster

    from .model import compile_model

    if args.lr_schedule == "cosine" and args.lr_decay != 1.0:
        raise ValueError("--lr-decay and --lr-schedule cosine are two schedules: drop one.")
    run = cli.Run(APP, args, f"{Path(args.data).stem}-{args.model}-{args.seq_len}-{args.horizon}")
    budget = cli.seconds(args.time_budget)
    seeds = member_seeds(args.seed, args.ensemble)
    kinds = member_models(args.model, args.ensemble)
    members, epochs = [], []
    with runner.Timer() as timer:
        for i, (seed, kind) in enumerate(zip(seeds, kinds)):
            # An ensemble's members share the budget; what one leaves, the next may use.
            share = None if budget is None else (budget - timer.elapsed()) / (len(seeds) - i)
            member_args = argparse.Namespace(**{**vars(args), "seed": seed, "model": kind})
            member, ds, epochs_run = _train_member(member_args, run, i, share)
            members.append(member)
            epochs.append(epochs_run)
    model = members[0]
    if len(members) > 1:
        model = compile_model(average_forecaster(members), loss=args.loss)
        model.summary()
    metrics = _scores(model, ds)
    extra = {}
    if len(members) > 1:
        extra["ensemble"] = {
            "seeds": seeds,
            "models": kinds,
            "epochs_run": epochs,
            "members": [_scores(member, ds) for member in members],
        }
    print(
        f"valid MSE {metrics['valid_mse']:.4f} MAE {metrics['valid_mae']:.4f}; test MSE "
        f"{metrics['test_mse']:.4f} MAE {metrics['test_mae']:.4f} "
        f"[{model.count_params()} parameters, {timer.seconds:.0f} s]"
    )
    run.save(
        model,
        metrics,
        None,
        timer.seconds,
        epochs_run=sum(epochs),  # every member's epochs, in place of one History's
        data=args.data,
        metric="MSE, MAE of the standardized values, every window",
        **{SETUP: ds.info["setup"]},
        **extra,
    )
    return 0


def member_seeds(seed, ensemble):
    """The seeds of an ensemble's members: `seed` itself for one model; for
    `ensemble` = N, N * seed ... N * seed + N - 1, so that the ensembles of
    seeds 0, 1, 2 share no member."""
    return [seed * ensemble + i for i in range(ensemble)]


def _train_member(args, run, index, time_budget):
    """One model `args.model` trained from `args.seed`: `(model, datasets, epochs run)`.

    An ensemble's members train in `RUN_DIR/member-I`; a finished one
    leaves its weights there, so that a rerun of the command resumes at the
    first unfinished member.
    """
    from .model import build_model
    from .model import compile_model

    runner.set_seed(args.seed)
    ds = data.datasets(args)
    lr, cosine_from = cli.learning_rate_plan(args, ds.train)
    with runner.get_strategy(args.strategy).scope():
        model = compile_model(
            build_model(args, len(ds.info["inputs"]), ds.info["outputs"]),
            lr,
            args.clipnorm,
            args.loss,
            args.lr_decay,
            int(ds.train.cardinality()),
            args.ema,
        )
    run_dir, done = Path(run.run_dir), None
    if args.ensemble > 1:
        model.name = f"member_{index}"
        run_dir = run_dir / f"member-{index}"
        done = run_dir / "member.weights.h5"
        if done.is_file():
            try:
                with warnings.catch_warnings():  # the optimizer's slots: not needed
                    warnings.filterwarnings("ignore", message="Skipping variable loading")
                    model.load_weights(done)
                record = json.loads((run_dir / "member.json").read_text())
                epochs = int(record["epochs_run"])
                if record.get("model", args.model) != args.model:
                    raise ValueError(f"it is a {record['model']}, not a {args.model}")
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise ValueError(
                    f"member {index}'s saved training in {run_dir} is damaged ({error}); "
                    "delete that folder to train the member again."
                ) from None
            print(f"member {index} (seed {args.seed}): trained before, loaded from {done}")
            return model, ds, epochs
    model.summary()
    epochs = 0
    if model.trainable_weights:  # the naive forecasts have nothing to fit
        history = runner.fit(
            model,
            ds.train,
            ds.valid,
            run_dir,
            args.epochs,
            monitor="val_mse",
            patience=args.patience,
            time_budget=time_budget,
            cosine_from=cosine_from,
        )
        epochs = len(history.epoch)
    if done is not None:
        model.save_weights(done)
        record = {"seed": args.seed, "model": args.model, "epochs_run": epochs}
        (run_dir / "member.json").write_text(json.dumps(record))
    return model, ds, epochs


def _scores(model, ds):
    """`{valid,test}_{mse,mae}` of `model` on every window of both splits."""
    metrics = {}
    for split in ("valid", "test"):
        for key, value in scores(*forecast(model, ds, split)[1:]).items():
            metrics[f"{split}_{key}"] = value
    return metrics


def _load(args):
    model = runner.load(args.model, APP)
    stored = runner.read_metadata(args.model).get(SETUP)
    if stored is None:
        raise ValueError(
            f"{args.model} has no '{SETUP}' setup in its metadata.json: pass "
            "a folder saved by `python -m apps.forecast train`."
        )
    return model, data.datasets(args, stored)


def evaluate(args):
    model, ds = _load(args)
    x, y_true, y_pred = forecast(model, ds, args.split)
    result = scores(y_true, y_pred)
    setup, outputs = ds.info["setup"], ds.info["outputs"]
    # The target among the forecast columns (features M on a file without it: the last).
    names = [setup["columns"][i] for i in outputs]
    column = names.index(setup["target"]) if setup["target"] in names else len(names) - 1
    name, own = names[column], [outputs[column]]
    target_mae = float(
        np.mean(
            np.abs(
                ds.info["scaler"].inverse(y_pred[..., [column]], own)
                - ds.info["scaler"].inverse(y_true[..., [column]], own)
            )
        )
    )
    print(
        f"{args.split}: MSE {result['mse']:.4f}, MAE {result['mae']:.4f} (standardized, "
        f"{len(y_true)} windows); {name} MAE {target_mae:.4f} in its own units"
    )
    folder = args.model if args.model.is_dir() else args.model.parent
    plot = args.plot or folder / f"forecast-{args.split}.png"
    _plot(
        plot, x, y_true, y_pred, ds.info["inputs"].index(outputs[column]), column, name, args.split
    )
    print(f"wrote {plot}")
    return 0


def _plot(path, x, y_true, y_pred, input_column, column, name, split, panels=4):
    """The last week of input, the truth and the forecast of `panels`
    windows spread over the split."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.2 * panels), squeeze=False)
    seq_len, horizon = x.shape[1], y_true.shape[1]
    history = min(seq_len, 168)
    for ax, i in zip(axes[:, 0], np.linspace(0, len(x) - 1, panels).astype(int)):
        ax.plot(range(-history, 0), x[i, -history:, input_column], color="gray", label="input")
        ax.plot(range(horizon), y_true[i, :, column], color="black", label="truth")
        ax.plot(range(horizon), y_pred[i, :, column], color="tab:red", label="forecast")
        ax.set_ylabel(f"window {i}")
    axes[0, 0].legend(loc="upper left")
    axes[0, 0].set_title(f"{name} (standardized), {split} split")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def predict(args):
    model, ds = _load(args)
    _, y_true, y_pred = forecast(model, ds, args.split)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.output, y_true=y_true, y_pred=y_pred.astype("float32"))
    print(f"wrote {args.output}: y_true, y_pred {y_true.shape}")
    return 0


def export(args):
    from keras_deeprnn.export import write_export

    model, ds = _load(args)
    x, _ = data.windows(ds, "test")
    folder = cli.export_folder(args)
    # One whole window per invoke: no padding, so no `lengths` input.
    manifest = write_export(
        model,
        folder,
        args.model.name,
        tflite=[("sequence", None)],
        saved_model=False,
        representative_data=x[np.linspace(0, len(x) - 1, 8).astype(int)],
        max_length=ds.info["setup"]["seq_len"],
        lengths=False,
        metrics=runner.read_metadata(args.model).get("metrics"),
    )
    entry = manifest["exports"][0]
    print(
        f"wrote {folder / entry['file']}: builtin ops only, largest |TFLite - Keras| "
        f"{entry['max_abs_diff']:.2e} on test windows"
    )
    return 0


def main(argv=None):
    commands = {"train": train, "evaluate": evaluate, "predict": predict, "export": export}
    return cli.main(parser(), commands, argv)


if __name__ == "__main__":
    cli.exit(main())
