"""The benchmarks run end to end at tiny shapes and write their tables
(correctness of the plumbing only; timings are not checked)."""

import json

from benchmarks import kernels
from benchmarks import speed


def test_speed_benchmark_writes_its_table(tmp_path):
    speed.main(
        [
            "--cells",
            "lstm,gru",
            "--shapes",
            "2",
            "--time",
            "5",
            "--input",
            "3",
            "--units",
            "4",
            "--rounds",
            "1",
            "--no-torch",
            "--out",
            str(tmp_path),
        ]
    )
    rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
    names = {r["model"] for r in rows}
    assert {"keras LSTM", "ours lstm", "keras GRU", "ours gru"} <= names
    assert all(r["train_ms"] > 0 and r["infer_ms"] > 0 for r in rows)
    assert "| ours lstm | 2 |" in (tmp_path / "speed.md").read_text()


def test_kernel_benchmark_times_every_path(tmp_path):
    kernels.main(
        [
            "--cells",
            "lstm,gru,rnn,lstm-fgr",
            "--shapes",
            "3",
            "--time",
            "4",
            "--units",
            "5",
            "--rounds",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    rows = json.loads((tmp_path / "kernels.json").read_text())
    assert len(rows) == 4 * 3
    for row in rows:
        assert all(row[p] > 0 for p in ("C++ kernel", "TF loop", "TF loop, XLA"))
    assert (
        (tmp_path / "kernels.md")
        .read_text()
        .startswith("Command: `python -m benchmarks.kernels --cells")
    )
