"""The `deeprnn` command (`keras_deeprnn_cli`) and the wheel's layout.

The apps run in child processes: run in this one, they would be imported a
second time under their installed names (`keras_deeprnn.apps`).
"""

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import keras_deeprnn_cli

REPO = Path(__file__).resolve().parents[1]
# Lines TensorFlow's C++ runtime writes while it starts, before its log level applies.
START_UP_LINES = ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "I0000 ")


def python(code, cwd=REPO, env=None, unset=()):
    """Runs `code` in a child interpreter; `env` adds variables, `unset` removes some."""
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_help_answers_without_importing_tensorflow():
    started = time.monotonic()
    result = python(
        "import sys, keras_deeprnn_cli\n"
        "try:\n    keras_deeprnn_cli.main(['--help'])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "heavy = ('tensorflow', 'keras', 'keras_deeprnn')\n"
        "print('loaded', [m for m in heavy if m in sys.modules])\n"
        "print('exit', code)"
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "loaded []\nexit 0\n" in result.stdout
    for name in (*keras_deeprnn_cli.APPS, *keras_deeprnn_cli.TOOLS):
        assert f"\n    {name} " in result.stdout
    print(f"deeprnn --help in a fresh interpreter: {seconds:.2f} s")


def test_bad_commands_are_refused_before_tensorflow_starts(capsys):
    with pytest.raises(SystemExit) as exit:
        keras_deeprnn_cli.main(["compose"])
    assert exit.value.code == 2 and "invalid choice: 'compose'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        keras_deeprnn_cli.main(["version", "--json"])


def test_version(capsys):
    import keras
    import tensorflow as tf

    assert keras_deeprnn_cli.main(["version"]) == 0
    out = capsys.readouterr().out
    assert out == f"keras-deeprnn 0.1.0, keras {keras.__version__}, tensorflow {tf.__version__}\n"


def test_an_app_runs_as_a_subcommand_with_tensorflow_quiet(tmp_path):
    """`deeprnn music train --help` and `deeprnn data fetch`, in one child:
    the app's own usage line, no TensorFlow start-up lines on stderr."""
    code = (
        "import keras_deeprnn_cli\n"
        "try:\n    keras_deeprnn_cli.main(['music', 'train', '--help'])\n"
        "except SystemExit as e:\n    print('exit', e.code)\n"
        "print('fetch', keras_deeprnn_cli.main(['data', 'fetch', 'nope']))\n"
    )
    result = python(code, unset=["TF_CPP_MIN_LOG_LEVEL"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: deeprnn music train [-h] [--data DATA]")
    assert "--generate FRAMES" in result.stdout and "exit 0\nfetch 2\n" in result.stdout
    assert result.stderr.startswith("error: 'nope' is not a registered data set; known: etth1")
    assert result.stderr.count("\n") == 1
    assert not any(line in result.stderr for line in START_UP_LINES)


def test_start_tensorflow_sets_the_log_level_and_gives_stderr_back(monkeypatch, capfd):
    """(Hiding the start-up lines needs a fresh interpreter: the test above.)"""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    keras_deeprnn_cli.start_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    os.write(2, b"fd2\n")
    print("after", file=sys.stderr)
    assert capfd.readouterr().err == "fd2\nafter\n"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    keras_deeprnn_cli.start_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the user's own level is kept
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    keras_deeprnn_cli.start_tensorflow(verbose=True)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ


@pytest.mark.parametrize("folder", ["apps", "tuning"])
def test_apps_and_tuning_import_each_other_relatively(folder):
    """Installed, they are `keras_deeprnn.apps` and `keras_deeprnn.tuning`:
    an absolute `from apps...` works in the checkout and fails there (the
    slow wheel test below finds it too, by running the installed command)."""
    import ast

    absolute = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(n.split(".")[0] in ("apps", "tuning") for n in names):
                absolute.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert absolute == []


@pytest.mark.slow
def test_the_wheel_holds_no_generic_top_level_names(tmp_path):
    """Builds the wheel from a copy of the checkout and runs its `deeprnn`
    from a folder outside it, where only the installed names resolve."""
    source = tmp_path / "src"
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        path = REPO / name.decode()
        if path.is_file():
            target = source / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("keras_deeprnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "keras_deeprnn",
        "keras_deeprnn_cli.py",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    for module in ("apps/music/cli.py", "apps/common/runner.py", "tuning/search.py"):
        assert f"keras_deeprnn/{module}" in names
    assert (
        "deeprnn = keras_deeprnn_cli:main"
        in zipfile.ZipFile(wheel)
        .read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt")
        .decode()
    )
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = python(
        "import sys, keras_deeprnn_cli\n"
        "print(keras_deeprnn_cli.import_module('apps.music.cli').__name__)\n"
        "import keras_deeprnn.tuning.search as search\n"
        "print(search.runner.__name__)\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('apps', 'tuning')])\n",
        cwd=outside,
        env={"PYTHONPATH": str(installed)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("keras_deeprnn.apps.music.cli\nkeras_deeprnn.apps.common.runner\n[]\n")
