"""The Hugging Face Space: what `python app.py --deploy` uploads, checked at the HfApi boundary, and a
rehearsal of the Space itself: the staged folder started alone, as the Space starts it, and used."""

import json
import shutil
import subprocess
import sys
import types

import gradio
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from huggingface_hub import SpaceCard

from cifar import space
from cifar.space import HARDWARE, MODEL_DIR, RUN_FILES, DeployError, deploy_space, stage_space
from cifar.training import STATE_NAME
from tests.test_app import EXAMPLES, ROOT, app_process
from tests.test_hub import REPO_ID, TOKEN, fake_api, prefilled_hub_cache  # noqa: F401  (fixture)

SPACE_ID = "me/cifar-demo"
APP_FILES = ["app.py", *sorted(f"cifar/{p.name}" for p in (ROOT / "cifar").glob("*.py")),
             *sorted(f"examples/{p.name}" for p in (ROOT / "examples").glob("*.png")),
             "README.md", "requirements.txt", "space.json"]


@pytest.fixture(autouse=True)
def logged_in(monkeypatch):
    monkeypatch.setattr(space, "get_token", lambda: TOKEN)


@pytest.fixture
def run_on_disk(tiny_run, tmp_path):
    """A finished run folder as a user's disk holds it: with resume state and half-written files."""
    run = shutil.copytree(tiny_run, tmp_path / "my-run")
    torch.save({"model": {}}, run / STATE_NAME)
    (run / "history.json.tmp").write_text("{")
    return run


def staged(tmp_path, model, **options):
    folder = tmp_path / "space"
    folder.mkdir()
    return folder, stage_space(folder, str(model), **options)


def test_a_runs_faithfulness_table_goes_with_it(run_on_disk, tmp_path):
    (run_on_disk / "faithfulness.json").write_text('{"scores": {}}')
    folder, files = staged(tmp_path, run_on_disk)
    assert f"{MODEL_DIR}/faithfulness.json" in files
    assert (folder / MODEL_DIR / "faithfulness.json").read_text() == '{"scores": {}}'


def test_the_space_holds_the_app_and_the_run_and_nothing_else(run_on_disk, tmp_path):
    folder, files = staged(tmp_path, run_on_disk)
    assert files == sorted(APP_FILES + [f"{MODEL_DIR}/{name}" for name in RUN_FILES])
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == files
    assert json.loads((folder / "space.json").read_text()) == {"model": MODEL_DIR, "tta": None}
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert "torch==2.14.1" in requirements and any(line.startswith("spaces==") for line in requirements)
    assert not any(line.startswith(("gradio", "torchvision")) for line in requirements)  # the SDK brings Gradio


def test_a_model_repo_is_named_not_uploaded(tmp_path):
    folder, files = staged(tmp_path, REPO_ID, tta="none")
    assert files == sorted(APP_FILES)
    assert json.loads((folder / "space.json").read_text()) == {"model": REPO_ID, "tta": "none"}


@pytest.mark.parametrize("model", ["local", REPO_ID])
def test_front_matter_is_a_valid_space_config(run_on_disk, tmp_path, model):
    model = run_on_disk if model == "local" else model
    folder, _ = staged(tmp_path, model, hardware="t4-small")
    card = SpaceCard.load(folder / "README.md")  # huggingface_hub's own reader
    config = card.data.to_dict()
    assert config["sdk"] == "gradio" and config["app_file"] == "app.py" and (folder / config["app_file"]).is_file()
    assert config["sdk_version"] == gradio.__version__  # what the suite tests with is what the Space runs
    assert config["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert config["title"] and config["emoji"] and config["license"] == "mit"
    assert 0 < len(config["short_description"]) <= 60  # the Hub's limit
    assert config["suggested_hardware"] == "t4-small" and config["suggested_hardware"] in HARDWARE
    if model == REPO_ID:  # fetched while the Space builds, not at its first request
        assert config["models"] == [REPO_ID]
        assert config["preload_from_hub"] == [f"{REPO_ID} {','.join(RUN_FILES)}"]
    else:
        assert "models" not in config and "preload_from_hub" not in config


def test_deploy_goes_through_the_http_api_with_an_allow_list(run_on_disk, fake_api):
    before = sorted(p.name for p in run_on_disk.iterdir())
    url = deploy_space(SPACE_ID, str(run_on_disk), hardware="t4-small", private=True)
    assert url == f"https://huggingface.co/{SPACE_ID}"
    (_, _, create), (_, _, upload), (_, _, hardware) = fake_api.calls
    assert create == {"repo_type": "space", "space_sdk": "gradio", "private": True, "exist_ok": True}
    assert upload["repo_type"] == "space" and upload["delete_patterns"] == ["*"]  # the Space mirrors the upload
    assert upload["uploaded"] == set(APP_FILES) | {f"{MODEL_DIR}/{name}" for name in RUN_FILES}
    assert hardware == {"hardware": "t4-small"}
    assert sorted(p.name for p in run_on_disk.iterdir()) == before


def test_deploying_a_model_repo_checks_it_first(fake_api):
    deploy_space(SPACE_ID, REPO_ID)
    assert [call[:2] for call in fake_api.calls] == [("model_info", REPO_ID), ("create_repo", SPACE_ID),
                                                     ("upload_folder", SPACE_ID)]
    fake_api.calls, fake_api.model_files = [], ("README.md", "model.safetensors")
    with pytest.raises(DeployError, match="is not a run folder: it lacks config.json"):
        deploy_space(SPACE_ID, REPO_ID)
    assert [call[0] for call in fake_api.calls] == ["model_info"]  # nothing created, nothing uploaded


@pytest.mark.parametrize("space_id, model, options, message", [
    ("not-a-space-id", None, {}, "is not a Space id: write it as USER/NAME"),
    ("me/two/slashes", None, {}, "is not a Space id"),
    (SPACE_ID, None, {"hardware": "h100-please"}, "unknown hardware 'h100-please'"),
    (SPACE_ID, "empty-folder", {}, "not a finished run folder"),
])
def test_a_bad_request_is_refused_before_anything_is_sent(run_on_disk, tmp_path, fake_api, space_id, model,
                                                           options, message):
    if model == "empty-folder":
        (tmp_path / model).mkdir()
    with pytest.raises(DeployError, match=message):
        deploy_space(space_id, str(tmp_path / model) if model else str(run_on_disk), **options)
    assert fake_api.calls == []


def test_no_token_says_how_to_get_one(run_on_disk, fake_api, monkeypatch):
    monkeypatch.setattr(space, "get_token", lambda: None)
    with pytest.raises(DeployError, match="set HF_TOKEN or run `hf auth login`"):
        deploy_space(SPACE_ID, str(run_on_disk))
    assert fake_api.calls == []


def test_an_unreachable_hub_is_a_clear_message_without_the_token(run_on_disk, fake_api):
    fake_api.fail_with = ConnectionError(f"cannot reach huggingface.co with {TOKEN}")
    with pytest.raises(DeployError) as error:
        deploy_space(SPACE_ID, str(run_on_disk))
    assert "ConnectionError" in str(error.value) and "run the same command again" in str(error.value)
    assert TOKEN not in str(error.value)


def test_deploy_from_the_command_line_fails_fast_without_a_token():
    result = subprocess.run([sys.executable, "app.py", "--deploy", SPACE_ID], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                                        "HOME": "/nonexistent"})
    assert result.returncode != 0
    assert "needs a Hugging Face token" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("model", ["local", REPO_ID])
def test_the_staged_space_runs_from_its_folder_alone(run_on_disk, tiny_run, tmp_path, model):
    """`python app.py` with no arguments in a copy of exactly what would be uploaded, with a Space's
    environment: the upload needs nothing from outside itself (a model repo's files pre-placed in the
    HF cache, as preload_from_hub leaves them)."""
    folder, _ = staged(tmp_path, run_on_disk if model == "local" else model)
    env = {"SPACE_ID": SPACE_ID, "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0", "HOME": str(tmp_path),
           "PYTHONPATH": None, "HF_HUB_CACHE": str(prefilled_hub_cache(tmp_path / "hf-cache", REPO_ID, tiny_run))}
    with app_process(env=env, cwd=folder) as url:
        client = Client(url, verbose=False)
        label, _ = client.predict(handle_file(str(folder / "examples" / "cat.png")), 10, api_name="/predict")
        heatmap, strip, caption = client.predict(handle_file(str(folder / "examples" / "cat.png")), "layer4",
                                                 "predicted class", "Grad-CAM", 0.5, api_name="/explain")
    from cifar.handlers import Demo
    from cifar.run_folder import load_run

    expected, _ = Demo(load_run(str(tiny_run))).predict(EXAMPLES[3], 10)
    got = {c["label"]: c["confidence"] for c in label["confidences"]}
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)
    assert len(strip) == 4 and "Grad-CAM" in caption


def test_on_zero_gpu_the_model_handlers_ask_for_the_gpu(tiny_run, monkeypatch):
    from cifar.demo import build_demo
    from cifar.run_folder import load_run

    asked = []

    def gpu(handler):  # stands in for spaces.GPU: the platform's GPU request around each call
        def holding_a_gpu(*args, **kwargs):
            asked.append(handler.__name__)
            return handler(*args, **kwargs)
        holding_a_gpu.__wrapped__ = handler
        return holding_a_gpu

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    run = load_run(str(tiny_run))
    endpoints = lambda demo: {fn.api_name: fn.fn for fn in demo.fns.values()
                              if fn.api_name in ("predict", "explain", "misclassified")}
    plain = endpoints(build_demo(run))
    assert len(plain) == 3 and not any(hasattr(fn, "__wrapped__") for fn in plain.values())  # elsewhere: as is

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    on_zero = endpoints(build_demo(run))
    assert len(on_zero) == 3 and all(hasattr(fn, "__wrapped__") for fn in on_zero.values())
    on_zero["predict"](EXAMPLES[0], 3)
    assert asked == ["predict"]
