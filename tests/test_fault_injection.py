"""Fault injection: a process killed while saving, a full disk, a read-only
output folder. What was saved before survives, nothing half-written takes
its name, and the CLI says what went wrong (exit status 2)."""

import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from apps.common import runner

ROOT = Path(__file__).resolve().parents[1]


def _env():
    # No kernel build in the children (a fresh HOME for the unprivileged one).
    return {
        **os.environ,
        "KERAS_DEEPRNN_NATIVE": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def test_sigkill_during_the_final_save_keeps_the_previous_model(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    target = runner.save(model, tmp_path / "music-m", {"app": "music"})
    x = np.ones((1, 3), "float32")
    expected = np.asarray(model(x))
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import sys, time, keras
from apps.common import runner
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
def slow_save(self, path, **kwargs):
    open(path, "wb").write(b"half a model")
    print("saving", flush=True)
    time.sleep(120)
keras.Model.save = slow_save
runner.save(model, {str(target)!r}, {{}}, overwrite=True)
""",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "saving"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    np.testing.assert_array_equal(np.asarray(runner.load(target)(x)), expected)
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["music-m"]
    assert len(list(tmp_path.glob(".music-m.tmp-*"))) == 1  # the killed save's folder
    runner.save(model, tmp_path / "other", {})
    runner.save(model, tmp_path / "music-m", {}, overwrite=True)  # cleans it up
    assert not list(tmp_path.glob(".music-m.tmp-*"))


def test_a_full_disk_gives_a_clear_error_and_keeps_the_model(tiny_train_argv, tmp_path):
    from apps.music import cli

    argv = tiny_train_argv
    assert cli.main(argv) == 0
    saved = tmp_path / "saved" / "music-n" / "model.keras"
    before = saved.read_bytes()

    def small_disk():  # every file this child writes stops at 32 KiB (the model: 43)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))

    proc = subprocess.run(
        [sys.executable, "-m", "apps.music", *argv, "--overwrite"],
        env=_env(),
        preexec_fn=small_disk,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # h5py reports the half-written checkpoint it cannot close ("Exception
    # ignored"); the run ends with the error, not a crash.
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: [Errno 27]" in proc.stderr
    assert saved.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["music-n"]


def test_a_read_only_output_folder_gives_a_clear_error(tiny_train_argv, tmp_path):
    out = tmp_path / "saved"
    out.mkdir()
    (out / "keep.txt").write_text("kept")
    out.chmod(0o555)
    command = [sys.executable, "-m", "apps.music", *tiny_train_argv]
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop privileges")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *command]
    try:
        proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    finally:
        out.chmod(0o755)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: [Errno 13] Permission denied" in proc.stderr
    assert str(out) in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
