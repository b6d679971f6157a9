"""Training runs get killed: whatever the signal, what is on disk resumes to the same result."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cifar.files import STATE_NAME, atomic_write
from tests.conftest import npz_folder, synthetic_cifar
from tests.test_training import without_timings

ROOT = Path(__file__).parent.parent
EPOCHS, BATCH, KILLED_IN_EPOCH = 4, 16, 2

# train.py, with the signal sent by the run itself after the first batch of epoch KILLED_IN_EPOCH: the
# interruption always lands at the same point of the run, however fast or busy the machine is.
KILLED_TRAIN_PY = """
import os, signal, sys
import cifar.training.data, train
# Ctrl-C in a terminal: a shell that starts a job in the background may have it inherit SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
epoch_batches = cifar.training.data.EpochLoader.epoch

def epoch(self, number):
    for i, batch in enumerate(epoch_batches(self, number)):
        if number + 1 == {epoch} and i == 1:
            os.kill(os.getpid(), {signal})
        yield batch

cifar.training.data.EpochLoader.epoch = epoch
train.main(sys.argv[1:])
"""


def train_args(data_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--out", str(out), "--epochs", str(EPOCHS), "--batch-size", str(BATCH),
            *extra]


def read_history(out: Path) -> dict:
    return json.loads((out / "history.json").read_text())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return npz_folder(tmp_path_factory.mktemp("data"), synthetic_cifar())


@pytest.fixture(scope="module")
def whole(data_dir, tmp_path_factory):
    """The uninterrupted run, once for both signals."""
    out = tmp_path_factory.mktemp("whole")
    subprocess.run([sys.executable, "train.py", *train_args(data_dir, out)], check=True, capture_output=True,
                   timeout=300, cwd=ROOT)
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_to_the_uninterrupted_result(data_dir, whole, tmp_path, sig):
    killed = tmp_path / "killed"
    interrupted = subprocess.run(
        [sys.executable, "-c", KILLED_TRAIN_PY.format(epoch=KILLED_IN_EPOCH, signal=int(sig)),
         *train_args(data_dir, killed)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert interrupted.returncode != 0
    if sig == signal.SIGINT:
        assert "--resume" in interrupted.stderr and "Traceback" not in interrupted.stderr
    # Every epoch before the one interrupted is on disk, and nothing of the run's end.
    assert len(read_history(killed)["epochs"]) == KILLED_IN_EPOCH - 1 and (killed / STATE_NAME).exists()
    assert not (killed / "model.safetensors").exists()

    resumed = subprocess.run([sys.executable, "train.py", *train_args(data_dir, killed, "--resume")], check=True,
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
    # Only the remaining epochs ran ...
    assert f"resuming {killed} after epoch {KILLED_IN_EPOCH - 1}/{EPOCHS}" in resumed.stdout
    ran = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("epoch ")]
    assert ran == [f"{n}/{EPOCHS}" for n in range(KILLED_IN_EPOCH, EPOCHS + 1)]
    # ... and they end where the uninterrupted run ended.
    assert without_timings(read_history(killed)) == without_timings(read_history(whole))
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
