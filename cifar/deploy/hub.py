"""Pushing a finished run folder to a Hugging Face Hub model repo, through the Hub's HTTP API."""

from pathlib import Path

from huggingface_hub import HfApi, get_token

from cifar.files import STATE_NAME


# What stays local: the resume state (optimizer etc.) and half-written files.
NOT_PUSHED = [STATE_NAME, "*.tmp"]


class PushError(RuntimeError):
    """A push that failed; the message says why and what to do. The local run is untouched."""


def push_run(run_dir: Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Upload a finished run folder to a Hub model repo; returns the repo URL."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.safetensors").is_file() or not (run_dir / "config.json").is_file():
        raise PushError(f"{run_dir} is not a finished run folder (no model.safetensors/config.json)")
    token = token or get_token()
    if not token:
        raise PushError("no Hugging Face token: set HF_TOKEN or run `hf auth login`, then push again with "
                        f"`python train.py --push-only --out {run_dir} --push-to-hub {repo_id}`")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=run_dir, ignore_patterns=NOT_PUSHED,
                          commit_message="Upload run folder from cifar-resnet-gradcam")
    except Exception as error:  # network, auth, permissions: all end the same way for the user
        reason = str(error).replace(token, "***").splitlines()[0] if str(error) else type(error).__name__
        raise PushError(f"push of {run_dir} to {repo_id} failed ({type(error).__name__}: {reason}). "
                        f"The run folder is intact; retry with `python train.py --push-only --out {run_dir} "
                        f"--push-to-hub {repo_id}`") from None
    return str(url)
