"""The app as a Hugging Face Space: the folder a Space needs, staged locally, and its upload.

    python app.py --deploy USER/SPACE                         # the bundled model, uploaded with the app
    python app.py --deploy USER/SPACE --model runs/fast       # another run folder, uploaded with the app
    python app.py --deploy USER/SPACE --model USER/MODEL      # a model repo, fetched when the Space builds
    python app.py --deploy USER/SPACE --hardware t4-small --private

The upload is exactly the staged folder (an explicit allow-list), sent through the Hub's HTTP API, which
stores large files properly; never git, whose pushes the Hub refuses for binary files over ~1 MB outside
LFS (this repository's history holds 22 MB weights). The Space then mirrors the folder: files of an
earlier deploy that are not in it are deleted.
"""

import json
import re
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, SpaceCardData, SpaceHardware, get_token
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .run_folder import FAITHFULNESS_FILE, REQUIRED_FILES, RunFolderError, is_repo_id, load_run

ROOT = Path(__file__).parent.parent
SPACE_CONFIG = "space.json"  # what the Space's app.py serves: {"model": folder or repo id, "tta": mode or null}
MODEL_DIR = "model"  # where a local run folder goes in the Space
RUN_FILES = REQUIRED_FILES + ("accuracy.png", "loss.png", "confusion_matrix.png", "README.md")  # what the app reads
# Added to a run after training (python -m cifar.faithfulness_table): shipped when the run has it. Not preloaded
# from a model repo, which may not have it; the app fetches it at start-up when it is there.
OPTIONAL_RUN_FILES = (FAITHFULNESS_FILE,)
PYTHON_VERSION = "3.11"  # the Python CI tests on (tests/test_space.py holds them equal)
# ZeroGPU support (cifar/device.py); only a Space needs it. The SDK installs Gradio itself (sdk_version), and
# torchvision only downloads the dataset for training.
SPACE_ONLY_REQUIREMENTS = ["spaces==0.51.3"]
NOT_ON_A_SPACE = ("gradio", "torchvision")
HARDWARE = tuple(flavor.value for flavor in SpaceHardware)


class DeployError(RuntimeError):
    """A deploy that could not be done; the message says why and what to do. Local files are untouched."""


def requirement_pins() -> dict:
    """{package: the line of requirements.txt that pins it}."""
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    return {re.split(r"[=<>!~\[ ]", line, 1)[0].lower(): line for line in lines if line and not line.startswith("#")}


def space_requirements() -> str:
    pins = [line for name, line in requirement_pins().items() if name not in NOT_ON_A_SPACE]
    return "\n".join(["# The Space's runtime: the app's requirements.txt without Gradio (the Space's sdk_version)",
                      "# and torchvision (training only), plus the ZeroGPU package.", *pins,
                      *SPACE_ONLY_REQUIREMENTS]) + "\n"


def front_matter(model: str, hardware: str | None = None) -> SpaceCardData:
    """The Space's configuration (the YAML block of its README), as the Spaces configuration reference
    defines it. A model repo is named in `models` (the Hub links the two) and `preload_from_hub` (its files
    are fetched into the Space's HF cache when it builds, not at the first request)."""
    extra = {"emoji": "🔥", "colorFrom": "blue", "colorTo": "red", "pinned": False,
             "short_description": "CIFAR-10 ResNet-18: predictions and Grad-CAM"}
    if is_repo_id(model):
        extra["preload_from_hub"] = [f"{model} {','.join(RUN_FILES)}"]
    if hardware:
        extra["suggested_hardware"] = hardware
    gradio_pin = requirement_pins()["gradio"].split("==")[1]
    return SpaceCardData(title="CIFAR-10 ResNet-18 + Grad-CAM", sdk="gradio", sdk_version=gradio_pin,
                         python_version=PYTHON_VERSION, app_file="app.py", license="mit",
                         models=[model] if is_repo_id(model) else None, **extra)


def space_readme(model: str, hardware: str | None, command: str) -> str:
    served = (f"the model repo [{model}](https://huggingface.co/{model})" if is_repo_id(model)
              else f"the run folder in `{MODEL_DIR}/` (its model card: `{MODEL_DIR}/README.md`)")
    return f"""---
{front_matter(model, hardware).to_yaml()}
---

# CIFAR-10 ResNet-18 + Grad-CAM

A ResNet-18 trained from scratch on CIFAR-10: upload a picture of an airplane, automobile, bird, cat, deer,
dog, frog, horse, ship or truck, see what the model predicts and where it looked (six CAM methods, from
Grad-CAM to Eigen-CAM, at any layer, for any class), its training curves and its most confident mistakes.
It serves {served}; `{SPACE_CONFIG}` says which, and with which test-time augmentation.

Deployed from cifar-resnet-gradcam with `{command}`. It runs on whatever hardware the Space has: on a
GPU when there is one (on ZeroGPU hardware each request asks for it), else on the CPU; the page says which.
"""


def stage_space(folder: Path, model: str, tta: str | None = None, hardware: str | None = None,
                command: str = "python app.py --deploy") -> list:
    """Write into `folder` exactly what the Space needs; returns the files' paths relative to it."""
    folder = Path(folder)
    copies = {ROOT / "app.py": "app.py"}
    copies.update({path: f"cifar/{path.name}" for path in sorted((ROOT / "cifar").glob("*.py"))})
    copies.update({path: f"examples/{path.name}" for path in sorted((ROOT / "examples").glob("*.png"))})
    if is_repo_id(model):
        served = model
    else:
        try:
            load_run(model)  # a finished run that the app can load, checked before anything is uploaded
        except RunFolderError as error:
            raise DeployError(f"cannot deploy {model}: {error}") from None
        copies.update({Path(model) / name: f"{MODEL_DIR}/{name}" for name in RUN_FILES + OPTIONAL_RUN_FILES
                      if (Path(model) / name).is_file()})
        served = MODEL_DIR
    for source, name in copies.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
    written = {SPACE_CONFIG: json.dumps({"model": served, "tta": tta}, indent=2) + "\n",
               "requirements.txt": space_requirements(), "README.md": space_readme(model, hardware, command)}
    for name, text in written.items():
        (folder / name).write_text(text, encoding="utf-8")
    return sorted([*copies.values(), *written])


def check_request(space_id: str, hardware: str | None) -> str:
    """The token, once the request is known to be well-formed; DeployError otherwise. Nothing is sent."""
    try:
        validate_repo_id(space_id)
        if "/" not in space_id:
            raise HFValidationError("no owner")
    except HFValidationError:
        raise DeployError(f"{space_id!r} is not a Space id: write it as USER/NAME (or ORG/NAME)") from None
    if hardware and hardware not in HARDWARE:
        raise DeployError(f"unknown hardware {hardware!r}: choose one of {', '.join(HARDWARE)}")
    token = get_token()
    if not token:
        raise DeployError("deploying needs a Hugging Face token with write access: set HF_TOKEN or run "
                          "`hf auth login`, then run the same command again")
    return token


def deploy_space(space_id: str, model: str, tta: str | None = None, hardware: str | None = None,
                 private: bool = False, command: str = "python app.py --deploy") -> str:
    """Create or update the Gradio Space `space_id` serving `model`; returns its URL."""
    token = check_request(space_id, hardware)
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="space-") as folder:
        files = stage_space(Path(folder), model, tta, hardware, command)
        try:
            if is_repo_id(model):  # the Space would build, then fail to find its model: check first
                present = {sibling.rfilename for sibling in api.model_info(model).siblings or []}
                missing = [name for name in REQUIRED_FILES if name not in present]
                if missing:
                    raise DeployError(f"the model repo {model} is not a run folder: it lacks {', '.join(missing)}")
            url = api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            api.upload_folder(repo_id=space_id, repo_type="space", folder_path=folder, allow_patterns=files,
                              delete_patterns=["*"], commit_message=f"Deploy with `{command}`")
            if hardware:
                api.request_space_hardware(space_id, hardware)
        except DeployError:
            raise
        except Exception as error:  # network, auth, permissions, payment: all end the same way for the user
            reason = str(error).replace(token, "***").splitlines()[0] if str(error) else type(error).__name__
            raise DeployError(f"deploying to the Space {space_id} failed ({type(error).__name__}: {reason}). "
                              "Nothing local was changed; run the same command again once that is fixed") from None
    return str(url)
