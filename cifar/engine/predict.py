"""The model's predictions over arrays: from uint8 pictures to model input, logits with test-time augmentation (TTA),
and the probabilities the page shows. What training's evaluation, the measuring commands and the page share.
"""

import numpy as np
import torch
import torch.nn.functional as F

from cifar.device import model_device


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


def tta_of_views(views: np.ndarray, tta: str) -> np.ndarray:
    """The `tta` prediction's logits (N, classes), from the logits of a wider TTA's views (views, N, classes)."""
    return views[:TTA_VIEWS[tta]].mean(0)


def image_tensor(images: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 (N, 32, 32, 3) or (32, 32, 3) -> float model input."""
    images = images[None] if images.ndim == 3 else images
    return to_model_input(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))), device,
                          channels_last=False)  # served models are NCHW: see to_model_input


@torch.no_grad()
def probabilities(model, image: np.ndarray, tta: str = "flip", temperature: float = 1.0) -> np.ndarray:
    """Class probabilities for a 32x32 uint8 RGB image (classes,), or for a batch (N, classes), computed on the model's
    device: the softmax of the TTA views' mean logits divided by `temperature` (a run's fitted one calibrates them:
    cifar/engine/calibration.py)."""
    model.eval()
    logits = tta_logits(model, image_tensor(image, model_device(model)), tta)
    answer = (logits / temperature).softmax(1).cpu().numpy()
    return answer[0] if image.ndim == 3 else answer


def eval_batches(x: np.ndarray, batch_size: int):
    """Fixed-order uint8 NCHW batches for evaluation: no workers needed, nothing to augment."""
    for start in range(0, len(x), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size].transpose(0, 3, 1, 2)))
