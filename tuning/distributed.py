"""`python -m tuning.distributed [chief|worker] APP [tuning.search options]`.

A distributed hyperparameter search over KerasTuner's chief/worker protocol
in which a dead worker does not lose its trial. `python -m
tuning.distributed APP --workers N` (or `... chief APP ...`) is the chief:
it holds the oracle, serves it over gRPC on `--bind` (default 127.0.0.1)
and `--port` (default: a free one), and starts N local workers (0: none),
each `python -m tuning.search` with the same options under KerasTuner's
worker environment (`KERASTUNER_TUNER_ID=workerK`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`). `python -m tuning.distributed worker APP ...`,
run under that environment on any machine that reaches the chief, is one
more worker.

Stock KerasTuner waits forever for a trial whose worker died. Here the chief
watches its local workers: when one exits abnormally (killed, crashed), the
trial it was running goes back to the oracle's retry queue, and the worker is
started again (up to --max-restarts times in all), so the search finishes
every trial. `worker` restarts its own worker the same way, under the same
id, and the oracle hands the restarted worker the trial it was running.
Re-running the chief with the same directory resumes the search: finished
trials are kept and the trials that were running are run again. Worker logs:
DIR/PROJECT/logs/; their process ids: DIR/PROJECT/workers.json.

The oracle's port is unauthenticated: bind it to a trusted network only.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from keras_deeprnn import _compat

from . import apps_module
from . import search

runner = apps_module("common.runner")

ENVIRONMENT = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
LAUNCHER_OPTIONS = {
    "--workers": True,
    "--bind": True,
    "--port": True,
    "--max-restarts": True,
    "--poll": True,
    "--overwrite": False,
}  # option -> takes a value
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The folder that holds the top-level package (the checkout, or site-packages),
# for the workers' PYTHONPATH.
ROOT = Path(__file__).resolve().parents[__name__.count(".")]


def _add_restarts(p):
    p.add_argument(
        "--max-restarts",
        type=int,
        default=3,
        help="worker restarts after abnormal exits before giving up",
    )


def _add_chief(p):
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes on this machine (default 2; 0: remote workers only)",
    )
    p.add_argument(
        "--bind",
        default="127.0.0.1",
        help="address the oracle listens on (default 127.0.0.1; 0.0.0.0: every "
        "interface, for workers on other machines)",
    )
    p.add_argument("--port", type=int, default=0, help="port of the oracle (default: a free one)")
    _add_restarts(p)
    p.add_argument("--poll", type=float, default=0.5, help="seconds between checks of the workers")


def parser(mode="chief"):
    prog = "python -m tuning.distributed" + (" worker" if mode == "worker" else "")
    return search.parser(
        prog, __doc__.split("\n\n")[1], _add_restarts if mode == "worker" else _add_chief
    )


def worker_argv(argv):
    """`argv` without the launcher's own options (and without --overwrite:
    only the chief may clear the directory)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCHER_OPTIONS:
            skip = LAUNCHER_OPTIONS[name] and "=" not in arg
            continue
        out.append(arg)
    return out


def requeue_trial(oracle, tuner_id, reason):
    """Forgets the worker `tuner_id` and sends the trial it was running (if
    any) back to the oracle's retry queue; returns that trial's id or None.

    The trial did not fail, its worker did, so it does not use up a retry.
    """
    import keras_tuner

    @keras_tuner.synchronized
    def locked(oracle):
        oracle.tuner_ids.discard(tuner_id)
        trial = oracle.ongoing_trials.pop(tuner_id, None)
        if trial is None:
            return None
        trial.status = "INVALID"
        trial.message = reason
        _compat.requeue_trial(oracle, trial)
        oracle.save()
        return trial.trial_id

    return locked(oracle)


def backlog(oracle):
    """`(queued, running)`: how many trials wait to be run again, and how
    many workers (local or remote) are running one."""
    import keras_tuner

    @keras_tuner.synchronized
    def locked(oracle):
        return len(_compat.queued_trials(oracle)), len(oracle.ongoing_trials)

    return locked(oracle)


def _die_with_parent():
    # Workers must not outlive their launcher when it is killed: they would
    # wait an hour on the oracle (KerasTuner's gRPC timeout). Linux only.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _describe(returncode):
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


class Workers:
    """The worker processes this process started, all of one oracle."""

    def __init__(self, argv, oracle_ip, port, project_dir):
        self.argv = worker_argv(argv)
        self.env = {
            **os.environ,
            "KERASTUNER_ORACLE_IP": oracle_ip,
            "KERASTUNER_ORACLE_PORT": str(port),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        self.logs = Path(project_dir) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pid_file = Path(project_dir) / "workers.json"
        self.procs = {}

    def start(self, tuner_id):
        with open(self.logs / f"{tuner_id}.log", "ab") as log:
            self.procs[tuner_id] = subprocess.Popen(
                [sys.executable, "-m", search.__name__, *self.argv],
                env={**self.env, "KERASTUNER_TUNER_ID": tuner_id},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.pid_file.write_text(
            json.dumps({tid: proc.pid for tid, proc in self.procs.items()}, indent=1) + "\n"
        )
        print(
            f"{tuner_id} started (pid {self.procs[tuner_id].pid}, log "
            f"{self.logs / (tuner_id + '.log')})",
            flush=True,
        )

    def exited(self):
        """`(tuner_id, returncode)` of the workers that exited since the last call."""
        done = [(tid, proc.poll()) for tid, proc in self.procs.items() if proc.poll() is not None]
        for tid, _ in done:
            del self.procs[tid]
        return done

    def report_death(self, tuner_id, code, trial_id=None):
        print(
            f"{tuner_id} died ({_describe(code)})"
            + (f" during trial {trial_id}: the trial is queued again" if trial_id else "")
            + f"; its log ends:\n{self.log_tail(tuner_id)}",
            flush=True,
        )

    def log_tail(self, tuner_id, lines=5):
        text = (self.logs / f"{tuner_id}.log").read_text(errors="replace").splitlines()
        return "\n".join("    " + line for line in text[-lines:])

    def stop(self):
        for proc in self.procs.values():
            proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = {}


def supervise(oracle, servicer, workers, count, max_restarts, poll):
    """Runs `count` local workers (and serves remote ones) until the search
    is done; returns True when it finished, False when it gave up after
    `max_restarts` restarts."""
    for k in range(count):
        workers.start(f"worker{k}")
    restarts = 0
    while True:
        time.sleep(poll)
        for tuner_id, code in workers.exited():
            if code == 0:
                continue
            trial_id = requeue_trial(oracle, tuner_id, f"{tuner_id} died ({_describe(code)})")
            workers.report_death(tuner_id, code, trial_id)
            if restarts < max_restarts:
                restarts += 1
                print(f"restarting {tuner_id} ({restarts}/{max_restarts})", flush=True)
                workers.start(tuner_id)
        if workers.procs:
            continue
        queued, running = backlog(oracle)
        if not queued and not running and servicer.stop_triggered:
            return True
        # Remote workers are on it (or, without local workers, may join).
        if not count or (running and not queued):
            continue
        # No local worker is left but trials are (a worker died after the others ended).
        if restarts >= max_restarts:
            return False
        restarts += 1
        print(
            f"{queued} trial(s) queued; starting worker0 again ({restarts}/{max_restarts})",
            flush=True,
        )
        workers.start("worker0")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def chief(argv):
    args = parser().parse_args(argv)
    if args.workers < 0 or args.max_restarts < 0 or args.poll <= 0:
        print("error: --workers and --max-restarts must be >= 0 and --poll > 0.", file=sys.stderr)
        return 2
    # The chief's own id (KerasTuner names its state file after it); it serves
    # the oracle itself instead of running KerasTuner's blocking chief loop.
    os.environ["KERASTUNER_TUNER_ID"] = "chief"
    for name in ENVIRONMENT[1:]:
        os.environ.pop(name, None)
    try:
        runner.set_seed(args.seed)
        hypermodel, _, _ = search.load(args)
        tuner = search.make_tuner(args, hypermodel)
        # Recorded as the workers see them: without the launcher's options.
        search.check_options(args, ignore={o[2:].replace("-", "_") for o in LAUNCHER_OPTIONS})
        tuner.save()
        server, servicer, port = _compat.serve_oracle(tuner.oracle, args.bind, args.port)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"oracle serving on {args.bind}:{port}; search in {tuner.project_dir}", flush=True)
    if args.bind not in LOOPBACK:
        print(
            "warning: the oracle's port is unauthenticated; keep it on a trusted network.",
            file=sys.stderr,
        )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Local workers reach a wildcard address through loopback.
    local = "127.0.0.1" if args.bind in ("0.0.0.0", "::", "") else args.bind
    workers = Workers(argv, local, port, tuner.project_dir)
    try:
        finished = supervise(
            tuner.oracle, servicer, workers, args.workers, args.max_restarts, args.poll
        )
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        workers.stop()
        server.stop(grace=None)
        tuner.oracle.save()
    search.write_summary(tuner, args)
    if not finished:
        queued, _ = backlog(tuner.oracle)
        print(
            f"error: workers kept dying ({args.max_restarts} restarts); {queued} trial(s) "
            "left. Run the same command again to resume.",
            file=sys.stderr,
        )
        return 1
    return 0


def worker(argv):
    """One worker under KerasTuner's environment, restarted when it dies."""
    args = parser("worker").parse_args(argv)
    missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    if missing or "chief" in tuner_id or args.max_restarts < 0:
        print(
            f"error: a worker needs {', '.join(ENVIRONMENT)} (an id without 'chief', which "
            "KerasTuner reserves for the chief) and --max-restarts >= 0.",
            file=sys.stderr,
        )
        return 2
    workers = Workers(
        argv,
        os.environ["KERASTUNER_ORACLE_IP"],
        os.environ["KERASTUNER_ORACLE_PORT"],
        args.directory / search.project_name(args),
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for restart in range(args.max_restarts + 1):
            if restart:
                # Under the same id, the oracle hands it the trial it was running.
                print(f"restarting {tuner_id} ({restart}/{args.max_restarts})", flush=True)
            workers.start(tuner_id)
            code = workers.procs[tuner_id].wait()
            if code == 0:
                return 0
            workers.report_death(tuner_id, code)
    except KeyboardInterrupt:
        return 130
    finally:
        workers.stop()
    print(f"error: {tuner_id} kept dying ({args.max_restarts} restarts).", file=sys.stderr)
    return 1


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        return worker(argv[1:])
    return chief(argv[1:] if argv and argv[0] == "chief" else argv)


if __name__ == "__main__":
    sys.exit(main())
