"""Runs a staged Space's app.py as ZeroGPU runs it, with the platform's own `spaces` package (SPACES_ZERO_GPU=true and a
device API: tests/zerogpu_server.py), on a machine without a GPU.

Only the two steps a worker takes on the GPU itself are replaced: starting CUDA on the GPU it was given, and moving
the weights onto it; here the weights are moved to the CPU, read from the same packed file with the same O_DIRECT
reads. Everything else is the package's: CUDA faked in the main process (weights there are placeholders), the weights
packed to disk at launch, /startup-report, /schedule before each call, the forked worker, /allow, /release.

    cd STAGED_SPACE && python PATH/TO/tests/zerogpu_cpu.py
"""

import mmap
import os
import runpy
import sys

import spaces  # noqa: F401  (first, as app.py imports it on ZeroGPU: it patches torch)
import spaces.zero.torch as zero_torch
import torch
from spaces.zero.torch import patching


def start_no_cuda(nvidia_uuid: str) -> None:
    """The worker's CUDA start (patching.init), for a machine with none: nothing to start."""


def read_aligned(fd: int, size: int) -> torch.Tensor:
    """`size` bytes of an O_DIRECT file into page-aligned memory (what such reads need), as uint8."""
    buffer = mmap.mmap(-1, size)
    view, done = memoryview(buffer), 0
    while done < size:
        read = os.readv(fd, [view[done:]])
        if read == 0:
            raise EOFError(f"the packed weights end {size - done} bytes early")
        done += read
    return torch.frombuffer(buffer, dtype=torch.uint8)


def place(tensor: torch.Tensor, data: torch.Tensor, fakes: list) -> None:
    """The packed tensor's bytes, as that tensor, in the placeholders that stand for it (what pack_to_cuda does)."""
    moved = torch.tensor([], dtype=tensor.dtype).set_(data.clone().untyped_storage(), 0, tensor.shape, tensor.stride())
    for fake in fakes:
        fake.data = moved


def move_to_cpu(callback=None) -> None:
    """The worker's move of the weights to its GPU (patching.move), to the CPU: the tensors kept in memory, then the
    packed ones read from disk, batch by batch as packing.pack_to_cuda reads them."""
    for fake, original in patching.cuda_aliases.items():
        if original is not None:
            fake.data = torch.Tensor(original)  # the original, unwrapped from the package's subclass
    for pack in patching.tensor_packs:
        fd = os.open(pack.path(), os.O_RDONLY | os.O_DIRECT)
        try:
            for batch in pack.batches:
                data, offset = read_aligned(fd, sum(aligned for *_, aligned in batch)), 0
                for tensor, size, aligned in batch:
                    place(tensor, data[offset:offset + size], pack.fakes[tensor])
                    offset += aligned
            for tensor, size, aligned in pack.big_tensors:
                place(tensor, read_aligned(fd, aligned)[:size], pack.fakes[tensor])
        finally:
            os.close(fd)


zero_torch.init, zero_torch.move = start_no_cuda, move_to_cpu
sys.path.insert(0, os.getcwd())  # the staged Space's own code, as the platform runs it
sys.argv = ["app.py"]
runpy.run_path("app.py", run_name="__main__")
