"""A broken model folder or an unreachable repo: one clear line naming the problem, never a pickle load."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from cifar.runs.folder import RunFolderError, load_run


def damaged(tiny_run, tmp_path, damage):
    folder = shutil.copytree(tiny_run, tmp_path / "run")
    damage(folder)
    return folder


def truncate(folder):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:1000])


def pickle_instead(folder):
    (folder / "model.safetensors").unlink()
    torch.save({"weights": torch.zeros(3)}, folder / "pytorch_model.bin")


def pickle_disguised(folder):
    torch.save({"weights": torch.zeros(3)}, folder / "model.safetensors")


def mismatch(folder):
    state = load_file(folder / "model.safetensors")
    state["fc.weight"] = state["fc.weight"][:5]
    save_file(state, folder / "model.safetensors")


def bad_json(folder):
    (folder / "config.json").write_text('{"num_classes": 10,')


def wrong_config(folder):
    (folder / "config.json").write_text(json.dumps({"num_classes": 10, "depth": 50}))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "model.safetensors").unlink(), "lacks model.safetensors"),
    (truncate, "not a valid safetensors file"),
    (pickle_instead, "pytorch_model.bin is never loaded"),
    (pickle_disguised, "not a valid safetensors file"),
    (mismatch, "does not fit this ResNet-18"),
    (bad_json, "config.json is not valid JSON"),
    (wrong_config, "unknown keys: depth"),
    (lambda f: (f / "misclassified.npz").write_bytes(b"junk"), "damaged"),
])
def test_broken_run_folders_are_named(tiny_run, tmp_path, damage, message):
    with pytest.raises(RunFolderError, match=message):
        load_run(str(damaged(tiny_run, tmp_path, damage)))


def test_unreachable_repo_and_missing_folder(tmp_path):
    with pytest.raises(RunFolderError, match="could not be fetched from the Hugging Face Hub"):
        load_run("someone/not-cached-here")
    with pytest.raises(RunFolderError, match="no such run folder"):
        load_run(str(tmp_path / "nope"))


def test_app_start_failure_is_one_clear_line(tiny_run, tmp_path):
    folder = damaged(tiny_run, tmp_path, truncate)
    result = subprocess.run([sys.executable, "app.py", "--model", str(folder)], capture_output=True, text=True,
                            timeout=120, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "error: cannot load the model" in result.stderr and "not a valid safetensors file" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_models_the_page_could_not_tell_apart_are_refused_at_start(tiny_run, tmp_path):
    twin = shutil.copytree(tiny_run, tmp_path / "elsewhere" / tiny_run.name)
    result = subprocess.run([sys.executable, "app.py", "--model", str(tiny_run), str(twin)], capture_output=True,
                            text=True, timeout=120, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"error: two models would both be called {tiny_run.name} on the page" in result.stderr
