"""A run folder: what training leaves behind, what the app reads, and what goes to the Hub.

    model.safetensors, config.json   fp16 weights + model config (classes, normalization)
    history.json                     per-epoch curves and the training config
    metrics.json                     test accuracy (plain and TTA), per-class accuracy, confusion matrix, and the
                                     calibration: temperature, ECE and NLL before and after (cifar/calibration.py)
    misclassified.npz                every misclassified test image: images, true, predicted, confidence, and
                                     the gallery's heatmap of it for each class (heatmap_predicted, heatmap_true)
    predictions.npz                  each test image's logits, plain and TTA (python -m cifar.reevaluate rewrites it)
    accuracy.png, loss.png, confusion_matrix.png, calibration.png (reliability diagrams), README.md (model card)
    faithfulness.json                optional, added after training: ROAD of each CAM method and layer
                                     (python -m cifar.faithfulness_table)
    randomization.png                optional, added after training with metrics.json's "randomization": the
                                     model-randomization sanity check of every method (python -m cifar.sanity)
    class_heatmaps.png               optional, added after training with metrics.json's "class_heatmaps": each
                                     class's mean heatmap (python -m cifar.test_set)
    corruptions.png                  optional, added after training with metrics.json's "corruptions": accuracy
                                     under the CIFAR-10-C corruptions (python -m cifar.corruption_benchmark)
"""

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from .calibration import fits_on_validation, run_calibration
from .evaluate import accuracy_by_tta, test_report, tta_of_views, validation_views
from .explainer import MISTAKE_SIDES, Explainer, heatmap_key
from .hub import model_card, with_card_section
from .model import WEIGHTS_NAME, ResNet18
from .plots import confusion_figure, curve_figure, reliability_figure, save_figure
from .files import STATE_NAME, atomic_write, read_json, save_json

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
    config = history["config"]
    metrics, misclassified, predictions = test_report(shipped, x_test, y_test, shipped.classes, config["tta"], device)
    explainer = Explainer(shipped)
    for side in MISTAKE_SIDES:
        misclassified[heatmap_key(side)] = explainer.mistake_heatmaps(misclassified["images"], misclassified[side])
    validation = None
    if config["val_size"]:  # what the recipe's choices (its TTA among them) are made on
        views, y_val = validation_views(shipped, data, config, device)
        metrics["val_accuracy_by_tta"] = accuracy_by_tta(views, y_val)
        validation = (tta_of_views(views, config["tta"]), y_val) if fits_on_validation(config) else None
    metrics["calibration"] = run_calibration(predictions["logits_tta"], y_test, validation)
    save_json(run_dir / "metrics.json", metrics)
    atomic_write(run_dir / "misclassified.npz", lambda tmp: save_npz(tmp, misclassified))
    atomic_write(run_dir / PREDICTIONS_FILE, lambda tmp: save_npz(tmp, predictions))
    write_figures(run_dir, history, metrics)
    info = {"train_images": len(data["train"][0]) - config["val_size"], **run_info}
    (run_dir / "README.md").write_text(model_card(metrics, history, info))
    # The run is complete: the optimizer state (2x the weights) has no further use.
    (run_dir / STATE_NAME).unlink(missing_ok=True)
    return metrics


def add_measurement(run_dir: Path, key: str, value: dict, figure, figure_name: str, heading: str, section: str) -> None:
    """What a command run after training adds to a run folder (python -m cifar.recalibrate, cifar.sanity): `value`
    under `key` in metrics.json, its figure, and its section of the model card (replaced, or added before the files)."""
    save_json(run_dir / "metrics.json", {**read_json(run_dir / "metrics.json"), key: value})
    save_figure(figure, run_dir / figure_name)
    card = run_dir / "README.md"
    if card.is_file():
        text = with_card_section(card.read_text(), heading, section)
        atomic_write(card, lambda tmp: tmp.write_text(text))


def save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as file:  # a file object: given a path, numpy would append ".npz" to the temp name
        np.savez_compressed(file, **arrays)


def write_figures(run_dir: Path, history: dict, metrics: dict) -> None:
    """accuracy.png, loss.png, confusion_matrix.png, calibration.png: drawn from history.json and metrics.json."""
    for metric in ("accuracy", "loss"):
        save_figure(curve_figure(history, metric), run_dir / f"{metric}.png")
    save_figure(confusion_figure(metrics), run_dir / "confusion_matrix.png")
    if "calibration" in metrics:
        save_figure(reliability_figure(metrics["calibration"]), run_dir / CALIBRATION_FIGURE)


@dataclass
class Run:
    """A finished run folder, loaded once (the app keeps one of these for its whole life)."""

    path: Path
    model: ResNet18
    history: dict
    metrics: dict
    misclassified: dict
    faithfulness: dict | None = None  # faithfulness.json, when the run has one
    predictions: dict | None = None  # predictions.npz, when the run has it (runs since #22 do)

    @property
    def classes(self) -> list:
        return self.model.classes


class RunFolderError(ValueError):
    """A run folder (or Hub repo) that cannot be loaded; the message names the file and the problem."""


REQUIRED_FILES = ("model.safetensors", "config.json", "history.json", "metrics.json", "misclassified.npz")
FAITHFULNESS_FILE = "faithfulness.json"
PREDICTIONS_FILE = "predictions.npz"
CALIBRATION_FIGURE = "calibration.png"  # written by every run since calibration came (cifar/calibration.py)
RANDOMIZATION_FIGURE = "randomization.png"  # optional, added after training (python -m cifar.sanity)
CLASS_HEATMAPS_FIGURE = "class_heatmaps.png"  # optional, added after training (python -m cifar.test_set)
CORRUPTIONS_FIGURE = "corruptions.png"  # optional, added after training (python -m cifar.corruption_benchmark)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def is_repo_id(path_or_repo_id: str) -> bool:
    """A Hub repo id (USER/NAME) rather than a local path: nothing on disk by that name, not ./x or ../x, and
    USER is not a local folder (`runs/fsat` is a mistyped folder in runs/, not a repo of a user called runs)."""
    path = Path(path_or_repo_id)
    return (not path.exists() and not path.parent.is_dir() and not path_or_repo_id.startswith(".")
            and re.fullmatch(r"[\w.-]+/[\w.-]+", path_or_repo_id) is not None)


def locate(path_or_repo_id: str) -> Path:
    """A local run folder, or the local snapshot of a Hub repo id."""
    path = Path(path_or_repo_id)
    if path.is_dir():
        return path
    if not is_repo_id(path_or_repo_id):
        siblings = sorted(p.name for p in path.parent.iterdir() if p.is_dir()) if path.parent.is_dir() else []
        there = f" ({path.parent} holds: {', '.join(siblings)})" if siblings else ""
        raise RunFolderError(f"no such run folder: {path_or_repo_id}{there}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path_or_repo_id, allow_patterns=[*REQUIRED_FILES, "*.png", "README.md",
                                                                          FAITHFULNESS_FILE, PREDICTIONS_FILE]))
    except Exception as error:
        raise RunFolderError(f"{path_or_repo_id} is not a local folder and could not be fetched from the Hugging "
                             f"Face Hub ({type(error).__name__}; offline, private or misspelled?)") from None


def load_model(path: Path, device="cpu") -> ResNet18:
    """The model of a run folder, checked file by file: never unpickles, never loads loosely."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path / 'config.json'} is not valid JSON ({error})") from None
    unknown = set(config) - set(inspect.signature(ResNet18.__init__).parameters)
    if unknown:
        raise RunFolderError(f"{path / 'config.json'} is not a config of this ResNet-18 (unknown keys: "
                             f"{', '.join(sorted(unknown))})")
    try:
        return ResNet18.from_pretrained(path, map_location=str(device))
    except SafetensorError as error:
        raise RunFolderError(f"{path / WEIGHTS_NAME} is not a valid safetensors file: truncated, or another "
                             f"format such as a pickle ({error})") from None
    except (RuntimeError, TypeError, ValueError) as error:
        detail = " ".join(str(error).split())[:300]
        raise RunFolderError(f"{path / WEIGHTS_NAME} does not fit this ResNet-18 ({detail})") from None


def load_run(path_or_repo_id: str, device="cpu") -> Run:
    """Load a run folder (local path or Hub repo id); RunFolderError says what is wrong with it."""
    path = locate(str(path_or_repo_id))
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = (f"; {', '.join(pickles)} is never loaded: pickle files can run code" if pickles else "")
        raise RunFolderError(f"{path} is not a finished run folder: it lacks {', '.join(missing)}{hint}")
    model = load_model(path, device)
    try:
        history = read_json(path / "history.json")
        metrics = read_json(path / "metrics.json")
        with np.load(path / "misclassified.npz", allow_pickle=False) as arrays:
            misclassified = {k: arrays[k] for k in arrays.files}
        faithfulness = read_json(path / FAITHFULNESS_FILE) if (path / FAITHFULNESS_FILE).is_file() else None
        predictions = None
        if (path / PREDICTIONS_FILE).is_file():
            with np.load(path / PREDICTIONS_FILE, allow_pickle=False) as arrays:
                predictions = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{path} has a damaged history/metrics/misclassified/faithfulness/predictions file "
                             f"({error})") from None
    return Run(path, model, history, metrics, misclassified, faithfulness, predictions)
