import numpy as np
import pytest
import torch

from cifar.training.config import make_config
from cifar.training.data import ArrayDataset, EpochBatches, EpochLoader, train_transform
from cifar.dataset import load_cifar10, split_validation


def test_load_from_npz_folder(tmp_path):
    x = np.zeros((5, 32, 32, 3), np.uint8)
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", x=x, y=np.arange(5))
    data = load_cifar10(str(tmp_path))
    assert data["train"][0].shape == (5, 32, 32, 3) and data["test"][1].dtype == np.int64


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.npz, test.npz"):
        load_cifar10(str(tmp_path))


def test_validation_split_is_disjoint_and_sized():
    x = np.arange(100)[:, None, None, None].repeat(32, 1).repeat(32, 2).repeat(3, 3).astype(np.uint8)
    (xt, yt), (xv, yv) = split_validation(x, np.arange(100), 20, seed=0)
    assert len(xt) == 80 and len(xv) == 20
    assert not set(yt) & set(yv)


def test_train_transform_keeps_uint8_and_cuts_a_hole():
    config = make_config(cutout=8)
    image = np.full((32, 32, 3), 7, np.uint8)
    out = train_transform(config)(image=image)["image"]
    assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
    fill = torch.tensor([round(255 * m) for m in config.mean], dtype=torch.uint8)
    hole = (out == fill[:, None, None]).all(0)
    assert 1 <= hole.sum() <= 64  # one 8x8 hole, possibly clipped at the border


def augmented_batches(loader, epoch):
    return torch.cat([images for images, _ in loader.epoch(epoch)])


def test_two_workers_do_not_share_an_augmentation_stream(tiny_data):
    # The same image everywhere: any difference between items comes from the augmentation alone.
    x = np.repeat(tiny_data["train"][0][:1], 32, axis=0)
    loader = EpochLoader(ArrayDataset(x, np.zeros(32, np.int64), train_transform(make_config())), batch_size=16,
                         seed=0, workers=2, pin_memory=False)
    first, second = augmented_batches(loader, 0).split(16)  # worker 0 makes batch 1, worker 1 batch 2
    assert not torch.equal(first, second)


def test_epoch_batches_depend_only_on_seed_and_epoch(tiny_data):
    # A persistent-worker loader that already ran epochs 0-2 (an uninterrupted run), a fresh one (a
    # resumed run) and one without workers all give epoch 3 the same order and augmentations.
    x, y = tiny_data["train"]
    make = lambda workers: EpochLoader(ArrayDataset(x, y, train_transform(make_config())), 16, 0, workers, False)
    uninterrupted = make(workers=2)
    for epoch in range(3):
        augmented_batches(uninterrupted, epoch)
    epoch3 = augmented_batches(uninterrupted, 3)
    assert torch.equal(epoch3, augmented_batches(make(workers=2), 3))
    assert torch.equal(epoch3, augmented_batches(make(workers=0), 3))
    assert not torch.equal(epoch3, augmented_batches(uninterrupted, 4))


def test_ranks_get_disjoint_equal_shards_of_one_shuffle():
    shards = [EpochBatches(103, 10, seed=0, rank=rank, world=2) for rank in (0, 1)]
    for shard in shards:
        shard.set_epoch(5)
    indices = [[i for _, batch in shard for i in batch] for shard in shards]
    assert len(indices[0]) == len(indices[1]) == 50  # 51 per rank, the incomplete batch dropped
    assert not set(indices[0]) & set(indices[1])
    keys = [key for shard in shards for key, _ in shard]
    assert len(set(keys)) == len(keys)  # every batch of every rank has its own augmentation stream
