import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The benchmark data beside the project's folder (`../shared/data`), read in
#: place: the registry (`keras_deeprnn.data.registry`) looks there first. Tests
#: that need a file of it skip when it is absent (`shared_data`).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault("DEEPRNN_DATA_DIR", str(SHARED_DATA))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_keras_state():
    """Each test starts from a fresh Keras session and the float32 policy."""
    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def shared_data():
    """The shared benchmark data folder, or a skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared benchmark data is not here (expected at {SHARED_DATA})")
    return SHARED_DATA


@pytest.fixture
def tiny_train_argv(tmp_path):
    """`python -m apps.music train` arguments of a one-epoch GRU(4) run on a
    tiny random piano-roll .mat file, saving to tmp_path/saved/music-n."""
    import numpy as np
    from test_music_data import write_mat

    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 2, (n, 88)).astype(np.uint8) for n in (9, 12, 7, 10)]
    mat = write_mat(tmp_path / "t.mat", pieces, pieces[:2], pieces[2:])
    return ["train", "--data", str(mat), "--cell", "gru", "--units", "4", "--epochs", "1",
            "--batch-size", "2", "--name", "n", "--out", str(tmp_path / "saved"),
            "--run-dir", str(tmp_path / "run")]  # fmt: skip
