"""The training runner shared by the apps.

One place for what every app's `train` does: seeds, a `tf.distribute`
strategy, Keras callbacks (progress bar, TensorBoard, gradient norms,
BackupAndRestore for resuming after an interruption, early stopping on the
validation metric, best checkpoint), and saving the final model under
`saved_models/<app>-<name>/` with a metadata JSON.
"""

import contextlib
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

import keras_deeprnn
from keras_deeprnn import _compat
from keras_deeprnn.training import GradientNormLogger

STRATEGIES = ("default", "mirrored", "multi-worker")
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"


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
    raise ValueError(
        f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}."
    )


def is_chief():
    """True unless TF_CONFIG names this process a non-chief worker."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    if task.get("type") == "worker":
        has_chief = "chief" in config.get("cluster", {})
        return not has_chief and task.get("index", 0) == 0
    return True


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
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        *callbacks,
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
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
        callbacks.append(
            GradientNormLogger(grad_batch, str(run_dir / "logs" / "grad_norms"))
        )
    callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs")))
    # Keras's fit needs a workaround under MultiWorkerMirroredStrategy,
    # scoped to this call (see `keras_deeprnn._compat.multi_worker_fit`).
    if isinstance(
        model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        scope = _compat.multi_worker_fit(model, train_data)
    else:
        scope = contextlib.nullcontext()
    with scope:
        return model.fit(
            train_data,
            validation_data=val_data,
            epochs=epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the datasets shuffle themselves
        )


def command_line():
    """The command that is running, as a shell-quoted string."""
    argv = [os.path.basename(sys.executable), "-m", _main_module()] + sys.argv[1:]
    return " ".join(shlex.quote(a) for a in argv)


def _main_module():
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name.removesuffix(".__main__") if spec else sys.argv[0]


def save(model, directory, metadata):
    """Saves `model.keras` and `metadata.json` into `directory`.

    Both files are written under temporary names and renamed into place, so
    an interrupted save never leaves a half-written model where a good one
    was. The optimizer's state stays in the run's checkpoints (for resuming);
    the saved model leaves it out, which makes it several times smaller.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {
        "library_version": keras_deeprnn.__version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "parameters": int(model.count_params()),
        **metadata,
    }
    tmp_model = directory / (MODEL_FILE + ".tmp.keras")
    model.save(tmp_model, include_optimizer=False)
    tmp_meta = directory / (METADATA_FILE + ".tmp")
    tmp_meta.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_model, directory / MODEL_FILE)
    os.replace(tmp_meta, directory / METADATA_FILE)
    return directory


def load(path):
    """Loads a model saved by `save` (a folder) or any `.keras` file.

    Always with `safe_mode=True`: a file that would run arbitrary code is
    refused.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No model at {path}.")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad files.
        raise ValueError(f"Could not load the model {path}: {error}") from error


def read_metadata(path):
    path = Path(path)
    if path.is_file():
        path = path.parent
    meta = path / METADATA_FILE
    return json.loads(meta.read_text()) if meta.is_file() else {}


class Timer:
    """Wall time of a block, in seconds: `with Timer() as t: ...; t.seconds`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
