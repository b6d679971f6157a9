import hashlib
import shutil

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from huggingface_hub import HfApi
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS, ModelInfo
from safetensors.torch import load_file

from cifar import hub
from cifar.hub import PushError, push_run
from cifar.model import ResNet18
from cifar.run_folder import load_run
from cifar.files import STATE_NAME
from tests.test_app import EXAMPLES, app_process
from tests.test_training import RUN_FILES

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
    from cifar import space

    FakeApi.calls, FakeApi.fail_with, FakeApi.model_files = [], None, RUN_FILES_IN_A_REPO
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setattr(space, "HfApi", FakeApi)
    return FakeApi


def test_round_trip_through_a_local_folder(tiny_run, tmp_path):
    copy = shutil.copytree(tiny_run, tmp_path / "copy")
    run = load_run(str(copy))
    assert isinstance(run.model, ResNet18) and len(run.classes) == 10
    assert run.metrics["test_images"] == 32 and len(run.history["epochs"]) == 1


def test_push_uploads_the_run_and_nothing_else(tiny_run, tmp_path, fake_api):
    # A run folder as a user's disk holds it: resume state left by an interrupted --push-only, and the
    # temporary files of a write that crashed halfway.
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    torch.save({"model": {}, "optimizer": {}, "history": {}}, run_dir / STATE_NAME)
    for leftover in ("history.json.tmp", "model.safetensors.tmp", f"{STATE_NAME}.tmp"):
        (run_dir / leftover).write_bytes(b"half written")

    url = push_run(run_dir, REPO_ID, token=TOKEN)
    assert url == f"https://huggingface.co/{REPO_ID}"
    (_, repo, create), (_, uploaded_to, upload) = fake_api.calls
    assert repo == uploaded_to == REPO_ID and create["exist_ok"] is True
    assert upload["uploaded"] == RUN_FILES


def test_push_without_token_explains_how_to_log_in(tiny_run, fake_api, monkeypatch):
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(PushError, match="HF_TOKEN"):
        push_run(tiny_run, "me/repo")
    assert fake_api.calls == []


def test_push_failure_keeps_the_run_and_hides_the_token(tiny_run, fake_api):
    before = sorted(p.name for p in tiny_run.iterdir())
    fake_api.fail_with = ConnectionError(f"cannot reach the Hub with token {TOKEN}")
    with pytest.raises(PushError) as error:
        push_run(tiny_run, "me/repo", token=TOKEN)
    message = str(error.value)
    assert "ConnectionError" in message and "--push-only" in message
    assert TOKEN not in message
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_push_refuses_an_unfinished_folder(tmp_path, fake_api):
    with pytest.raises(PushError, match="not a finished run folder"):
        push_run(tmp_path, "me/repo", token=TOKEN)


def prefilled_hub_cache(cache, repo_id, run_dir):
    """An HF cache holding `run_dir` as the main revision of the model repo `repo_id`, laid out as
    huggingface_hub's downloads leave it (refs/main names the snapshot folder)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(run_dir, repo / "snapshots" / commit)
    return cache


@pytest.fixture
def hub_cache(tmp_path, tiny_run):
    return prefilled_hub_cache(tmp_path / "hf-cache", REPO_ID, tiny_run)


def test_a_repo_id_loads_from_the_cache_offline(hub_cache, tiny_run, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    expected = load_file(tiny_run / "model.safetensors")
    for model in (load_run(REPO_ID).model, ResNet18.from_pretrained(REPO_ID)):
        for name, tensor in model.state_dict().items():
            if name in expected:
                torch.testing.assert_close(tensor, expected[name].to(tensor.dtype))


def test_app_serves_a_repo_id_from_the_cache_offline(hub_cache, tiny_run):
    with app_process("--model", REPO_ID, env={"HF_HUB_CACHE": str(hub_cache)}) as url:
        label, _ = Client(url, verbose=False).predict(handle_file(EXAMPLES[3]), 10, api_name="/predict")
    from cifar.handlers import Demo

    expected, _ = Demo(load_run(str(tiny_run))).predict(EXAMPLES[3], 10)
    got = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)
