"""Training-step and inference speed of every cell, against Keras and PyTorch.

For each cell of `keras_deeprnn.cells.CELL_NAMES` in `keras_deeprnn.layers.RNN`
(and, in the same run, Keras's built-in `LSTM`/`GRU`/`SimpleRNN` and, when
torch is installed, PyTorch's `nn.LSTM`/`nn.GRU`/`nn.RNN`), times one
training step (forward + backward + Adam on a mean squared error over all
outputs, `train_on_batch`) and one inference call (`predict_on_batch`) at
two shapes: batch 64 (the throughput shape) and batch 1 (streaming), with
T = 100 steps, 128 input features and 256 units by default. The models run
in rounds, every model once per round (after one untimed call), so that
they share the machine's noise; the tables give medians of the wall-clock time and of the process
CPU time (on a shared machine the CPU time is the steadier number).

GFLOP/s counts the matrix products only: 2 B T (d k + u r) per forward pass
for input and recurrent kernel widths k and r (the cell's own weights),
three times that per training step; "peak" is the measured speed of a
2048 x 2048 float32 matrix product on the same machine. `--memory` also
runs one training process per model of the memory table and reports its
peak resident set size.

    python -m benchmarks.speed --out runs/speed            # all cells, both shapes
    python -m benchmarks.speed --cells lstm,gru --rounds 5 --shapes 64

Writes OUT/speed.json and OUT/speed.md.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BASELINES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
TORCH = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--cells", default="all", help="comma-separated cell names, or 'all' (default)"
    )
    parser.add_argument("--shapes", default="64,1", help="batch sizes to time (default 64,1)")
    parser.add_argument("--time", type=int, default=100, help="time steps T")
    parser.add_argument("--input", type=int, default=128, help="input features")
    parser.add_argument("--units", type=int, default=256, help="units")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per shape (default 7)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also measure the peak RSS of a training process "
        "for Keras's LSTM and ours (one process each)",
    )
    parser.add_argument("--out", default="runs/speed", help="output folder")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- models ----------------------------------------------------------------
class KerasModel:
    """A one-layer Keras model (return_sequences) timed by train/predict."""

    def __init__(self, name, layer, args, batch):
        import keras

        self.name = name
        self.model = keras.Sequential([keras.Input((args.time, args.input)), layer])
        self.model.compile(optimizer="adam", loss="mse")
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(batch, args.time, args.input)).astype("float32")
        self.y = rng.normal(size=(batch, args.time, args.units)).astype("float32")
        self.flops = forward_flops(layer.cell, batch, args)

    def train(self):
        self.model.train_on_batch(self.x, self.y)

    def infer(self):
        self.model.predict_on_batch(self.x)

    def timed(self, phase):
        return timed(getattr(self, phase))


class TorchModel:
    """A PyTorch module, timed inside `TorchWorker`'s process."""

    def __init__(self, name, kind, args, batch):
        import torch

        self.name = name
        self.torch = torch
        self.module = getattr(torch.nn, TORCH[kind])(args.input, args.units, batch_first=True)
        self.optimizer = torch.optim.Adam(self.module.parameters())
        rng = np.random.default_rng(0)
        self.x = torch.from_numpy(rng.normal(size=(batch, args.time, args.input)).astype("float32"))
        self.y = torch.from_numpy(rng.normal(size=(batch, args.time, args.units)).astype("float32"))
        gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
        self.flops = 2 * batch * args.time * (args.input + args.units) * gates * args.units

    def train(self):
        self.optimizer.zero_grad()
        out, _ = self.module(self.x)
        loss = self.torch.nn.functional.mse_loss(out, self.y)
        loss.backward()
        self.optimizer.step()

    def infer(self):
        with self.torch.no_grad():
            self.module(self.x)


class TorchWorker:
    """Runs the PyTorch models in a child process, one call at a time.

    In one process PyTorch's and TensorFlow's thread pools keep spinning
    after their calls and slow each other down; a child process that waits
    on a pipe between calls does not.
    """

    def __init__(self, args, batch, kinds):
        command = [
            sys.executable,
            "-m",
            "benchmarks.speed",
            "--torch-worker",
            f"{batch}:{','.join(kinds)}",
            "--time",
            str(args.time),
            "--input",
            str(args.input),
            "--units",
            str(args.units),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.flops = json.loads(self.process.stdout.readline())

    def timed(self, name, phase):
        self.process.stdin.write(f"{name}\t{phase}\n")
        self.process.stdin.flush()
        return tuple(json.loads(self.process.stdout.readline()))

    def close(self):
        self.process.stdin.close()
        self.process.wait()


class RemoteModel:
    """A `TorchWorker` model seen from the timing loop."""

    def __init__(self, worker, name):
        self.worker, self.name = worker, name
        self.flops = worker.flops[name]

    def timed(self, phase):
        return self.worker.timed(self.name, phase)


def torch_worker(spec, args):
    """Child process: builds the torch models, then times calls on request."""
    batch, kinds = spec.split(":")
    models = {}
    for kind in kinds.split(","):
        model = TorchModel(f"torch nn.{TORCH[kind]}", kind, args, int(batch))
        models[model.name] = model
    print(json.dumps({n: m.flops for n, m in models.items()}), flush=True)
    for line in sys.stdin:
        name, phase = line.rstrip("\n").split("\t")
        print(json.dumps(timed(getattr(models[name], phase))), flush=True)


def forward_flops(cell, batch, args):
    """Matrix-product FLOPs of one forward pass: 2 B T sum(rows x cols)."""
    weights = [
        w
        for w in cell.weights
        if len(w.shape) == 2
        and w.name.split("/")[-1] in ("kernel", "recurrent_kernel", "gate_recurrent_kernel")
    ]
    return 2 * batch * args.time * sum(int(np.prod(w.shape)) for w in weights)


def build_models(args, batch, cells):
    import keras

    from keras_deeprnn import cells as cell_lib
    from keras_deeprnn.layers import RNN

    kinds = [name for name in cells if name in BASELINES]
    worker = TorchWorker(args, batch, kinds) if kinds and use_torch(args) else None
    models = []
    for name in cells:
        if name in BASELINES:
            layer = getattr(keras.layers, BASELINES[name])(args.units, return_sequences=True)
            models.append(KerasModel(f"keras {BASELINES[name]}", layer, args, batch))
            if worker:
                models.append(RemoteModel(worker, f"torch nn.{TORCH[name]}"))
        layer = RNN(cell_lib.get(name, args.units), return_sequences=True)
        models.append(KerasModel(f"ours {name}", layer, args, batch))
    return models, worker


def use_torch(args):
    if args.no_torch:
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# -- timing ------------------------------------------------------------------
def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(models, rounds):
    """{name: {"train": [(wall, cpu)], "infer": [...]}} over interleaved rounds."""
    for model in models:  # compile and warm up
        for _ in range(2):
            model.timed("train")
            model.timed("infer")
    times = {m.name: {"train": [], "infer": []} for m in models}
    for _ in range(rounds):
        for model in models:
            for phase in ("train", "infer"):
                # One untimed call first: the model before this one has
                # pushed this one's weights and buffers out of the caches
                # (without it the first of a run of similar models measured
                # up to 1.5x slower than an identical one later in the round).
                model.timed(phase)
                times[model.name][phase].append(model.timed(phase))
    return times


def matmul_peak():
    """GFLOP/s of a 2048 x 2048 float32 matrix product: (per second of wall
    time, per second of CPU time), medians of 7."""
    import tensorflow as tf

    a = tf.random.normal((2048, 2048))
    product = tf.function(lambda: tf.matmul(a, a))
    product().numpy()
    runs = np.array([timed(lambda: product().numpy()) for _ in range(7)])
    wall, cpu = np.median(runs, axis=0)
    return 2 * 2048**3 / wall / 1e9, 2 * 2048**3 / cpu / 1e9


def summarize(models, times, batch, peak):
    """Medians, GFLOP/s and the ratios of the tables, one row per model."""
    rows = []
    for model in models:
        row = {"model": model.name, "batch": batch}
        for phase, flops in (("train", 3 * model.flops), ("infer", model.flops)):
            wall, cpu = np.median(np.array(times[model.name][phase]), axis=0)
            row[f"{phase}_ms"] = 1000 * float(wall)
            row[f"{phase}_cpu_ms"] = 1000 * float(cpu)
            row[f"{phase}_gflops"] = flops / wall / 1e9
            row[f"{phase}_peak_fraction"] = row[f"{phase}_gflops"] / peak[0]
            row[f"{phase}_cpu_peak_fraction"] = flops / cpu / 1e9 / peak[1]
        row["train_flops"] = 3 * model.flops
        rows.append(row)
    by_name = {r["model"]: r for r in rows}
    ours_lstm = by_name.get("ours lstm")
    for row in rows:
        if not row["model"].startswith("ours"):
            continue
        name = row["model"].split(" ", 1)[1]
        references = (
            ("keras", by_name.get(f"keras {BASELINES.get(name)}")),
            ("torch", by_name.get(f"torch nn.{TORCH.get(name)}")),
        )
        for other, reference in references:
            for phase in ("train", "infer"):
                for clock in ("", "cpu_"):
                    if reference:
                        row[f"{phase}_{clock}speedup_vs_{other}"] = (
                            reference[f"{phase}_{clock}ms"] / row[f"{phase}_{clock}ms"]
                        )
        if ours_lstm:
            for clock in ("", "cpu_"):
                row[f"train_{clock}time_per_flop_vs_our_lstm"] = (
                    row[f"train_{clock}ms"] / row["train_flops"]
                ) / (ours_lstm[f"train_{clock}ms"] / ours_lstm["train_flops"])
    return rows


def markdown(rows):
    def fmt(row, key):
        return f"{row[key]:.2f}" if key in row else ""

    lines = [
        "| model | batch | train ms | train CPU ms | train vs Keras (CPU) | "
        "train vs torch (CPU) | infer ms | infer CPU ms | infer vs Keras (CPU) | "
        "infer vs torch (CPU) | train GFLOP/s | % peak (CPU) | "
        "time/FLOP vs our LSTM (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["model"], str(r["batch"]), f"{r['train_ms']:.1f}", f"{r['train_cpu_ms']:.1f}"]
        for phase in ("train", "infer"):
            if phase == "infer":
                cells += [f"{r['infer_ms']:.1f}", f"{r['infer_cpu_ms']:.1f}"]
            for other in ("keras", "torch"):
                key = f"{phase}_speedup_vs_{other}"
                cells.append(
                    f"{fmt(r, key)} ({fmt(r, f'{phase}_cpu_speedup_vs_{other}')})"
                    if key in r
                    else ""
                )
        cells += [
            f"{r['train_gflops']:.1f}",
            f"{100 * r['train_peak_fraction']:.0f} ({100 * r['train_cpu_peak_fraction']:.0f})",
            f"{fmt(r, 'train_time_per_flop_vs_our_lstm')} "
            f"({fmt(r, 'train_cpu_time_per_flop_vs_our_lstm')})"
            if "train_time_per_flop_vs_our_lstm" in r
            else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- memory ------------------------------------------------------------------
def rss_child(which, args):
    """Prints the peak RSS (MiB) of three training steps of one model,
    sampled every millisecond, and the RSS just before them."""
    import threading

    import keras

    from keras_deeprnn.cells import LSTMCell
    from keras_deeprnn.layers import RNN

    if which == "keras":
        layer = keras.layers.LSTM(args.units, return_sequences=True)
    else:
        layer = RNN(LSTMCell(args.units), return_sequences=True)
    model = KerasModel(which, layer, args, 64)
    model.train()  # trace and compile outside the measured steps
    page = os.sysconf("SC_PAGE_SIZE") / 2**20

    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page

    before, peak, done = rss(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(3):
        model.train()
    done.set()
    sampler.join()
    print(json.dumps({"model": which, "rss_before_mib": before, "peak_rss_mib": peak[0]}))


def memory(args):
    results = []
    for which in ("keras", "ours"):
        command = [
            sys.executable,
            "-m",
            "benchmarks.speed",
            "--rss-child",
            which,
            "--time",
            str(args.time),
            "--input",
            str(args.input),
            "--units",
            str(args.units),
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main(argv=None):
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args)
        return
    if args.torch_worker:
        torch_worker(args.torch_worker, args)
        return
    from keras_deeprnn.cells import CELL_NAMES

    cells = CELL_NAMES if args.cells == "all" else tuple(args.cells.split(","))
    for name in cells:
        if name not in CELL_NAMES:
            raise SystemExit(f"unknown cell {name!r}; known: {', '.join(CELL_NAMES)}")
    peak = matmul_peak()
    peak_line = (
        f"Matrix-product peak (2048 x 2048): {peak[0]:.1f} GFLOP/s "
        f"(wall), {peak[1]:.1f} GFLOP per CPU-second"
    )
    print(peak_line, flush=True)
    rows = []
    for batch in (int(b) for b in args.shapes.split(",")):
        models, worker = build_models(args, batch, cells)
        rows += summarize(models, measure(models, args.rounds), batch, peak)
        if worker:
            worker.close()
        print(markdown([r for r in rows if r["batch"] == batch]), flush=True)
    report = {
        "command": "python -m benchmarks.speed "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "shape": {"time": args.time, "input": args.input, "units": args.units},
        "matmul_peak_gflops": peak[0],
        "matmul_peak_gflops_per_cpu_second": peak[1],
        "rows": rows,
    }
    if args.memory:
        report["memory"] = memory(args)
        print(json.dumps(report["memory"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(report, indent=1))
    table = markdown(rows)
    if args.memory:
        table += (
            "\n\n| training process (batch 64) | RSS before the steps MiB | "
            "peak RSS during 3 steps MiB |\n|---|---|---|\n"
        ) + "\n".join(
            f"| {m['model']} LSTM | {m['rss_before_mib']:.0f} | {m['peak_rss_mib']:.0f} |"
            for m in report["memory"]
        )
    (out / "speed.md").write_text(
        f"Command: `{report['command']}`\n\n{peak_line}\n\n" + table + "\n"
    )
    print(f"wrote {out / 'speed.json'} and {out / 'speed.md'}")


if __name__ == "__main__":
    main()
