"""`python -m apps.text train|evaluate|sample|export`.

Character- and word-level language modelling: a recurrent network reads a
text as B parallel streams of k-step windows, its states carried from batch
to batch (stateful truncated BPTT), predicts every next token, is scored by
the mean cross-entropy on the held-out part (nats and bits per character,
or perplexity) and generates text one step per token.
"""

from pathlib import Path

import numpy as np

from ..common import cli
from ..common import runner
from . import data

APP = "text"
SETUP = "text"  # the metadata key of the data protocol
DEFAULT_PRIMER = "\n"


def parser():
    from keras_deeprnn.models import KINDS

    top, sub = cli.app_parser(APP, __doc__)

    train = sub.add_parser("train", help="train a model and save it under saved_models/")
    data.add_arguments(train, training=True)
    cli.add_model_options(
        train,
        KINDS,
        units=512,
        dropout=0.0,
        dropout_help="variational dropout (one mask per window) on the embeddings, between "
        "stacked layers and before the output",
    )
    train.add_argument(
        "--embedding-dim",
        type=cli.positive_int,
        default=None,
        help="embedding size (default --units)",
    )
    train.add_argument(
        "--tie-embeddings",
        action="store_true",
        help="share the embedding with the output layer (Press & Wolf 2017); a linear "
        "projection maps the state to --embedding-dim where they differ",
    )
    cli.add_fit_options(
        train, epochs=30, patience=3, lr=2e-3, clipnorm=1.0, time_budget=True, lr_schedule=True
    )
    train.add_argument(
        "--reset-probability",
        type=cli.rate,
        default=0.0,
        metavar="P",
        help="also reset each stream's states to zeros before a training batch with this "
        "probability (e.g. 0.01), so that the model learns to start cold, as evaluation "
        "and sampling do; states always reset at each epoch's start",
    )
    cli.add_run_options(train, APP, "DATA-LEVEL-CELL-ARCH-UNITS")

    evaluate = sub.add_parser(
        "evaluate", help="mean cross-entropy of a saved model on a split of a text"
    )
    cli.add_model_argument(evaluate, APP)
    data.add_arguments(evaluate)
    evaluate.add_argument(
        "--split",
        default="valid",
        choices=data.SPLITS,
        help="the model's split of --data (valid: its last 10%%), or all of it",
    )
    evaluate.add_argument(
        "--streams",
        type=cli.positive_int,
        default=1,
        help="parallel streams (1: every token predicted from all the text before it, "
        "the exact score; more: faster, each stream starts from zero states)",
    )

    sample = sub.add_parser("sample", help="generate text, one step per token")
    cli.add_model_argument(sample, APP)
    sample.add_argument(
        "--prime",
        default=DEFAULT_PRIMER,
        help="text to start from (default a line break); characters outside the "
        "vocabulary are an error unless --unknown skip (words outside it are <unk>)",
    )
    sample.add_argument("--length", type=cli.positive_int, default=500, help="tokens to generate")
    sample.add_argument(
        "--temperature",
        type=cli.non_negative_float,
        default=1.0,
        help="softmax temperature; 0: greedy (the most likely token every step)",
    )
    sample.add_argument(
        "--top-k", type=cli.positive_int, default=None, help="sample among the k most likely"
    )
    sample.add_argument(
        "--beam",
        type=cli.positive_int,
        default=None,
        help="beam search of this width for the most likely continuation instead of "
        "sampling (--temperature, --top-k and --seed then do not apply)",
    )
    sample.add_argument(
        "--unknown",
        default="error",
        choices=("error", "skip"),
        help="characters of --prime outside the vocabulary: refuse, or leave them out",
    )
    sample.add_argument("--seed", type=int, default=0, help="seed of the sampling")

    exp = cli.add_export_command(
        sub,
        APP,
        ("tflite",),
        "tflite",
        fuse_lstm=False,
        help="streaming TFLite (one token per invoke, states in and out; builtin ops) "
        "into MODEL/export, float32 and --quantize; checks that LiteRT's greedy text "
        "equals Keras's (float32) and, with --data, scores each file",
    )
    data.add_arguments(exp, required=False)
    exp.add_argument(
        "--score-tokens",
        type=cli.positive_int,
        default=2000,
        help="with --data: the first this many tokens of the validation part are scored "
        "by each file and by Keras",
    )
    exp.add_argument(
        "--check-length",
        type=cli.positive_int,
        default=200,
        help="greedy tokens compared between LiteRT and Keras",
    )
    return top


def _stored(path):
    stored = runner.read_metadata(path).get(SETUP)
    if stored is None:
        raise ValueError(
            f"{path} has no '{SETUP}' setup in its metadata.json: pass a folder saved by "
            "`python -m apps.text train`."
        )
    return stored


def train(args):
    from keras_deeprnn.models import language_model
    from keras_deeprnn.training import ResetStates
    from keras_deeprnn.training import stateful_clone

    from .model import compile_model
    from .model import score
    from .model import scores

    run = cli.Run(
        APP,
        args,
        f"{Path(args.data).stem}-{args.level}-{args.cell}-{args.arch}-{args.units}",
    )
    runner.set_seed(args.seed)
    ds = data.datasets(args)
    vocab = ds.info["vocabulary"]
    arch = dict(
        units=args.units,
        kind=args.arch,
        cell=args.cell,
        depth=args.depth,
        unit_type=args.unit_type,
        embedding_dim=args.embedding_dim,
        tie_embeddings=args.tie_embeddings,
        dropout=args.dropout,
        recurrent_dropout=args.recurrent_dropout,
    )
    model = language_model(len(vocab), name=f"text_{args.level}_{args.cell}_{args.arch}", **arch)
    steps = int(ds.train.cardinality())
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        trainer = stateful_clone(model, batch_size=args.batch_size)
        lr, cosine_from = cli.learning_rate_plan(args, ds.train)
        compile_model(trainer, lr, args.clipnorm)
    trainer.summary()
    with runner.Timer() as timer:
        history = runner.fit(
            trainer,
            ds.train,
            ds.valid,
            run.run_dir,
            args.epochs,
            monitor="val_nats",
            patience=args.patience,
            callbacks=[ResetStates(args.reset_probability, seed=args.seed)],
            time_budget=cli.seconds(args.time_budget),
            cosine_from=cosine_from,
        )
    model.set_weights(trainer.get_weights())
    stopped = history.stopped_by_time_budget
    with runner.Timer() as scoring:
        nats = score(model, ds.info["ids"]["valid"])
    result = scores(nats, vocab.level)
    metrics = {f"valid_{k}": v for k, v in result.items()}
    print(
        f"valid: {_describe(result, vocab.level)} [{model.count_params()} parameters, "
        f"{timer.seconds:.0f} s training, {scoring.seconds:.0f} s scoring]"
    )
    run.save(
        model,
        metrics,
        history,
        timer.seconds,
        data=args.data,
        metric=f"mean cross-entropy per {vocab.level} on the validation part, one stream",
        tokens={split: int(len(ids)) for split, ids in ds.info["ids"].items()},
        steps_per_epoch=steps,
        stopped_by_time_budget=list(stopped) if stopped else None,
        best_epoch=history.epoch[int(np.argmin(history.history["val_nats"]))] + 1,
        **{SETUP: ds.info["setup"]},
    )
    return 0


def _describe(result, level):
    if level == "char":
        return f"nats/char {result['nats']:.4f}, bpc {result['bpc']:.4f}"
    return f"nats/word {result['nats']:.4f}, perplexity {result['perplexity']:.2f}"


def evaluate(args):
    from .model import score
    from .model import scores

    model = runner.load(args.model, APP)
    stored = _stored(args.model)
    ids = data.split_ids(args.data, stored, args.split)
    result = scores(score(model, ids, streams=args.streams), stored["level"])
    if stored["level"] == "char":
        print(f"nats/char {result['nats']:.4f}")
        print(f"bpc {result['bpc']:.4f}")
    else:
        print(f"nats/word {result['nats']:.4f}")
        print(f"perplexity {result['perplexity']:.3f}")
    print(
        f"({args.split} part of {args.data}: {len(ids) - 1} predictions, {args.streams} stream(s))"
    )
    return 0


def primer_ids(vocab, text, unknown="error"):
    """The ids of a primer: characters outside the vocabulary are an error
    (naming them) or left out; words outside it are `<unk>`."""
    if not text:
        raise ValueError("--prime is empty: give at least one character.")
    try:
        ids = vocab.encode(text, unknown=unknown)
    except ValueError as error:
        raise ValueError(
            f"--prime: {error} Use characters of the training text, or --unknown skip."
        ) from None
    if len(ids) == 0:
        raise ValueError("--prime has no character of the model's vocabulary.")
    return ids


def sample(args):
    from keras_deeprnn.models import beam_search_tokens
    from keras_deeprnn.models import sample_tokens

    model = runner.load(args.model, APP)
    vocab = data.vocabulary(_stored(args.model))
    primer = primer_ids(vocab, args.prime, args.unknown)
    if args.beam:
        ids = beam_search_tokens(model, primer, args.length, beam_width=args.beam)
    else:
        ids = sample_tokens(
            model,
            primer,
            args.length,
            temperature=args.temperature,
            top_k=args.top_k,
            seed=args.seed,
        )
    print(vocab.decode(primer) + vocab.decode(ids))
    return 0


def litert_greedy(interpreter, primer, length):
    """Greedy ids from a streaming TFLite language model: the primer, then
    each most likely token, one invoke per token."""
    run = interpreter.get_signature_runner()
    inputs = run.get_input_details()
    states = {n: np.zeros(d["shape"], np.float32) for n, d in inputs.items() if "_state_" in n}
    (ids_name,) = [n for n in inputs if n not in states]
    out, token = [], None
    for t in range(len(primer) + length - 1):
        token = primer[t] if t < len(primer) else token
        result = run(**{ids_name: np.array([token], np.int32)}, **states)
        states = {n: result[n] for n in states}
        if t >= len(primer) - 1:
            token = int(np.argmax(result["output_0"][0]))
            out.append(token)
    return np.array(out, np.int32)


def litert_nats(interpreter, ids):
    """Mean cross-entropy (nats per token) of a streaming TFLite language
    model over `ids`, one invoke per token from zero states."""
    run = interpreter.get_signature_runner()
    inputs = run.get_input_details()
    states = {n: np.zeros(d["shape"], np.float32) for n, d in inputs.items() if "_state_" in n}
    (ids_name,) = [n for n in inputs if n not in states]
    total = 0.0
    for t in range(len(ids) - 1):
        result = run(**{ids_name: np.array([ids[t]], np.int32)}, **states)
        states = {n: result[n] for n in states}
        z = result["output_0"][0].astype(np.float64)
        z = z - z.max()
        total += np.log(np.exp(z).sum()) - z[ids[t + 1]]
    return total / (len(ids) - 1)


def export(args):
    from keras_deeprnn.export import load_export
    from keras_deeprnn.export import write_export
    from keras_deeprnn.export.manifest import tflite_name
    from keras_deeprnn.models import sample_tokens

    from .model import score

    model = runner.load(args.model, APP)
    stored = _stored(args.model)
    vocab = data.vocabulary(stored)
    quantize = None if args.quantize == "none" else args.quantize
    primer = vocab.encode(DEFAULT_PRIMER)
    if args.data:
        text = data.split_ids(args.data, stored, "train")
    else:  # calibrate on the model's own text
        text = sample_tokens(model, primer, 16 * 64, temperature=1.0, seed=0)
    starts = np.linspace(0, max(len(text) - 64, 0), 16).astype(int)
    calibration = np.stack([text[s : s + 64] for s in starts if len(text[s : s + 64]) == 64])
    folder = cli.export_folder(args)
    files = [("streaming", None)] + ([("streaming", quantize)] if quantize else [])
    write_export(
        model,
        folder,
        args.model.name,
        tflite=files,
        saved_model=False,
        representative_data=calibration,
        metrics=runner.read_metadata(args.model).get("metrics"),
    )
    reference = sample_tokens(model, primer, args.check_length, temperature=0)
    valid = None
    if args.data:
        valid = data.split_ids(args.data, stored, "valid")[: args.score_tokens]
        keras_nats = score(model, valid)
        print(
            f"Keras: {keras_nats:.4f} nats per {vocab.level} on the first {len(valid)} "
            "tokens of the validation part"
        )
    for mode, q in files:
        interpreter, entry = load_export(folder, tflite_name(mode, q))
        greedy = litert_greedy(interpreter, primer, args.check_length)
        same = int(np.argmax(greedy != reference)) if np.any(greedy != reference) else len(greedy)
        kind = q or "float32"
        print(
            f"{folder / entry['file']} ({kind}): greedy {vocab.level}s equal to Keras's: "
            f"{same} of {len(greedy)}; largest |TFLite - Keras| logit {entry['max_abs_diff']:.2e}"
        )
        if valid is not None:
            print(f"  {litert_nats(interpreter, valid):.4f} nats per {vocab.level} on the same")
        if q is None and same < len(greedy):
            raise ValueError(
                f"{entry['file']}: LiteRT's greedy text leaves Keras's at token {same}."
            )
    print("greedy text:", repr(vocab.decode(reference)[:200]))
    return 0


def main(argv=None):
    commands = {"train": train, "evaluate": evaluate, "sample": sample, "export": export}
    return cli.main(parser(), commands, argv)


if __name__ == "__main__":
    cli.exit(main())
