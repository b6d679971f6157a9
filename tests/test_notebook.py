"""The Colab quick start, executed top to bottom on this CPU with tiny settings, so it cannot rot; its
install cell run by the Pythons Colab has (cifar/deploy/platforms.py), as a pip dry run against the real index;
and its share cell given a token the way Colab gives it.

Its parameters cell is followed by an injected one (as papermill does): one epoch on synthetic data, no
installs (the suite's environment has them), no public link; the Hub and Space cells stay off there, as for
a user who sets neither, and are run on their own below."""

import ast
import glob
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from cifar.deploy.platforms import COLAB, PREINSTALLED_ON_COLAB, minor, read_requirements
from tests.hub_server import Account, StandInHub, serving

ROOT = Path(__file__).parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def cell(notebook, text: str) -> str:
    """The source of the one cell that contains `text`."""
    [source] = [c.source for c in notebook.cells if c.cell_type == "code" and text in c.source]
    return source


def interpreter(version: str) -> str | None:
    """A Python of that minor version on this machine (pyenv's), if there is one."""
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python")) or sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    return found[-1] if found else None


@pytest.mark.parametrize("version", sorted({minor(v) for v in COLAB.pythons}))
def test_the_install_cell_installs_valid_pins_and_keeps_colabs_torch(version, tmp_path):
    """The cell as written, run by the Python Colab runs, with pip in dry-run mode against the real index (pip
    reads its options from PIP_* variables): pip accepts every line, would install every pin, and leaves
    Colab's CUDA torch and torchvision alone."""
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine (pyenv install {version})")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    script = "\n".join([cell(notebook, "REPOSITORY = "), "INSTALL = True", cell(notebook, "if INSTALL:")])
    report = tmp_path / "pip-report.json"
    env = {**os.environ, "PIP_DRY_RUN": "1", "PIP_IGNORE_INSTALLED": "1", "PIP_REPORT": str(report)}
    result = subprocess.run([python, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    would_install = {item["metadata"]["name"].lower().replace("_", "-")
                     for item in json.loads(report.read_text())["install"]}
    pins = {name for name in read_requirements(ROOT / "requirements.txt") if name not in PREINSTALLED_ON_COLAB}
    assert pins <= would_install
    assert not would_install & set(PREINSTALLED_ON_COLAB)
    assert not any(name.startswith("nvidia-") for name in would_install)  # no second CUDA stack either


def test_a_colab_secret_reaches_the_share_commands(tiny_run, tmp_path, monkeypatch):
    """On Colab a token saved as the secret HF_TOKEN is read by huggingface_hub inside the kernel only; the
    share cell's `!python app.py --deploy` must get it too. Colab's secrets module is stood in for, the Hub
    is the stand-in on 127.0.0.1, and the cell runs as written."""
    secret = "hf_colab_secret_token"
    hub = StandInHub([Account("me", secret)])
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    colab = f"""
import os, sys, types
import huggingface_hub.utils._runtime as runtime

userdata, errors = types.ModuleType("google.colab.userdata"), types.ModuleType("google.colab.errors")
errors.Error = userdata.NotebookAccessError = userdata.SecretNotFoundError = type("ColabError", (Exception,), {{}})
userdata.get = lambda key: {secret!r} if key == "HF_TOKEN" else None
sys.modules.update({{"google": types.ModuleType("google"), "google.colab": types.ModuleType("google.colab"),
                    "google.colab.userdata": userdata, "google.colab.errors": errors}})
runtime._is_google_colab = True  # what huggingface_hub concludes inside a Colab kernel
os.chdir({str(ROOT)!r})
RUN, HUB_MODEL, SPACE = {str(tiny_run)!r}, "", "me/cifar-demo"
"""
    with serving(hub) as url:
        for name, value in {"HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"),
                            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}.items():
            monkeypatch.setenv(name, value)  # the kernel's environment: no token in it, none on disk
        monkeypatch.delenv("HF_TOKEN", raising=False)
        run = new_notebook(cells=[new_code_cell(colab), new_code_cell(cell(notebook, "notebook_login"))])
        NotebookClient(run, timeout=600, kernel_name="python3").execute()
    output = "".join(o.get("text", "") for o in run.cells[1].get("outputs", []))
    assert ("POST", "/api/repos/create", f"Bearer {secret}") in hub.requests, output
    assert "deployed" in output and "app.py" in hub.spaces["me/cifar-demo"].files


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
