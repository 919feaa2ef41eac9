"""The training runner shared by the apps.

One place for what every app's `train` does: seeds, a `tf.distribute`
strategy, Keras callbacks (progress bar, TensorBoard, gradient norms,
BackupAndRestore for resuming after an interruption, early stopping on the
validation metric, best checkpoint, a stop on a non-finite loss, an optional
wall-clock budget), a lock on the run folder, and saving the final model
under `saved_models/<app>-<name>/` with a metadata JSON (and any files of
the app's, as a vocabulary), atomically and never over another model unless
asked.
"""

import contextlib
import datetime
import fcntl
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import keras
import tensorflow as tf

import keras_deeprnn
from keras_deeprnn import _compat
from keras_deeprnn.training import GradientNormLogger
from keras_deeprnn.training import TimeBudget

STRATEGIES = ("default", "mirrored", "multi-worker")
LR_SCHEDULES = ("constant", "cosine")
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
LOCK_FILE = ".lock"


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; nothing was saved."""


class RunLocked(RuntimeError):
    """Another process is training in the same run folder."""


def set_seed(seed):
    """Seeds Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(seed)


def get_strategy(name="default"):
    """A `tf.distribute` strategy by name.

    `"multi-worker"` reads the cluster from the `TF_CONFIG` environment
    variable (one process per worker, see
    https://www.tensorflow.org/guide/distributed_training).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multi-worker needs the TF_CONFIG environment "
                "variable describing the cluster and this worker's task."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


def is_chief():
    """True unless TF_CONFIG names this process a non-chief worker."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    if task.get("type") == "worker":
        has_chief = "chief" in config.get("cluster", {})
        return not has_chief and task.get("index", 0) == 0
    return True


def steps_per_epoch(dataset):
    """Batches in one pass over `dataset`: its cardinality where tf.data
    knows it, else counted (a bucketed pipeline)."""
    steps = int(dataset.cardinality())
    return steps if steps >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def adam(lr, clipnorm=0.0, ema=None):
    """Adam with norm clipping (0: off) and, with `ema` (a momentum), its
    moving average of the weights (`use_ema`), which `fit` validates and
    keeps."""
    average = {"use_ema": True, "ema_momentum": ema} if ema else {}
    return keras.optimizers.Adam(lr, clipnorm=clipnorm or None, **average)


def learning_rate(lr, schedule="constant", decay_steps=None):
    """The optimizer's learning rate for `--lr-schedule`: `lr` itself, or
    with "cosine" a `keras.optimizers.schedules.CosineDecay` down to a
    tenth of it over `decay_steps` steps. With `decay_steps` None the
    number is returned, for `fit`'s `cosine_from` to anneal by the clock."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(
            f"Unknown --lr-schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}."
        )
    if schedule == "cosine" and decay_steps:
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps, alpha=0.1)
    return lr


def fit(
    model,
    train_data,
    val_data,
    run_dir,
    epochs,
    monitor,
    mode="min",
    patience=10,
    grad_batch=None,
    verbose="auto",
    callbacks=(),
    time_budget=None,
    cosine_from=None,
):
    """`model.fit` with the apps' callbacks; returns the History.

    Interrupted runs resume: calling `fit` again with the same `run_dir`
    continues from the last finished epoch (`keras.callbacks.BackupAndRestore`).
    The weights of the best epoch on `monitor` are restored at the end.

    Args:
        model: A compiled Keras model.
        train_data, val_data: `tf.data.Dataset`s.
        run_dir: Folder for checkpoints (`backup/`, `best.keras`) and
            TensorBoard logs (`logs/`).
        epochs: Maximum number of epochs.
        monitor: Validation metric for early stopping, e.g. `"val_nll"`.
        mode: `"min"` or `"max"`, the direction in which `monitor` improves.
        patience: Epochs without improvement before stopping.
        grad_batch: Optional fixed batch for the per-layer gradient norms.
        verbose: Keras verbosity; "auto" shows a progress bar.
        callbacks: Extra callbacks, run before the apps' own (e.g.
            `keras_deeprnn.training.WeightNoise`, which must see each batch
            first).
        time_budget: Seconds of wall time for this call's training
            (`keras_deeprnn.training.TimeBudget` with `whole_epochs`), or
            None for no limit. A resumed run gets the budget afresh. Where
            it stops the run, the History's `stopped_by_time_budget` is
            `(epoch, step or None)`; else None.
        cosine_from: With `time_budget`, anneal the learning rate from this
            value to a tenth of it by the wall clock, over the whole budget
            (the run then ends where the budget is spent, mid-epoch if need
            be, not at the last whole epoch that fits). The optimizer's
            learning rate must be a number, not a schedule.

    An optimizer with `use_ema=True` (Polyak averaging) is validated,
    checkpointed and restored with its moving average of the weights
    (`keras.callbacks.SwapEMAWeights(swap_on_epoch=True)`, after the backup,
    which keeps the raw weights that training resumes from); training steps
    use the raw weights.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = StopOnNonFinite()
    budget = []
    if time_budget is not None:
        budget = [TimeBudget(time_budget, cosine_from, whole_epochs=cosine_from is None)]
    callbacks = [
        *callbacks,
        stop,
        *budget,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        # Then the averaged weights, for early stopping's copy and the checkpoint.
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if _uses_ema(model) else []),
        keras.callbacks.EarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=patience,
            restore_best_weights=True,
        ),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
        ),
    ]
    if grad_batch is not None:
        callbacks.append(GradientNormLogger(grad_batch, str(run_dir / "logs" / "grad_norms")))
    callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs")))
    # Keras's fit needs a workaround under MultiWorkerMirroredStrategy,
    # scoped to this call (see `keras_deeprnn._compat.multi_worker_fit`).
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        scope = _compat.multi_worker_fit(model, train_data)
    else:
        scope = contextlib.nullcontext()
    with run_lock(run_dir), scope:
        history = model.fit(
            train_data,
            validation_data=val_data,
            epochs=epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the datasets shuffle themselves
        )
    history.stopped_by_time_budget = budget[0].stopped if budget else None
    if history.stopped_by_time_budget:
        print(f"time budget: {budget[0].reason}")
    if stop.where:
        epoch, step, loss = stop.where
        raise TrainingDiverged(
            f"the training loss became {loss} at epoch {epoch}, step {step}; nothing "
            f"was saved (the last finished epoch is in {run_dir / 'backup'}). Lower "
            "--lr or --clipnorm, or check the data for NaNs."
        )
    return history


def _uses_ema(model):
    return bool(getattr(model.optimizer, "use_ema", False))


class StopOnNonFinite(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that remembers where: `where` is
    `(epoch, step, loss)`, counted from 1, or None."""

    def __init__(self):
        super().__init__()
        self.epoch, self.where = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and self.where is None and not math.isfinite(float(loss)):
            self.where = (self.epoch + 1, batch + 1, float(loss))
        super().on_batch_end(batch, logs)


class run_lock:
    """Holds an exclusive lock on `run_dir` (a `.lock` file, `flock`), so two
    runs cannot share a run folder; the system releases it when the process
    ends, however it ends, so a killed run can be resumed. The workers of a
    multi-worker run (TF_CONFIG) each take a lock of their own."""

    def __init__(self, run_dir):
        task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
        suffix = f"-{task.get('type')}-{task.get('index', 0)}" if task else ""
        self.path = Path(run_dir) / (LOCK_FILE + suffix)

    def __enter__(self):
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            self.file.close()
            raise RunLocked(
                f"{self.path.parent} is in use by {owner}: a run with the same name is "
                "training. Wait for it, or give this one another --name or --run-dir."
            ) from None
        self.file.truncate(0)
        self.file.write(f"pid {os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()


def command_line():
    """The command that is running, as a shell-quoted string: `python -m
    MODULE ...` or, for a script such as `deeprnn`, `deeprnn ...`."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec:
        program = [os.path.basename(sys.executable), "-m", spec.name.removesuffix(".__main__")]
    else:
        program = [os.path.basename(sys.argv[0])]
    return " ".join(shlex.quote(a) for a in program + sys.argv[1:])


def save(model, directory, metadata, overwrite=False, files=None):
    """Saves `model.keras` and `metadata.json` as the folder `directory`,
    with `files` (`{name: bytes}`, e.g. a vocabulary) beside them.

    The folder is written beside its target under a temporary name and
    renamed into place, so an interrupted save leaves no half-written
    folder under the final name and never touches the model that was
    there. An existing folder is kept: the model goes to `DIRECTORY-2`
    (`-3`, ...) instead, unless `overwrite`. The optimizer's state stays in
    the run's checkpoints (for resuming); the saved model leaves it out,
    which makes it several times smaller.

    Returns:
        The folder the model was saved to.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(directory)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.tmp-{os.getpid()}-", dir=directory.parent)
    )
    try:
        target = directory if overwrite else _free_name(directory)
        metadata = {
            "library_version": keras_deeprnn.__version__,
            "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__,
            "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "parameters": int(model.count_params()),
            **metadata,
            "folder": target.name,
        }
        with _without_optimizer(model):
            model.save(tmp / MODEL_FILE)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        for name, data in (files or {}).items():
            if name in (MODEL_FILE, METADATA_FILE) or Path(name).name != name:
                raise ValueError(f"{name!r} cannot be saved beside the model")
            (tmp / name).write_bytes(data)
        if target.exists():  # overwrite: move the old one aside, then drop it
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@contextlib.contextmanager
def _without_optimizer(model):
    """Detaches the optimizer while `model` is saved: Keras 3 ignores
    `include_optimizer=False` for `.keras` files and would store the
    optimizer's slots (twice the weights, for Adam). The compile
    configuration stays, so the loaded model is compiled with a fresh
    optimizer of the same settings."""
    optimizer = getattr(model, "optimizer", None)
    model.optimizer = None
    try:
        yield
    finally:
        model.optimizer = optimizer


def _free_name(directory):
    """`directory`, or the first of `directory-2`, `-3`, ... that is free."""
    target, n = directory, 1
    while target.exists():
        n += 1
        target = directory.with_name(f"{directory.name}-{n}")
    return target


def _remove_abandoned(directory):
    """Removes the temporary folders of saves whose process is gone (killed
    mid-save)."""
    for tmp in directory.parent.glob(f".{directory.name}.tmp-*"):
        pid = tmp.name.split(".tmp-")[1].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(path, app=None):
    """Loads a model saved by `save` (a folder) or any `.keras` file.

    Always with `safe_mode=True`: a file that would run arbitrary code is
    refused. Each failure says which it is: no such path, a folder without
    a model, a model of another app (`app`, from its metadata), a damaged
    (truncated, not a zip archive) file, or a file Keras cannot read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model at {path}: no such file or folder.")
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a saved model: it has no {MODEL_FILE}.")
        owner = read_metadata(path).get("app")
        if app and owner and owner != app:
            raise ValueError(f"{path} holds a {owner} model, not a {app} model.")
        path = path / MODEL_FILE
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is damaged: it is not a zip archive, as .keras files are "
            "(truncated, or not a Keras file)."
        )
    try:
        with warnings.catch_warnings():
            # The file holds no optimizer state (`save`): nothing is skipped.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad files.
        raise ValueError(f"Could not load the model {path}: {error}") from error


def read_metadata(path):
    """The metadata saved beside a model (a folder or its `.keras` file);
    `{}` where there is none."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    meta = path / METADATA_FILE
    if not meta.is_file():
        return {}
    try:
        record = json.loads(meta.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{meta} is damaged: {error}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{meta} is damaged: not a JSON object.")
    return record


class Timer:
    """Wall time of a block, in seconds: `with Timer() as t: ...; t.seconds`
    (`t.elapsed()` inside the block)."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def elapsed(self):
        return time.perf_counter() - self.start

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
