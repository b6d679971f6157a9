"""Take the GPU proof (benchmarks/gpu_proof.sh) to a GPU machine that reaches no package index and no dataset host,
in parts small enough for whatever carries them (docs/gpu-proof.md).

    python -m benchmarks.offline_kit pack ../shared/cifar10 .kit     # here, with PyPI: wheels and data parts
    python -m benchmarks.offline_kit unpack /tmp/kit /tmp/cifar10    # there: the data, checked, as train.py reads it

`pack` writes into the kit folder:
- wheels/: what requirements.txt pins, for the target's Python, less what a PyTorch GPU image already holds
  (ON_THE_IMAGE): Albumentations 2.0.8 and its needs, Gradio and its server, huggingface_hub. Install there with
  `pip install --no-index --no-deps --target /tmp/site wheels/*.whl` and PYTHONPATH=/tmp/site.
- data-NN: CIFAR-10's four arrays in one xz stream (0.76 of their bytes; the npz files, deflated, are 0.92), cut into
  parts of PART_MIB, and manifest.json: each array's shape, dtype and sha256, checked by `unpack`.
"""

import argparse
import hashlib
import io
import json
import lzma
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from cifar.deploy.platforms import read_requirements

ROOT = Path(__file__).parent.parent
PART_MIB = 20  # a part and the wheels (~44 MB) fit in one 64 MiB transfer, three parts in another
ARRAYS = ("train_x", "train_y", "test_x", "test_y")
# On the lent H200's image (its package list, read 2026-11-17) and large: not carried. Torch and torchvision are
# the image's own (another version than our pins: the proof records which).
ON_THE_IMAGE = {"torch", "torchvision", "numpy", "scipy", "pandas", "pillow", "opencv-python-headless", "matplotlib",
                "hf-xet", "pygments", "pyyaml", "jinja2", "markupsafe", "certifi", "idna", "packaging", "filelock",
                "fsspec", "tqdm", "rich", "markdown-it-py", "mdurl", "typing-extensions",
                "python-dateutil", "six", "anyio", "h11", "httpcore", "httpx", "shellingham", "safetensors",
                "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing", "sympy", "networkx", "mpmath",
                "triton", "setuptools"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any")


def project_name(wheel: Path) -> str:
    """A wheel's project name, normalized as PyPI does (PEP 503): 'opencv_python_headless-5.1...' -> 'opencv-python-headless'."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def pack_wheels(kit: Path, python: str) -> list:
    """Downloads the pinned requirements and what they need, for `python` on x86-64 Linux; keeps what the image lacks."""
    wheels = kit / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pins = [pin for name, pin in read_requirements(ROOT / "requirements.txt").items()
            if name not in {"torch", "torchvision"}]
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--implementation", "cp",
                    "--python-version", python, *platforms, "-d", str(wheels), *pins], check=True)
    for wheel in wheels.glob("*.whl"):
        if project_name(wheel) in ON_THE_IMAGE:
            wheel.unlink()
    return sorted(wheels.glob("*.whl"))


def pack_data(data_dir: Path, kit: Path, part_mib: float = PART_MIB) -> list:
    arrays = {}
    for split in ("train", "test"):
        with np.load(Path(data_dir) / f"{split}.npz") as npz:
            arrays[f"{split}_x"], arrays[f"{split}_y"] = npz["x"], npz["y"]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    packed = lzma.compress(buffer.getvalue(), preset=6)
    size = int(part_mib * 2 ** 20)
    kit.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(packed), size):
        parts.append(kit / f"data-{start // size:02d}")
        parts[-1].write_bytes(packed[start:start + size])
    manifest = {name: {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": sha256(a)} for name, a in arrays.items()}
    (kit / "manifest.json").write_text(json.dumps({"parts": len(parts), "arrays": manifest}, indent=1))
    return parts


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def unpack_data(kit: Path, data_dir: Path) -> None:
    """Joins the parts, checks every array against the manifest (a missing or damaged part is named, not loaded),
    and writes train.npz and test.npz as train.py --data-dir reads them."""
    manifest = json.loads((Path(kit) / "manifest.json").read_text())
    parts = [Path(kit) / f"data-{i:02d}" for i in range(manifest["parts"])]
    missing = [part.name for part in parts if not part.is_file()]
    if missing:
        sys.exit(f"error: the kit lacks {', '.join(missing)} (of {len(parts)} parts)")
    with np.load(io.BytesIO(lzma.decompress(b"".join(part.read_bytes() for part in parts)))) as npz:
        arrays = {name: npz[name] for name in ARRAYS}
    for name, expected in manifest["arrays"].items():
        found = {"shape": list(arrays[name].shape), "dtype": str(arrays[name].dtype), "sha256": sha256(arrays[name])}
        if found != expected:
            sys.exit(f"error: {name} is not the packed array: {found} != {expected}")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        np.savez(Path(data_dir) / f"{split}.npz", x=arrays[f"{split}_x"], y=arrays[f"{split}_y"])
    print(f"{data_dir}: train {arrays['train_x'].shape}, test {arrays['test_x'].shape}, checked")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("pack", help="here: wheels and data parts into KIT")
    pack.add_argument("data_dir", type=Path)
    pack.add_argument("kit", type=Path)
    pack.add_argument("--python", default="3.12", help="the GPU machine's Python (its wheels)")
    pack.add_argument("--part-mib", type=int, default=PART_MIB)
    unpack = commands.add_parser("unpack", help="there: KIT's data parts into DATA_DIR")
    unpack.add_argument("kit", type=Path)
    unpack.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "unpack":
        return unpack_data(args.kit, args.data_dir)
    wheels = pack_wheels(args.kit, args.python)
    print(f"{len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 1e6:.1f} MB")
    parts = pack_data(args.data_dir, args.kit, args.part_mib)
    print(f"{len(parts)} data parts, {sum(p.stat().st_size for p in parts) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
