"""Not explanations: maps that ignore what the model learned, which every method is measured against (the
faithfulness table, the sanity checks). Each is a method of the one base, so it is scored exactly as the methods are."""

import torch
import torch.nn.functional as F

from cifar.engine.cam.base import BaseCAM, gaussian_blurred


class RandomCAM(BaseCAM):
    """Not an explanation: a uniform random map at the layer's resolution, the chance baseline that the
    faithfulness table (cifar/measure/faithfulness_table.py) measures the methods against. Seeded: the same maps
    for the same seed."""

    uses_gradients = False

    def __init__(self, model, target_layers, seed: int = 0):
        super().__init__(model, target_layers)
        self.generator = torch.Generator().manual_seed(seed)

    def cam(self, images, targets, activations, gradients):
        random = torch.rand((len(activations), *activations.shape[2:]), generator=self.generator)  # (N, h, w)
        return random.to(activations.device)


class SobelCAM(BaseCAM):
    """Not an explanation: the image's own edges (the Sobel gradient magnitude of its grey levels, at the image's
    size). It ignores the model, its weights and the class: a baseline a method must beat to show more than where the
    picture has contrast, and the sanity check's example of a map that survives any randomization of the weights."""

    uses_gradients = False

    def cam(self, images, targets, activations, gradients):
        grey = F.pad(images.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")  # (N, 1, H + 2, W + 2)
        across = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=images.dtype, device=images.device)
        edges = F.conv2d(grey, torch.stack([across, across.T])[:, None])  # (N, 2, H, W): d/dx, d/dy
        return edges.pow(2).sum(1).sqrt()


class CentreCAM(BaseCAM):
    """Not an explanation: a Gaussian blob at the image's centre (standard deviation a quarter of its side), the same
    for every image. CIFAR-10 objects sit in the middle of the picture: a method no better than this shows the
    dataset's habit, not the model's reasoning."""

    uses_gradients = False
    spread = 0.25  # of the image's side

    def cam(self, images, targets, activations, gradients):
        height, width = images.shape[-2:]
        rows = torch.arange(height, dtype=images.dtype, device=images.device) - (height - 1) / 2
        columns = torch.arange(width, dtype=images.dtype, device=images.device) - (width - 1) / 2
        blob = torch.exp(-(rows[:, None] / (self.spread * height)) ** 2 / 2 - (columns[None] / (self.spread * width)) ** 2 / 2)
        return blob.expand(len(images), height, width)


BLUR_SIGMA = 2.0  # pixels of a 32-pixel picture: the blurred controls' Gaussian


def blurred(method: type) -> type:
    """A control for `method`: its own maps, Gaussian-blurred (BLUR_SIGMA) and scaled to [0, 1] again. The same
    evidence, only less precise: a metric that scores the blurred copy above the method rewards blur, not faithfulness
    (Song et al. 2026 trace such a bias in ROAR and ROAD)."""

    class Blurred(method):
        def heatmaps(self, images, targets, activations, gradients):
            maps = super().heatmaps(images, targets, activations, gradients)  # (N, L, H, W)
            flat = gaussian_blurred(maps.flatten(0, 1), BLUR_SIGMA, int(3 * BLUR_SIGMA))[:, None]  # (N * L, 1, H, W)
            low = flat.amin((2, 3), keepdim=True)
            flat = (flat - low) / (flat.amax((2, 3), keepdim=True) - low).clamp_min(1e-12)
            return flat.view(maps.shape)

    Blurred.__name__ = Blurred.__qualname__ = f"Blurred{method.__name__}"
    return Blurred
