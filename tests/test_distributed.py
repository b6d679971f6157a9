"""Training with DistributedDataParallel on 2 CPU processes (gloo), started the way users start it.

Two checks, because a loss comparison alone cannot see broken gradient sync (each process would still
learn from its own half of every batch):
- one step under DDP gives the weights of one step on the whole batch, in every process;
- a whole train.py run on 2 processes ends with the same weights in both, and with the losses of the
  1-process run within tolerances ten times tighter than the gap between training and not training.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import npz_folder, synthetic_cifar
from tests.conftest import RUN_FILES

ROOT = Path(__file__).parent.parent
# Micro-batches of 8: BatchNorm sees 8 images in both runs, and each process accumulates 2 per step
# (its 16 of the 32), so the once-a-step gradient sync (DDP no_sync on the first) is exercised.
ARGS = ["--epochs", "2", "--batch-size", "32", "--micro-batch", "8", "--lr", "0.01", "--cutout", "0",
        "--label-smoothing", "0"]
# Train loss of epochs 1 and 2 on this data: 1.956 and 0.928 for 1 process, 1.964 and 0.857 for 2
# (measured); not training at all (lr 1e-12) gives 2.376 and 2.365. The processes draw their own
# augmentations, so the runs differ by a little; the tolerances are a tenth of the gaps (0.42, 1.44).
TOLERANCES = (0.04, 0.14)

# train.py on every process, each then saving its trained parameters (rank 0 alone writes the run folder).
TRAIN_AND_SAVE_WEIGHTS = """
import os, sys, torch
import cifar.training.loop, train
train_loop = cifar.training.loop.train

def train_and_save(*args, **kwargs):
    model = train_loop(*args, **kwargs)
    torch.save(dict(model.named_parameters()), os.path.join(sys.argv[1], "rank%s.pt" % os.environ["RANK"]))
    return model

cifar.training.loop.train = train_and_save
train.main(sys.argv[2:])
"""

# One optimizer step on 32 images: on each process's 16 under DDP, and on all 32 in one process.
ONE_STEP = """
import os, sys, torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from cifar.training.config import make_config
from cifar.engine.model import ResNet18
from cifar.training.loop import distributed, make_optimizer, train_step

rank, world = distributed(torch.device("cpu"))
config = make_config()
images = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
labels = torch.arange(32) % 10

def step(images, labels, wrap):
    torch.manual_seed(0)
    model = ResNet18()
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    ddp = DistributedDataParallel(model) if wrap else None
    train_step(ddp or model, make_optimizer(model, config), images, labels, 8, config.label_smoothing, ddp=ddp)
    return initial, {name: p.detach().clone() for name, p in model.named_parameters()}

half = slice(16 * rank, 16 * (rank + 1))
initial, mine = step(images[half], labels[half], wrap=True)
gathered = [None] * world
dist.all_gather_object(gathered, mine)
if rank == 0:
    _, whole_batch = step(images, labels, wrap=False)
    torch.save({"initial": initial, "ranks": gathered, "whole_batch": whole_batch}, sys.argv[1])
dist.destroy_process_group()
"""


def torchrun(script: Path, *args, nproc=2) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run`: works in any environment, activated or not (torchrun may not be on PATH)."""
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", str(script),
                             *map(str, args)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_ddp_step_equals_the_whole_batch_step_in_every_process(tmp_path):
    script = tmp_path / "one_step.py"
    script.write_text(ONE_STEP)
    torchrun(script, tmp_path / "weights.pt")
    result = torch.load(tmp_path / "weights.pt", weights_only=True)
    rank0, rank1 = result["ranks"]
    moved = max((result["whole_batch"][n] - result["initial"][n]).abs().max().item() for n in result["initial"])
    assert moved > 1e-3  # the step changes the weights by far more than the tolerance below
    for name, expected in result["whole_batch"].items():
        torch.testing.assert_close(rank0[name], rank1[name], atol=0, rtol=0)  # the processes agree exactly
        torch.testing.assert_close(rank0[name], expected, atol=1e-5, rtol=1e-4)


def test_two_processes_train_like_one(tmp_path):
    data_dir = npz_folder(tmp_path / "data", synthetic_cifar(n_train=160, n_test=100))
    single, multi = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, "train.py", "--data-dir", str(data_dir), "--out", str(single), *ARGS],
                   check=True, capture_output=True, timeout=600, cwd=ROOT)
    script = tmp_path / "train_and_save_weights.py"
    script.write_text(TRAIN_AND_SAVE_WEIGHTS)
    result = torchrun(script, tmp_path, "--data-dir", data_dir, "--out", multi, *ARGS)
    assert result.stdout.count("done in") == 1  # rank 0 alone finishes the run folder
    assert {p.name for p in multi.iterdir()} == {p.name for p in single.iterdir()} >= RUN_FILES

    # Gradients were averaged at every step: both processes end with the same weights.
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name, tensor in rank0.items():
        torch.testing.assert_close(rank1[name], tensor, atol=0, rtol=0)

    one, two = (json.loads((d / "history.json").read_text()) for d in (single, multi))
    assert (one["processes"], two["processes"]) == (1, 2) and one["micro_batch"] == two["micro_batch"] == 8
    # Metrics are reduced over both processes: every training image counted once.
    assert [e["train_images"] for e in two["epochs"]] == [e["train_images"] for e in one["epochs"]] == [160, 160]
    for a, b, tolerance in zip(one["epochs"], two["epochs"], TOLERANCES):
        assert abs(a["train_loss"] - b["train_loss"]) < tolerance
