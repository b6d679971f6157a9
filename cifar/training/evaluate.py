"""A trained model measured: its test report (accuracy plain and with TTA, per class, confusion, the mistakes, each
image's logits) and its validation split seen through every TTA view, on which a recipe's TTA is chosen.
"""

import numpy as np
import torch
import torch.nn.functional as F

from cifar.dataset import split_validation
from cifar.engine.calibration import scaled_probabilities
from cifar.engine.predict import TTA_MODES, predict_arrays, tta_of_views


def accuracy_by_tta(views: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy with each TTA mode, from the logits of flip_translate's views (which start with flip's, which start
    with the plain image): one pass scores them all. How a recipe's TTA is chosen on the validation split."""
    return {mode: float((tta_of_views(views, mode).argmax(1) == y).mean()) for mode in TTA_MODES}


def validation_views(model, data: dict, config: dict, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """(logits of every flip_translate view, labels) of a run's validation split, held out of `data`'s training
    images as training held it out (config: the run's history.json config)."""
    _, (x_val, y_val) = split_validation(*data["train"], config["val_size"], config["seed"])
    return predict_arrays(model, x_val, "flip_translate", device=device), y_val


def loss_and_accuracy(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    logits_t = torch.from_numpy(logits)
    loss = F.cross_entropy(logits_t, torch.from_numpy(y)).item()
    return loss, float((logits.argmax(1) == y).mean())


def test_predictions(views: np.ndarray) -> dict:
    """What predictions.npz holds, from every view's logits: each test image's plain logits, and their mean over
    the TTA views (float32, (N, classes) each). The suite checks a run against them on a sample of the test set,
    instead of repeating the whole pass (python -m cifar.measure.reevaluate does that)."""
    return {"logits": views[0].astype(np.float32), "logits_tta": views.mean(0).astype(np.float32)}


def test_report(model, x: np.ndarray, y: np.ndarray, classes: list, tta: str, device="cpu"):
    """(metrics dict, misclassified arrays, per-image predictions) for a trained model on the test set."""
    predictions = test_predictions(predict_arrays(model, x, tta, device=device))
    plain, augmented = predictions["logits"], predictions["logits_tta"]
    predicted = augmented.argmax(1)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_class = confusion.diagonal() / confusion.sum(1).clip(min=1)
    plain_loss, plain_accuracy = loss_and_accuracy(plain, y)
    metrics = {
        "test_images": int(len(y)),
        "test_accuracy": plain_accuracy,
        "test_loss": plain_loss,
        "tta": tta,
        "test_accuracy_tta": loss_and_accuracy(augmented, y)[1],
        "per_class_accuracy": {name: float(acc) for name, acc in zip(classes, per_class)},
        "confusion_matrix": confusion.tolist(),
        "classes": list(classes),
    }
    wrong = np.flatnonzero(predicted != y)
    probabilities = scaled_probabilities(augmented)
    misclassified = {
        "images": x[wrong],
        "true": y[wrong],
        "predicted": predicted[wrong],
        "confidence": probabilities[wrong, predicted[wrong]].astype(np.float32),
        "index": wrong,
    }
    return metrics, misclassified, predictions
