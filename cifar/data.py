"""CIFAR-10 arrays, the Albumentations pipelines and the DataLoaders.

Images stay uint8 (N, 32, 32, 3) until they reach the device: workers only pad/crop/flip/cut, and
the model normalizes, so the per-image CPU work is as small as it can be.
"""

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from .config import TrainConfig  # noqa: E402


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
    """Hold `val_size` training images out (stratified by shuffling with a fixed seed)."""
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return (x[train], y[train]), (x[val], y[val])


def train_transform(config: TrainConfig) -> A.Compose:
    steps = []
    if config.rotate:
        steps.append(A.Rotate(limit=config.rotate, border_mode=cv2.BORDER_REFLECT_101, p=0.5))
    if config.pad:
        steps += [A.PadIfNeeded(32 + 2 * config.pad, 32 + 2 * config.pad, border_mode=cv2.BORDER_REFLECT_101),
                  A.RandomCrop(32, 32)]
    steps.append(A.HorizontalFlip(p=0.5))
    if config.cutout:
        # Cutout: one hole filled with the dataset mean, so it reads as "no information" after
        # normalization.
        fill = tuple(int(round(255 * m)) for m in config.mean)
        steps.append(A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(config.cutout, config.cutout),
                                     hole_width_range=(config.cutout, config.cutout), fill=fill, p=1.0))
    steps.append(ToTensorV2())
    return A.Compose(steps, seed=config.seed)


class ArrayDataset(Dataset):
    """uint8 HWC images -> (uint8 CHW tensor, label). `transform` None means no augmentation."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform: A.Compose | None = None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        image = self.x[index]
        if self.transform is None:
            return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), int(self.y[index])
        return self.transform(image=image)["image"], int(self.y[index])


def seed_worker(worker_id: int) -> None:
    """Albumentations 2.x draws from its own generators, which every forked worker would copy: seed
    each worker's Compose from torch's per-worker seed (base seed of this epoch + worker id)."""
    info = torch.utils.data.get_worker_info()
    if info.dataset.transform is not None:
        info.dataset.transform.set_random_seed(torch.initial_seed() % 2**32)


class EpochLoader:
    """A shuffling DataLoader whose order and augmentations depend only on (seed, epoch).

    That is what lets a resumed run see exactly the batches an uninterrupted one would have.
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, seed: int, workers: int, pin_memory: bool,
                 sampler=None):
        self.dataset, self.seed = dataset, seed
        self.generator = torch.Generator()
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                                 drop_last=True, num_workers=workers, pin_memory=pin_memory,
                                 worker_init_fn=seed_worker, generator=self.generator,
                                 prefetch_factor=4 if workers else None)

    def epoch(self, epoch: int):
        epoch_seed = self.seed * 100_003 + epoch
        self.generator.manual_seed(epoch_seed)
        if getattr(self.loader.sampler, "set_epoch", None):
            self.loader.sampler.set_epoch(epoch)
        if self.loader.num_workers == 0 and self.dataset.transform is not None:
            self.dataset.transform.set_random_seed(epoch_seed)
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)


def eval_batches(x: np.ndarray, batch_size: int = 1000):
    """Fixed-order uint8 NCHW batches for evaluation: no workers needed, nothing to augment."""
    for start in range(0, len(x), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size].transpose(0, 3, 1, 2)))
