"""The notebooks of notebooks/: kept without outputs, and each runs from top to
bottom with small parameters.

As papermill does, the values of `CI_PARAMETERS` go into a new cell (tagged
`injected-parameters`) right after the notebook's cell tagged `parameters`;
nbclient then runs the notebook in the `python3` kernel (ipykernel, this
interpreter) from the notebooks folder, with this checkout first on the
kernel's `PYTHONPATH`. A notebook passes when no cell raises and every
`plt.show()` drew its figure (and the music notebook embedded its audio).
"""

import ast
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
#: Notebooks that read a benchmark of ../shared/data (the others use music21's
#: corpus): without it they would try the download, which is offline here.
READS_SHARED_DATA = {"05_translation.ipynb"}
CELL_TIMEOUT = 300  # seconds per cell; whole notebooks take well under 2 minutes

# Small sizes: each notebook tells its whole story in well under 2 minutes on
# 2 CPU cores. "bach" is music21's corpus (offline); 30 chorales parse in
# seconds and are cached. "OUT_DIR" is replaced by a temporary folder.
CI_PARAMETERS = {
    "01_quick_start.ipynb": {
        "PIECES": 30,
        "UNITS": 16,
        "EPOCHS": 2,
        "CELLS": ["lstm-vanilla", "gru"],
    },
    "02_deep_rnns.ipynb": {
        "PIECES": 30,
        "BUDGET": 5000,
        "KINDS": ["rnn", "dots"],
        "EPOCHS": 2,
        "PROBE_FRAMES": 24,
        "RADII": [0.5, 1.5],
        "RESOLUTION": 60,
    },
    "03_music.ipynb": {
        "PIECES": 30,
        "UNITS": 16,
        "EPOCHS": 2,
        "FRAMES": 8,
        "BEAM": 2,
    },
    "04_deployment.ipynb": {
        "PIECES": 30,
        "MAX_TRIALS": 2,
        "EPOCHS": 1,
        "UNITS_RANGE": [8, 16],
        "MAX_LENGTH": 16,
        "QUANTIZE": [None, "int8"],
        "TIMING_REPEATS": 5,
    },
    "05_translation.ipynb": {
        "TRAIN_PAIRS": 1500,
        "VOCAB_SIZE": 400,
        "UNITS": 32,
        "EMBEDDING_DIM": 32,
        "EPOCHS": 1,
        "BEAM": 2,
        "TEST_SENTENCES": 20,
    },
}


def parameter_cell(nb):
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def assigned_names(source):
    return {
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def inject_parameters(nb, values):
    """Adds a cell assigning `values` after the `parameters` cell (papermill's
    convention), refusing names that the parameters cell does not define."""
    index = parameter_cell(nb)
    unknown = sorted(set(values) - assigned_names(nb.cells[index].source))
    assert not unknown, f"not parameters of the notebook: {unknown}"
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(f"# Parameters injected by tests/test_notebooks.py\n{source}")
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def outputs_of(nb, mime):
    return [
        output["data"][mime]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if mime in output.get("data", {})
    ]


def test_every_notebook_has_ci_parameters():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CI_PARAMETERS)


@pytest.mark.parametrize("name", sorted(CI_PARAMETERS))
def test_notebook_is_committed_without_outputs(name):
    raw = json.loads((NOTEBOOKS / name).read_text())
    nbformat.validate(nbformat.from_dict(raw))
    for index, cell in enumerate(raw["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name}: cell {index} holds outputs"
            assert cell["execution_count"] is None, f"{name}: cell {index} was run"
    assert "widgets" not in raw["metadata"], f"{name}: widget state in the metadata"
    assert raw["metadata"]["kernelspec"]["name"] == "python3"


def test_inject_parameters_refuses_an_unknown_name():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("EPOCHS = 10\nUNITS = 64")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    with pytest.raises(AssertionError, match="EPOCH"):
        inject_parameters(nb, {"EPOCH": 1})
    inject_parameters(nb, {"EPOCHS": 1})
    assert nb.cells[1].source.endswith("EPOCHS = 1")
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]


def execute(nb, monkeypatch):
    """Runs `nb` in place from the notebooks folder; returns the seconds taken.
    Raises `CellExecutionError`, naming the cell, if one fails."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def show_calls(nb):
    return sum(cell.source.count("plt.show()") for cell in nb.cells if cell.cell_type == "code")


def test_execute_counts_figures_and_fails_on_an_error(monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("SIZE = 3"),
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nplt.plot(range(SIZE))\nplt.show()"
        ),
        nbformat.v4.new_code_cell("assert SIZE == 3, 'not overridden'"),
    ]
    nb.cells[0].metadata["tags"] = ["parameters"]
    inject_parameters(nb, {"SIZE": 4})
    with pytest.raises(CellExecutionError, match="not overridden"):
        execute(nb, monkeypatch)
    assert show_calls(nb) == len(outputs_of(nb, "image/png")) == 1


@pytest.mark.parametrize("name", sorted(CI_PARAMETERS))
def test_notebook_runs(name, tmp_path, monkeypatch, request):
    if name in READS_SHARED_DATA:
        request.getfixturevalue("shared_data")  # a skip where it is absent
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    values = dict(CI_PARAMETERS[name])
    if "OUT_DIR" in assigned_names(nb.cells[parameter_cell(nb)].source):
        values["OUT_DIR"] = str(tmp_path / "out")
    inject_parameters(nb, values)
    print(f"{name}: {execute(nb, monkeypatch):.0f} s")
    assert show_calls(nb) > 0
    assert len(outputs_of(nb, "image/png")) == show_calls(nb), "a plt.show() drew no figure"
    if name == "03_music.ipynb":
        audio = [html for html in outputs_of(nb, "text/html") if "<audio" in html]
        assert len(audio) >= 2, "the generated music was not rendered to audio"
