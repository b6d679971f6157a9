"""The training pipeline: the Albumentations augmentations and the DataLoaders that feed the training loop.

Images stay uint8 (N, 32, 32, 3) until they reach the device: workers only pad/crop/flip/cut, and
the model normalizes, so the per-image CPU work is as small as it can be.
"""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402
from torch.utils.data import DataLoader, Dataset, Sampler  # noqa: E402

from cifar.training.augmix import AugMix  # noqa: E402
from cifar.training.config import TrainConfig  # noqa: E402


def train_transform(config: TrainConfig) -> A.Compose:
    steps = []
    if config.rotate:
        steps.append(A.Rotate(limit=config.rotate, border_mode=cv2.BORDER_REFLECT_101, p=0.5))
    if config.pad:
        steps += [A.PadIfNeeded(32 + 2 * config.pad, 32 + 2 * config.pad, border_mode=cv2.BORDER_REFLECT_101),
                  A.RandomCrop(32, 32)]
    steps.append(A.HorizontalFlip(p=0.5))
    if config.augmix:  # after crop and flip, as the AugMix authors' CIFAR training
        steps.append(AugMix(config.augmix))
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

    def __getitems__(self, batch):
        """A (key, indices) batch from EpochBatches: its augmentations are drawn from a generator
        seeded by the key alone.

        Albumentations 2.x draws from generators that every forked worker would copy; seeding per batch
        (not per worker in `worker_init_fn`) also makes the batch independent of which worker builds
        it, of how many there are, and of whether they persisted from earlier epochs."""
        key, indices = batch
        if self.transform is not None:
            self.transform.set_random_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))
        return [self[index] for index in indices]


class EpochBatches(Sampler):
    """Batches of one shuffle per epoch, a function of (seed, epoch) alone, each with the key that
    seeds its augmentations (seed, epoch, rank, batch number).

    Under DDP every rank shuffles with the same seed and takes every world-th image: disjoint shards of
    equal size. Incomplete last batches are dropped (BatchNorm dislikes tiny batches).
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed, self.rank, self.world = size, batch_size, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return self.size // self.world // self.batch_size

    def __iter__(self):
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        shard = order[self.rank::self.world].tolist()
        for number in range(len(self)):
            key = (self.seed, self.epoch, self.rank, number)
            yield key, shard[number * self.batch_size:(number + 1) * self.batch_size]


class EpochLoader:
    """A DataLoader over EpochBatches: epoch e yields the same batches whether this loader ran epochs
    0..e-1 before or was just made by a resumed run, which is what makes resuming exact.

    Workers persist across epochs (no start-up cost per epoch on a GPU machine); that is safe because
    the augmentations are seeded per batch, not per worker.
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, seed: int, workers: int, pin_memory: bool,
                 rank: int = 0, world: int = 1):
        self.batches = EpochBatches(len(dataset), batch_size, seed, rank, world)
        self.loader = DataLoader(dataset, batch_sampler=self.batches, num_workers=workers, pin_memory=pin_memory,
                                 persistent_workers=workers > 0, prefetch_factor=4 if workers else None)

    def epoch(self, epoch: int):
        self.batches.set_epoch(epoch)
        return iter(self.loader)

    def __len__(self):
        return len(self.batches)
