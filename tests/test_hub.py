import shutil

import pytest

from cifar import hub
from cifar.hub import NOT_PUSHED, PushError, push_run
from cifar.model import ResNet18
from cifar.run_folder import load_run
from cifar.training import STATE_NAME

TOKEN = "hf_test_secret_token"


class FakeApi:
    """Stands in for huggingface_hub.HfApi at the network boundary (the Hub is unreachable here)."""

    calls: list = []
    fail_with: Exception | None = None

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))
        if FakeApi.fail_with:
            raise FakeApi.fail_with
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        FakeApi.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


@pytest.fixture
def fake_api(monkeypatch):
    FakeApi.calls, FakeApi.fail_with = [], None
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    return FakeApi


def test_round_trip_through_a_local_folder(tiny_run, tmp_path):
    copy = shutil.copytree(tiny_run, tmp_path / "copy")
    run = load_run(str(copy))
    assert isinstance(run.model, ResNet18) and len(run.classes) == 10
    assert run.metrics["test_images"] == 32 and len(run.history["epochs"]) == 1


def test_push_uploads_the_run_folder_without_training_state(tiny_run, fake_api):
    url = push_run(tiny_run, "me/cifar-resnet18", token=TOKEN)
    assert url == "https://huggingface.co/me/cifar-resnet18"
    (_, repo, create), (_, _, upload) = fake_api.calls
    assert repo == "me/cifar-resnet18" and create["exist_ok"] is True
    assert upload["folder_path"] == tiny_run
    assert STATE_NAME in upload["ignore_patterns"] and upload["ignore_patterns"] == NOT_PUSHED


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
