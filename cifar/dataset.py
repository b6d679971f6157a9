"""CIFAR-10's arrays as they are read from disk: the training and test splits, the validation split held out of
training, and a test set alone (what the page's Test set tab browses). Plain NumPy: no augmentation, no model.
"""

import os
from pathlib import Path

import numpy as np


def load_cifar10(data_dir: str | None = None) -> dict:
    """{'train': (x, y), 'test': (x, y)} with x uint8 (N, 32, 32, 3) and y int64.

    `data_dir` (or env CIFAR10_DIR) is a folder with train.npz/test.npz; without one, torchvision
    downloads the dataset into ./data.
    """
    data_dir = data_dir or os.environ.get("CIFAR10_DIR")
    if data_dir:
        folder = Path(data_dir)
        missing = [n for n in ("train.npz", "test.npz") if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)} "
                                    "(expected train.npz/test.npz with arrays x and y)")
        splits = {}
        for split in ("train", "test"):
            with np.load(folder / f"{split}.npz") as arrays:
                splits[split] = (arrays["x"], arrays["y"].astype(np.int64))
        return splits
    from torchvision.datasets import CIFAR10

    return {split: (ds.data, np.asarray(ds.targets, dtype=np.int64))
            for split in ("train", "test")
            for ds in [CIFAR10("./data", train=split == "train", download=True)]}


def split_validation(x: np.ndarray, y: np.ndarray, val_size: int, seed: int):
    """Hold `val_size` training images out: a random split, the same for the same seed."""
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return (x[train], y[train]), (x[val], y[val])


class TestSetError(ValueError):
    """A test set that cannot be browsed; the message names the file and the problem."""

    __test__ = False  # a name pytest would otherwise take for a test class


def read_test_set(path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of a test.npz, or of a folder that holds one."""
    path = Path(path)
    path = path / "test.npz" if path.is_dir() else path
    try:
        with np.load(path, allow_pickle=False) as arrays:
            images, labels = arrays["x"], arrays["y"].astype(np.int64)
    except (OSError, ValueError, KeyError) as error:
        raise TestSetError(f"{path}: not a readable .npz with arrays x and y ({error})") from None
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8 or len(labels) != len(images):
        raise TestSetError(f"{path} is not a CIFAR test set: x {images.shape} {images.dtype}, y {labels.shape}")
    return images, labels
