import hashlib
import shutil

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from safetensors.torch import load_file

from cifar.deploy import hub
from cifar.deploy.hub import PushError, push_run
from cifar.engine.model import ResNet18
from cifar.runs.folder import load_run
from cifar.files import STATE_NAME
from tests.conftest import EXAMPLES, REPO_ID, RUN_FILES, TOKEN
from tests.test_app import app_process


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
    from cifar.page.served import ServedModels
    from cifar.page.tabs.predict import PredictTab

    expected, _ = PredictTab(ServedModels.load(load_run(str(tiny_run)))).predict(EXAMPLES[3], 10)
    got = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)
