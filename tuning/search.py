"""`python -m tuning.search APP --tuner TUNER --max-trials N --directory DIR`.

Hyperparameter search over an app's model (music, sentiment or tagging) with
KerasTuner: the cell (every cell and LSTM variant), the architecture, units,
depth, dropout, learning rate, gradient clipping, weight noise and forget-gate bias (see
`tuning.hypermodels`), scored by the app's validation metric. Every trial
logs to DIR/PROJECT/tensorboard (hparams view: `tensorboard --logdir
DIR/PROJECT/tensorboard`); at the end a table of the best trials is printed
and written to DIR/PROJECT/summary.md. Re-running the command with the same
directory resumes the search (finished trials are kept); the folder's
search.json holds the options its trials ran with, and a resume with other
ones is refused (only how many trials, and what is printed, may change).

`python -m tuning.search tasks ...` runs the evolutionary search of cell
genomes instead (`tuning.evolution.EvolutionOracle` over the generated tasks
of `tuning.tasks.TaskSuite`), so that it too runs distributed.

Run under KerasTuner's chief/worker environment (`KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`) it is a chief or a worker
of a distributed search; `python -m tuning.distributed` starts a whole one.
"""

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

from . import apps_module
from .hypermodels import HP_NAMES

app_cli = apps_module("common.cli")
runner = apps_module("common.runner")
music_data = apps_module("music.data")
sentiment_data = apps_module("sentiment.data")
tagging_data = apps_module("tagging.data")

APPS = ("music", "sentiment", "tagging")
TUNERS = ("random", "bayesian", "hyperband")


def _fixed_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _fix(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--fix takes NAME=VALUE, got {text!r}")
    return name, _fixed_value(value)


def _range(text):
    try:
        bounds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--units takes MIN,MAX, got {text!r}") from None
    if len(bounds) != 2:
        raise argparse.ArgumentTypeError(f"--units takes MIN,MAX, got {text!r}")
    return tuple(bounds)


def _add_search(p):
    """Options of every search: budget, folder, seed, summary."""
    p.add_argument(
        "--max-trials",
        type=int,
        default=20,
        help="trials to run (for hyperband a cap on its own schedule)",
    )
    p.add_argument(
        "--directory",
        type=Path,
        default=Path("runs") / "tuning",
        help="folder of the search (default runs/tuning)",
    )
    p.add_argument("--project-name", default=None, help="subfolder of --directory (default APP)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh instead of resuming the search in the folder",
    )
    p.add_argument(
        "--max-failed", type=int, default=10, help="stop after this many consecutive failed trials"
    )
    p.add_argument("--top", type=int, default=10, help="rows of the summary table")
    p.add_argument("--seed", type=int, default=0, help="random seed (search and data)")
    p.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=(0, 1, 2),
        help="Keras fit verbosity of each trial",
    )


def _add_common(p):
    """Options of the app searches: tuner and search space."""
    p.add_argument(
        "--tuner",
        default="random",
        choices=TUNERS,
        help="random search, Bayesian optimisation (Gaussian process) or Hyperband",
    )
    _add_search(p)
    p.add_argument(
        "--epochs", type=int, default=10, help="epochs per trial (for hyperband: its max_epochs)"
    )
    p.add_argument("--factor", type=int, default=3, help="hyperband's reduction factor")
    p.add_argument(
        "--initial-points",
        type=int,
        default=None,
        help="random trials before the Gaussian process of bayesian takes over "
        "(default: 3 per hyperparameter)",
    )
    p.add_argument(
        "--fix",
        type=_fix,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pin a hyperparameter (" + ", ".join(HP_NAMES) + "; music: input_dropout); repeatable",
    )
    p.add_argument(
        "--units",
        type=_range,
        default=None,
        metavar="MIN,MAX",
        help="range of the units (default: the app's)",
    )
    p.add_argument("--max-depth", type=int, default=3, help="largest depth of deep architectures")
    p.add_argument(
        "--patience",
        type=app_cli.positive_int,
        default=None,
        help="end a trial after this many epochs without a better validation score "
        "(keras.callbacks.EarlyStopping; the trial's score is its best epoch's either way)",
    )
    p.add_argument(
        "--trial-time-budget",
        type=app_cli.positive_float,
        default=None,
        metavar="MINUTES",
        help="end a trial at the last whole epoch that fits in this wall time "
        "(keras_deeprnn.training.TimeBudget), so that a slow corner of the space "
        "cannot take a search's time; its score is its best epoch's; a trial with "
        "lr_schedule cosine then anneals over this budget by the clock",
    )
    p.add_argument(
        "--keep-weights",
        default="all",
        choices=("all", "none"),
        help="none: delete each trial's weights when it ends (its trial.json keeps the score "
        "and values), so the search folder stays small enough to commit and resume in another "
        "session; not with hyperband, whose later rounds load earlier trials' weights",
    )


def parser(prog="python -m tuning.search", description=None, extra=None):
    """The command line; `extra(subparser)` adds options to every app."""
    top = argparse.ArgumentParser(prog=prog, description=description or __doc__.split("\n\n")[1])
    sub = top.add_subparsers(dest="app", required=True, metavar="APP")

    # Each app's own data options (apps.APP.data.add_arguments), with its defaults.
    music = sub.add_parser(
        "music", allow_abbrev=False, help="polyphonic music: next-frame NLL (val_nll, min)"
    )
    music_data.add_arguments(music, training=True)
    sentiment = sub.add_parser(
        "sentiment", allow_abbrev=False, help="sentence sentiment (val_accuracy, max)"
    )
    sentiment_data.add_arguments(sentiment)
    sentiment.add_argument("--embedding-dim", type=int, default=64, help="word vector size")
    tagging = sub.add_parser(
        "tagging", allow_abbrev=False, help="part-of-speech tagging (val_accuracy, max)"
    )
    tagging_data.add_arguments(tagging, train_required=False)
    tagging.add_argument("--word-dim", type=int, default=100, help="word embedding size")
    tagging.add_argument(
        "--char-units",
        type=int,
        default=50,
        help="character RNN units per direction (0: words only)",
    )
    tagging.add_argument("--char-dim", type=int, default=32, help="character embedding size")

    # No abbreviated options: tuning.distributed passes the workers the
    # options it does not know by their full names.
    tasks = sub.add_parser(
        "tasks",
        allow_abbrev=False,
        help="evolutionary search of cell genomes on generated tasks "
        "(tuning.evolution.EvolutionOracle over tuning.tasks.TaskSuite)",
    )
    tasks.add_argument(
        "--tasks", default="arithmetic", help="comma-separated: arithmetic, xml, music"
    )
    size = tasks.add_mutually_exclusive_group()
    size.add_argument("--units", type=int, default=None, help="units of every cell")
    size.add_argument(
        "--params",
        type=int,
        default=5000,
        help="parameter budget of each task model (default 5000)",
    )
    tasks.add_argument("--steps", type=int, default=300, help="training steps per task")
    tasks.add_argument("--batch-size", type=int, default=32, help="sequences per step")
    tasks.add_argument("--population", type=int, default=100, help="genomes kept")
    _add_search(tasks)

    for p in (music, sentiment, tagging):
        _add_common(p)
    for p in (music, sentiment, tagging, tasks):
        if extra:
            extra(p)
    return top


# ----------------------------------------------------------------------------
# Data and hypermodels, built with the apps' own loaders
# ----------------------------------------------------------------------------


def _space(args):
    space = {"fixed": dict(args.fix), "max_depth": args.max_depth}
    if args.units:
        space["units"] = args.units
    return space


def _music(args):
    from .hypermodels import MusicHyperModel

    ds = music_data.datasets(args)
    return MusicHyperModel(**_space(args)), ds.train, ds.valid


def _sentiment(args):
    from .hypermodels import SentimentHyperModel

    # Trials are scored on a part of the training texts, never on a test split.
    ds = sentiment_data.datasets(args)
    vectorizer = ds.info["vectorizer"]
    hypermodel = SentimentHyperModel(
        vectorizer.vocabulary_size(),
        len(ds.info["sets"]["train"].label_names),
        embedding_dim=args.embedding_dim,
        **_space(args),
    )
    return hypermodel, ds.train, ds.valid


def _tagging(args):
    from .hypermodels import TaggingHyperModel

    if not args.valid and not 0 < args.valid_fraction < 1:
        raise ValueError(
            f"--valid-fraction must be in (0, 1) without --valid, got {args.valid_fraction}."
        )
    args.test = None  # the search never scores a test split
    ds = tagging_data.datasets(args)
    info = ds.info
    hypermodel = TaggingHyperModel(
        info["vocabulary"],
        info["characters"],
        info["tags"],
        word_counts=info["counts"],
        word_dim=args.word_dim,
        char_units=args.char_units,
        char_dim=args.char_dim,
        seed=args.seed,
        **_space(args),
    )
    return hypermodel, ds.train, ds.valid


def _tasks(args):
    from .tasks import TaskSuite

    suite = TaskSuite(
        args.tasks.split(","),
        units=args.units,
        params=None if args.units else args.params,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    return suite, None, None  # every task brings its own data


def load(args):
    """`(hypermodel, train dataset, validation dataset)` of `args.app`."""
    for name in ("max_trials", "epochs", "batch_size", "top", "max_failed", "steps", "population"):
        if getattr(args, name, 1) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive.")
    loaders = {"music": _music, "sentiment": _sentiment, "tagging": _tagging, "tasks": _tasks}
    return loaders[args.app](args)


# ----------------------------------------------------------------------------
# Tuners
# ----------------------------------------------------------------------------


def project_name(args):
    return args.project_name or args.app


def _evolution_tuner(args, suite, common):
    """`tuning.evolution.EvolutionOracle` over the task suite, looked up only
    when asked for."""
    import keras_tuner

    try:
        from .evolution import EvolutionOracle
    except ModuleNotFoundError as error:
        if error.name != "tuning.evolution":
            raise
        raise ValueError(
            "the tasks search needs tuning/evolution.py (EvolutionOracle), "
            "which this installation lacks."
        ) from None
    oracle = EvolutionOracle(
        suite.objectives,
        max_trials=args.max_trials,
        population_size=args.population,
        seed=args.seed,
        max_consecutive_failed_trials=args.max_failed,
    )
    return keras_tuner.Tuner(oracle=oracle, **common)


class _DropWeights:
    """Tuner mixin: each trial's checkpoint is deleted when the trial ends."""

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        for path in Path(self.get_trial_dir(trial.trial_id)).glob("checkpoint*"):
            path.unlink()


def make_tuner(args, hypermodel):
    """The KerasTuner tuner of `args.tuner` over `hypermodel`, in
    `args.directory / project_name(args)` (reloaded from there if it exists)."""
    import keras_tuner

    common = dict(
        hypermodel=hypermodel,
        directory=str(args.directory),
        project_name=project_name(args),
        overwrite=args.overwrite,
    )
    if args.app == "tasks":
        return _evolution_tuner(args, hypermodel, common)
    search = dict(
        objective=hypermodel.objective,
        seed=args.seed,
        max_consecutive_failed_trials=args.max_failed,
    )
    if args.tuner in ("random", "bayesian"):
        tuner_class = keras_tuner.RandomSearch
        if args.tuner == "bayesian":
            tuner_class = keras_tuner.BayesianOptimization
            search["num_initial_points"] = args.initial_points
        if args.keep_weights == "none":
            tuner_class = type(tuner_class.__name__, (_DropWeights, tuner_class), {})
        return tuner_class(max_trials=args.max_trials, **search, **common)
    if args.tuner == "hyperband":
        if args.keep_weights == "none":
            raise ValueError(
                "--keep-weights none does not work with hyperband: its later rounds "
                "continue from earlier trials' weights."
            )
        if args.factor < 2:
            raise ValueError(f"--factor must be at least 2, got {args.factor}.")
        tuner = keras_tuner.Hyperband(
            max_epochs=args.epochs, factor=args.factor, **search, **common
        )
        # Hyperband has no trial budget of its own; the base Oracle stops at max_trials.
        tuner.oracle.max_trials = args.max_trials
        return tuner
    raise ValueError(f"Unknown --tuner {args.tuner!r}; choose one of {', '.join(TUNERS)}.")


#: Options a later slice of a search may change: none of them changes a trial.
SLICE_OPTIONS = frozenset(
    {"max_trials", "max_failed", "top", "verbose", "overwrite", "directory", "project_name"}
)


def check_options(args, ignore=()):
    """Record the options that shape the trials in PROJECT/search.json, or,
    resuming, refuse options that differ from those recorded (a resumed
    search would mix trials of two setups and rank them as one). `ignore`:
    more option names (a launcher's own) to leave out."""
    path = Path(args.directory) / project_name(args) / "search.json"
    skip = SLICE_OPTIONS | set(ignore)
    options = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    options = json.loads(json.dumps(options, default=str))  # tuples, paths: as stored
    if path.exists() and not args.overwrite:
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"{path} is unreadable ({error}): move it away to resume") from None
        changed = [
            f"--{k.replace('_', '-')} was {recorded.get(k)!r}, now {options.get(k)!r}"
            for k in sorted(set(recorded) | set(options))
            if recorded.get(k) != options.get(k)
        ]
        if changed:
            raise ValueError(
                f"{path.parent} holds a search run with other options ({'; '.join(changed)}): "
                "resume it with its own options, or start another with --project-name "
                "(or --overwrite, which deletes its trials)"
            )
    elif not is_worker():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(options, indent=1) + "\n")


def is_worker():
    """Whether this process is a worker of a distributed search."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id


def run_search(tuner, args, train_ds, valid_ds):
    """`tuner.search` for `args.epochs` epochs per trial (fewer with
    `args.patience` or `args.trial_time_budget`), every trial logged to
    TensorBoard (scalars and hparams) under PROJECT/tensorboard."""
    import keras

    from keras_deeprnn.training import TimeBudget

    callbacks = [keras.callbacks.TensorBoard(log_dir=str(Path(tuner.project_dir) / "tensorboard"))]
    patience = getattr(args, "patience", None)
    if patience is not None:
        objective = tuner.oracle.objective
        stop = keras.callbacks.EarlyStopping(
            objective.name, patience=patience, mode=objective.direction
        )
        callbacks.append(stop)
    budget = getattr(args, "trial_time_budget", None)
    if budget is not None:  # KerasTuner copies the callbacks for each trial: a fresh clock
        callbacks.append(TimeBudget(app_cli.seconds(budget), whole_epochs=True))
    tuner.search(
        train_ds,
        validation_data=valid_ds,
        epochs=getattr(args, "epochs", None),
        callbacks=callbacks,
        verbose=args.verbose,
    )


# ----------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _last_line(trial):
    lines = [line.strip() for line in (trial.message or "").splitlines() if line.strip()]
    if lines:
        return lines[-1]
    if trial.status == "RUNNING":  # its process was ended, or a worker still runs it
        return "unfinished (a resumed search runs it again)"
    # KerasTuner's gRPC protocol drops the message of a worker's trial.
    return "no message (distributed: see the worker's log)"


def summary_table(oracle, top=10):
    """Markdown: the `top` best completed trials (objective and
    hyperparameters), then a line per failed or unfinished trial."""
    objective = oracle.objective
    trials = list(oracle.trials.values())
    done = sorted(
        (
            t
            for t in trials
            if t.status == "COMPLETED" and t.score is not None and math.isfinite(t.score)
        ),
        key=lambda t: t.score,
        reverse=objective.direction == "max",
    )
    seen = {n for t in trials for n in t.hyperparameters.values}
    names = [n for n in HP_NAMES if n in seen]
    names += sorted(n for n in seen - set(HP_NAMES) if not n.startswith("tuner/"))
    if any("tuner/epochs" in t.hyperparameters.values for t in trials):
        names.append("tuner/epochs")
    header = ["rank", "trial", f"{objective.name} ({objective.direction})", *names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, trial in enumerate(done[:top], 1):
        values = trial.hyperparameters.values
        row = [
            str(rank),
            trial.trial_id,
            _cell(trial.score),
            *(_cell(values.get(n)) for n in names),
        ]
        lines.append("| " + " | ".join(row) + " |")
    others = [t for t in trials if t not in done]
    lines.append("")
    lines.append(
        f"{len(trials)} trials: {len(done)} completed, {len(others)} not "
        f"(showing the best {min(top, len(done))})."
    )
    for trial in sorted(others, key=lambda t: t.trial_id):
        lines.append(f"- trial {trial.trial_id}: {trial.status}: {_last_line(trial)}")
    return "\n".join(lines) + "\n"


def write_summary(tuner, args):
    table = summary_table(tuner.oracle, args.top)
    path = Path(tuner.project_dir) / "summary.md"
    path.write_text(f"# {args.app}: {getattr(args, 'tuner', 'evolution')} search\n\n" + table)
    print(table)
    print(
        f"summary: {path}; TensorBoard: tensorboard --logdir "
        f"{Path(tuner.project_dir) / 'tensorboard'}"
    )
    return path


def main(argv=None, prog="python -m tuning.search"):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser(prog).parse_args(argv)
    try:
        runner.set_seed(args.seed)
        hypermodel, train_ds, valid_ds = load(args)
        tuner = make_tuner(args, hypermodel)  # with --overwrite, empties the folder
        check_options(args)
        run_search(tuner, args, train_ds, valid_ds)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not is_worker():
        write_summary(tuner, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
