"""`python -m tuning.distributed`: KerasTuner's chief/worker protocol on
loopback. A worker killed mid-trial does not lose its trial, and a restarted
chief resumes from its directory without redoing finished trials.

The chief runs in the test's process (`tuning.distributed.main`, as the
command does), its workers are real `python -m tuning.search` processes."""

import json
import os
import signal
import threading
import time

from test_music_cli import _arpeggios
from test_music_data import write_mat
from tuning import distributed


def test_worker_argv_drops_the_launcher_options():
    argv = ["music", "--workers", "2", "--port=5000", "--overwrite", "--max-trials", "3",
            "--max-restarts", "1", "--fix", "units=4"]
    assert distributed.worker_argv(argv) == ["music", "--max-trials", "3", "--fix", "units=4"]


def _chief(tmp_path, monkeypatch, *extra):
    """Runs the chief (and its workers) to the end; returns its exit status."""
    data = tmp_path / "tiny.mat"
    if not data.exists():
        write_mat(data, _arpeggios(8, 8, 0), _arpeggios(4, 8, 1), _arpeggios(2, 8, 2))
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)  # restored (unset) after the test
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    handler = signal.getsignal(signal.SIGTERM)
    try:
        return distributed.main([
            "music", "--data", str(data), "--batch-size", "4", "--epochs", "2",
            "--fix", "units=4", "--fix", "arch=rnn", "--fix", "cell=gru", "--verbose", "0",
            "--directory", str(tmp_path / "search"), "--poll", "0.2", *extra])
    finally:
        signal.signal(signal.SIGTERM, handler)


def _trials(project):
    return {p.parent.name: p.read_text() for p in sorted(project.glob("trial_*/trial.json"))}


def _ongoing(project):
    try:
        return json.loads((project / "oracle.json").read_text())["ongoing_trials"]
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _kill_when_running(project, tuner_id, killed, timeout=120):
    """SIGKILLs worker `tuner_id` once the oracle has it running a trial."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trial_id = _ongoing(project).get(tuner_id)
        if trial_id is not None:
            pid = json.loads((project / "workers.json").read_text())[tuner_id]
            os.kill(pid, signal.SIGKILL)
            killed["trial"] = trial_id
            return
        time.sleep(0.05)


def test_killed_worker_and_restarted_chief(tmp_path, monkeypatch, capsys):
    project = tmp_path / "search" / "music"
    killed = {}
    killer = threading.Thread(target=_kill_when_running, args=(project, "worker1", killed))
    killer.start()
    code = _chief(tmp_path, monkeypatch, "--workers", "2", "--max-trials", "2")
    killer.join()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "trial" in killed, "worker1 never ran a trial"
    assert (f"worker1 died (signal SIGKILL) during trial {killed['trial']}: "
            "the trial is queued again") in out
    trials = {name: json.loads(text) for name, text in _trials(project).items()}
    assert sorted(trials) == ["trial_0", "trial_1"]
    assert all(t["status"] == "COMPLETED" for t in trials.values()), out
    assert "2 trials: 2 completed" in (project / "summary.md").read_text()

    # A new chief on the same directory keeps the finished trials as they are
    # and runs only the one the larger budget adds.
    before = _trials(project)
    code = _chief(tmp_path, monkeypatch, "--workers", "1", "--max-trials", "3")
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Reloading Tuner from {project / 'chief.json'}" in out
    after = _trials(project)
    assert sorted(after) == ["trial_0", "trial_1", "trial_2"]
    assert all(after[name] == text for name, text in before.items())
    assert json.loads(after["trial_2"])["status"] == "COMPLETED"
