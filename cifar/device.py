"""Where the model runs: the device to use, its name for people, and the GPU request on a ZeroGPU Space.

Training and the app share these; neither needs the other's code to know what it runs on. torch is
imported inside the functions: app.py asks `on_zero_gpu()` before torch is loaded, because on a ZeroGPU
Space the `spaces` package must be imported first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def pick_device() -> torch.device:
    """CUDA when there is a GPU (under torchrun, this process's own), else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def device_name(device: torch.device, processes: int = 1) -> str:
    """What a person is told it runs on, e.g. "NVIDIA H100 80GB HBM3" or "CPU (AMD EPYC, 2 cores)"."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        models = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
                  if line.startswith("model name")]
        name = f"CPU ({models[0] + ', ' if models else ''}{os.cpu_count()} cores)"
    return f"{processes} x {name}" if processes > 1 else name


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def on_zero_gpu() -> bool:
    """A ZeroGPU Space (the Hub's shared GPUs): the platform sets SPACES_ZERO_GPU, as the `spaces` package reads it."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def gpu_task(handler, seconds):
    """On a ZeroGPU Space, `handler` holds a GPU for each call, for at most `seconds` (a number, or a function
    of the handler's arguments): the `spaces` package's @spaces.GPU(duration=...), which attaches the GPU to
    the process only while a handler runs; shorter durations wait less in the platform's queue. Anywhere
    else, `handler` itself: `spaces` is not even imported (it patches Gradio and torch when it is)."""
    if not on_zero_gpu():
        return handler
    import spaces

    return spaces.GPU(handler, duration=seconds)
