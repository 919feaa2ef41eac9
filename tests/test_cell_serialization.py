"""Configs round-trip, and `.keras` files reload in a fresh process."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from cell_zoo import CONFIGS
from cell_zoo import IDS

LOADER = r"""
import json, sys
import numpy as np
import keras
import keras_deeprnn  # registers the cells
paths = json.loads(sys.argv[1])
x = np.load(sys.argv[2])
out = {}
for name, path in paths.items():
    model = keras.models.load_model(path, safe_mode=True)
    out[name] = np.asarray(model.predict(x, verbose=0))
np.savez(sys.argv[3], **out)
"""


@pytest.mark.parametrize("name", IDS)
def test_get_config_round_trip(name):
    cell = CONFIGS[name](7, dropout=0.25, recurrent_dropout=0.1, seed=5)
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(restored) is type(cell)
    assert restored.get_config() == config


def test_keras_files_reload_in_fresh_process(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    paths, want = {}, {}
    for name in IDS:
        model = keras.Sequential(
            [
                keras.Input((None, 3)),
                keras.layers.Bidirectional(
                    keras.layers.RNN(CONFIGS[name](4), return_sequences=True)
                ),
                keras.layers.RNN(CONFIGS[name](4)),
                keras.layers.Dense(2),
            ]
        )
        model.set_weights(
            [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()]
        )
        path = tmp_path / f"{name}.keras"
        model.save(path)
        paths[name] = str(path)
        want[name] = np.asarray(model.predict(x, verbose=0))
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOADER,
            json.dumps(paths),
            str(tmp_path / "x.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for name in IDS:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
