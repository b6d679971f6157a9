"""The app as a Hugging Face Space: the folder a Space needs, staged locally, and its upload.

    python app.py --deploy USER/SPACE                         # the bundled models on ZeroGPU (a free account can)
    python app.py --deploy USER/SPACE --model runs/fast       # another run folder, uploaded with the app
    python app.py --deploy USER/SPACE --model runs/a runs/b   # several, as the page serves them locally
    python app.py --deploy USER/SPACE --model USER/MODEL      # a model repo, fetched when the Space builds
    python app.py --deploy USER/SPACE --hardware cpu-basic    # other hardware: PRO (cpu-basic) or billing (GPUs)
    python app.py --deploy USER/SPACE --dry-run DIR           # stage the upload in DIR and say what would be sent

The upload is exactly the staged folder (an explicit allow-list), sent through the Hub's HTTP API, which
stores large files properly; never git, whose pushes the Hub refuses for binary files over ~1 MB outside
LFS (this repository's history holds 22 MB weights). The Space then mirrors the folder: files of an
earlier deploy that are not in it are deleted.

A new Space is created on ZeroGPU unless --hardware says otherwise: it is the only hardware on which a free
account may run a Gradio Space, and the hardware must be asked for in the create request itself (a free
account's request for a Gradio Space on the default cpu-basic is refused with 402 before any later request
could change it). The staged folder is what ZeroGPU accepts (cifar/deploy/platforms.py): its Python, a torch it
supports, and neither `spaces` nor `gradio`, which the platform brings. Every hardware gets the same folder:
one stack, the one `.ci/platform-stack` proves.
"""

import ast
import json
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, SpaceCardData, SpaceHardware, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import HFValidationError, validate_repo_id

from cifar.deploy.platforms import ZERO_GPU, ZERO_GPU_HARDWARE, read_requirements
from cifar.runs.folder import (CALIBRATION_FIGURE, CLASS_HEATMAPS_FIGURE, CORRUPTIONS_FIGURE, FAITHFULNESS_FILE,
                               PREDICTIONS_FILE, RANDOMIZATION_FIGURE, REQUIRED_FILES, TEST_MAP_FIGURE,
                               TEST_MAP_FILE, RunFolderError, is_repo_id, load_run)
from cifar.runs.folder import model_names
from cifar.dataset import TestSetError, read_test_set

ROOT = Path(__file__).parent.parent.parent
# What the Space's app.py serves: {"models": [folder or repo id, ...], "tta": mode or null, "test_set": TEST_SET or null,
# "mcp": true}
SPACE_CONFIG = "space.json"
MODELS_DIR = "models"  # where local run folders go in the Space: models/NAME, NAME being the page's name for it
TEST_SET = "data/test.npz"  # where the test set goes, when the deploy ships one (the Test set tab browses it)
RUN_FILES = REQUIRED_FILES + ("accuracy.png", "loss.png", "confusion_matrix.png", "README.md")  # what the app reads
# Added to a run after training (python -m cifar.measure.X: faithfulness_table, sanity, class_heatmaps, recalibrate,
# corruption_benchmark; runs trained since #22 and #23 write the predictions and the calibration figure themselves):
# shipped when the run has them. Not preloaded from a model repo, which may not have them; the app fetches them at
# start-up when there.
OPTIONAL_RUN_FILES = (FAITHFULNESS_FILE, PREDICTIONS_FILE, CALIBRATION_FIGURE, RANDOMIZATION_FIGURE,
                      CLASS_HEATMAPS_FIGURE, CORRUPTIONS_FIGURE, TEST_MAP_FILE, TEST_MAP_FIGURE)
PYTHON_VERSION = ZERO_GPU.pythons[0]
TORCH = f"torch=={ZERO_GPU.torches[0]}"
# The platform brings Gradio (at sdk_version) and `spaces`; torchvision only downloads the dataset for training;
# umap-learn only makes a run's test-set map (python -m cifar.measure.test_map), which the Space reads ready-made.
NOT_ON_A_SPACE = ("gradio", "spaces", "torchvision", "umap-learn")
HARDWARE = tuple(flavor.value for flavor in SpaceHardware)
# What the Spaces configuration reference accepts as suggested_hardware: every flavour but ZeroGPU's.
SUGGESTIBLE_HARDWARE = tuple(flavor for flavor in HARDWARE if flavor != ZERO_GPU_HARDWARE)


class DeployError(RuntimeError):
    """A deploy that could not be done; the message says why and what to do. Local files are untouched."""


def space_requirements() -> str:
    pins = {name: line for name, line in read_requirements(ROOT / "requirements.txt").items()
            if name not in NOT_ON_A_SPACE}
    pins["torch"] = TORCH
    return "\n".join([f"# The Space's runtime: the app's requirements.txt with the newest torch that {ZERO_GPU.name}s",
                      "# run, without Gradio and spaces (the platform's own), torchvision (training only) and umap-learn",
                      "# (the map command only).",
                      *pins.values()]) + "\n"


def front_matter(models: list, hardware: str | None = None) -> SpaceCardData:
    """The Space's configuration (the YAML block of its README), as the Spaces configuration reference
    defines it. Model repos are named in `models` (the Hub links them) and `preload_from_hub` (their files
    are fetched into the Space's HF cache when it builds, not at the first request)."""
    extra = {"emoji": "🔥", "colorFrom": "blue", "colorTo": "red", "pinned": False,
             "short_description": "CIFAR-10 ResNet-18: predictions and Grad-CAM"}
    repos = [model for model in models if is_repo_id(model)]
    if repos:
        extra["preload_from_hub"] = [f"{repo} {','.join(RUN_FILES)}" for repo in repos]
    if hardware in SUGGESTIBLE_HARDWARE:
        extra["suggested_hardware"] = hardware
    gradio_pin = read_requirements(ROOT / "requirements.txt")["gradio"].split("==")[1]
    return SpaceCardData(title="CIFAR-10 ResNet-18 + Grad-CAM", sdk="gradio", sdk_version=gradio_pin,
                         python_version=PYTHON_VERSION, app_file="app.py", license="mit",
                         models=repos or None, **extra)


def space_readme(models: list, hardware: str | None, command: str) -> str:
    served = "; ".join(f"the model repo [{model}](https://huggingface.co/{model})" if is_repo_id(model)
                       else f"the run folder in `{MODELS_DIR}/{name}/` (its model card: `{MODELS_DIR}/{name}/README.md`)"
                       for model, name in zip(models, model_names(models)))
    return f"""---
{front_matter(models, hardware).to_yaml()}
---

# CIFAR-10 ResNet-18 + Grad-CAM

A ResNet-18 trained from scratch on CIFAR-10: upload a picture of an airplane, automobile, bird, cat, deer,
dog, frog, horse, ship or truck, see what the model predicts and where it looked (seven CAM methods, from
Grad-CAM to Score-CAM and Eigen-CAM, at any layer, for any class, each with its ROAD faithfulness score), its
training curves and its most confident mistakes.
It serves {served}; `{SPACE_CONFIG}` says which, and with which test-time augmentation.

Deployed from cifar-resnet-gradcam with `{command}`. It runs on whatever hardware the Space has: on a
GPU when there is one (on ZeroGPU each request that runs the model holds one for as long as it needs), else on
the CPU; the page says which.
"""


def app_modules(entry: str = "app.py") -> list:
    """The package's files that `entry` imports, directly or through one another, anywhere in their code (an import
    inside a function counts: app.py imports the page and the deploy code only when asked). What the Space ships:
    training, its commands and the benchmarks stay home."""
    found, todo = set(), [ROOT / entry]
    while todo:
        path = todo.pop()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                package = path.parent.relative_to(ROOT).parts if node.level else ()
                module = ".".join((*package, node.module or "")) if node.level else node.module or ""
                # `from package import module` names a module too: each name is tried as one.
                names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.strip(".").split(".")
                for depth in range(1, len(parts) + 1):  # a module, and the package __init__ files above it
                    module = ROOT.joinpath(*parts[:depth])
                    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                        relative = str(candidate.relative_to(ROOT))
                        if candidate.is_file() and relative not in found:
                            found.add(relative)
                            todo.append(candidate)
    return sorted(found)


def stage_space(folder: Path, models: list, tta: str | None = None, hardware: str | None = None,
                command: str = "python app.py --deploy", test_set: str | None = None) -> list:
    """Write into `folder` exactly what the Space needs to serve `models` (run folders or model repos, the first the
    page's default); returns the files' paths relative to it. `test_set`: a test.npz (or a folder with one) to ship as
    TEST_SET, checked first (CIFAR-10's is 28 MB, stored by the Hub's large-file storage through the HTTP upload)."""
    folder = Path(folder)
    try:
        names = model_names(models)
    except ValueError as error:
        raise DeployError(f"cannot deploy: {error}") from None
    copies = {ROOT / "app.py": "app.py"}
    copies.update({ROOT / name: name for name in app_modules()})
    copies.update({path: f"examples/{path.name}" for path in sorted((ROOT / "examples").glob("*.png"))})
    served = []
    for model, name in zip(models, names):
        if is_repo_id(model):
            served.append(model)
            continue
        try:
            load_run(model)  # a finished run that the app can load, checked before anything is uploaded
        except RunFolderError as error:
            raise DeployError(f"cannot deploy {model}: {error}") from None
        copies.update({Path(model) / file: f"{MODELS_DIR}/{name}/{file}" for file in RUN_FILES + OPTIONAL_RUN_FILES
                       if (Path(model) / file).is_file()})
        served.append(f"{MODELS_DIR}/{name}")
    if test_set:
        try:
            read_test_set(test_set)
        except TestSetError as error:
            raise DeployError(f"cannot ship the test set: {error}") from None
        copies[Path(test_set) / "test.npz" if Path(test_set).is_dir() else Path(test_set)] = TEST_SET
    for source, name in copies.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
    # MCP on: the tools are the endpoints the Space's API already serves (why: cifar/page/assistant_tools.py).
    config = {"models": served, "tta": tta, "test_set": TEST_SET if test_set else None, "mcp": True}
    written = {SPACE_CONFIG: json.dumps(config, indent=2) + "\n",
               "requirements.txt": space_requirements(), "README.md": space_readme(models, hardware, command)}
    for name, text in written.items():
        (folder / name).write_text(text, encoding="utf-8")
    return sorted([*copies.values(), *written])


def check_request(space_id: str, hardware: str | None) -> None:
    """DeployError unless the request is well-formed. Nothing is sent."""
    try:
        validate_repo_id(space_id)
        if "/" not in space_id:
            raise HFValidationError("no owner")
    except HFValidationError:
        raise DeployError(f"{space_id!r} is not a Space id: write it as USER/NAME (or ORG/NAME)") from None
    if hardware and hardware not in HARDWARE:
        raise DeployError(f"unknown hardware {hardware!r}: choose one of {', '.join(HARDWARE)}")


def the_token() -> str:
    token = get_token()
    if not token:
        raise DeployError("deploying needs a Hugging Face token with write access: set HF_TOKEN or run "
                          "`hf auth login`, then run the same command again")
    return token


def describe_request(space_id: str, models: list, tta: str | None, hardware: str | None, private: bool,
                     test_set: str | None = None) -> str:
    """What a deploy asks the Hub for, in words (printed by --dry-run)."""
    served = "; ".join(f"the model repo {model} (fetched when the Space builds)" if is_repo_id(model)
                       else f"the run folder {model}" for model in models)
    return "\n".join([
        f"Space:      {space_id} (Gradio SDK, created if it does not exist, else updated)",
        f"hardware:   {hardware or ZERO_GPU_HARDWARE + ' (ZeroGPU) for a new Space; an existing one keeps its own'}",
        f"visibility: {'private' if private else 'public for a new Space; an existing one keeps its own'}",
        f"{'models:    ' if len(models) > 1 else 'model:     '} {served}, test-time augmentation {tta or 'of the run'}",
        f"test set:   {f'{test_set} (the Test set tab browses it)' if test_set else 'none (the Test set tab says so)'}"])


def hub_refusal(error: HfHubHTTPError, space_id: str, hardware: str | None) -> str:
    """The Hub's own reason for refusing a request, with what the user can do about it."""
    status = error.response.status_code if error.response is not None else None
    reason = (error.server_message or str(error).splitlines()[0]).strip()
    if status == 402:
        asked = f"on {hardware}" if hardware else "there"
        return (f"the Hub asks for a paid plan to run {space_id} {asked}: \"{reason}\". A free account can host up "
                f"to 2 ZeroGPU Spaces: run the same command without --hardware. Gradio Spaces on cpu-basic need "
                f"PRO; other hardware needs billing (https://huggingface.co/settings/billing)")
    if status == 401:
        return (f"the Hub did not accept the token: \"{reason}\". Set HF_TOKEN to a valid token with write access "
                "(https://huggingface.co/settings/tokens) or run `hf auth login` again")
    if status == 403:
        return (f"the token may not create or write {space_id}: \"{reason}\". Use a token with write access to "
                f"{space_id.split('/')[0]}'s namespace (https://huggingface.co/settings/tokens)")
    if status == 409:
        return f"the Hub refused the name {space_id}: \"{reason}\". Choose another Space name"
    return f"the Hub refused the request (HTTP {status}): \"{reason}\""


def dry_run(folder: Path, space_id: str, models: list, tta: str | None = None, hardware: str | None = None,
            private: bool = False, command: str = "python app.py --deploy", test_set: str | None = None) -> str:
    """Stage into `folder` exactly what a deploy would upload; returns the request in words. No token, no
    network (so a model repo's contents are checked only by the real deploy)."""
    check_request(space_id, hardware)
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise DeployError(f"{folder} is not empty: give --dry-run a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    files = stage_space(folder, models, tta, hardware or ZERO_GPU_HARDWARE, command, test_set)
    return "\n".join([describe_request(space_id, models, tta, hardware, private, test_set),
                      f"files ({len(files)}, staged in {folder}):", *(f"  {name}" for name in files)])


def existing_space(api: HfApi, space_id: str):
    """The Space's info, or None when the Hub has no Space of that id (for this token)."""
    try:
        return api.space_info(space_id)
    except RepositoryNotFoundError:
        return None


def deploy_space(space_id: str, models: list, tta: str | None = None, hardware: str | None = None,
                 private: bool = False, command: str = "python app.py --deploy", test_set: str | None = None) -> tuple:
    """Create or update the Gradio Space `space_id` serving `models`; returns its URL and what was done."""
    check_request(space_id, hardware)
    token = the_token()
    api = HfApi(token=token)
    done = []
    with tempfile.TemporaryDirectory(prefix="space-") as folder:
        files = stage_space(Path(folder), models, tta, hardware or ZERO_GPU_HARDWARE, command, test_set)
        try:
            for model in filter(is_repo_id, models):  # the Space would build, then fail to find its model: check first
                try:
                    present = {sibling.rfilename for sibling in api.model_info(model).siblings or []}
                except RepositoryNotFoundError:
                    raise DeployError(f"{model} is neither a local folder nor a model repo on the Hub "
                                      "(misspelled, or private to another account?)") from None
                missing = [name for name in REQUIRED_FILES if name not in present]
                if missing:
                    raise DeployError(f"the model repo {model} is not a run folder: it lacks {', '.join(missing)}")
            space = existing_space(api, space_id)
            if space is None:
                url = api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private,
                                      space_hardware=hardware or ZERO_GPU_HARDWARE)
                done.append(f"created {space_id} on {hardware or ZERO_GPU_HARDWARE}, {'private' if private else 'public'}")
            else:
                url = f"{api.endpoint}/spaces/{space_id}"
                if private and not space.private:
                    api.update_repo_settings(space_id, repo_type="space", private=True)
                    done.append(f"{space_id} existed and was public: it is now private")
                elif space.private and not private:
                    done.append(f"{space_id} existed and stays private (visibility is changed only by --private)")
                current = (space.runtime.requested_hardware or space.runtime.hardware) if space.runtime else None
                if hardware and hardware != current:
                    api.request_space_hardware(space_id, hardware)
                    done.append(f"asked for {hardware} instead of {current}")
            api.upload_folder(repo_id=space_id, repo_type="space", folder_path=folder, allow_patterns=files,
                              delete_patterns=["*"], commit_message=f"Deploy with `{command}`")
            done.append(f"uploaded {len(files)} files")
        except DeployError:
            raise
        except HfHubHTTPError as error:
            raise DeployError(hub_refusal(error, space_id, hardware).replace(token, "***") +
                              ". Nothing local was changed") from None
        except Exception as error:  # network and the like: all end the same way for the user
            reason = str(error).replace(token, "***").splitlines()[0] if str(error) else type(error).__name__
            raise DeployError(f"deploying to the Space {space_id} failed ({type(error).__name__}: {reason}). "
                              "Nothing local was changed; run the same command again once that is fixed") from None
    return str(url), done
