"""The platforms this project runs on beyond localhost, and their rules, in one table.

Each row says what the platform gives or accepts, where that was read, and when. When a platform moves,
its row changes here and nowhere else: the Space staging (cifar/deploy/space.py), the Colab notebook and the tests
all read this table. Standard library only: the Colab notebook reads it before anything is installed.
"""

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Platform:
    name: str
    pythons: tuple  # the Python versions it runs, newest first
    torches: tuple  # the torch versions it runs (or accepts in requirements.txt), newest first
    source: str  # where the rules were read
    read_on: str  # when


# ZeroGPU Spaces: a build whose requirements.txt pins another torch stops with "configuration error: torch
# version in requirements.txt is not compatible with ZeroGPU". The platform brings `spaces` and Gradio
# (at the README's sdk_version) itself. Free personal accounts can host up to 2 ZeroGPU Spaces; Gradio Spaces
# on any other hardware need PRO (cpu-basic) or billing (paid hardware).
ZERO_GPU = Platform(
    name="ZeroGPU Space",
    pythons=("3.12.12", "3.10.13"),
    torches=("2.11.0", "2.10.0", "2.9.1", "2.8.0"),
    source="huggingface/hub-docs docs/hub/spaces-zerogpu.md and spaces-overview.md at 242f4a1 (2026-08-22)",
    read_on="2026-12-02",
)
ZERO_GPU_HARDWARE = "zero-a10g"  # its flavour name in the Hub API (huggingface_hub's SpaceHardware.ZERO_A10G)
ZERO_GPU_DEFAULT_SECONDS = 60  # what @spaces.GPU asks for when no duration is given; shorter queues sooner

# Colab: its own CUDA torch and torchvision, preinstalled (a notebook must keep them). The current runtime
# is Python 3.13; the pinnable 2026.07 runtime is Python 3.12.13 with the same torch.
COLAB = Platform(
    name="Colab",
    pythons=("3.13.15", "3.12.13"),
    torches=("2.11.0",),
    source="googlecolab/backend-info os-info.txt, pip-freeze.gpu.txt and README.md at a724079 (2026-08-19)",
    read_on="2026-12-02",
)
PREINSTALLED_ON_COLAB = ("torch", "torchvision")  # CUDA builds matched to Colab's driver: never reinstall them


def minor(version: str) -> str:
    """"3.12.12" -> "3.12"."""
    return ".".join(version.split(".")[:2])


def read_requirements(path) -> dict:
    """{package name: its requirement} from a requirements file, comments and blank lines left out (pip
    refuses a comment handed to it as a requirement)."""
    requirements = {}
    for line in Path(path).read_text().splitlines():
        requirement = line.split(" #", 1)[0].strip()
        if requirement and not requirement.startswith(("#", "-")):
            requirements[re.split(r"[=<>!~\[ ;]", requirement, 1)[0].lower()] = requirement
    return requirements
