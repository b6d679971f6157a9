"""The methods that need no gradient: each weighs or combines a layer's activations from forward passes alone."""

import threading

import torch
import torch.nn.functional as F

from cifar.engine.cam.base import BaseCAM
from cifar.engine.cam.projection import first_component, first_kernel_component


class ScoreCAM(BaseCAM):
    """Wang et al. 2020: no gradients; each channel, upsampled and scaled to [0, 1], masks the image, and the
    channel's weight is the softmax over channels of the target class's logit for its masked image. One
    forward pass per channel (512 at layer4), batched; a channel silent everywhere masks the whole image
    black, so all such channels share one pass (at layer4 that is 5 to 40% of them)."""

    uses_gradients = False
    costly = True
    batch_size = 32  # masked images per forward pass: on a 2-core CPU, 1.4x as many images/s as in batches of 128

    def weights(self, images, targets, activations, gradients):
        # UpsamplingBilinear2d, as the reference: corners aligned (not the heatmaps' own resize).
        masks = F.interpolate(activations, size=images.shape[-2:], mode="bilinear", align_corners=True)  # (N, C, H, W)
        low, high = masks.amin((2, 3), keepdim=True), masks.amax((2, 3), keepdim=True)
        masks = (masks - low) / (high - low + 1e-8)
        silent = (high == low)[:, :, 0, 0]  # (N, C)
        # The model with BatchNorm folded into its convolutions, where it offers one (our ResNet18.fused): on this 2-core
        # CPU the heatmap at layer4 takes 0.9x the time (BENCHMARKS.md).
        model = self.model.fused() if hasattr(self.model, "fused") else self.model
        black_logits = model(torch.zeros_like(images[:1]))[0]  # (classes,)
        scores = (targets @ black_logits)[:, None].expand(silent.shape).clone()  # (N, C)
        for n, (image, target) in enumerate(zip(images, targets)):
            channels = (~silent[n]).nonzero()[:, 0]
            for batch in channels.split(self.batch_size):
                masked = (image[None] * masks[n, batch, None]).contiguous(memory_format=torch.channels_last)
                scores[n, batch] = model(masked) @ target  # masked: (B, 3, H, W)
        return scores.softmax(1)


class AblationCAM(BaseCAM):
    """Desai & Ramaswamy 2020: each channel's weight is the fraction of the score lost when that channel alone is
    removed, (score - score without it) / score. One forward pass per channel, like Score-CAM. Removed means zero where
    the layer never goes below zero (after a ReLU, as the paper); at a layer with negative outputs (layer4.1.conv2,
    before its BatchNorm) the reference sets the channel far below the layer's minimum (min - 1e7), and so do we."""

    uses_gradients = False
    costly = True
    batch_size = 32  # ablated copies per forward pass (the reference's default)
    far_below = 1e7  # the reference's ABLATION_VALUE

    def heatmaps(self, images, targets, activations, gradients):
        return torch.stack([self.scaled((self.ablation_weights(images, targets, activations[name], name)[:, :, None, None]
                                         * activations[name]).sum(1), images) for name in self.target_layers], 1)

    def ablation_weights(self, images, targets, activations, layer) -> torch.Tensor:
        """(N, C): the relative drop of each image's score with each channel of `layer` removed."""
        owner, replacement = threading.get_ident(), {}

        def hook(module, inputs, output):  # the layer's output, with the batch's channels removed
            return replacement["output"] if threading.get_ident() == owner else None

        original = self.score(self.model(images), targets)  # (N,)
        ablated = torch.empty(activations.shape[:2], device=activations.device)
        handle = self.modules[layer].register_forward_hook(hook)
        try:
            for n, activation in enumerate(activations):
                low = activation.min()
                removed = 0.0 if low == 0 else low - self.far_below
                for channels in torch.arange(len(activation), device=activation.device).split(self.batch_size):
                    copies = activation.repeat(len(channels), 1, 1, 1)  # (B, C, h, w)
                    copies[torch.arange(len(channels)), channels] = removed
                    replacement["output"] = copies
                    logits = self.model(images[n].expand(len(channels), *images.shape[1:]))
                    ablated[n, channels] = self.score(logits, targets[n].expand(len(channels), -1))
        finally:
            handle.remove()
        return (original[:, None] - ablated) / original[:, None]


class EigenCAM(BaseCAM):
    """Muhammad & Yeasin 2020: the activations' first principal component. No gradients, so it ignores the target
    class."""

    uses_gradients = False
    ignores_class = "the main pattern of the layer's activations, no gradients"

    def cam(self, images, targets, activations, gradients):
        return first_component(activations)


class KPCACAM(BaseCAM):
    """Karmani et al. 2024 ("KPCA-CAM"): Eigen-CAM with kernel PCA (sigmoid kernel, scikit-learn's defaults, as the
    reference), which can follow a pattern that is not a straight direction in channel space. Ignores the class."""

    uses_gradients = False
    ignores_class = "the main (kernel) pattern of the layer's activations, no gradients"

    def cam(self, images, targets, activations, gradients):
        return first_kernel_component(activations)


class FEM(BaseCAM):
    """Fuad et al. 2020 (Feature Explanation Method): each channel weighed by the fraction of its positions that
    stand out, above its mean plus k standard deviations; no gradients, so it ignores the class."""

    uses_gradients = False
    ignores_class = "which channels have outstanding positions, no gradients"
    k = 2  # the reference's k-sigma rule

    def weights(self, images, targets, activations, gradients):
        threshold = activations.mean((2, 3), keepdim=True) + self.k * activations.std((2, 3), keepdim=True, correction=0)
        return (activations > threshold).float().mean((2, 3))
