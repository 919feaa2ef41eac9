"""`python -m apps.translate train|evaluate|translate|attention|export|verify`.

Neural machine translation: an attentional recurrent encoder-decoder
(`keras_deeprnn.seq2seq.Seq2Seq`) on subword pieces (sentencepiece, learned
from the training text and saved with the model), decoded greedily or by
beam search, scored by sacreBLEU's BLEU and chrF on detokenized text, and
exported to LiteRT as an encoder and a decoder step driven by the same
search.
"""

import sys
from pathlib import Path

import numpy as np

from ..common import cli
from ..common import runner
from . import data
from . import translation

APP = "translate"
SETUP = "translate"  # the metadata key of the data and the vocabulary
EXIT_DIFFERENT = 1  # verify: a LiteRT translation differs from Keras's


def parser():
    from keras_deeprnn.cells import CELL_NAMES

    from .model import ARCHS
    from .model import ATTENTIONS
    from .model import DECODERS
    from .tokenizer import MODEL_TYPES

    top, sub = cli.app_parser(APP, __doc__)

    train = sub.add_parser("train", help="train a model and save it under saved_models/")
    data.add_arguments(train, training=True)
    train.add_argument(
        "--vocab-size",
        type=cli.positive_int,
        default=8000,
        help="subword pieces per vocabulary (sentencepiece; at most: a small corpus yields fewer)",
    )
    train.add_argument(
        "--separate-vocab",
        action="store_true",
        help="one vocabulary per language (default: one shared by both)",
    )
    train.add_argument("--tokenizer", default="unigram", choices=MODEL_TYPES)
    train.add_argument(
        "--max-length",
        type=cli.positive_int,
        default=80,
        help="longest sentence in pieces: longer training pairs are left out; longer "
        "sentences to translate are cut to it (with a warning); the exported encoder's "
        "length",
    )
    train.add_argument("--cell", default="lstm", choices=CELL_NAMES, help="recurrent cell")
    train.add_argument(
        "--arch",
        default="stack",
        choices=ARCHS,
        help="encoder and decoder layers (keras_deeprnn.seq2seq.Seq2Seq): stack: --depth "
        "fused recurrent layers; srnn: --depth stacked cells in one layer; dt / dts: a "
        "deep transition of --depth layers without / with shortcuts",
    )
    train.add_argument(
        "--depth",
        type=cli.positive_int,
        default=1,
        help="layers of the encoder and of the decoder (see --arch)",
    )
    train.add_argument("--units", type=cli.positive_int, default=256, help="recurrent units")
    train.add_argument(
        "--embedding-dim", type=cli.positive_int, default=256, help="piece embedding size"
    )
    train.add_argument(
        "--attention", default="bahdanau", choices=ATTENTIONS, help="attention score"
    )
    train.add_argument(
        "--unidirectional",
        action="store_true",
        help="a forward encoder (default: bidirectional)",
    )
    train.add_argument(
        "--decoder",
        default="fast",
        choices=DECODERS,
        help="decoder implementation for training (keras_deeprnn.seq2seq)",
    )
    train.add_argument("--dropout", type=cli.rate, default=0.2, help="dropout")
    train.add_argument(
        "--label-smoothing", type=cli.rate, default=0.1, help="label smoothing of the loss"
    )
    cli.add_fit_options(
        train, epochs=30, patience=4, lr=1e-3, clipnorm=1.0, time_budget=True, lr_schedule=True
    )
    train.add_argument(
        "--score-limit",
        type=cli.non_negative_int,
        default=None,
        help="after training, score greedy BLEU on the first N validation and test "
        "sentences only (default: all)",
    )
    cli.add_run_options(train, APP, "DATA-SRC-TGT-CELL-UNITS")

    evaluate = sub.add_parser(
        "evaluate", help="sacreBLEU BLEU and chrF of a saved model (default: its test split)"
    )
    cli.add_model_argument(evaluate, APP)
    evaluate.add_argument("--src-file", type=Path, default=None, help="sentences to translate")
    evaluate.add_argument("--ref-file", type=Path, default=None, help="their references")
    _add_search(evaluate)
    evaluate.add_argument(
        "--limit", type=cli.positive_int, default=None, help="score the first N sentences"
    )
    evaluate.add_argument(
        "--hypotheses", type=Path, default=None, help="also write the translations here"
    )
    data.add_arguments(evaluate)

    tr = sub.add_parser("translate", help="translate a file or standard input, a line each")
    cli.add_model_argument(tr, APP)
    tr.add_argument(
        "--input", type=Path, default=None, help="sentences, one a line (default: stdin)"
    )
    tr.add_argument(
        "--output", type=Path, default=None, help="translations, one a line (default: stdout)"
    )
    tr.add_argument(
        "--litert",
        action="store_true",
        help="translate with the LiteRT files of MODEL/export (`export`) instead of Keras",
    )
    _add_search(tr)

    att = sub.add_parser("attention", help="a PNG heatmap of the attention for one sentence")
    cli.add_model_argument(att, APP)
    att.add_argument("--sentence", required=True, help="the sentence to translate")
    att.add_argument("--output", type=Path, required=True, help="the PNG file")
    _add_search(att)

    exp = cli.add_export_command(
        sub,
        APP,
        ("tflite",),
        "tflite",
        quantize=False,
        fuse_lstm=False,
        help="builtin-only TFLite encoder (sequence) and decoder step (streaming) with the "
        "vocabulary into MODEL/export, with a manifest",
    )
    del exp

    ver = sub.add_parser(
        "verify", help="LiteRT translations equal Keras's token for token (test split)"
    )
    cli.add_model_argument(ver, APP)
    ver.add_argument(
        "--export", type=Path, default=None, help="export folder (default MODEL/export)"
    )
    ver.add_argument("--src-file", type=Path, default=None, help="sentences (default: test split)")
    ver.add_argument(
        "--limit", type=cli.positive_int, default=None, help="check the first N sentences"
    )
    ver.add_argument(
        "--beam",
        type=cli.non_negative_int,
        default=0,
        help="also compare beam search of this width (0: greedy only)",
    )
    data.add_arguments(ver)
    return top


def _add_search(p):
    p.add_argument(
        "--beam",
        type=cli.non_negative_int,
        default=0,
        help="beam width (0 or 1: greedy decoding)",
    )
    p.add_argument(
        "--length-penalty",
        type=cli.non_negative_float,
        default=0.6,
        help="beam search: alpha of GNMT's length penalty ((5 + length) / 6)^alpha",
    )
    p.add_argument(
        "--batch-size", type=cli.positive_int, default=64, help="sentences per search batch"
    )


# -- train -------------------------------------------------------------------------


def train(args):
    from .model import build_model
    from .tokenizer import Tokenizer

    stem = "multi30k" if str(args.data).lower() == "multi30k" else Path(str(args.data)).stem
    run = cli.Run(APP, args, f"{stem}-{args.src}-{args.tgt}-{args.cell}-{args.units}")
    runner.set_seed(args.seed)
    pairs = data.load_pairs(
        args.data, args.src, args.tgt, args.data_dir, args.valid_size, seed=args.seed
    )
    with runner.Timer() as vocab_timer:
        tokenizer = Tokenizer.train(
            pairs["train"].source,
            pairs["train"].target,
            args.vocab_size,
            shared=not args.separate_vocab,
            model_type=args.tokenizer,
        )
    print(
        f"vocabulary: {tokenizer.source_vocab_size} source / {tokenizer.target_vocab_size} "
        f"target pieces ({'shared' if tokenizer.shared else 'separate'}, "
        f"{vocab_timer.seconds:.0f} s)"
    )
    ds = data.datasets(pairs, tokenizer, args.max_length, args.batch_size, seed=args.seed)
    lr, cosine_from = cli.learning_rate_plan(args, ds.train)
    strategy = runner.get_strategy(args.strategy)
    with strategy.scope():
        model = build_model(args, tokenizer, lr)
    model.summary(line_length=100)
    with runner.Timer() as timer:
        history = runner.fit(
            model,
            ds.train,
            ds.valid,
            run.run_dir,
            args.epochs,
            monitor="val_loss",
            patience=args.patience,
            time_budget=cli.seconds(args.time_budget),
            cosine_from=cosine_from,
        )
    metrics = {}
    with runner.Timer() as score_timer:
        for split in ("valid", "test"):
            if split not in pairs:
                continue
            result = _score(model, tokenizer, pairs[split], args.max_length, limit=args.score_limit)
            metrics[f"{split}_bleu"], metrics[f"{split}_chrf"] = result["bleu"], result["chrf"]
            print(f"{split} (greedy, {result['sentences']} sentences): {result['bleu_detail']}")
    run.save(
        model,
        metrics,
        history,
        timer.seconds,
        files=tokenizer.files(),
        metric="sacreBLEU BLEU and chrF, greedy, detokenized (13a, cased)",
        vocabulary_seconds=round(vocab_timer.seconds, 1),
        score_seconds=round(score_timer.seconds, 1),
        # Epoch numbers count from the start even after a resume.
        best_epoch=history.epoch[int(np.argmin(history.history["val_loss"]))] + 1,
        pairs={split: ds.info["kept"][split] for split in ds.info["kept"]},
        **{SETUP: _setup(args, tokenizer)},
    )
    return 0


def _setup(args, tokenizer):
    """What `evaluate`, `translate` and `export` need besides the model."""
    return {
        "data": str(args.data),
        "src": args.src,
        "tgt": args.tgt,
        "data_dir": None if args.data_dir is None else str(args.data_dir),
        "valid_size": args.valid_size,
        "seed": args.seed,
        "max_length": args.max_length,
        "vocabulary": tokenizer.describe(),
    }


def _score(model, tokenizer, pairs, max_length, beam=0, limit=None, batch_size=64, **options):
    sources, references = pairs.source, pairs.target
    if limit:
        sources, references = sources[:limit], references[:limit]
    hypotheses = translation.translate(
        model, tokenizer, sources, max_length, beam=beam, batch_size=batch_size, **options
    )
    return {
        **translation.score(hypotheses, references),
        "sentences": len(sources),
        "hypotheses": hypotheses,
    }


# -- using a saved model ------------------------------------------------------------


def _load(args):
    from .tokenizer import Tokenizer

    model = runner.load(args.model, APP)
    setup = runner.read_metadata(args.model).get(SETUP)
    if setup is None:
        raise ValueError(
            f"{args.model} has no '{SETUP}' setup in its metadata.json: pass a folder "
            "saved by `python -m apps.translate train`."
        )
    return model, Tokenizer.load(args.model), setup


def _split(args, setup, split="test"):
    """The `split` pairs of the data the model was trained on (or of
    `--data`, `--src`, `--tgt`, `--data-dir` where given)."""
    spec = args.data or setup["data"]
    src, tgt = args.src or setup["src"], args.tgt or setup["tgt"]
    data_dir = args.data_dir or setup["data_dir"]
    pairs = data.load_pairs(spec, src, tgt, data_dir, setup["valid_size"], seed=setup["seed"])
    if split not in pairs:
        raise ValueError(
            f"{spec} has no {split} split: pass --src-file and --ref-file "
            "(or --data with a test split)"
        )
    return pairs[split]


def evaluate(args):
    model, tokenizer, setup = _load(args)
    if (args.src_file is None) != (args.ref_file is None):
        raise ValueError("pass both --src-file and --ref-file, or neither (the test split)")
    if args.src_file is not None:
        sources, references = data.read_lines(args.src_file), data.read_lines(args.ref_file)
        if len(sources) != len(references):
            raise ValueError(
                f"{args.src_file} has {len(sources)} lines but {args.ref_file} has "
                f"{len(references)}: each sentence needs one reference"
            )
        pairs = data.Pairs(sources, references, list(range(1, len(sources) + 1)))
        what = str(args.src_file)
    else:
        pairs = _split(args, setup)
        what = f"{setup['data']} {setup['src']}-{setup['tgt']} test"
    with runner.Timer() as timer:
        result = _score(
            model,
            tokenizer,
            pairs,
            setup["max_length"],
            beam=args.beam,
            limit=args.limit,
            batch_size=args.batch_size,
            length_penalty=args.length_penalty,
        )
    search = f"beam {args.beam}" if args.beam > 1 else "greedy"
    print(f"BLEU {result['bleu']:.2f}")
    print(f"chrF {result['chrf']:.2f}")
    print(
        f"{what}, {result['sentences']} sentences, {search}, {timer.seconds:.0f} s; "
        f"{result['bleu_detail']}; {result['bleu_signature']}; {result['chrf_signature']}"
    )
    if args.hypotheses:
        _write_lines(args.hypotheses, result["hypotheses"])
        print(f"wrote {args.hypotheses}")
    return 0


def _write_lines(path, lines):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line.replace("\n", " ") + "\n" for line in lines), encoding="utf-8")


def _translator(args):
    """A function of a list of texts to their translations: the Keras
    model's, or with `--litert` its export's."""
    options = dict(beam=args.beam, batch_size=args.batch_size, length_penalty=args.length_penalty)
    if args.litert:
        from . import litert

        folder = args.model if args.model.is_dir() else args.model.parent
        engine = litert.Translator(folder / "export")
        return lambda texts: engine.translate(texts, **options)
    model, tokenizer, setup = _load(args)
    return lambda texts: translation.translate(
        model, tokenizer, texts, setup["max_length"], **options
    )


def translate(args):
    run = _translator(args)
    if args.input is not None:
        texts = data.read_lines(args.input)
        outputs = run(texts)
        if args.output is not None:
            _write_lines(args.output, outputs)
            print(f"wrote {args.output} ({len(outputs)} lines)", file=sys.stderr)
        else:
            sys.stdout.write("".join(line + "\n" for line in outputs))
        return 0
    # Standard input: a line at a time from a terminal, else all at once.
    if sys.stdin.isatty():
        chunks = ([line.rstrip("\n")] for line in sys.stdin)
    else:
        chunks = iter([[line.rstrip("\n").removesuffix("\r") for line in sys.stdin]])
    sink = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for texts in chunks:
            outputs = run(texts)
            sink.write("".join(line + "\n" for line in outputs))
            sink.flush()
    finally:
        if args.output:
            sink.close()
    return 0


def attention(args):
    model, tokenizer, setup = _load(args)
    text, matrix, source_pieces, target_pieces = translation.attention_map(
        model, tokenizer, args.sentence, setup["max_length"], args.beam, args.length_penalty
    )
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = translation.plot_attention(
        matrix, source_pieces, target_pieces, title=f"{args.sentence}\n{text}"
    )
    fig.savefig(args.output)
    plt.close(fig)
    print(text)
    print(f"wrote {args.output}")
    return 0


# -- LiteRT ---------------------------------------------------------------------------


def export(args):
    from . import litert

    model, tokenizer, setup = _load(args)
    folder = cli.export_folder(args)
    manifest = litert.export(
        model,
        tokenizer,
        folder,
        args.model.name,
        setup["max_length"],
        metrics=runner.read_metadata(args.model).get("metrics"),
    )
    for entry in manifest["exports"]:
        print(
            f"wrote {folder / entry['file']}: {entry['mode']}, builtin ops only, "
            f"largest |TFLite - Keras| {entry['max_abs_diff']:.2e}"
        )
    return 0


def verify(args):
    from . import litert

    model, tokenizer, setup = _load(args)
    folder = args.export or (args.model if args.model.is_dir() else args.model.parent) / "export"
    if args.src_file is not None:
        texts = data.read_lines(args.src_file)
        what = str(args.src_file)
    else:
        texts = _split(args, setup).source
        what = f"{setup['data']} {setup['src']}-{setup['tgt']} test"
    texts = texts[: args.limit] if args.limit else texts
    sources = translation.source_ids(tokenizer, texts, setup["max_length"], what)
    engine = litert.Translator(folder)
    ok = True
    for beam in [0] + ([args.beam] if args.beam > 1 else []):
        with runner.Timer() as keras_timer:
            expected = translation.generate_ids(model, sources, beam=beam)
        with runner.Timer() as lite_timer:
            got = engine.generate_ids(sources, beam=beam)
        same = sum(a == b for a, b in zip(expected, got))
        search = f"beam {beam}" if beam > 1 else "greedy"
        print(
            f"{search}: {same}/{len(sources)} LiteRT translations equal Keras's token for "
            f"token ({what}; Keras {keras_timer.seconds:.0f} s, LiteRT {lite_timer.seconds:.0f} s)"
        )
        if same != len(sources):
            ok = False
            first = next(i for i, (a, b) in enumerate(zip(expected, got)) if a != b)
            keras_text, lite_text = tokenizer.decode_target([expected[first], got[first]])
            print(
                f"  first difference, line {first + 1}: Keras {keras_text!r}, LiteRT {lite_text!r}"
            )
    if not ok:
        print("error: the LiteRT translations differ from Keras's (see above)", file=sys.stderr)
        return EXIT_DIFFERENT
    return 0


def main(argv=None):
    commands = {
        "train": train,
        "evaluate": evaluate,
        "translate": translate,
        "attention": attention,
        "export": export,
        "verify": verify,
    }
    return cli.main(parser(), commands, argv)


if __name__ == "__main__":
    cli.exit(main())
