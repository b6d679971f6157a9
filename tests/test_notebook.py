"""The Colab quick start, executed top to bottom on this CPU with tiny settings, so it cannot rot.

Its parameters cell is followed by an injected one (as papermill does): one epoch on synthetic data, no
installs (the suite's environment has them), no public link; the Hub and Space cells stay off, as for a
user who sets neither (those commands have their own tests)."""

import ast
import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_top_to_bottom(tmp_path, tiny_data_dir):
    run = tmp_path / "run"
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    overrides = dict(INSTALL=False, DATA_DIR=str(tiny_data_dir), RUN=str(run), TRAIN_ARGS="--epochs 1 --batch-size 16",
                     SHARE=False)
    notebook.cells.insert(parameters + 1, new_code_cell("\n".join(f"{k} = {v!r}" for k, v in overrides.items())))

    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = {i: "".join(o.get("text", "") for o in cell.get("outputs", [])) for i, cell in enumerate(notebook.cells)}
    text = "\n".join(outputs.values())
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in text  # the numbers cell read this run
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # accuracy, loss, confusion matrix
    confidences = next(line for line in text.splitlines() if line.startswith("{'"))  # the API call's answer
    assert len(ast.literal_eval(confidences)) == 3
