"""`python -m tuning.distributed`: KerasTuner's chief/worker protocol on
loopback. A worker killed mid-trial does not lose its trial, a restarted
chief resumes from its directory without redoing finished trials, and a
worker started on its own (as on another machine) joins a chief bound to a
given address and port.

The chief runs in the test's process (`tuning.distributed.main`, as the
command does), its workers are real `python -m tuning.search` processes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from test_music_cli import _arpeggios
from test_music_data import write_mat
from test_runner_distributed import ROOT
from test_runner_distributed import _free_ports

from tuning import distributed
from tuning.distributed import ENVIRONMENT


def test_worker_argv_drops_the_launcher_options():
    argv = [
        "music",
        "--workers",
        "2",
        "--bind",
        "0.0.0.0",
        "--port=5000",
        "--overwrite",
        "--max-trials",
        "3",
        "--max-restarts",
        "1",
        "--fix",
        "units=4",
    ]
    assert distributed.worker_argv(argv) == ["music", "--max-trials", "3", "--fix", "units=4"]


def _search(tmp_path, directory):
    """A tiny music search in `directory`."""
    data = tmp_path / "tiny.mat"
    if not data.exists():
        write_mat(data, _arpeggios(8, 8, 0), _arpeggios(4, 8, 1), _arpeggios(2, 8, 2))
    return [
        "music",
        "--data",
        str(data),
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--fix",
        "units=4",
        "--fix",
        "arch=rnn",
        "--fix",
        "cell=gru",
        "--verbose",
        "0",
        "--directory",
        str(directory),
    ]


def _chief(tmp_path, monkeypatch, *extra, mode=()):
    """Runs the chief (and its workers) to the end; returns its exit status."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)  # restored (unset) after the test
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    handler = signal.getsignal(signal.SIGTERM)
    try:
        return distributed.main(
            [*mode, *_search(tmp_path, tmp_path / "search"), "--poll", "0.2", *extra]
        )
    finally:
        signal.signal(signal.SIGTERM, handler)


def _trials(project):
    return {p.parent.name: p.read_text() for p in sorted(project.glob("trial_*/trial.json"))}


def _ongoing(project):
    try:
        return json.loads((project / "oracle.json").read_text())["ongoing_trials"]
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _kill_when_running(project, tuner_id, killed, pid_file, timeout=120):
    """SIGKILLs worker `tuner_id` (its pid in `pid_file`) once the oracle in
    `project` has it running a trial."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trial_id = _ongoing(project).get(tuner_id)
        if trial_id is not None:
            pid = json.loads(pid_file.read_text())[tuner_id]
            os.kill(pid, signal.SIGKILL)
            killed["trial"] = trial_id
            return
        time.sleep(0.05)


def test_killed_worker_and_restarted_chief(tmp_path, monkeypatch, capsys):
    project = tmp_path / "search" / "music"
    killed = {}
    killer = threading.Thread(
        target=_kill_when_running, args=(project, "worker1", killed, project / "workers.json")
    )
    killer.start()
    code = _chief(tmp_path, monkeypatch, "--workers", "2", "--max-trials", "2")
    killer.join()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "trial" in killed, "worker1 never ran a trial"
    assert (
        f"worker1 died (signal SIGKILL) during trial {killed['trial']}: the trial is queued again"
    ) in out
    trials = {name: json.loads(text) for name, text in _trials(project).items()}
    assert sorted(trials) == ["trial_0", "trial_1"]
    assert all(t["status"] == "COMPLETED" for t in trials.values()), out
    assert "2 trials: 2 completed" in (project / "summary.md").read_text()
    # The workers' options, recorded by the chief (its launcher options left out).
    recorded = json.loads((project / "search.json").read_text())
    assert recorded["app"] == "music" and "workers" not in recorded and "port" not in recorded

    # A new chief on the same directory (another number of workers) keeps the
    # finished trials as they are and runs only the one the larger budget adds.
    before = _trials(project)
    code = _chief(tmp_path, monkeypatch, "--workers", "1", "--max-trials", "3")
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Reloading Tuner from {project / 'chief.json'}" in out
    after = _trials(project)
    assert sorted(after) == ["trial_0", "trial_1", "trial_2"]
    assert all(after[name] == text for name, text in before.items())
    assert json.loads(after["trial_2"])["status"] == "COMPLETED"


def test_worker_needs_keras_tuner_environment(monkeypatch, capsys):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert distributed.main(["worker", "music"]) == 2
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    assert distributed.main(["worker", "music"]) == 2
    assert "an id without 'chief'" in capsys.readouterr().err


def test_chief_on_a_given_port_and_a_worker_joined_by_environment(tmp_path, monkeypatch, capsys):
    """The chief runs no worker of its own; one `worker` process joins it
    with KerasTuner's three variables and its own directory, as on another
    machine. Its search process is killed mid-trial: restarted under the
    same id, it gets the trial back and the search completes."""
    port = _free_ports(1)[0]
    project = tmp_path / "search" / "music"
    env = {
        **os.environ,
        "KERASTUNER_TUNER_ID": "remote0",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuning.distributed",
            "worker",
            *_search(tmp_path, tmp_path / "remote"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed = {}
    killer = threading.Thread(
        target=_kill_when_running,
        args=(project, "remote0", killed, tmp_path / "remote" / "music" / "workers.json"),
    )
    killer.start()
    # A chief that never finishes fails the test instead of hanging it.
    watchdog = threading.Timer(240, os.kill, (os.getpid(), signal.SIGTERM))
    watchdog.start()
    try:
        code = _chief(
            tmp_path,
            monkeypatch,
            "--workers",
            "0",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-trials",
            "2",
            mode=["chief"],
        )
        log = worker.communicate(timeout=60)[0]
    finally:
        watchdog.cancel()
        worker.kill()
        killer.join()
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"oracle serving on 127.0.0.1:{port}" in out
    assert worker.returncode == 0, log
    assert "trial" in killed, "remote0 never ran a trial"
    assert "remote0 died (signal SIGKILL)" in log and "restarting remote0 (1/3)" in log
    trials = {name: json.loads(text) for name, text in _trials(project).items()}
    assert sorted(trials) == ["trial_0", "trial_1"]
    assert all(t["status"] == "COMPLETED" for t in trials.values()), out
