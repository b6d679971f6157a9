import os
from pathlib import Path

# huggingface_hub reads these at import time: set them before anything imports it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ.pop("HF_TOKEN", None)
# Under pytest-xdist (pytest.ini: two workers, one per core) each worker and the processes its tests start compute on
# one thread: two workers of two threads each would share two cores four ways. Read by torch at import.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from huggingface_hub import HfApi  # noqa: E402
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS, ModelInfo  # noqa: E402

from cifar.training.config import make_config  # noqa: E402

ROOT = Path(__file__).parent.parent
# The real CIFAR-10 test set, for the tests whose point is the real thing (the bundled run's numbers).
TEST_SET = Path(os.environ.get("CIFAR10_DIR", ROOT.parent / "shared" / "cifar10")) / "test.npz"
needs_test_set = pytest.mark.skipif(not TEST_SET.exists(), reason=f"CIFAR-10 test set not found at {TEST_SET} (set CIFAR10_DIR)")


def read_test_set():
    with np.load(TEST_SET) as arrays:
        return arrays["x"], arrays["y"].astype(np.int64)

EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.png"))
# What a finished run folder holds (cifar/runs/folder.py), written out.
RUN_FILES = {"model.safetensors", "config.json", "history.json", "metrics.json", "misclassified.npz", "predictions.npz",
             "calibration.png",
             "accuracy.png", "loss.png", "confusion_matrix.png", "README.md"}


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
    from cifar.training.finish import finish_run
    from cifar.training.loop import train

    run_dir = tmp_path_factory.mktemp("run")
    data = synthetic_cifar()
    model = train(make_config(epochs=1, batch_size=16, lr=0.05, workers=0), data, run_dir, progress=False)
    finish_run(run_dir, data, model, {"command": "pytest"})
    return run_dir


@pytest.fixture(scope="session")
def tiny_robust_run(tmp_path_factory, tiny_run):
    """tiny_run fine-tuned one epoch the robust recipe's way (AugMix, a validation split measured under the
    corruptions): the page's second model."""
    from cifar.training.finish import finish_run
    from cifar.training.loop import train

    run_dir = tmp_path_factory.mktemp("robust")
    data = synthetic_cifar()
    config = make_config("robust", epochs=1, batch_size=16, workers=0, val_size=16, val_corruptions=4,
                         init=str(tiny_run), tta="flip")
    model = train(config, data, run_dir, progress=False)
    finish_run(run_dir, data, model, {"command": "pytest"})
    return run_dir


@pytest.fixture(scope="session")
def tiny_test_set(tmp_path_factory):
    """The test split tiny_run was evaluated on, as a test.npz (what app.py --test-set reads)."""
    return npz_folder(tmp_path_factory.mktemp("test-set"), {"test": synthetic_cifar()["test"]}) / "test.npz"


MODELS = ("standard", "robust")  # the names the test page gives tiny_run and tiny_robust_run


@pytest.fixture(scope="module")
def app(tiny_run, tiny_robust_run, tiny_test_set):
    """The page as `python app.py` serves it: two models, the first chosen by default, and a test set."""
    from benchmarks.common import free_port
    from cifar.page.layout import build_demo, launch
    from cifar.runs.folder import load_run

    runs = dict(zip(MODELS, (load_run(str(tiny_run)), load_run(str(tiny_robust_run)))))
    demo = build_demo(runs, EXAMPLES, test_set=tiny_test_set)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[1], verbose=False)

TOKEN = "hf_test_secret_token"
RUN_FILES_IN_A_REPO = (*sorted(RUN_FILES), ".gitattributes")
REPO_ID = "me/cifar-resnet18"


class FakeApi(HfApi):
    """huggingface_hub.HfApi with the network cut off (the Hub is unreachable here): create_repo and
    upload_folder record their arguments, and upload_folder lists the files the real one would send,
    with the library's own filtering of the folder."""

    calls: list = []
    fail_with: Exception | None = None
    model_files: tuple = RUN_FILES_IN_A_REPO

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))
        if FakeApi.fail_with:
            raise FakeApi.fail_with
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        operations = self._prepare_upload_folder_additions(
            folder_path, "", allow_patterns=allow_patterns,
            ignore_patterns=list(ignore_patterns or []) + DEFAULT_IGNORE_PATTERNS)
        uploaded = {op.path_in_repo for op in operations}
        FakeApi.calls.append(("upload_folder", repo_id, {"folder_path": folder_path, "uploaded": uploaded, **kwargs}))

    def request_space_hardware(self, repo_id, hardware, **kwargs):
        FakeApi.calls.append(("request_space_hardware", repo_id, {"hardware": hardware, **kwargs}))

    def model_info(self, repo_id, **kwargs):
        FakeApi.calls.append(("model_info", repo_id, kwargs))
        return ModelInfo(id=repo_id, siblings=[{"rfilename": name} for name in FakeApi.model_files])

    def _validate_yaml(self, content, repo_type=None, token=None):  # the Hub validates the card: offline here
        pass


@pytest.fixture
def fake_api(monkeypatch):
    from cifar.deploy import hub, space

    FakeApi.calls, FakeApi.fail_with, FakeApi.model_files = [], None, RUN_FILES_IN_A_REPO
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setattr(space, "HfApi", FakeApi)
    return FakeApi
