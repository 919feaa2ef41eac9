"""The benchmarks run end to end at tiny shapes and write their tables
(correctness of the plumbing only; timings are not checked)."""

import json

import pytest

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


@pytest.mark.slow
def test_seq2seq_speed_benchmark_writes_its_table(tmp_path):
    from benchmarks import seq2seq_speed

    report = seq2seq_speed.main(
        [
            "--models",
            "keras,fast-luong-dot",
            "--batch",
            "4",
            "--length",
            "5",
            "--vocabulary",
            "20",
            "--embedding",
            "4",
            "--units",
            "4",
            "--rounds",
            "1",
            "--steps",
            "1",
            "--out",
            str(tmp_path),
        ]  # fmt: skip
    )
    rows = {r["model"]: r for r in report["rows"]}
    assert rows["keras"]["vs_keras"] == 1.0 and rows["fast-luong-dot"]["tokens_per_s"] > 0
    assert "| fast-luong-dot |" in (tmp_path / "seq2seq_speed.md").read_text()
