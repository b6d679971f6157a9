"""The Hugging Face Space: what `python app.py --deploy` uploads, checked at the HfApi boundary, and a
rehearsal of the Space itself: the staged folder started alone, as the Space starts it, and used."""

import json
import os
import shutil
import socket
import subprocess
import sys

import gradio
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from huggingface_hub import SpaceCard
from packaging.requirements import Requirement

from cifar.deploy import space
from cifar.deploy.platforms import ZERO_GPU, ZERO_GPU_HARDWARE, read_requirements
from cifar.deploy.space import HARDWARE, MODELS_DIR, RUN_FILES, DeployError, deploy_space, stage_space
from cifar.files import STATE_NAME
from tests import hub_server
from tests.hub_server import Account, StandInHub, serving
from tests.conftest import EXAMPLES, ROOT
from tests.test_app import app_process
from tests.conftest import REPO_ID, RUN_FILES_IN_A_REPO, TOKEN
from tests.test_hub import prefilled_hub_cache

SPACE_ID = "me/cifar-demo"
# What app.py imports, written out (not derived from the code that stages it): training (cifar/training/), the
# commands that need it (cifar/measure/recalibrate.py, reevaluate.py) and the benchmarks do not run in a Space.
APP_MODULES = ["cifar/__init__.py", "cifar/dataset.py", "cifar/device.py", "cifar/files.py",
               *(f"cifar/deploy/{name}.py" for name in ("__init__", "platforms", "space")),
               *(f"cifar/engine/{name}.py" for name in ("__init__", "calibration", "corruptions", "explainer",
                                                        "exports", "faithfulness", "metrics", "model", "pictures",
                                                        "predict", "test_map", "test_set", "uploads")),
               *(f"cifar/engine/cam/{name}.py" for name in ("__init__", "activation", "base", "baselines", "fused",
                                                            "gradient", "projection")),
               *(f"cifar/measure/{name}.py" for name in ("__init__", "class_heatmaps", "corruption_benchmark",
                                                         "faithfulness_table", "metrics_table", "sanity")),
               *(f"cifar/page/{name}.py" for name in ("__init__", "assistant_tools", "controls", "endpoints",
                                                      "image_files", "layout", "parameters", "served")),
               *(f"cifar/page/tabs/{name}.py" for name in ("__init__", "bulk", "compare", "corruptions",
                                                           "faithfulness", "misclassified", "model_card", "predict",
                                                           "side_by_side", "test_heatmap", "test_map", "test_set",
                                                           "training")),
               *(f"cifar/runs/{name}.py" for name in ("__init__", "card", "folder", "plots"))]
EXAMPLE_FILES = [f"examples/{name}" for name in ("airplane.png", "automobile.png", "bird.png", "cat.png", "deer.png",
                                                 "dog.png", "frog.png", "horse.png", "ship.png", "truck.png")]
# The test run's files that a Space ships: calibration.png is optional (runs from before calibration lack it); it has it.
SHIPPED_RUN_FILES = [*RUN_FILES, "calibration.png", "predictions.npz"]
APP_FILES = ["app.py", *APP_MODULES, *EXAMPLE_FILES, "README.md", "requirements.txt", "space.json"]


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
    return folder, stage_space(folder, [str(m) for m in (model if isinstance(model, list) else [model])], **options)


def test_a_runs_faithfulness_table_goes_with_it(run_on_disk, tmp_path):
    (run_on_disk / "faithfulness.json").write_text('{"scores": {}}')
    folder, files = staged(tmp_path, run_on_disk)
    assert f"{MODELS_DIR}/my-run/faithfulness.json" in files
    assert (folder / MODELS_DIR / "my-run" / "faithfulness.json").read_text() == '{"scores": {}}'


def test_the_space_holds_the_app_and_the_run_and_nothing_else(run_on_disk, tmp_path):
    folder, files = staged(tmp_path, run_on_disk)
    assert files == sorted(APP_FILES + [f"{MODELS_DIR}/my-run/{name}" for name in SHIPPED_RUN_FILES])
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == files
    assert json.loads((folder / "space.json").read_text()) == {"models": [f"{MODELS_DIR}/my-run"], "tta": None,
                                                                  "test_set": None, "mcp": True}


def test_a_test_set_is_shipped_when_asked_for_and_checked_first(run_on_disk, tiny_test_set, tmp_path):
    folder, files = staged(tmp_path, run_on_disk, test_set=str(tiny_test_set.parent))  # a folder holding test.npz
    assert "data/test.npz" in files and (folder / "data" / "test.npz").read_bytes() == tiny_test_set.read_bytes()
    assert json.loads((folder / "space.json").read_text())["test_set"] == "data/test.npz"
    (tmp_path / "not-a-test-set.npz").write_bytes(b"no")
    (tmp_path / "second").mkdir()
    with pytest.raises(DeployError, match="cannot ship the test set: .*not-a-test-set.npz"):
        staged(tmp_path / "second", run_on_disk, test_set=str(tmp_path / "not-a-test-set.npz"))


@pytest.mark.parametrize("hardware", [ZERO_GPU_HARDWARE, "cpu-basic", "t4-small"])
def test_the_staged_space_is_what_zero_gpu_accepts(run_on_disk, tmp_path, hardware):
    """Held against the platform's table (cifar/deploy/platforms.py): its Python, a torch it runs, and nothing that
    the platform brings itself. The same folder for every hardware, so a Space can move between them."""
    folder, _ = staged(tmp_path, run_on_disk, hardware=hardware)
    config = SpaceCard.load(folder / "README.md").data.to_dict()
    assert config["python_version"] in ZERO_GPU.pythons
    requirements = [Requirement(line) for line in (folder / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]  # each line is one pip accepts
    pins = {r.name.lower(): r for r in requirements}
    assert str(pins["torch"].specifier).removeprefix("==") in ZERO_GPU.torches
    assert not {"spaces", "gradio", "torchvision"} & set(pins)
    ours = read_requirements(ROOT / "requirements.txt")  # everything else as the app's own requirements pin it, but
    # umap-learn, which only the map command needs (the Space reads the runs' maps ready-made)
    assert {name: str(r) for name, r in pins.items() if name != "torch"} == {
        name: str(Requirement(line)) for name, line in ours.items()
        if name not in ("torch", "torchvision", "gradio", "umap-learn")}


def test_a_model_repo_is_named_not_uploaded(tmp_path):
    folder, files = staged(tmp_path, REPO_ID, tta="none")
    assert files == sorted(APP_FILES)
    assert json.loads((folder / "space.json").read_text()) == {"models": [REPO_ID], "tta": "none", "test_set": None,
                                                                  "mcp": True}


@pytest.mark.parametrize("model", ["local", REPO_ID])
def test_front_matter_is_a_valid_space_config(run_on_disk, tmp_path, model):
    model = run_on_disk if model == "local" else model
    folder, _ = staged(tmp_path, model, hardware="t4-small")
    card = SpaceCard.load(folder / "README.md")  # huggingface_hub's own reader
    config = card.data.to_dict()
    assert config["sdk"] == "gradio" and config["app_file"] == "app.py" and (folder / config["app_file"]).is_file()
    assert config["sdk_version"] == gradio.__version__  # what the suite tests with is what the Space runs
    assert config["title"] and config["emoji"] and config["license"] == "mit"
    assert 0 < len(config["short_description"]) <= 60  # the Hub's limit
    assert config["suggested_hardware"] == "t4-small" and config["suggested_hardware"] in HARDWARE
    if model == REPO_ID:  # fetched while the Space builds, not at its first request
        assert config["models"] == [REPO_ID]
        assert config["preload_from_hub"] == [f"{REPO_ID} {','.join(RUN_FILES)}"]
    else:
        assert "models" not in config and "preload_from_hub" not in config


FREE, PRO = Account("me", TOKEN), Account("pro-user", "hf_pro_token", plan="pro")


def deploy_command(hub_url, *args, token=TOKEN):
    """`python app.py --deploy ...` as a user runs it, against the stand-in Hub at `hub_url`."""
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_TOKEN": token, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": os.environ.get("HF_HOME", "/nonexistent-hf-home")}
    return subprocess.run([sys.executable, "app.py", "--deploy", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env)


@pytest.fixture
def hub():
    standin = StandInHub([FREE, PRO], models={REPO_ID: RUN_FILES_IN_A_REPO})
    with serving(standin) as url:
        standin.url = url
        yield standin


def test_a_free_account_deploys_on_zero_gpu(hub, run_on_disk):
    result = deploy_command(hub.url, "me/cifar-demo", "--model", str(run_on_disk))
    assert result.returncode == 0, result.stderr
    assert hub.spaces["me/cifar-demo"].hardware == ZERO_GPU_HARDWARE  # asked for in the create request
    assert set(hub.spaces["me/cifar-demo"].files) == set(APP_FILES) | {f"{MODELS_DIR}/my-run/{name}" for name in SHIPPED_RUN_FILES}
    assert hub.spaces["me/cifar-demo"].files["cifar/deploy/space.py"] == (ROOT / "cifar" / "deploy" / "space.py").read_bytes()
    assert "created me/cifar-demo on zero-a10g, public" in result.stdout
    assert hub.validated and "suggested_hardware" not in hub.validated[-1]  # ZeroGPU is not a suggestible flavour


def test_a_second_deploy_mirrors_the_new_folder(hub, run_on_disk):
    hub.spaces["me/cifar-demo"] = hub_server.Space(private=False, hardware=ZERO_GPU_HARDWARE,
                                                   files={"old-file.py": b"", "app.py": b"old"})
    assert deploy_command(hub.url, "me/cifar-demo", "--model", REPO_ID).returncode == 0
    assert set(hub.spaces["me/cifar-demo"].files) == set(APP_FILES)  # the old file is gone, no model/ for a repo
    assert ("POST", "/api/repos/create", f"Bearer {TOKEN}") not in hub.requests


@pytest.mark.parametrize("args, token, status, says", [
    (["me/cifar-demo", "--hardware", "cpu-basic"], TOKEN, 402,
     [hub_server.FREE_ACCOUNT_ON_CPU, "up to 2 ZeroGPU Spaces: run the same command without --hardware"]),
    (["me/cifar-demo"], "hf_not_a_token", 401, [hub_server.INVALID_TOKEN, "Set HF_TOKEN to a valid token"]),
    (["someone-else/cifar-demo"], TOKEN, 403, [hub_server.NOT_YOUR_NAMESPACE, "write access to someone-else's"]),
])
def test_the_hubs_reason_reaches_the_user(hub, run_on_disk, args, token, status, says):
    result = deploy_command(hub.url, *args, "--model", str(run_on_disk), token=token)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    for text in says:
        assert text in result.stderr
    assert token not in result.stderr and not hub.spaces


def test_a_taken_name_is_named():
    """A 409 reaches a deploy only in a race (an existing Space is updated, not created): the Hub's reply to a
    create, read by huggingface_hub's own error handling."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import hf_raise_for_status

    status, body, headers = hub_server.refusal(409, hub_server.NAME_TAKEN)
    reply = httpx2.Response(status, json=body, headers=headers,
                            request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
    with pytest.raises(HfHubHTTPError) as error:
        hf_raise_for_status(reply)
    assert space.hub_refusal(error.value, "me/x", None) == (
        'the Hub refused the name me/x: "You already created this space repo". Choose another Space name')


def test_a_pro_account_chooses_its_hardware(hub, run_on_disk):
    assert deploy_command(hub.url, "pro-user/demo", "--hardware", "cpu-basic", "--model", str(run_on_disk),
                          token=PRO.token).returncode == 0
    assert hub.spaces["pro-user/demo"].hardware == "cpu-basic"
    assert hub.validated[-1]["suggested_hardware"] == "cpu-basic"


@pytest.mark.parametrize("was_private, private_flag, now_private, says", [
    (False, True, True, "existed and was public: it is now private"),
    (True, False, True, "existed and stays private"),
    (False, False, False, None),
])
def test_private_on_a_space_that_exists(hub, run_on_disk, was_private, private_flag, now_private, says):
    hub.spaces["me/cifar-demo"] = hub_server.Space(private=was_private, hardware=ZERO_GPU_HARDWARE)
    result = deploy_command(hub.url, "me/cifar-demo", "--model", str(run_on_disk), *(["--private"] if private_flag else []))
    assert result.returncode == 0, result.stderr
    assert hub.spaces["me/cifar-demo"].private == now_private
    assert says is None or says in result.stdout


def test_a_mistyped_run_folder_is_named_as_a_folder(hub, tmp_path, run_on_disk):
    result = deploy_command(hub.url, "me/cifar-demo", "--model", str(run_on_disk.parent / "my-rnu"))
    assert result.returncode != 0 and "no such run folder" in result.stderr and "my-run" in result.stderr
    assert hub.requests == []  # nothing was asked of the Hub


def test_a_model_repo_that_is_not_there_is_named(hub):
    result = deploy_command(hub.url, "me/cifar-demo", "--model", "me/no-such-model")
    assert result.returncode != 0 and "neither a local folder nor a model repo on the Hub" in result.stderr
    assert not hub.spaces


def test_dry_run_stages_the_upload_and_sends_nothing(hub, run_on_disk, tmp_path):
    result = deploy_command(hub.url, "me/cifar-demo", "--model", str(run_on_disk), "--dry-run", str(tmp_path / "dry"),
                            token="")
    assert result.returncode == 0, result.stderr
    staged_files = sorted(str(p.relative_to(tmp_path / "dry")) for p in (tmp_path / "dry").rglob("*") if p.is_file())
    assert staged_files == sorted(APP_FILES + [f"{MODELS_DIR}/my-run/{name}" for name in SHIPPED_RUN_FILES])
    for line in ["Space:      me/cifar-demo", "hardware:   zero-a10g (ZeroGPU)", "visibility: public",
                 f"model:      the run folder {run_on_disk}", *(f"  {name}" for name in staged_files)]:
        assert line in result.stdout
    assert hub.requests == []
    readme = (tmp_path / "dry" / "README.md").read_text()  # the command it quotes is the deploy, not the dry run
    assert f"python app.py --deploy me/cifar-demo --model {run_on_disk}`" in readme and "--dry-run" not in readme


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
        deploy_space(space_id, [str(tmp_path / model) if model else str(run_on_disk)], **options)
    assert fake_api.calls == []


def test_no_token_says_how_to_get_one(run_on_disk, fake_api, monkeypatch):
    monkeypatch.setattr(space, "get_token", lambda: None)
    with pytest.raises(DeployError, match="set HF_TOKEN or run `hf auth login`"):
        deploy_space(SPACE_ID, [str(run_on_disk)])
    assert fake_api.calls == []


def test_an_unreachable_hub_is_a_clear_message_without_the_token(run_on_disk):
    with socket.socket() as closed:  # a port that nothing listens on
        closed.bind(("127.0.0.1", 0))
        result = deploy_command(f"http://127.0.0.1:{closed.getsockname()[1]}", SPACE_ID, "--model", str(run_on_disk))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "ConnectError" in result.stderr and "run the same command again" in result.stderr
    assert TOKEN not in result.stderr


def test_deploy_from_the_command_line_fails_fast_without_a_token():
    result = subprocess.run([sys.executable, "app.py", "--deploy", SPACE_ID], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                                        "HOME": "/nonexistent"})
    assert result.returncode != 0
    assert "needs a Hugging Face token" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("models", [["local"], [REPO_ID], ["local", REPO_ID]])
def test_the_staged_space_runs_from_its_folder_alone(run_on_disk, tiny_run, tiny_test_set, tmp_path, models):
    """`python app.py` with no arguments in a copy of exactly what would be uploaded, with a Space's
    environment: the upload needs nothing from outside itself (a model repo's files pre-placed in the
    HF cache, as preload_from_hub leaves them), the test set it ships included; with two models, both served."""
    folder, _ = staged(tmp_path, [run_on_disk if model == "local" else model for model in models],
                       test_set=str(tiny_test_set))
    env = {"SPACE_ID": SPACE_ID, "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0", "HOME": str(tmp_path),
           "PYTHONPATH": None, "HF_HUB_CACHE": str(prefilled_hub_cache(tmp_path / "hf-cache", REPO_ID, tiny_run))}
    names = [run_on_disk.name if model == "local" else model for model in models]
    with app_process(env=env, cwd=folder) as url:
        client = Client(url, verbose=False)
        label, _ = client.predict(handle_file(str(folder / "examples" / "cat.png")), 10, True, names[-1],
                                  api_name="/predict")
        heatmap, strip, caption = client.predict(handle_file(str(folder / "examples" / "cat.png")), "layer4",
                                                 "predicted class", "Grad-CAM", 0.5, api_name="/explain")
        *_, shown = client.predict("any", "any", "all", 0, 1, "Grad-CAM", "layer4", "predicted", 5, 0.5,
                                   api_name="/browse")
        *_, numbers = client.predict(handle_file(str(folder / "examples" / "cat.png")), "contrast", "layer4",
                                     "Grad-CAM", 0.5, api_name="/corruption")
    assert shown == [0, 1, 2, 3, 4] and list(numbers) == names  # the page's names: the folder's, or the repo id
    from cifar.page.served import ServedModels
    from cifar.page.tabs.predict import PredictTab
    from cifar.runs.folder import load_run

    expected, _ = PredictTab(ServedModels.load(load_run(str(tiny_run)))).predict(EXAMPLES[3], 10)
    got = {c["label"]: c["confidence"] for c in label["confidences"]}
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)
    assert len(strip) == 4 and "Grad-CAM" in caption


def test_two_models_are_staged_each_under_its_name(run_on_disk, tiny_robust_run, tmp_path):
    robust = shutil.copytree(tiny_robust_run, tmp_path / "robust")
    folder, files = staged(tmp_path, [run_on_disk, robust, REPO_ID])
    assert json.loads((folder / "space.json").read_text())["models"] == [
        f"{MODELS_DIR}/my-run", f"{MODELS_DIR}/robust", REPO_ID]
    for name in ("my-run", "robust"):
        assert {f"{MODELS_DIR}/{name}/{file}" for file in RUN_FILES} <= set(files)
    config = SpaceCard.load(folder / "README.md").data.to_dict()
    assert config["models"] == [REPO_ID] and len(config["preload_from_hub"]) == 1
    (tmp_path / "again").mkdir()
    with pytest.raises(DeployError, match="two models would both be called my-run"):
        staged(tmp_path / "again", [run_on_disk, run_on_disk])
