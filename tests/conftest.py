import os

# huggingface_hub reads these at import time: set them before anything imports it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ.pop("HF_TOKEN", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cifar.config import make_config  # noqa: E402

DATASET = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "cifar10")


# One colour per class, far apart in RGB. Both splits share them, so what a model learns from the training
# split carries over to the test split (colours drawn anew for each split could not be learned at all).
CLASS_COLOURS = np.array([(230, 25, 25), (25, 230, 25), (25, 25, 230), (230, 230, 25), (230, 25, 230),
                          (25, 230, 230), (230, 230, 230), (25, 25, 25), (230, 128, 25), (128, 25, 230)])


def synthetic_cifar(n_train=64, n_test=32, seed=0) -> dict:
    """Tiny CIFAR-shaped data: each class its colour under per-pixel noise, classes in turn (balanced)."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % 10
        x = np.clip(CLASS_COLOURS[y, None, None, :] + rng.integers(-40, 40, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y.astype(np.int64)

    return {"train": split(n_train), "test": split(n_test)}


def npz_folder(folder, data: dict):
    """`data` written as a CIFAR-10 folder (train.npz, test.npz): what train.py --data-dir reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in data.items():
        np.savez(folder / f"{split}.npz", x=x, y=y)
    return folder


@pytest.fixture
def tiny_data():
    return synthetic_cifar()


@pytest.fixture
def tiny_data_dir(tmp_path, tiny_data):
    return npz_folder(tmp_path / "data", tiny_data)


@pytest.fixture
def tiny_config():
    return make_config(epochs=2, batch_size=16, lr=0.05, workers=0)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run folder from a 1-epoch run on synthetic data (for the app and Hub tests)."""
    from cifar.run_folder import finish_run
    from cifar.training import train

    run_dir = tmp_path_factory.mktemp("run")
    data = synthetic_cifar()
    model = train(make_config(epochs=1, batch_size=16, lr=0.05, workers=0), data, run_dir, progress=False)
    finish_run(run_dir, data, model, {"command": "pytest"})
    return run_dir
