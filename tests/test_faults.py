"""Training runs get killed: whatever the signal, what is on disk resumes to the same result."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cifar.training import STATE_NAME, atomic_write
from tests.test_training import without_timings

ROOT = Path(__file__).parent.parent


@pytest.fixture
def data_dir(tmp_path, tiny_data):
    folder = tmp_path / "data"
    folder.mkdir()
    for split, (x, y) in tiny_data.items():
        np.savez(folder / f"{split}.npz", x=x, y=y)
    return folder


def train_cli(data_dir, out, *extra):
    return [sys.executable, "train.py", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "4",
            "--batch-size", "16", *extra]


def epochs_done(out: Path) -> int:
    try:
        return len(json.loads((out / "history.json").read_text())["epochs"])
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_to_the_uninterrupted_result(data_dir, tmp_path, sig):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(train_cli(data_dir, whole), check=True, capture_output=True, timeout=300)

    process = subprocess.Popen(train_cli(data_dir, killed), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while epochs_done(killed) < 1 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # now it is inside epoch 2
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    if sig == signal.SIGINT:
        assert "--resume" in stderr and "Traceback" not in stderr
    assert 1 <= epochs_done(killed) < 4 and (killed / STATE_NAME).exists()

    subprocess.run(train_cli(data_dir, killed, "--resume"), check=True, capture_output=True, timeout=300)
    read = lambda out: json.loads((out / "history.json").read_text())
    assert without_timings(read(killed)) == without_timings(read(whole))
    for name, tensor in load_file(whole / "model.safetensors").items():
        torch.testing.assert_close(load_file(killed / "model.safetensors")[name], tensor)


def test_a_crash_while_saving_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / STATE_NAME
    torch.save({"epoch": 1}, path)

    def crash_halfway(tmp):
        tmp.write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, crash_halfway)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
