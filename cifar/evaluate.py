"""Inference over arrays: logits with test-time augmentation, and the test metrics of a run."""

import numpy as np
import torch
import torch.nn.functional as F

from .data import eval_batches, split_validation

TTA_VIEWS = {"none": 1, "flip": 2, "flip_translate": 6}  # views each image is predicted from
TTA_MODES = tuple(TTA_VIEWS)
# Images per forward pass in evaluation. On the 2-core CPU small batches are faster (cache-bound):
# channels_last, 176 img/s at 64 vs 143 at 128 and 149 at 500. GPUs want large ones.
FORWARD_BATCH = {"cpu": 64, "cuda": 1024}


def to_model_input(images: torch.Tensor, device, channels_last: bool = True) -> torch.Tensor:
    """uint8 NCHW -> float [0, 1] on `device` (the model normalizes).

    channels_last must match the model's weights: a mix costs 1.5-2.5x on CPU. Training uses it (about
    20% faster at batch 256); a model loaded for serving stays NCHW, faster for one or two images."""
    images = images.to(device, non_blocking=True).float().div_(255)
    return images.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def is_channels_last(model) -> bool:
    return model.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def check_tta(tta: str) -> None:
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")


@torch.no_grad()
def view_logits(model, images: torch.Tensor, tta: str = "flip") -> torch.Tensor:
    """Logits (views, N, classes) of every view of `images` (float NCHW in [0, 1]); view 0 is the
    images themselves, so the plain prediction comes free with the augmented one.

    flip: the image and its mirror. flip_translate: also both shifted by 2 pixels each way along the
    diagonal (reflect-padded), translations the model saw in training.
    """
    check_tta(tta)
    views = [images]
    if tta != "none":
        views.append(images.flip(3))
    if tta == "flip_translate":
        padded = F.pad(torch.cat(views), (2, 2, 2, 2), mode="reflect")
        views += [padded[..., :32, :32], padded[..., 4:, 4:]]
    return torch.stack(model(torch.cat(views)).split(len(images)))


def tta_logits(model, images: torch.Tensor, tta: str = "flip") -> torch.Tensor:
    """Mean logits (N, classes) over the views of `images`."""
    return view_logits(model, images, tta).mean(0)


@torch.no_grad()
def predict_arrays(model, x: np.ndarray, tta: str = "none", batch_size: int | None = None,
                   device="cpu") -> np.ndarray:
    """Logits (views, N, classes) for uint8 NHWC images: view 0 plain, the mean over views is the TTA
    prediction. batch_size: images per batch, by default FORWARD_BATCH images per forward (views
    included)."""
    model.eval()
    channels_last = is_channels_last(model)
    batch_size = batch_size or max(1, FORWARD_BATCH.get(torch.device(device).type, 64) // TTA_VIEWS.get(tta, 1))
    out = [view_logits(model, to_model_input(batch, device, channels_last), tta).float().cpu()
           for batch in eval_batches(x, batch_size)]
    return torch.cat(out, 1).numpy()


def accuracy_by_tta(views: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy with each TTA mode, from the logits of flip_translate's views (which start with flip's, which start
    with the plain image): one pass scores them all. How a recipe's TTA is chosen on the validation split."""
    return {mode: float((tta_of_views(views, mode).argmax(1) == y).mean()) for mode in TTA_MODES}


def tta_of_views(views: np.ndarray, tta: str) -> np.ndarray:
    """The `tta` prediction's logits (N, classes), from the logits of a wider TTA's views (views, N, classes)."""
    return views[:TTA_VIEWS[tta]].mean(0)


def validation_views(model, data: dict, config: dict, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """(logits of every flip_translate view, labels) of a run's validation split, held out of `data`'s training
    images as training held it out (config: the run's history.json config)."""
    _, (x_val, y_val) = split_validation(*data["train"], config["val_size"], config["seed"])
    return predict_arrays(model, x_val, "flip_translate", device=device), y_val


def loss_and_accuracy(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    logits_t = torch.from_numpy(logits)
    loss = F.cross_entropy(logits_t, torch.from_numpy(y)).item()
    return loss, float((logits.argmax(1) == y).mean())


def softmax(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(logits).softmax(1).numpy()


def test_predictions(views: np.ndarray) -> dict:
    """What predictions.npz holds, from every view's logits: each test image's plain logits, and their mean over
    the TTA views (float32, (N, classes) each). The suite checks a run against them on a sample of the test set,
    instead of repeating the whole pass (python -m cifar.reevaluate does that)."""
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
    probabilities = softmax(augmented)
    misclassified = {
        "images": x[wrong],
        "true": y[wrong],
        "predicted": predicted[wrong],
        "confidence": probabilities[wrong, predicted[wrong]].astype(np.float32),
        "index": wrong,
    }
    return metrics, misclassified, predictions
