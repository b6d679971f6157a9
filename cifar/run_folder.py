"""A run folder: what training leaves behind, what the app reads, and what goes to the Hub.

    model.safetensors, config.json   fp16 weights + model config (classes, normalization)
    history.json                     per-epoch curves and the training config
    metrics.json                     test accuracy (plain and TTA), per-class accuracy, confusion matrix
    misclassified.npz                every misclassified test image: images, true, predicted, confidence
    accuracy.png, loss.png, confusion_matrix.png, README.md (model card)
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluate import test_report
from .hub import model_card, read_json
from .model import ResNet18
from .plots import confusion_figure, curve_figure, save_figure
from .training import STATE_NAME, atomic_write, save_json


def finish_run(run_dir: Path, data: dict, model: ResNet18, run_info: dict, device="cpu") -> dict:
    """Write the shipped artifacts of a trained run; returns its metrics.

    The metrics are measured on the weights reloaded from the folder (fp16 storage), i.e. on
    exactly what ships.
    """
    run_dir = Path(run_dir)
    history = read_json(run_dir / "history.json")
    model.save_pretrained(run_dir)
    shipped = ResNet18.from_pretrained(run_dir, map_location=str(device))
    x_test, y_test = data["test"]
    metrics, misclassified = test_report(shipped, x_test, y_test, shipped.classes, history["config"]["tta"], device)
    save_json(run_dir / "metrics.json", metrics)
    atomic_write(run_dir / "misclassified.npz", lambda tmp: np.savez_compressed(open(tmp, "wb"), **misclassified))
    for metric in ("accuracy", "loss"):
        save_figure(curve_figure(history, metric), run_dir / f"{metric}.png")
    save_figure(confusion_figure(metrics), run_dir / "confusion_matrix.png")
    info = {"train_images": len(data["train"][0]) - history["config"]["val_size"], **run_info}
    (run_dir / "README.md").write_text(model_card(metrics, history, info))
    # The run is complete: the optimizer state (2x the weights) has no further use.
    (run_dir / STATE_NAME).unlink(missing_ok=True)
    return metrics


@dataclass
class Run:
    """A finished run folder, loaded once (the app keeps one of these for its whole life)."""

    path: Path
    model: ResNet18
    history: dict
    metrics: dict
    misclassified: dict

    @property
    def classes(self) -> list:
        return self.model.classes


def load_run(path_or_repo_id: str, device="cpu") -> Run:
    """Load a run folder (local path or Hub repo id) with clear errors for what is wrong with it."""
    path = Path(path_or_repo_id)
    if not path.is_dir():
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(path_or_repo_id))
    model = ResNet18.from_pretrained(path, map_location=str(device))
    history = read_json(path / "history.json")
    metrics = read_json(path / "metrics.json")
    with np.load(path / "misclassified.npz", allow_pickle=False) as arrays:
        misclassified = {k: arrays[k] for k in arrays.files}
    return Run(path, model, history, metrics, misclassified)


