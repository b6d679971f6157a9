"""A run folder: what training leaves behind (cifar/training/finish.py writes it), what the app reads, what the
measuring commands add to it and what goes to the Hub.

    model.safetensors, config.json   fp16 weights + model config (classes, normalization)
    history.json                     per-epoch curves and the training config
    metrics.json                     test accuracy (plain and TTA), per-class accuracy, confusion matrix, and the
                                     calibration: temperature, ECE and NLL before and after (cifar/engine/calibration.py)
    misclassified.npz                every misclassified test image: images, true, predicted, confidence, and
                                     the gallery's heatmap of it for each class (heatmap_predicted, heatmap_true)
    predictions.npz                  each test image's logits, plain and TTA (python -m cifar.measure.reevaluate rewrites it)
    accuracy.png, loss.png, confusion_matrix.png, calibration.png (reliability diagrams), README.md (model card)
    faithfulness.json                optional, added after training: ROAD of each CAM method and layer
                                     (python -m cifar.measure.faithfulness_table)
    randomization.png                optional, added after training with metrics.json's "randomization": the
                                     model-randomization sanity check of every method (python -m cifar.measure.sanity)
    class_heatmaps.png               optional, added after training with metrics.json's "class_heatmaps": each
                                     class's mean heatmap (python -m cifar.measure.class_heatmaps)
    corruptions.png                  optional, added after training with metrics.json's "corruptions": accuracy
                                     under the CIFAR-10-C corruptions (python -m cifar.measure.corruption_benchmark)
    test_map.npz, test_map.png       optional, added after training with metrics.json's "test_map": each test image
                                     as a point of the plane, its features reduced by UMAP (python -m cifar.measure.test_map)
"""

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from cifar.engine.model import WEIGHTS_NAME, ResNet18
from cifar.files import atomic_write, read_json, save_json
from cifar.runs.card import with_card_section
from cifar.runs.plots import save_figure


def add_measurement(run_dir: Path, key: str, value: dict, figure, figure_name: str, heading: str, section: str) -> None:
    """What a command run after training adds to a run folder (python -m cifar.measure.recalibrate, cifar.measure.sanity): `value`
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
    test_map: dict | None = None  # test_map.npz: "points" (N, 2) and the test set's "labels" (N,), when the run has it

    @property
    def classes(self) -> list:
        return self.model.classes


class RunFolderError(ValueError):
    """A run folder (or Hub repo) that cannot be loaded; the message names the file and the problem."""

REQUIRED_FILES = ("model.safetensors", "config.json", "history.json", "metrics.json", "misclassified.npz")

FAITHFULNESS_FILE = "faithfulness.json"

PREDICTIONS_FILE = "predictions.npz"

CALIBRATION_FIGURE = "calibration.png"  # written by every run since calibration came (cifar/engine/calibration.py)

RANDOMIZATION_FIGURE = "randomization.png"  # optional, added after training (python -m cifar.measure.sanity)

CLASS_HEATMAPS_FIGURE = "class_heatmaps.png"  # optional, added after training (python -m cifar.measure.class_heatmaps)

TEST_MAP_FILE = "test_map.npz"  # optional, added after training (python -m cifar.measure.test_map)

TEST_MAP_FIGURE = "test_map.png"

CORRUPTIONS_FIGURE = "corruptions.png"  # optional, added after training (python -m cifar.measure.corruption_benchmark)

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
                                                                          FAITHFULNESS_FILE, PREDICTIONS_FILE, TEST_MAP_FILE]))
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
        test_map = None
        if (path / TEST_MAP_FILE).is_file():
            with np.load(path / TEST_MAP_FILE, allow_pickle=False) as arrays:
                test_map = {"points": arrays["points"], "labels": arrays["labels"]}
    except (OSError, ValueError, KeyError) as error:
        raise RunFolderError(f"{path} has a damaged history/metrics/misclassified/faithfulness/predictions/test map "
                             f"file ({error})") from None
    return Run(path, model, history, metrics, misclassified, faithfulness, predictions, test_map)


def model_names(paths_or_repo_ids: list) -> list:
    """What the page calls each model: its run folder's name (the repo id for a Hub repo); the same name twice is an
    error, since the page could then not tell them apart."""
    names = [Path(p).name if Path(p).is_dir() else str(p) for p in paths_or_repo_ids]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"two models would both be called {', '.join(twice)} on the page: give run folders with "
                         "different names")
    return names
