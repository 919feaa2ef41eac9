"""`python -m tuning.distributed APP --workers N [tuning.search options]`.

A distributed hyperparameter search on this machine, started by one
command: this process is KerasTuner's chief (it holds the oracle and serves
it over gRPC on loopback) and starts N workers, each `python -m
tuning.search` with the same options under KerasTuner's chief/worker
environment (`KERASTUNER_TUNER_ID=workerK`, `KERASTUNER_ORACLE_IP=127.0.0.1`,
`KERASTUNER_ORACLE_PORT`).

Stock KerasTuner waits forever for a trial whose worker died. Here the chief
watches its workers: when one exits abnormally (killed, crashed), the trial
it was running goes back to the oracle's retry queue, and the worker is
started again (up to --max-restarts times in all), so the search finishes
every trial. Re-running the command with the same directory resumes the
search: finished trials are kept and the trials that were running are run
again. Worker logs: DIR/PROJECT/logs/; their process ids: DIR/PROJECT/workers.json.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

from apps.common import runner
from tuning import search

LAUNCHER_OPTIONS = {"--workers": True, "--port": True, "--max-restarts": True,
                    "--poll": True, "--overwrite": False}  # option -> takes a value
ROOT = Path(__file__).resolve().parents[1]


def _add_launcher(p):
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--port", type=int, default=0,
                   help="loopback port of the oracle (default: a free one)")
    p.add_argument("--max-restarts", type=int, default=3,
                   help="worker restarts after abnormal exits before the search gives up")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between checks of the workers")


def parser():
    return search.parser("python -m tuning.distributed", __doc__.split("\n\n")[1], _add_launcher)


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
        oracle._retry_queue.append(trial.trial_id)  # the oracle's own retry mechanism
        oracle._save_trial(trial)
        oracle.save()
        return trial.trial_id

    return locked(oracle)


def pending_trials(oracle):
    """Trials waiting to be run again or still marked as running."""
    return len(oracle._retry_queue) + len(oracle.ongoing_trials)


def start_server(oracle, port):
    """KerasTuner's oracle servicer on 127.0.0.1:`port` (0: a free port);
    returns `(server, port)`."""
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(oracle), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if not bound:
        raise ValueError(f"cannot listen on 127.0.0.1:{port}.")
    server.start()
    return server, bound


def _die_with_parent():
    # Workers must not outlive a chief that was killed: they would wait an
    # hour on the oracle (KerasTuner's gRPC timeout). Linux only.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _describe(returncode):
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


class Workers:
    """The worker processes of one search."""

    def __init__(self, argv, port, project_dir):
        self.argv = worker_argv(argv)
        self.env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                    "KERASTUNER_ORACLE_PORT": str(port),
                    "PYTHONPATH": os.pathsep.join(
                        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        self.logs = Path(project_dir) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pid_file = Path(project_dir) / "workers.json"
        self.procs = {}

    def start(self, tuner_id):
        with open(self.logs / f"{tuner_id}.log", "ab") as log:
            self.procs[tuner_id] = subprocess.Popen(
                [sys.executable, "-m", "tuning.search", *self.argv],
                env={**self.env, "KERASTUNER_TUNER_ID": tuner_id},
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.pid_file.write_text(json.dumps(
            {tid: proc.pid for tid, proc in self.procs.items()}, indent=1) + "\n")
        print(f"{tuner_id} started (pid {self.procs[tuner_id].pid}, log "
              f"{self.logs / (tuner_id + '.log')})", flush=True)

    def exited(self):
        """`(tuner_id, returncode)` of the workers that exited since the last call."""
        done = [(tid, proc.poll()) for tid, proc in self.procs.items() if proc.poll() is not None]
        for tid, _ in done:
            del self.procs[tid]
        return done

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


def supervise(oracle, workers, count, max_restarts, poll):
    """Runs `count` workers until the search is done; returns True when it
    finished, False when it gave up after `max_restarts` restarts."""
    for k in range(count):
        workers.start(f"worker{k}")
    restarts = 0
    while True:
        time.sleep(poll)
        for tuner_id, code in workers.exited():
            if code == 0:
                continue
            trial_id = requeue_trial(oracle, tuner_id, f"{tuner_id} died ({_describe(code)})")
            print(f"{tuner_id} died ({_describe(code)})"
                  + (f" during trial {trial_id}: the trial is queued again" if trial_id else "")
                  + f"; its log ends:\n{workers.log_tail(tuner_id)}", flush=True)
            if restarts < max_restarts:
                restarts += 1
                print(f"restarting {tuner_id} ({restarts}/{max_restarts})", flush=True)
                workers.start(tuner_id)
        if workers.procs:
            continue
        if not pending_trials(oracle):
            return True
        # Every worker is gone but trials are queued (a worker died after the others ended).
        if restarts >= max_restarts:
            return False
        restarts += 1
        print(f"{pending_trials(oracle)} trial(s) left; starting worker0 again "
              f"({restarts}/{max_restarts})", flush=True)
        workers.start("worker0")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.workers < 1 or args.max_restarts < 0 or args.poll <= 0:
        print("error: --workers must be positive, --max-restarts >= 0 and --poll > 0.",
              file=sys.stderr)
        return 2
    # The chief's own id (KerasTuner names its state file after it); it serves
    # the oracle itself instead of running KerasTuner's blocking chief loop.
    os.environ["KERASTUNER_TUNER_ID"] = "chief"
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        os.environ.pop(name, None)
    try:
        runner.set_seed(args.seed)
        hypermodel, _, _ = search.load(args)
        tuner = search.make_tuner(args, hypermodel)
        tuner.save()
        server, port = start_server(tuner.oracle, args.port)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"oracle serving on 127.0.0.1:{port}; search in {tuner.project_dir}", flush=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    workers = Workers(argv, port, tuner.project_dir)
    try:
        finished = supervise(tuner.oracle, workers, args.workers, args.max_restarts, args.poll)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        workers.stop()
        server.stop(grace=None)
        tuner.oracle.save()
    search.write_summary(tuner, args)
    if not finished:
        print(f"error: workers kept dying ({args.max_restarts} restarts); "
              f"{pending_trials(tuner.oracle)} trial(s) left. Run the same command again "
              "to resume.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
