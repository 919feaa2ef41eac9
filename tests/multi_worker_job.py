"""One worker of a two-process MultiWorkerMirroredStrategy run (see
test_runner_distributed.py). Trains the music model on a toy set through the
shared runner and writes its final loss to argv[1], with whether the
runner's scoped patch of Keras's trainer was undone after the fit."""

import json
import sys

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer

keras.config.disable_traceback_filtering()

from apps.common import runner
from apps.music.model import build_model
from apps.music.model import compile_model

runner.set_seed(0)
strategy = runner.get_strategy("multi-worker")
rng = np.random.default_rng(0)
first = (rng.random((32, 1, 6)) < 0.4).astype("float32")
rolls = np.concatenate([np.roll(first, k, axis=-1) for k in range(8)], axis=1)
data = tf.data.Dataset.from_tensor_slices(
    (rolls[:, :-1], rolls[:, 1:], np.ones((32, 7), "float32"))
).batch(8)
with strategy.scope():
    model = compile_model(build_model("gru", units=8, keys=6), lr=0.02)
original = trainer._collective_all_reduce_multi_worker
history = runner.fit(model, data, data, sys.argv[2], epochs=3, monitor="val_nll", verbose=0)
weights = [w.tolist() for w in model.get_weights()]
with open(sys.argv[1], "w") as f:
    json.dump(
        {
            "loss": history.history["loss"],
            "chief": runner.is_chief(),
            "replicas": strategy.num_replicas_in_sync,
            "weights": weights,
            "restored": trainer._collective_all_reduce_multi_worker is original
            and "_maybe_symbolic_build" not in vars(model),
        },
        f,
    )
